package webdav_test

// Lock ownership (RFC 4918 §6.4), COPY/MOVE Destinations naming another
// server (§9.9.4), and the handler's answers to every result the state
// machine may give, on the in-process harness (harness_test.go).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// hlock takes a lock on the harness and returns its token.
func (hs *harness) hlock(want int, q hreq, scope string) string {
	hs.t.Helper()
	q.method, q.body = "LOCK", lockInfo(scope, "owner-"+q.user+q.fromNode)
	if q.hdr == nil {
		q.hdr = hdr{}
	}
	q.hdr["Content-Type"] = "application/xml"
	r := hs.must(want, q)
	return tokenOf(r.header.Get("Lock-Token"))
}

// TestLockOwnership: a lock belongs to the user who took it. Another
// user who presents its token (anyone can read it in lockdiscovery) gets
// 423 for writes under it and 403 for refreshing or removing it; the
// owner's requests succeed, whether they reach the leader directly or are
// forwarded by a follower, which vouches for the user with the cluster
// secret. The steps run in order on one harness.
func TestLockOwnership(t *testing.T) {
	hs := newHarness(t, harnessOptions{users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"}})
	hs.must(http.StatusCreated, hreq{method: "MKCOL", target: "/d", user: "alice"})
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/d/f", body: "alice's", user: "alice"})
	tok := hs.hlock(http.StatusOK, hreq{target: "/d/f", user: "alice"}, "exclusive")
	if e := hs.node.last(); e.Op != fsm.OpLock || e.User == nil || *e.User != "alice" || e.Lock == nil || e.Lock.Principal != "alice" {
		t.Fatalf("the LOCK entry does not carry alice as the lock's principal: %+v", e)
	}
	col := hs.hlock(http.StatusOK, hreq{target: "/d", user: "alice", hdr: hdr{"Depth": "0"}}, "exclusive")
	sharedA := hs.hlock(http.StatusCreated, hreq{target: "/d/s", user: "alice", hdr: hdr{"If": "</d> (<" + col + ">)"}}, "shared")
	sharedB := hs.hlock(http.StatusOK, hreq{target: "/d/s", user: "bob"}, "shared")

	with := func(token string) hdr { return hdr{"If": ifToken(token)} }
	onD := func(token string) string { return "</d> (<" + token + ">)" } // the collection's lock, tagged
	steps := []struct {
		name string
		q    hreq
		want int
		says string // in the body
	}{
		// Writes: another user's token does not count (423).
		{"bob PUTs with alice's token", hreq{method: "PUT", target: "/d/f", body: "bob's", user: "bob", hdr: with(tok)}, http.StatusLocked, "lock token of its own"},
		{"bob PUTs without a token", hreq{method: "PUT", target: "/d/f", body: "bob's", user: "bob"}, http.StatusLocked, "lock-token-submitted"},
		{"bob DELETEs with alice's token", hreq{method: "DELETE", target: "/d/f", user: "bob", hdr: with(tok)}, http.StatusLocked, ""},
		{"bob MOVEs with alice's token", hreq{method: "MOVE", target: "/d/f", user: "bob", hdr: hdr{"If": ifToken(tok), "Destination": "/moved"}}, http.StatusLocked, ""},
		{"bob PROPPATCHes with alice's token", hreq{method: "PROPPATCH", target: "/d/f", user: "bob", hdr: with(tok),
			body: propertyupdate(`<c:color xmlns:c="urn:t">red</c:color>`, "")}, http.StatusLocked, ""},
		{"bob creates in alice's collection with her token", hreq{method: "PUT", target: "/d/new", body: "x", user: "bob", hdr: hdr{"If": onD(col)}}, http.StatusLocked, ""},
		{"bob MKCOLs in alice's collection with her token", hreq{method: "MKCOL", target: "/d/c", user: "bob", hdr: hdr{"If": onD(col)}}, http.StatusLocked, ""},
		{"bob locks in alice's collection with her token", hreq{method: "LOCK", target: "/d/unmapped", user: "bob",
			hdr: hdr{"If": onD(col), "Content-Type": "application/xml"}, body: lockInfo("exclusive", "bob")}, http.StatusLocked, ""},
		{"alice MKCOLs in her collection with her token", hreq{method: "MKCOL", target: "/d/c", user: "alice", hdr: hdr{"If": onD(col)}}, http.StatusCreated, ""},
		// Both tokens, one each: bob's own shared lock is enough for him.
		{"bob PUTs with his shared token", hreq{method: "PUT", target: "/d/s", body: "bob's", user: "bob", hdr: with(sharedB)}, http.StatusNoContent, ""},
		{"bob PUTs with alice's shared token", hreq{method: "PUT", target: "/d/s", body: "bob's", user: "bob", hdr: with(sharedA)}, http.StatusLocked, ""},
		{"alice PUTs with bob's shared token", hreq{method: "PUT", target: "/d/s", body: "alice's", user: "alice", hdr: with(sharedB)}, http.StatusLocked, ""},
		{"alice PUTs with both shared tokens", hreq{method: "PUT", target: "/d/s", body: "alice's", user: "alice",
			hdr: hdr{"If": "(<" + sharedB + ">) (<" + sharedA + ">)"}}, http.StatusNoContent, ""},
		// A follower forwards with the user it authenticated: the leader
		// checks that user, not whoever holds the token.
		{"bob through a follower with alice's token", hreq{method: "PUT", target: "/d/f", body: "bob's", fromNode: "bob", hdr: with(tok)}, http.StatusLocked, ""},
		{"alice through a follower with her token", hreq{method: "PUT", target: "/d/f", body: "alice's 2", fromNode: "alice", hdr: with(tok)}, http.StatusNoContent, ""},
		// A client cannot name itself: without the cluster secret the
		// identity header is dropped and bob stays bob.
		{"bob claiming to be alice", hreq{method: "PUT", target: "/d/f", body: "bob's", user: "bob", hdr: hdr{"If": ifToken(tok), "X-Dfs-User": "alice"}}, http.StatusLocked, ""},
		// Refresh and UNLOCK of another user's lock: 403.
		{"bob refreshes alice's lock", hreq{method: "LOCK", target: "/d/f", user: "bob", hdr: hdr{"If": ifToken(tok), "Timeout": "Second-60"}}, http.StatusForbidden, "belongs to another user"},
		{"bob through a follower refreshes alice's lock", hreq{method: "LOCK", target: "/d/f", fromNode: "bob", hdr: with(tok)}, http.StatusForbidden, "belongs to another user"},
		{"bob unlocks alice's lock", hreq{method: "UNLOCK", target: "/d/f", user: "bob", hdr: hdr{"Lock-Token": "<" + tok + ">"}}, http.StatusForbidden, "belongs to another user"},
		{"bob through a follower unlocks alice's lock", hreq{method: "UNLOCK", target: "/d/f", fromNode: "bob", hdr: hdr{"Lock-Token": "<" + tok + ">"}}, http.StatusForbidden, ""},
		{"bob unlocks alice's shared lock", hreq{method: "UNLOCK", target: "/d/s", user: "bob", hdr: hdr{"Lock-Token": "<" + sharedA + ">"}}, http.StatusForbidden, ""},
		// The owner may do all of it.
		{"alice refreshes", hreq{method: "LOCK", target: "/d/f", user: "alice", hdr: hdr{"If": ifToken(tok), "Timeout": "Second-60"}}, http.StatusOK, tok},
		{"alice through a follower refreshes", hreq{method: "LOCK", target: "/d/f", fromNode: "alice", hdr: with(tok)}, http.StatusOK, tok},
		{"alice PUTs with her token", hreq{method: "PUT", target: "/d/f", body: "alice's 3", user: "alice", hdr: with(tok)}, http.StatusNoContent, ""},
		{"alice PROPPATCHes with her token", hreq{method: "PROPPATCH", target: "/d/f", user: "alice", hdr: with(tok),
			body: propertyupdate(`<c:color xmlns:c="urn:t">red</c:color>`, "")}, http.StatusMultiStatus, ""},
		{"bob unlocks his shared lock", hreq{method: "UNLOCK", target: "/d/s", user: "bob", hdr: hdr{"Lock-Token": "<" + sharedB + ">"}}, http.StatusNoContent, ""},
		{"alice through a follower unlocks", hreq{method: "UNLOCK", target: "/d/f", fromNode: "alice", hdr: hdr{"Lock-Token": "<" + tok + ">"}}, http.StatusNoContent, ""},
		{"bob PUTs once the lock is gone", hreq{method: "PUT", target: "/d/f", body: "bob's", user: "bob"}, http.StatusNoContent, ""},
	}
	for _, s := range steps {
		before := hs.content("/d/f")
		r := hs.do(s.q)
		if r.status != s.want || !strings.Contains(string(r.body), s.says) {
			t.Fatalf("%s: got %s, want %d saying %q", s.name, r, s.want, s.says)
		}
		if s.want >= 400 && s.q.target == "/d/f" && hs.content("/d/f") != before {
			t.Fatalf("%s: refused, but /d/f changed", s.name)
		}
	}
	locks, err := hs.store.Locks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if l.Token == sharedA && l.Principal != "alice" {
			t.Errorf("alice's shared lock is stored with principal %q", l.Principal)
		}
		if l.Token == tok || l.Token == sharedB {
			t.Errorf("lock %s survived its owner's UNLOCK", l.Token)
		}
	}
}

// TestLockOwnershipOpen: with the API open there are no users, locks have
// no principal, and whoever presents a token may use it, as before dfs
// recorded principals. A lock stored with a principal (taken while the
// API required users) is nobody's to use once it is open.
func TestLockOwnershipOpen(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/f", body: "x"})
	tok := hs.hlock(http.StatusOK, hreq{target: "/f"}, "exclusive")
	if e := hs.node.last(); e.User == nil || *e.User != "" || e.Lock.Principal != "" {
		t.Fatalf("an open API recorded a principal: %+v", e)
	}
	hs.must(http.StatusLocked, hreq{method: "PUT", target: "/f", body: "y"})
	hs.must(http.StatusNoContent, hreq{method: "PUT", target: "/f", body: "y", hdr: hdr{"If": ifToken(tok)}, remote: "198.51.100.1:1"})
	hs.must(http.StatusOK, hreq{method: "LOCK", target: "/f", hdr: hdr{"If": ifToken(tok)}, remote: "198.51.100.2:1"})
	hs.must(http.StatusNoContent, hreq{method: "UNLOCK", target: "/f", hdr: hdr{"Lock-Token": "<" + tok + ">"}, remote: "198.51.100.3:1"})

	// A lock left by alice from when the API had users.
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/g", body: "x"})
	res, err := hs.node.Propose(context.Background(), &fsm.Command{Op: fsm.OpLock, Path: "/g", User: fsm.UserOf("alice"),
		Lock: &metastore.Lock{Token: "opaquelocktoken:alices", Root: "/g", Principal: "alice"}})
	if err != nil || res.Code != fsm.OK {
		t.Fatalf("lock as alice: %+v %v", res, err)
	}
	hs.must(http.StatusLocked, hreq{method: "PUT", target: "/g", body: "y", hdr: hdr{"If": ifToken("opaquelocktoken:alices")}})
	hs.must(http.StatusForbidden, hreq{method: "UNLOCK", target: "/g", hdr: hdr{"Lock-Token": "<opaquelocktoken:alices>"}})
}

// TestDestinationOrigin: a COPY or MOVE whose Destination names another
// server gets 502 and changes nothing; the request's own origin (scheme,
// host, port), a --public-url, a member's URL and what a trusted proxy
// reports in X-Forwarded-Host/-Proto are this server, as is a plain path.
func TestDestinationOrigin(t *testing.T) {
	type config struct {
		name string
		opts harnessOptions
	}
	plain := config{"no configuration", harnessOptions{}}
	public := config{"public URL", harnessOptions{publicURLs: []string{"https://dav.example.com", "http://alt.example.com:8081"}}}
	proxied := config{"trusted proxies", harnessOptions{trustedProxies: []string{"10.0.0.0/8", "fd00::1"}}}
	const (
		proxy     = "10.1.2.3:5555"
		stranger  = "203.0.113.9:5555"
		proxyV6   = "[fd00::1]:5555"
		ownHost   = "node.internal:8080"
		memberURL = "http://node-2.internal:8080"
	)
	fwd := func(host, proto string) hdr {
		h := hdr{"X-Forwarded-Host": host}
		if proto != "" {
			h["X-Forwarded-Proto"] = proto
		}
		return h
	}
	cases := []struct {
		name   string
		cfg    config
		dst    string // Destination: scheme://host prefix, or "" for a path only
		remote string
		tls    bool
		hdr    hdr
		node   string // forwarded by a node (fromNode) with this X-Forwarded-For
		want   int
	}{
		{name: "path only", cfg: plain, want: http.StatusCreated},
		{name: "own origin", cfg: plain, dst: "http://" + ownHost, want: http.StatusCreated},
		{name: "own origin, host in upper case", cfg: plain, dst: "http://NODE.internal:8080", want: http.StatusCreated},
		{name: "another host", cfg: plain, dst: "http://elsewhere.example", want: http.StatusBadGateway},
		{name: "another port", cfg: plain, dst: "http://node.internal:8081", want: http.StatusBadGateway},
		{name: "own host, default port", cfg: plain, dst: "http://node.internal", want: http.StatusBadGateway},
		{name: "own host, other scheme", cfg: plain, dst: "https://" + ownHost, want: http.StatusBadGateway},
		{name: "over TLS, https", cfg: plain, tls: true, dst: "https://" + ownHost, want: http.StatusCreated},
		{name: "over TLS, http", cfg: plain, tls: true, dst: "http://" + ownHost, want: http.StatusBadGateway},
		{name: "default port both ways", cfg: plain, hdr: hdr{"Host": "dav.example.com"}, dst: "http://dav.example.com:80", want: http.StatusCreated},
		{name: "member URL", cfg: plain, dst: memberURL, want: http.StatusCreated},
		{name: "member host, other port", cfg: plain, dst: "http://node-2.internal:9090", want: http.StatusBadGateway},
		{name: "public URL", cfg: public, dst: "https://dav.example.com", want: http.StatusCreated},
		{name: "public URL, explicit port", cfg: public, dst: "https://dav.example.com:443", want: http.StatusCreated},
		{name: "public URL, other scheme", cfg: public, dst: "http://dav.example.com", want: http.StatusBadGateway},
		{name: "second public URL", cfg: public, dst: "http://alt.example.com:8081", want: http.StatusCreated},
		{name: "public URL not configured", cfg: plain, dst: "https://dav.example.com", want: http.StatusBadGateway},
		{name: "foreign with a public URL configured", cfg: public, dst: "https://evil.example.com", want: http.StatusBadGateway},
		{name: "trusted proxy's host and scheme", cfg: proxied, remote: proxy, hdr: fwd("dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusCreated},
		{name: "trusted proxy's host, scheme differs", cfg: proxied, remote: proxy, hdr: fwd("dav.example.com", "https"), dst: "http://dav.example.com", want: http.StatusBadGateway},
		{name: "trusted proxy's scheme only", cfg: proxied, remote: proxy, hdr: hdr{"Host": "dav.example.com", "X-Forwarded-Proto": "https"}, dst: "https://dav.example.com", want: http.StatusCreated},
		{name: "trusted proxy appended its host", cfg: proxied, remote: proxy, hdr: fwd("evil.example, dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusCreated},
		{name: "trusted proxy, client's earlier host", cfg: proxied, remote: proxy, hdr: fwd("evil.example, dav.example.com", "https"), dst: "https://evil.example", want: http.StatusBadGateway},
		{name: "trusted IPv6 proxy", cfg: proxied, remote: proxyV6, hdr: fwd("dav.example.com:8443", "https"), dst: "https://dav.example.com:8443", want: http.StatusCreated},
		{name: "untrusted peer's X-Forwarded-Host", cfg: proxied, remote: stranger, hdr: fwd("dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusBadGateway},
		{name: "X-Forwarded-Host without trusted proxies", cfg: plain, remote: proxy, hdr: fwd("dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusBadGateway},
		{name: "trusted proxy, another host", cfg: proxied, remote: proxy, hdr: fwd("dav.example.com", "https"), dst: "https://elsewhere.example", want: http.StatusBadGateway},
		// Forwarded by a follower: the leader sees the client's Host and
		// believes X-Forwarded-Host only if the peer the follower
		// received the request from (the last X-Forwarded-For entry the
		// follower vouches for with the cluster secret) is trusted.
		{name: "forwarded, own origin", cfg: plain, node: "198.51.100.4", remote: "10.9.9.9:1", dst: "http://" + ownHost, want: http.StatusCreated},
		{name: "forwarded, foreign", cfg: plain, node: "198.51.100.4", remote: "10.9.9.9:1", dst: "http://elsewhere.example", want: http.StatusBadGateway},
		{name: "forwarded from a trusted proxy", cfg: proxied, node: "198.51.100.4, 10.1.2.3", remote: stranger, hdr: fwd("dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusCreated},
		{name: "forwarded from an untrusted client", cfg: proxied, node: "10.1.2.3, 198.51.100.4", remote: proxy, hdr: fwd("dav.example.com", "https"), dst: "https://dav.example.com", want: http.StatusBadGateway},
		{name: "not forwarded: X-Forwarded-For ignored", cfg: proxied, remote: stranger, hdr: hdr{"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Host": "dav.example.com", "X-Forwarded-Proto": "https"},
			dst: "https://dav.example.com", want: http.StatusBadGateway},
	}
	harnesses := map[string]*harness{}
	for _, cfg := range []config{plain, public, proxied} {
		hs := newHarness(t, cfg.opts)
		// Another member of the cluster, as the member table knows it.
		res, err := hs.node.Propose(context.Background(), &fsm.Command{Op: fsm.OpMember,
			Member: &metastore.Member{ID: "node-2", URL: memberURL, RaftAddr: "node-2.internal:7000"}})
		if err != nil || res.Code != fsm.OK {
			t.Fatalf("member: %+v %v", res, err)
		}
		harnesses[cfg.name] = hs
	}
	for i, tc := range cases {
		for _, method := range []string{"COPY", "MOVE"} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, method), func(t *testing.T) {
				hs := harnesses[tc.cfg.name]
				hs.t = t
				src, dst := fmt.Sprintf("/src-%d-%s", i, method), fmt.Sprintf("/dst-%d-%s", i, method)
				hs.must(http.StatusCreated, hreq{method: "PUT", target: src, body: "content"})
				h := hdr{"Destination": tc.dst + dst}
				for k, v := range tc.hdr {
					h[k] = v
				}
				if tc.node != "" {
					h["X-Forwarded-For"] = tc.node
				}
				q := hreq{method: method, target: src, hdr: h, remote: tc.remote, tls: tc.tls}
				if tc.node != "" {
					q.fromNode = "anyone"
				}
				entries := len(hs.node.seen)
				r := hs.do(q)
				if r.status != tc.want {
					t.Fatalf("Destination %s: got %s, want %d", h["Destination"], r, tc.want)
				}
				srcAfter, dstAfter := hs.content(src) != "", hs.content(dst) != ""
				switch tc.want {
				case http.StatusBadGateway:
					if !strings.Contains(string(r.body), "names another server") || !strings.Contains(string(r.body), "--public-url") {
						t.Errorf("502 body does not say why: %q", r.body)
					}
					if len(hs.node.seen) != entries || !srcAfter || dstAfter {
						t.Errorf("a 502 changed something: %d entries proposed, source there: %v, destination there: %v",
							len(hs.node.seen)-entries, srcAfter, dstAfter)
					}
				default:
					if srcAfter != (method == "COPY") || !dstAfter {
						t.Errorf("%s not carried out: source there: %v, destination there: %v", method, srcAfter, dstAfter)
					}
				}
			})
		}
	}
}

// TestOddResults drives every writing method through a Node that answers
// each result a state machine could give, sensible or not, and each kind
// of error: the handler never panics, never answers 2xx to a refused
// entry, and answers 500 saying the outcome is unknown when an OK result
// lacks what the response must report.
func TestOddResults(t *testing.T) {
	type answer struct {
		name    string
		res     *fsm.Result
		err     error
		refused bool // not a success: no 2xx allowed
		empty   bool // OK without the fields a response may need
	}
	answers := []answer{
		{name: "nil result, nil error", refused: true},
		{name: "empty OK", res: &fsm.Result{}, empty: true},
		{name: "replayed", res: &fsm.Result{Code: fsm.OK, Msg: "replayed"}, empty: true},
		{name: "OK with a foreign lock", res: &fsm.Result{Code: fsm.OK, Lock: metastore.Lock{Token: "opaquelocktoken:other", Root: "relative"}}, empty: true},
		{name: "OK with a collection", res: &fsm.Result{Code: fsm.OK, Created: true, Inode: metastore.Inode{ID: 99, Kind: metastore.KindDir}}, empty: true},
		{name: "Locked without a path", res: &fsm.Result{Code: fsm.Locked}, refused: true},
		{name: "Locked with a relative path", res: &fsm.Result{Code: fsm.Locked, LockedPath: "no/slash"}, refused: true},
		{name: "unknown code", res: &fsm.Result{Code: fsm.Code(99), Created: true}, refused: true},
		{name: "negative code", res: &fsm.Result{Code: fsm.Code(-1)}, refused: true},
		{name: "error", err: errors.New("raft: no leader"), refused: true},
		{name: "deadline", err: context.DeadlineExceeded, refused: true},
		{name: "fsm error as an error", err: &fsm.Error{Code: fsm.Locked}, refused: true},
		{name: "result and error", res: &fsm.Result{Code: fsm.OK, Created: true}, err: errors.New("both"), refused: true},
	}
	for c := fsm.NotFound; c <= fsm.InsufficientStorage; c++ {
		answers = append(answers, answer{name: "empty " + c.String(), res: &fsm.Result{Code: c, Created: true}, refused: true})
	}
	// needs: methods whose success answer reports a field of the result.
	type request struct {
		name  string
		q     func(lock string) hreq
		needs bool
	}
	lockHdr := hdr{"Content-Type": "application/xml"}
	requests := []request{
		{"PUT over a file", func(string) hreq { return hreq{method: "PUT", target: "/d/f", body: "new"} }, true},
		{"PUT a new file", func(string) hreq { return hreq{method: "PUT", target: "/d/new", body: "new"} }, true},
		{"MKCOL", func(string) hreq { return hreq{method: "MKCOL", target: "/d/c"} }, false},
		{"DELETE", func(string) hreq { return hreq{method: "DELETE", target: "/d/f"} }, false},
		{"COPY", func(string) hreq { return hreq{method: "COPY", target: "/d/f", hdr: hdr{"Destination": "/d/g"}} }, false},
		{"MOVE", func(string) hreq { return hreq{method: "MOVE", target: "/d/f", hdr: hdr{"Destination": "/d/h"}} }, false},
		{"PROPPATCH", func(string) hreq {
			return hreq{method: "PROPPATCH", target: "/d/f", body: propertyupdate(`<c:color xmlns:c="urn:t">red</c:color>`, "")}
		}, false},
		{"LOCK a file", func(string) hreq {
			return hreq{method: "LOCK", target: "/d/f", body: lockInfo("exclusive", "o"), hdr: lockHdr}
		}, true},
		{"LOCK an unmapped URL", func(string) hreq {
			return hreq{method: "LOCK", target: "/d/unmapped", body: lockInfo("shared", "o"), hdr: lockHdr}
		}, true},
		{"LOCK refresh", func(tok string) hreq { return hreq{method: "LOCK", target: "/d/locked", hdr: hdr{"If": ifToken(tok)}} }, true},
		{"UNLOCK", func(tok string) hreq {
			return hreq{method: "UNLOCK", target: "/d/locked", hdr: hdr{"Lock-Token": "<" + tok + ">"}}
		}, false},
	}
	hs := newHarness(t, harnessOptions{})
	hs.must(http.StatusCreated, hreq{method: "MKCOL", target: "/d"})
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/d/f", body: "old"})
	tok := hs.hlock(http.StatusCreated, hreq{target: "/d/locked"}, "exclusive")
	for _, a := range answers {
		for _, rq := range requests {
			t.Run(a.name+"/"+rq.name, func(t *testing.T) {
				hs.t = t
				proposed := false
				hs.node.answer = func(*fsm.Command) (*fsm.Result, error) { proposed = true; return a.res, a.err }
				defer func() { hs.node.answer = nil }()
				var r response
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("handler panicked: %v\n%s", p, debug.Stack())
						}
					}()
					r = hs.do(rq.q(tok))
				}()
				if !proposed {
					t.Fatalf("the request never reached the Node: %s", r)
				}
				if r.status < 200 || r.status >= 600 {
					t.Fatalf("status %d", r.status)
				}
				success := r.status >= 200 && r.status < 300
				if r.status == http.StatusMultiStatus && a.res != nil && a.res.Code == fsm.Forbidden && a.err == nil {
					// PROPPATCH of a protected property: 403 for it
					// inside the 207 (RFC 4918 §9.2.1), no property set.
					success = strings.Contains(string(r.body), " 200 ")
				}
				switch {
				case a.refused && success:
					t.Fatalf("a refused entry answered %s", r)
				case a.empty && rq.needs && (r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "outcome is unknown")):
					t.Fatalf("an OK result without the fields the answer needs: got %s, want 500 saying the outcome is unknown", r)
				case r.status >= 500 && len(strings.TrimSpace(string(r.body))) == 0 && r.status != 499:
					t.Fatalf("%d without a body", r.status)
				}
			})
		}
	}
}
