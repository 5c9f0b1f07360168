package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/server"
)

// start3 starts a three-node cluster (one bootstrapping, two joining) with
// cfg's settings on every node, and returns the nodes and the leader.
func start3(t *testing.T, cfg server.Config) ([]*testcluster.Node, *testcluster.Node) {
	t.Helper()
	c1 := cfg
	c1.ID, c1.Bootstrap = "n1", true
	n1 := testcluster.Start(t, c1)
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	nodes := []*testcluster.Node{n1}
	for _, id := range []string{"n2", "n3"} {
		c := cfg
		c.ID, c.Join = id, []string{n1.URL()}
		nodes = append(nodes, testcluster.Start(t, c))
	}
	return nodes, testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if te, ok := header["Transfer-Encoding"]; ok {
		req.TransferEncoding = []string{te}
		req.ContentLength = -1
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// chunked is a body of unknown length, so the client sends it chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestForwardingKeepsWebDAVSemantics runs the same session against the
// leader and through a follower, and wants the same answers: statuses,
// the headers that matter, and error bodies.
func TestForwardingKeepsWebDAVSemantics(t *testing.T) {
	// Behind an Ingress, Destination carries the Ingress's host: the
	// nodes are told it is theirs (--public-url).
	nodes, leader := start3(t, server.Config{PublicURLs: []string{"https://dav.example.com"}})
	follower := testcluster.Followers(nodes, leader)[0]

	type step struct {
		name   string
		method string
		path   string
		header map[string]string
		body   func() io.Reader
		want   int
		check  func(t *testing.T, r response)
	}
	var lockToken string
	propfind := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><x:color xmlns:x="urn:test"/></D:prop></D:propfind>`
	steps := func(p, host string) []step {
		return []step{
			{name: "MKCOL", method: "MKCOL", path: p + "/", want: http.StatusCreated},
			{name: "PUT new", method: http.MethodPut, path: p + "/a b%23.txt", body: func() io.Reader { return strings.NewReader("hello") },
				header: map[string]string{"Content-Type": "text/plain"}, want: http.StatusCreated,
				check: func(t *testing.T, r response) {
					if r.header.Get("ETag") == "" {
						t.Error("no ETag")
					}
				}},
			{name: "PUT overwrite If-Match *", method: http.MethodPut, path: p + "/a b%23.txt", header: map[string]string{"If-Match": "*"},
				body: func() io.Reader { return strings.NewReader("hello!") }, want: http.StatusNoContent},
			{name: "PUT If-None-Match * on existing", method: http.MethodPut, path: p + "/a b%23.txt", header: map[string]string{"If-None-Match": "*"},
				body: func() io.Reader { return strings.NewReader("no") }, want: http.StatusPreconditionFailed},
			{name: "PUT chunked (Finder)", method: http.MethodPut, path: p + "/big.bin",
				header: map[string]string{"Transfer-Encoding": "chunked", "X-Expected-Entity-Length": "4194304"},
				body:   func() io.Reader { return chunked{io.LimitReader(newPattern(), 4<<20)} }, want: http.StatusCreated},
			{name: "PROPFIND own write", method: "PROPFIND", path: p + "/a b%23.txt", header: map[string]string{"Depth": "0"},
				body: func() io.Reader { return strings.NewReader(propfind) }, want: http.StatusMultiStatus,
				check: func(t *testing.T, r response) {
					if !strings.Contains(r.body, "<D:getcontentlength>6</D:getcontentlength>") {
						t.Errorf("PROPFIND does not show the write:\n%s", r.body)
					}
				}},
			{name: "COPY to an ingress host", method: "COPY", path: p + "/a b%23.txt",
				header: map[string]string{"Destination": "https://dav.example.com" + p + "/b.txt"}, want: http.StatusCreated},
			{name: "MOVE Overwrite F onto existing", method: "MOVE", path: p + "/b.txt",
				header: map[string]string{"Destination": "http://" + host + p + "/a%20b%23.txt", "Overwrite": "F"}, want: http.StatusPreconditionFailed},
			{name: "MOVE", method: "MOVE", path: p + "/b.txt",
				header: map[string]string{"Destination": "http://" + host + p + "/c.txt"}, want: http.StatusCreated},
			{name: "PROPPATCH", method: "PROPPATCH", path: p + "/c.txt", want: http.StatusMultiStatus,
				body: func() io.Reader {
					return strings.NewReader(`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:test"><D:set><D:prop><x:color>blue</x:color></D:prop></D:set></D:propertyupdate>`)
				}},
			{name: "LOCK", method: "LOCK", path: p + "/c.txt", header: map[string]string{"Timeout": "Second-600", "Depth": "0"}, want: http.StatusOK,
				body: func() io.Reader {
					return strings.NewReader(`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>`)
				},
				check: func(t *testing.T, r response) {
					lockToken = r.header.Get("Lock-Token")
					if !strings.HasPrefix(lockToken, "<") || !strings.Contains(r.body, "lockdiscovery") {
						t.Errorf("LOCK: Lock-Token %q, body:\n%s", lockToken, r.body)
					}
				}},
			{name: "PUT without the token", method: http.MethodPut, path: p + "/c.txt", body: func() io.Reader { return strings.NewReader("x") },
				want: http.StatusLocked,
				check: func(t *testing.T, r response) {
					if !strings.Contains(r.body, "lock-token-submitted") {
						t.Errorf("423 body:\n%s", r.body)
					}
				}},
			{name: "PUT with the token", method: http.MethodPut, path: p + "/c.txt", body: func() io.Reader { return strings.NewReader("x") },
				header: map[string]string{"If": "(" + "TOKEN" + ")"}, want: http.StatusNoContent},
			{name: "DELETE a locked file without the token", method: http.MethodDelete, path: p + "/c.txt", want: http.StatusLocked},
			{name: "UNLOCK", method: "UNLOCK", path: p + "/c.txt", header: map[string]string{"Lock-Token": "TOKEN"}, want: http.StatusNoContent},
			{name: "UNLOCK again", method: "UNLOCK", path: p + "/c.txt", header: map[string]string{"Lock-Token": "TOKEN"}, want: http.StatusConflict},
			{name: "PROPFIND dead property", method: "PROPFIND", path: p + "/c.txt", header: map[string]string{"Depth": "0"},
				body: func() io.Reader { return strings.NewReader(propfind) }, want: http.StatusMultiStatus,
				check: func(t *testing.T, r response) {
					if !strings.Contains(r.body, "blue") {
						t.Errorf("PROPFIND does not show the PROPPATCH:\n%s", r.body)
					}
				}},
			{name: "DELETE", method: http.MethodDelete, path: p + "/c.txt", want: http.StatusNoContent},
			{name: "MKCOL existing", method: "MKCOL", path: p + "/", want: http.StatusMethodNotAllowed},
			{name: "MKCOL without parent", method: "MKCOL", path: p + "/no/such/", want: http.StatusConflict},
			{name: "PROPFIND Depth 1", method: "PROPFIND", path: p + "/", header: map[string]string{"Depth": "1"}, want: http.StatusMultiStatus,
				check: func(t *testing.T, r response) {
					if strings.Contains(r.body, "c.txt") || !strings.Contains(r.body, "big.bin") {
						t.Errorf("listing:\n%s", r.body)
					}
				}},
		}
	}
	type result struct {
		status int
		lock   bool
	}
	results := map[string][]result{}
	for _, target := range []*testcluster.Node{leader, follower} {
		role := "leader"
		if target != leader {
			role = "follower"
		}
		host := strings.TrimPrefix(target.URL(), "http://")
		for _, s := range steps("/via-"+role, host) {
			t.Run(role+"/"+s.name, func(t *testing.T) {
				var body io.Reader
				if s.body != nil {
					body = s.body()
				}
				h := map[string]string{}
				for k, v := range s.header {
					h[k] = strings.ReplaceAll(v, "TOKEN", lockToken)
				}
				r := do(t, s.method, target.URL()+s.path, h, body)
				if r.status != s.want {
					t.Fatalf("%s %s: %d, want %d\n%s", s.method, s.path, r.status, s.want, r.body)
				}
				if s.check != nil {
					s.check(t, r)
				}
				results[s.name] = append(results[s.name], result{r.status, r.header.Get("Lock-Token") != ""})
			})
		}
	}
	for name, rs := range results {
		if len(rs) != 2 || rs[0] != rs[1] {
			t.Errorf("%s: leader and follower answered differently: %+v", name, rs)
		}
	}

	// What went through the follower is on the leader, byte for byte.
	r := do(t, http.MethodGet, leader.URL()+"/via-follower/big.bin", nil, nil)
	want := sha256.Sum256(must(io.ReadAll(io.LimitReader(newPattern(), 4<<20))))
	if r.status != http.StatusOK || sha256.Sum256([]byte(r.body)) != want {
		t.Fatalf("GET on the leader of what was PUT through the follower: %d, %d bytes", r.status, len(r.body))
	}
}

