package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/server"
	"github.com/dfs-project/dfs/verify"
)

// dav sends one WebDAV request and returns the status and body.
func dav(t *testing.T, method, u, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustDAV(t *testing.T, want int, method, u, body string, header map[string]string) string {
	t.Helper()
	got, b := dav(t, method, u, body, header)
	if got != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, u, got, want, b)
	}
	return b
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// objectPath is where node n keeps the content object h.
func objectPath(n *testcluster.Node, h string) string {
	return filepath.Join(n.Cfg.DataDir, "content", "objects", h[:2], h)
}

func urlsOf(nodes []*testcluster.Node) []string {
	var us []string
	for _, n := range nodes {
		us = append(us, n.URL())
	}
	return us
}

func verifyNodes(t *testing.T, nodes []*testcluster.Node, opt verify.Options) verify.Report {
	t.Helper()
	if opt.RetryDelay == 0 {
		opt.RetryDelay = 200 * time.Millisecond
	}
	rep, err := verify.Replicas(ctxT(t), cluster.NewClient(testcluster.Secret, nil), urlsOf(nodes), opt)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func fmtReport(rep verify.Report) string {
	b, _ := json.MarshalIndent(rep, "", "  ")
	return string(b)
}

func wantConsistent(t *testing.T, rep verify.Report) {
	t.Helper()
	if !rep.Consistent || rep.Inconclusive || len(rep.Differences) > 0 {
		t.Fatalf("want consistent:\n%s", fmtReport(rep))
	}
	for _, n := range rep.Nodes {
		if n.NamespaceDigest != rep.Nodes[0].NamespaceDigest || n.ContentDigest != rep.Nodes[0].ContentDigest || n.AppliedIndex != rep.AppliedIndex {
			t.Fatalf("consistent, but nodes differ:\n%s", fmtReport(rep))
		}
	}
}

// wantDifferences checks that rep found exactly want (compared as their
// String forms, in any order).
func wantDifferences(t *testing.T, rep verify.Report, want ...string) {
	t.Helper()
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if rep.Consistent || rep.Inconclusive || !slices.Equal(got, want) {
		t.Fatalf("differences:\n  %s\nwant:\n  %s\nreport:\n%s", strings.Join(got, "\n  "), strings.Join(want, "\n  "), fmtReport(rep))
	}
}

// startRedis3 starts three nodes, each with its own real Redis, and
// returns them, the leader and each node's Redis client.
func startRedis3(t *testing.T) ([]*testcluster.Node, *testcluster.Node, map[string]*redis.Client) {
	t.Helper()
	rdbs := map[string]*redis.Client{}
	cfg := func(id string) server.Config {
		u := testredis.Start(t)
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
		rdbs[id] = rdb
		return server.Config{ID: id, RedisURL: u}
	}
	c1 := cfg("n1")
	c1.Bootstrap = true
	n1 := testcluster.Start(t, c1)
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	nodes := []*testcluster.Node{n1}
	for _, id := range []string{"n2", "n3"} {
		c := cfg(id)
		c.Join = []string{n1.URL()}
		nodes = append(nodes, testcluster.Start(t, c))
	}
	return nodes, testcluster.WaitConverged(t, nodes, "n1", "n2", "n3"), rdbs
}

// TestVerifyNamesDifferences builds a namespace with content, dead
// properties and a lock, checks that an untouched cluster verifies
// consistent, then damages single nodes beneath Raft (content on disk,
// metadata in their Redis) and wants each damage named: node, path, field.
func TestVerifyNamesDifferences(t *testing.T) {
	nodes, leader, rdbs := startRedis3(t)
	n2, n3 := nodes[1], nodes[2]
	base := leader.URL()
	mustDAV(t, http.StatusCreated, "MKCOL", base+"/docs/", "", nil)
	files := map[string]string{"/docs/a.txt": "hello world", "/docs/b.txt": "second file", "/docs/c.bin": strings.Repeat("0123456789", 10000)}
	for p, body := range files {
		mustDAV(t, http.StatusCreated, http.MethodPut, base+p, body, nil)
	}
	mustDAV(t, http.StatusMultiStatus, "PROPPATCH", base+"/docs/a.txt",
		`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:color xmlns:x="urn:x">blue</x:color></D:prop></D:set></D:propertyupdate>`, nil)
	mustDAV(t, http.StatusOK, "LOCK", base+"/docs/b.txt",
		`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>tester</D:owner></D:lockinfo>`,
		map[string]string{"Timeout": "Second-3600"})

	rep := verifyNodes(t, nodes, verify.Options{})
	wantConsistent(t, rep)
	// /, /docs, three files, one lock, three members.
	if n := rep.Nodes[0].Entries; n != 9 {
		t.Errorf("entries: %d, want 9:\n%s", n, fmtReport(rep))
	}
	if n := rep.Nodes[0].ContentObjects; n != 3 {
		t.Errorf("content objects: %d, want 3", n)
	}
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{Deep: true}))

	// One flipped byte keeps the size: only a deep verify sees it.
	c := sha(files["/docs/c.bin"])
	f, err := os.OpenFile(objectPath(n3, c), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{}))
	wantDifferences(t, verifyNodes(t, nodes, verify.Options{Deep: true}),
		"n3: content "+c+" is corrupt (used by /docs/c.bin)")
	// The deep check quarantined the object and queued a fetch of a good
	// copy: the node repairs itself, no read needed.
	testcluster.Eventually(t, 10*time.Second, "n3 fetches a good copy", func() (bool, string) {
		b, err := os.ReadFile(objectPath(n3, c))
		return err == nil && string(b) == files["/docs/c.bin"], fmt.Sprint(err)
	})
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{Deep: true}))

	// A deleted object stays missing (nothing tells the node) until a
	// read on it fetches it.
	if err := os.Remove(objectPath(n3, c)); err != nil {
		t.Fatal(err)
	}
	wantDifferences(t, verifyNodes(t, nodes, verify.Options{}),
		"n3: content "+c+" is missing (used by /docs/c.bin)")
	if got := mustDAV(t, http.StatusOK, http.MethodGet, n3.URL()+"/docs/c.bin", "", nil); got != files["/docs/c.bin"] {
		t.Fatal("n3 served other bytes")
	}
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{Deep: true}))

	// A truncated object has the wrong size: a shallow verify sees it.
	a := sha(files["/docs/a.txt"])
	if err := os.Truncate(objectPath(n2, a), 3); err != nil {
		t.Fatal(err)
	}
	wantDifferences(t, verifyNodes(t, nodes, verify.Options{}),
		"n2: content "+a+" is corrupt (used by /docs/a.txt)")
	mustDAV(t, http.StatusOK, http.MethodGet, n2.URL()+"/docs/a.txt", "", nil)
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{}))

	// Metadata changed in n2's Redis, behind Raft's back.
	ctx := ctxT(t)
	rdb := rdbs["n2"]
	docs := must(rdb.HGet(ctx, "dfs:d:1", "docs").Result())
	aID := must(rdb.HGet(ctx, "dfs:d:"+docs, "a.txt").Result())
	ino := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(must(rdb.Get(ctx, "dfs:i:"+aID).Result())))
	dec.UseNumber() // times are int64 nanoseconds
	if err := dec.Decode(&ino); err != nil {
		t.Fatal(err)
	}
	ino["s"] = 12
	ino["ct"] = "text/evil"
	b, _ := json.Marshal(ino)
	must(rdb.Set(ctx, "dfs:i:"+aID, b, 0).Result())
	must(rdb.HDel(ctx, "dfs:p:"+aID, "{urn:x}color").Result())
	must(rdb.HDel(ctx, "dfs:d:"+docs, "b.txt").Result())
	must(rdb.HSet(ctx, "dfs:d:"+docs, "ghost.txt", aID).Result())

	rep = verifyNodes(t, nodes, verify.Options{})
	// n1 and n3 agree: the reference is one of them (the leader if it is).
	ref := rep.Reference
	if ref != "n1" && ref != "n3" {
		t.Fatalf("reference %q, want n1 or n3, which agree:\n%s", ref, fmtReport(rep))
	}
	wantDifferences(t, rep,
		`n2: /docs/a.txt: size is "12", on `+ref+` "11"`,
		`n2: /docs/a.txt: content_type is "text/evil", on `+ref+` (none)`,
		`n2: /docs/a.txt: prop {urn:x}color is (none), on `+ref+` "blue"`,
		`n2: /docs/b.txt is missing (present on `+ref+`)`,
		`n2: /docs/ghost.txt exists there only (not on `+ref+`)`,
		// The object is 11 bytes; n2's metadata now says 12.
		"n2: content "+a+" is corrupt (used by /docs/a.txt, /docs/ghost.txt)",
	)

	// A lock and a member entry changed in n3's Redis. Now all three
	// nodes differ (a three-way tie): they are compared with the leader.
	rdb = rdbs["n3"]
	tokens := must(rdb.HKeys(ctx, "dfs:locks").Result())
	if len(tokens) != 1 {
		t.Fatalf("locks in n3's Redis: %q", tokens)
	}
	lock := map[string]any{}
	dec = json.NewDecoder(strings.NewReader(must(rdb.HGet(ctx, "dfs:locks", tokens[0]).Result())))
	dec.UseNumber()
	if err := dec.Decode(&lock); err != nil {
		t.Fatal(err)
	}
	owner := lock["owner"].(string)
	lock["owner"], lock["shared"] = "mallory", true
	b, _ = json.Marshal(lock)
	must(rdb.HSet(ctx, "dfs:locks", tokens[0], b).Result())
	member := map[string]any{}
	if err := json.Unmarshal([]byte(must(rdb.HGet(ctx, "dfs:members", "n2").Result())), &member); err != nil {
		t.Fatal(err)
	}
	member["url"] = "http://elsewhere:8080"
	b, _ = json.Marshal(member)
	must(rdb.HSet(ctx, "dfs:members", "n2", b).Result())
	rep = verifyNodes(t, nodes, verify.Options{})
	var n3Diffs []string
	for _, d := range rep.Differences {
		if d.Node == "n3" {
			n3Diffs = append(n3Diffs, d.String())
		}
	}
	want := []string{
		"n3: lock " + tokens[0] + ": scope is \"shared\", on " + rep.Reference + " \"exclusive\"",
		"n3: lock " + tokens[0] + ": owner is \"mallory\", on " + rep.Reference + " " + strconv.Quote(owner),
		"n3: member n2: url is \"http://elsewhere:8080\", on " + rep.Reference + " \"" + n2.URL() + "\"",
	}
	if leader.Node().IsLeader() && rep.Reference != leader.ID || !slices.Equal(n3Diffs, want) {
		t.Fatalf("n3's differences:\n  %s\nwant (compared with the leader, %s, on a tie):\n  %s\n%s",
			strings.Join(n3Diffs, "\n  "), leader.ID, strings.Join(want, "\n  "), fmtReport(rep))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestVerifyUnreachableNode wants a stopped node in the report, and the
// report not consistent.
func TestVerifyUnreachableNode(t *testing.T) {
	nodes, leader := startJoined(t)
	mustDAV(t, http.StatusCreated, http.MethodPut, leader.URL()+"/f.txt", "x", nil)
	stopped := testcluster.Followers(nodes, leader)[0]
	stopped.Stop()
	rep := verifyNodes(t, nodes, verify.Options{})
	if rep.Consistent || len(rep.Differences) > 0 {
		t.Fatalf("want not consistent without differences:\n%s", fmtReport(rep))
	}
	for _, n := range rep.Nodes {
		down := n.URL == stopped.URL()
		if down != n.Unreachable || down != (n.Error != "") {
			t.Errorf("node %s (%s): unreachable %v, error %q", n.ID, n.URL, n.Unreachable, n.Error)
		}
	}
	if !strings.Contains(rep.Reason, stopped.URL()) {
		t.Errorf("reason %q does not name %s", rep.Reason, stopped.URL())
	}
}

// TestVerifyUnderLiveWrites runs Verify while a writer keeps changing the
// namespace: every report is consistent at a common index or
// inconclusive, never a difference.
func TestVerifyUnderLiveWrites(t *testing.T) {
	nodes, _ := startJoined(t)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	// One writer per node (followers forward to the leader): new files,
	// overwrites of small and 1 MiB files, deletes, collections.
	for w, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				method, p, body := http.MethodPut, fmt.Sprintf("/live-%d-%d.txt", w, i%5), fmt.Sprintf("write %d", i)
				switch i % 6 {
				case 3:
					body = strings.Repeat(body, 1<<20/len(body))
				case 4:
					method = http.MethodDelete
				case 5:
					method, p, body = "MKCOL", fmt.Sprintf("/dir-%d-%d/", w, i), ""
				}
				req, _ := http.NewRequestWithContext(ctx, method, n.URL()+p, strings.NewReader(body))
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					writes.Add(1)
				}
			}
		}()
	}
	var consistent, inconclusive, retried int
	for range 10 {
		rep := verifyNodes(t, nodes, verify.Options{Attempts: 3, RetryDelay: 50 * time.Millisecond})
		if rep.Attempts > 1 {
			retried++
		}
		switch {
		case len(rep.Differences) > 0:
			stop()
			wg.Wait()
			t.Fatalf("a difference under live writes:\n%s", fmtReport(rep))
		case rep.Consistent:
			consistent++
		case rep.Inconclusive:
			inconclusive++
		default:
			t.Fatalf("neither consistent nor inconclusive:\n%s", fmtReport(rep))
		}
	}
	stop()
	wg.Wait()
	t.Logf("%d writes; under them %d reports consistent (%d after a retry), %d inconclusive", writes.Load(), consistent, retried, inconclusive)
	if writes.Load() == 0 {
		t.Fatal("the writer wrote nothing")
	}
	wantConsistent(t, verifyNodes(t, nodes, verify.Options{}))
}

