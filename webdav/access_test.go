package webdav_test

import (
	"net/http"
	"strings"
	"testing"
)

// teamRules is a team's drive: homes everyone may read and only the owner
// (and admins) may change, a shared folder staff may change with a board
// only staff may read, a secret area for admins, and a vault whose inbox
// alice may drop files into without seeing the vault.
const teamRules = `
default: none
groups:
  staff: [alice, carol]
  admins: [root]
rules:
  - path: /
    read: ["*"]
    write: ["@admins"]
  - path: /home
    read: ["*"]
    write: ["@admins"]
  - path: /home/{user}
    write: ["{user}", "@admins"]
  - path: /shared
    read: ["*"]
    write: ["@staff", "@admins"]
  - path: /shared/board
    read: ["@staff"]
    write: ["@admins"]
  - path: /secret
    write: ["@admins"]
  - path: /vault
    write: ["@admins"]
  - path: /vault/inbox
    write: [alice, "@admins"]
`

func newTeamHarness(t *testing.T) *harness {
	t.Helper()
	hs := newHarness(t, harnessOptions{
		users: map[string]string{"root": "root-pw", "alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"},
		rules: teamRules,
	})
	for _, d := range []string{"/home", "/home/alice", "/home/bob", "/shared", "/shared/board", "/secret", "/vault", "/vault/inbox"} {
		hs.must(http.StatusCreated, hreq{method: "MKCOL", target: d, user: "root"})
	}
	for _, f := range []string{"/home/alice/a.txt", "/home/bob/b.txt", "/shared/s.txt", "/shared/board/minutes.txt", "/secret/s.txt", "/vault/v.txt"} {
		hs.must(http.StatusCreated, hreq{method: http.MethodPut, target: f, body: "content of " + f, user: "root"})
	}
	return hs
}