// pattern is an endless, non-trivial byte stream.
type pattern struct{ off *int }

func newPattern() pattern { return pattern{off: new(int)} }

func (p pattern) Read(b []byte) (int, error) {
	for i := range b {
		n := *p.off + i
		b[i] = byte(n*7 + n/251)
	}
	*p.off += len(b)
	return len(b), nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestForwardedRequestIsNotForwardedAgain: a write that arrives marked as
// forwarded (with the secret) at a node that does not lead gets 503.
func TestForwardedRequestIsNotForwardedAgain(t *testing.T) {
	nodes, leader := start3(t, server.Config{})
	follower := testcluster.Followers(nodes, leader)[0]
	r := do(t, "MKCOL", follower.URL()+"/loop", map[string]string{
		cluster.ForwardedByHeader: leader.ID, clusterauth.Header: testcluster.Secret}, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("forwarded MKCOL on a follower: %d (Retry-After %q)\n%s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := do(t, "PROPFIND", leader.URL()+"/loop", map[string]string{"Depth": "0"}, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused MKCOL happened anyway: PROPFIND %d", r.status)
	}
}

// TestNoLeaderAnswers503 stops two of three nodes: the survivor answers
// writes and (leader-consistent) reads with 503 and Retry-After within the
// bounded wait, never hanging.
func TestNoLeaderAnswers503(t *testing.T) {
	nodes, leader := start3(t, server.Config{LeaderWait: time.Second})
	if r := do(t, "MKCOL", leader.URL()+"/before", nil, nil); r.status != http.StatusCreated {
		t.Fatalf("MKCOL: %d", r.status)
	}
	followers := testcluster.Followers(nodes, leader)
	survivor := followers[1]
	leader.Stop()
	followers[0].Stop()

	tests := []struct {
		method string
		path   string
		limit  time.Duration
	}{
		{"MKCOL", "/after", 8 * time.Second},
		{http.MethodPut, "/after.txt", 8 * time.Second},
		{"PROPFIND", "/before", 10 * time.Second}, // the read timeout is 5s
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			start := time.Now()
			var body io.Reader
			if tc.method == http.MethodPut {
				body = strings.NewReader("x")
			}
			r := do(t, tc.method, survivor.URL()+tc.path, map[string]string{"Depth": "0"}, body)
			took := time.Since(start)
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Fatalf("%s with no leader: %d (Retry-After %q)\n%s", tc.method, r.status, r.header.Get("Retry-After"), r.body)
			}
			if took > tc.limit {
				t.Fatalf("%s took %s to fail, want at most %s", tc.method, took, tc.limit)
			}
			t.Logf("%s: 503 after %s", tc.method, took.Round(time.Millisecond))
		})
	}
}