// TestDigestEndpoint checks the endpoint's answers to bad requests and
// that the entry stream hashes to the digest.
func TestDigestEndpoint(t *testing.T) {
	n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	mustDAV(t, http.StatusCreated, http.MethodPut, n1.URL()+"/a b.txt", "x", nil)
	mustDAV(t, http.StatusCreated, "MKCOL", n1.URL()+"/a", "", nil)
	mustDAV(t, http.StatusCreated, http.MethodPut, n1.URL()+"/a/z.txt", "y", nil)
	c := verify.NewClient(cluster.NewClient(testcluster.Secret, nil))
	d, err := c.Digest(ctxT(t), n1.URL(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.DigestEntries(ctxT(t), n1.URL(), d.AppliedIndex)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := sha256.New()
	var paths []string
	for {
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(e)
		h.Write(append(line, '\n'))
		if e.Kind == verify.EntryPath {
			paths = append(paths, e.Path)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.NamespaceDigest {
		t.Errorf("entries hash to %s, digest says %s", got, d.NamespaceDigest)
	}
	// Depth first: /a's member before "/a b.txt", though "/a b" < "/a/".
	if want := []string{"/", "/a", "/a/z.txt", "/a b.txt"}; !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}

	tests := []struct {
		name, path, secret string
		want               int
	}{
		{"no secret", "/cluster/digest", "", http.StatusUnauthorized},
		{"wrong secret", "/cluster/digest", "nope", http.StatusForbidden},
		{"bad deep", "/cluster/digest?deep=maybe", testcluster.Secret, http.StatusBadRequest},
		{"bad min-index", "/cluster/digest?min-index=-1", testcluster.Secret, http.StatusBadRequest},
		{"min-index never reached", fmt.Sprintf("/cluster/digest?min-index=%d", d.AppliedIndex+1000), testcluster.Secret, http.StatusServiceUnavailable},
		{"entries past the index", "/cluster/digest/entries?index=1", testcluster.Secret, http.StatusConflict},
		{"bad entries index", "/cluster/digest/entries?index=x", testcluster.Secret, http.StatusBadRequest},
		{"entries without secret", "/cluster/digest/entries", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, n1.URL()+tc.path, nil)
			if tc.secret != "" {
				req.Header.Set("X-Dfs-Cluster-Secret", tc.secret)
			}
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || len(strings.TrimSpace(string(b))) == 0 {
				t.Errorf("%d %q, want %d with a reason", resp.StatusCode, b, tc.want)
			}
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startJoined starts n1 with --bootstrap, n2 with --join n1 and n3 with
// --join n2 (a follower, which relays the join to the leader), and returns
// them and the leader.
func startJoined(t *testing.T) ([]*testcluster.Node, *testcluster.Node) {
	t.Helper()
	n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	n2 := testcluster.Start(t, server.Config{ID: "n2", Join: []string{n1.URL()}})
	testcluster.WaitConverged(t, []*testcluster.Node{n1, n2}, "n1", "n2")
	n3 := testcluster.Start(t, server.Config{ID: "n3", Join: []string{"http://127.0.0.1:1", n2.URL()}})
	nodes := []*testcluster.Node{n1, n2, n3}
	return nodes, testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
}