// TestAccessMatrix sends each user's request and checks the status and
// that a refused request changed nothing.
func TestAccessMatrix(t *testing.T) {
	hs := newTeamHarness(t)
	cases := []struct {
		user, method, target, dest string
		want                       int
		changes                    []string // paths that must keep (or lack) what they held when refused
	}{
		// Reading: homes are open to all, the board to staff, the secret
		// area to admins only (404, as if it did not exist).
		{user: "alice", method: "GET", target: "/home/alice/a.txt", want: 200},
		{user: "alice", method: "GET", target: "/home/bob/b.txt", want: 200},
		{user: "bob", method: "GET", target: "/shared/board/minutes.txt", want: 404},
		{user: "alice", method: "GET", target: "/shared/board/minutes.txt", want: 200},
		{user: "alice", method: "GET", target: "/secret/s.txt", want: 404},
		{user: "alice", method: "HEAD", target: "/secret", want: 404},
		{user: "alice", method: "PROPFIND", target: "/secret", want: 404},
		{user: "root", method: "GET", target: "/secret/s.txt", want: 200},
		// Writing: one's own home yes, another's no (403: readable), the
		// secret area no (404: not even readable).
		{user: "alice", method: "PUT", target: "/home/alice/new.txt", want: 201},
		{user: "alice", method: "PUT", target: "/home/bob/b.txt", want: 403, changes: []string{"/home/bob/b.txt"}},
		{user: "alice", method: "PUT", target: "/secret/s.txt", want: 404, changes: []string{"/secret/s.txt"}},
		{user: "bob", method: "PUT", target: "/shared/s.txt", want: 403, changes: []string{"/shared/s.txt"}},
		{user: "carol", method: "PUT", target: "/shared/c.txt", want: 201},
		{user: "alice", method: "MKCOL", target: "/home/bob/d", want: 403, changes: []string{"/home/bob/d"}},
		{user: "alice", method: "DELETE", target: "/home/bob/b.txt", want: 403, changes: []string{"/home/bob/b.txt"}},
		{user: "alice", method: "PROPPATCH", target: "/home/bob/b.txt", want: 403},
		{user: "alice", method: "LOCK", target: "/home/bob/b.txt", want: 403},
		{user: "alice", method: "UNLOCK", target: "/secret/s.txt", want: 404},
		{user: "alice", method: "PUT", target: "/vault/inbox/drop.txt", want: 201},
		{user: "alice", method: "GET", target: "/vault/v.txt", want: 404},
		// A collection with a member the user may not change is deleted
		// not at all: 207 naming the member they can see, or 403 when
		// they cannot see it.
		{user: "alice", method: "DELETE", target: "/shared", want: 207, changes: []string{"/shared", "/shared/s.txt", "/shared/board/minutes.txt"}},
		{user: "root", method: "DELETE", target: "/vault/inbox", want: 204},
		// COPY needs read on the whole source and write on the
		// destination; MOVE write on both.
		{user: "alice", method: "COPY", target: "/shared", dest: "/home/alice/shared-copy", want: 201},
		{user: "bob", method: "COPY", target: "/shared", dest: "/home/bob/shared-copy", want: 403, changes: []string{"/home/bob/shared-copy"}},
		{user: "bob", method: "COPY", target: "/home/alice/a.txt", dest: "/home/bob/a.txt", want: 201},
		{user: "bob", method: "COPY", target: "/home/bob/b.txt", dest: "/home/alice/b.txt", want: 403, changes: []string{"/home/alice/b.txt"}},
		{user: "alice", method: "COPY", target: "/home/alice/a.txt", dest: "/secret/a.txt", want: 404, changes: []string{"/secret/a.txt"}},
		{user: "alice", method: "MOVE", target: "/home/bob/b.txt", dest: "/home/alice/b.txt", want: 403, changes: []string{"/home/bob/b.txt", "/home/alice/b.txt"}},
		{user: "alice", method: "MOVE", target: "/shared/s.txt", dest: "/home/alice/s.txt", want: 201},
		{user: "alice", method: "MOVE", target: "/shared", dest: "/home/alice/all", want: 207, changes: []string{"/shared", "/home/alice/all"}},
		// Overwriting a collection replaces every member: bob may not
		// replace alice's copy of the board through the shared folder.
		{user: "carol", method: "COPY", target: "/home/alice/a.txt", dest: "/shared", want: 207, changes: []string{"/shared", "/shared/board/minutes.txt"}},
	}
	for _, c := range cases {
		before := map[string]string{}
		for _, p := range c.changes {
			before[p] = hs.content(p)
		}
		q := hreq{method: c.method, target: c.target, user: c.user, hdr: hdr{}}
		switch c.method {
		case "PUT":
			q.body = "new content by " + c.user
		case "PROPPATCH":
			q.body = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop><Z:k>v</Z:k></D:prop></D:set></D:propertyupdate>`
		case "LOCK":
			q.body = `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
		case "UNLOCK":
			q.hdr["Lock-Token"] = "<urn:uuid:00000000-0000-0000-0000-000000000000>"
		case "PROPFIND":
			q.hdr["Depth"] = "0"
		case "COPY", "MOVE":
			q.hdr["Destination"] = "http://node.internal:8080" + c.dest
		}
		r := hs.do(q)
		if r.status != c.want {
			t.Errorf("%s %s %s (dest %q): got %s, want %d", c.user, c.method, c.target, c.dest, r, c.want)
		}
		for p, was := range before {
			if now := hs.content(p); now != was {
				t.Errorf("%s %s %s: %s changed from %q to %q", c.user, c.method, c.target, p, was, now)
			}
		}
		if c.want == 207 && c.method != "PROPFIND" {
			// The 207 names only what the user may see.
			if strings.Contains(string(r.body), "/secret") || strings.Contains(string(r.body), "/vault") {
				t.Errorf("%s %s %s: 207 names a hidden path: %s", c.user, c.method, c.target, r.body)
			}
		}
	}
}

// TestAccessListingsHideMembers: PROPFIND and the HTML index list only
// members the user may read.
func TestAccessListingsHideMembers(t *testing.T) {
	hs := newTeamHarness(t)
	tests := []struct {
		user, target string
		shown        []string
		hidden       []string
	}{
		{"alice", "/", []string{"/home/", "/shared/"}, []string{"/secret", "/vault"}},
		{"root", "/", []string{"/home/", "/shared/", "/secret/", "/vault/"}, nil},
		{"bob", "/shared", []string{"/shared/s.txt"}, []string{"/shared/board"}},
		{"alice", "/shared", []string{"/shared/s.txt", "/shared/board/"}, nil},
	}
	for _, tc := range tests {
		for _, method := range []string{"PROPFIND", "GET"} {
			q := hreq{method: method, target: tc.target, user: tc.user, hdr: hdr{"Depth": "1"}}
			want := http.StatusMultiStatus
			if method == "GET" {
				want = http.StatusOK
			}
			body := string(hs.must(want, q).body)
			for _, s := range tc.shown {
				if !strings.Contains(body, `"`+s+`"`) && !strings.Contains(body, ">"+s+"<") {
					t.Errorf("%s %s %s: %s not listed:\n%s", tc.user, method, tc.target, s, body)
				}
			}
			for _, s := range tc.hidden {
				if strings.Contains(body, s) {
					t.Errorf("%s %s %s: hidden %s listed:\n%s", tc.user, method, tc.target, s, body)
				}
			}
		}
	}
}