// TestCloseHandsLeadershipOver uses production Raft timeouts (1s): without
// a transfer the others would need more than a second to notice the leader
// is gone, with it they have a new leader at once.
func TestCloseHandsLeadershipOver(t *testing.T) {
	nodes, leader := start3(t, server.Config{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond})
	rest := testcluster.Followers(nodes, leader)
	leader.Stop()
	stopped := time.Now()
	testcluster.Eventually(t, 5*time.Second, "a new leader", func() (bool, string) {
		for _, n := range rest {
			if n.Node().IsLeader() {
				return true, ""
			}
		}
		return false, "no leader among the others"
	})
	took := time.Since(stopped)
	t.Logf("new leader %s after the old one stopped", took.Round(time.Millisecond))
	if took > 900*time.Millisecond {
		t.Fatalf("a new leader took %s: leadership was not handed over", took)
	}
	// And it takes writes through the remaining follower.
	var follower *testcluster.Node
	for _, n := range rest {
		if !n.Node().IsLeader() {
			follower = n
		}
	}
	if r := do(t, "MKCOL", follower.URL()+"/after-transfer", nil, nil); r.status != http.StatusCreated {
		t.Fatalf("MKCOL after the transfer: %d\n%s", r.status, r.body)
	}
}

func TestStatusReportsEveryNode(t *testing.T) {
	nodes, leader := start3(t, server.Config{ReadConsistency: "local"})
	followers := testcluster.Followers(nodes, leader)
	followers[0].SetContentBacklog(func() (int, int64) { return 3, 4096 })
	st := followers[1].Status(t)
	if st.Leader != leader.ID || len(st.Nodes) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, ns := range st.Nodes {
		want := cluster.Backlog{}
		if ns.ID == followers[0].ID {
			want = cluster.Backlog{Files: 3, Bytes: 4096}
		}
		if ns.ContentBacklog != want || ns.Lag == nil || ns.AppliedIndex == 0 {
			t.Fatalf("%s: %+v", ns.ID, ns)
		}
	}
	followers[0].Stop()
	st = followers[1].Status(t)
	for _, ns := range st.Nodes {
		if ns.ID == followers[0].ID && (ns.Role != "unreachable" || ns.Lag != nil || ns.Error == "") {
			t.Fatalf("a stopped node: %+v", ns)
		}
	}
	// The status endpoint is public and the node API is not WebDAV.
	if r := do(t, "PROPFIND", leader.URL()+"/cluster/status", nil, nil); r.status == http.StatusOK || r.status == http.StatusMultiStatus {
		t.Fatalf("PROPFIND /cluster/status: %d", r.status)
	}
}