// TestAccessLocksNameNothingHidden: a depth-infinity lock on a collection
// the user cannot see binds the members they can, and neither the 423 nor
// lockdiscovery names its root.
func TestAccessLocksNameNothingHidden(t *testing.T) {
	hs := newTeamHarness(t)
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	hs.must(http.StatusOK, hreq{method: "LOCK", target: "/vault", user: "root", body: lockBody, hdr: hdr{"Depth": "infinity"}})
	r := hs.must(http.StatusLocked, hreq{method: "PUT", target: "/vault/inbox/x.txt", user: "alice", body: "x"})
	if strings.Contains(string(r.body), "/vault<") || strings.Contains(string(r.body), "/vault ") || strings.Contains(string(r.body), "/vault\n") {
		t.Errorf("423 names the hidden lock root: %s", r.body)
	}
	r = hs.must(http.StatusMultiStatus, hreq{method: "PROPFIND", target: "/vault/inbox", user: "alice", hdr: hdr{"Depth": "0"},
		body: `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`})
	body := string(r.body)
	if !strings.Contains(body, "activelock") {
		t.Errorf("lockdiscovery does not show the lock that binds the member: %s", body)
	}
	if strings.Contains(body, "lockroot") {
		t.Errorf("lockdiscovery names the hidden lock root: %s", body)
	}
	// root, who may see /vault, gets the root.
	r = hs.must(http.StatusMultiStatus, hreq{method: "PROPFIND", target: "/vault/inbox", user: "root", hdr: hdr{"Depth": "0"},
		body: `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`})
	if !strings.Contains(string(r.body), "lockroot") {
		t.Errorf("lockdiscovery for root lacks the lock root: %s", r.body)
	}
}

// TestAccessIfHeaderTellsNothing: an If header naming a hidden resource
// evaluates as if it did not exist, whatever ETag it guesses.
func TestAccessIfHeaderTellsNothing(t *testing.T) {
	hs := newTeamHarness(t)
	etag := hs.must(http.StatusOK, hreq{method: "HEAD", target: "/secret/s.txt", user: "root"}).header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	for _, tag := range []string{etag, `"wrong"`} {
		hs.must(http.StatusPreconditionFailed, hreq{method: "PUT", target: "/home/alice/a.txt", user: "alice", body: "x",
			hdr: hdr{"If": "<http://node.internal:8080/secret/s.txt> ([" + tag + "])"}})
	}
	// The same If from root, who may see it, holds.
	hs.must(http.StatusNoContent, hreq{method: "PUT", target: "/home/alice/a.txt", user: "root", body: "x",
		hdr: hdr{"If": "<http://node.internal:8080/secret/s.txt> ([" + etag + "])"}})
}

// TestAccessForwardedIdentity: the leader decides with the user a node
// vouches for (cluster secret), and a client cannot pose as one.
func TestAccessForwardedIdentity(t *testing.T) {
	hs := newTeamHarness(t)
	hs.must(http.StatusOK, hreq{method: "GET", target: "/secret/s.txt", fromNode: "root"})
	hs.must(http.StatusNotFound, hreq{method: "GET", target: "/secret/s.txt", fromNode: "alice"})
	// X-Dfs-User without the cluster secret is dropped: alice stays alice.
	hs.must(http.StatusNotFound, hreq{method: "GET", target: "/secret/s.txt", user: "alice", hdr: hdr{"X-Dfs-User": "root"}})
	hs.must(http.StatusUnauthorized, hreq{method: "GET", target: "/secret/s.txt", hdr: hdr{"X-Dfs-User": "root"}})
}