func TestNewRefusesUnclearClusterOptions(t *testing.T) {
	tests := []struct {
		name string
		cfg  server.Config
		want []string
	}{
		{"nothing to go on", server.Config{}, []string{"--bootstrap", "--join", "--bootstrap-expect"}},
		{"bootstrap and join", server.Config{Bootstrap: true, Join: []string{"http://a:1"}, ClusterSecret: "s"}, []string{"--bootstrap excludes"}},
		{"join without secret", server.Config{Join: []string{"http://a:1"}}, []string{"--cluster-secret"}},
		{"bad consistency", server.Config{Bootstrap: true, ReadConsistency: "eventual"}, []string{"--read-consistency"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = "n1", t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
			srv, err := server.New(context.Background(), cfg)
			if err == nil {
				_ = srv.Close(context.Background())
				t.Fatal("server.New accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestReadYourWritesAcrossNodes writes through one follower and reads
// through the other at once, many times: with the default consistency the
// read always sees the write.
func TestReadYourWritesAcrossNodes(t *testing.T) {
	nodes, leader := start3(t, server.Config{})
	followers := testcluster.Followers(nodes, leader)
	for i := range 30 {
		p := "/ryw-" + url.PathEscape(strings.Repeat("x", i%5)) + string(rune('a'+i%26)) + "-" + time.Now().Format("150405.000000")
		if r := do(t, "MKCOL", followers[i%2].URL()+p, nil, nil); r.status != http.StatusCreated {
			t.Fatalf("MKCOL %s: %d", p, r.status)
		}
		if r := do(t, "PROPFIND", followers[(i+1)%2].URL()+p, map[string]string{"Depth": "0"}, nil); r.status != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %s on the other follower right after: %d", p, r.status)
		}
	}
}

// TestUnreachableLeaderAnswers503: a follower that cannot reach the leader
// at the URL the member table gives answers writes with 503 and
// Retry-After at once (the proxy's error handler), not with a hang or a
// 502.
func TestUnreachableLeaderAnswers503(t *testing.T) {
	nodes, leader := start3(t, server.Config{})
	follower := testcluster.Followers(nodes, leader)[0]
	dead := "http://" + testcluster.FreeAddr(t)
	res, err := leader.Node().Propose(context.Background(), &fsm.Command{Op: fsm.OpMember,
		Member: &metastore.Member{ID: leader.ID, URL: dead, RaftAddr: leader.Node().Addr()}})
	if err != nil || res.Err() != nil {
		t.Fatalf("propose a dead URL for the leader: %v, %v", err, res)
	}
	testcluster.Eventually(t, 5*time.Second, "the follower learns the dead URL", func() (bool, string) {
		for _, m := range follower.Members(t) {
			if m.ID == leader.ID && m.URL == dead {
				return true, ""
			}
		}
		return false, "not yet"
	})
	start := time.Now()
	r := do(t, http.MethodPut, follower.URL()+"/unreachable.txt", nil, strings.NewReader("x"))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Fatalf("PUT with the leader unreachable: %d (Retry-After %q)\n%s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	// Reads through the follower go to the same dead URL for the read
	// index: 503 too, within the read timeout.
	if r := do(t, "PROPFIND", follower.URL()+"/", map[string]string{"Depth": "0"}, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("PROPFIND with the leader unreachable: %d", r.status)
	}
}

// TestFollowerStaysReadyUnderWrites: a follower that keeps up with a steady
// stream of writes stays ready. /readyz compared its applied index with a
// read index taken that instant, which under writes is always a few
// entries ahead: found by the fault suite, where followers of a busy
// cluster answered 503 to most readiness probes.
func TestFollowerStaysReadyUnderWrites(t *testing.T) {
	nodes, leader := start3(t, server.Config{})
	follower := testcluster.Followers(nodes, leader)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/w%d-%d", leader.URL(), w, i%50), strings.NewReader("x"))
				if err != nil {
					return
				}
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	defer func() {
		cancel()
		for range 4 {
			<-done
		}
	}()
	time.Sleep(300 * time.Millisecond) // the writes are flowing
	for i := range 20 {
		if r := do(t, http.MethodGet, follower.URL()+"/readyz", nil, nil); r.status != http.StatusOK {
			t.Fatalf("probe %d of a follower that keeps up: %d %s", i, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
