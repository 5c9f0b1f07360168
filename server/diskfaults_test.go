//go:build dfsfaults

package server_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

// Tests of a node whose own disk fails under it, with the content store's
// fault hook (go test -tags dfsfaults): what a client sees when a write,
// an fsync or a read of the content volume returns EIO or ENOSPC.

func contentDir(n *testcluster.Node) string { return filepath.Join(n.Cfg.DataDir, "content") }

// tempFiles lists what uploads left in a node's temp directory.
func tempFiles(t *testing.T, n *testcluster.Node) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(contentDir(n), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContentWriteFaults: an upload whose content write or fsync fails
// answers 503 with Retry-After (EIO: the node's disk, the client may retry)
// or 507 with DAV:sufficient-disk-space (ENOSPC), never 2xx and never 500;
// neither the new file nor a half-written replacement of an existing one
// is visible, no temp file stays, and the same upload succeeds once the
// disk behaves again. Through the leader and through a follower (which
// forwards the upload) of a three-node cluster, where the leader's own
// store fails; and where a follower's store fails, the leader still has a
// majority and the upload succeeds.
func TestContentWriteFaults(t *testing.T) {
	n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	n2 := testcluster.Start(t, server.Config{ID: "n2", Join: []string{n1.URL()}})
	n3 := testcluster.Start(t, server.Config{ID: "n3", Join: []string{n1.URL()}})
	nodes := []*testcluster.Node{n1, n2, n3}
	leader := testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
	follower := testcluster.Followers(nodes, leader)[0]
	t.Cleanup(content.ClearFaults)

	old := []byte("the old content\n")
	if r := do(t, http.MethodPut, leader.URL()+"/old.txt", nil, bytes.NewReader(old)); r.status != http.StatusCreated {
		t.Fatalf("PUT /old.txt: %d %s", r.status, r.body)
	}
	eio, enospc := syscall.EIO, syscall.ENOSPC
	for j, tc := range []struct {
		name       string
		op         content.FaultOp
		err        error
		on         *testcluster.Node
		via        *testcluster.Node
		want       int
		wantInBody string
	}{
		{"write EIO on the leader", content.FaultWrite, eio, leader, leader, http.StatusServiceUnavailable, "retry"},
		{"fsync EIO on the leader", content.FaultSync, eio, leader, leader, http.StatusServiceUnavailable, "retry"},
		{"write EIO on the leader, through a follower", content.FaultWrite, eio, leader, follower, http.StatusServiceUnavailable, "retry"},
		{"write ENOSPC on the leader", content.FaultWrite, enospc, leader, leader, http.StatusInsufficientStorage, "sufficient-disk-space"},
		{"fsync ENOSPC on the leader", content.FaultSync, enospc, leader, leader, http.StatusInsufficientStorage, "sufficient-disk-space"},
		{"write EIO on a follower: the others make a majority", content.FaultWrite, eio, follower, leader, http.StatusCreated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{fmt.Sprintf("/new-%d.bin", j), "/old.txt"} {
				data := randBytes(t, 300<<10)
				content.InjectFault(contentDir(tc.on), tc.op, 0, -1, tc.err)
				r := do(t, http.MethodPut, tc.via.URL()+target, nil, bytes.NewReader(data))
				content.ClearFaults()
				if tc.want == http.StatusCreated {
					if r.status/100 != 2 {
						t.Fatalf("PUT %s: %d %s, want 2xx", target, r.status, r.body)
					}
					g := do(t, http.MethodGet, leader.URL()+target, nil, nil)
					if g.status != http.StatusOK || g.body != string(data) {
						t.Fatalf("GET %s after the upload: %d, %d bytes", target, g.status, len(g.body))
					}
					continue
				}
				if r.status != tc.want || !strings.Contains(r.body, tc.wantInBody) {
					t.Fatalf("PUT %s with %s failing (%v): %d %q, want %d with %q", target, tc.op, tc.err, r.status, r.body, tc.want, tc.wantInBody)
				}
				if tc.want == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
					t.Errorf("PUT %s: 503 without Retry-After", target)
				}
				// Nothing visible: the new file is absent, the old one
				// holds its old bytes, on every node.
				for _, n := range nodes {
					g := do(t, http.MethodGet, n.URL()+target, nil, nil)
					switch {
					case target == "/old.txt" && (g.status != http.StatusOK || g.body != string(old)):
						t.Fatalf("GET /old.txt on %s after the failed overwrite: %d %q", n.ID, g.status, g.body)
					case target != "/old.txt" && g.status != http.StatusNotFound:
						t.Fatalf("GET %s on %s after the failed upload: %d, want 404", target, n.ID, g.status)
					}
				}
				testcluster.Eventually(t, 10*time.Second, "no temp file left", func() (bool, string) {
					for _, n := range nodes {
						if l := tempFiles(t, n); len(l) > 0 {
							return false, fmt.Sprintf("%s: %v", n.ID, l)
						}
					}
					return true, ""
				})
				// The disk behaves again: the same upload goes through.
				if r := do(t, http.MethodPut, tc.via.URL()+target, nil, bytes.NewReader(data)); r.status/100 != 2 {
					t.Fatalf("PUT %s once the disk behaves: %d %s", target, r.status, r.body)
				}
				if target == "/old.txt" {
					old = data
				}
			}
		})
	}
}

// getRaw GETs u and returns the status, the announced Content-Length and
// the body as far as it came, with the error that ended it, if any.
func getRaw(t *testing.T, u string) (status int, length int64, body []byte, err error) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.ContentLength, body, err
}

// TestContentReadFaults: a GET whose local read fails with EIO is served
// from a peer's copy (read repair) where there is one, whether the first
// block or a later one fails; on a single node it gets 503 with
// Retry-After when the first block fails, and when a later block fails
// after the 200 and its Content-Length went out, the connection is cut
// so that the client sees an error, never a short body taken as whole.
func TestContentReadFaults(t *testing.T) {
	t.Cleanup(content.ClearFaults)
	data := randBytes(t, 5*content.BlockSize+100)

	t.Run("single node", func(t *testing.T) {
		n := testcluster.Start(t, server.Config{ID: "solo", Bootstrap: true})
		testcluster.WaitConverged(t, []*testcluster.Node{n}, "solo")
		if r := do(t, http.MethodPut, n.URL()+"/r.bin", nil, bytes.NewReader(data)); r.status != http.StatusCreated {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		content.InjectFault(contentDir(n), content.FaultRead, 0, -1, syscall.EIO)
		r := do(t, http.MethodGet, n.URL()+"/r.bin", nil, nil)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("GET with every read failing: %d (Retry-After %q) %d bytes, want 503 with Retry-After",
				r.status, r.header.Get("Retry-After"), len(r.body))
		}
		content.ClearFaults()

		// The first block reads, the third fails: headers are out.
		if r := do(t, http.MethodPut, n.URL()+"/r2.bin", nil, bytes.NewReader(data[1:])); r.status != http.StatusCreated {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		content.InjectFault(contentDir(n), content.FaultRead, 2, -1, syscall.EIO)
		status, length, body, err := getRaw(t, n.URL()+"/r2.bin")
		content.ClearFaults()
		if status == http.StatusOK && err == nil {
			t.Fatalf("GET with a block failing mid-body: 200, Content-Length %d, %d bytes and no error: a short body taken as whole", length, len(body))
		}
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Fatalf("GET with a block failing mid-body: %d", status)
		}
		t.Logf("mid-body EIO on a single node: %d, Content-Length %d, %d bytes, %v", status, length, len(body), err)
	})

	t.Run("read repair from a peer", func(t *testing.T) {
		n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
		testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
		n2 := testcluster.Start(t, server.Config{ID: "n2", Join: []string{n1.URL()}})
		n3 := testcluster.Start(t, server.Config{ID: "n3", Join: []string{n1.URL()}})
		nodes := []*testcluster.Node{n1, n2, n3}
		leader := testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
		follower := testcluster.Followers(nodes, leader)[0]
		for i, after := range []int{0, 2} {
			p := fmt.Sprintf("/repair-%d.bin", i)
			body := append([]byte{byte(i)}, data...)
			if r := do(t, http.MethodPut, leader.URL()+p, nil, bytes.NewReader(body)); r.status != http.StatusCreated {
				t.Fatalf("PUT %s: %d %s", p, r.status, r.body)
			}
			// Every node holds it before the follower's disk fails.
			testcluster.Eventually(t, 20*time.Second, "content everywhere", func() (bool, string) {
				for _, n := range nodes {
					if n.Status(t).Nodes == nil {
						return false, n.ID
					}
				}
				for _, n := range nodes {
					g := do(t, http.MethodGet, n.URL()+p, nil, nil)
					if g.status != http.StatusOK {
						return false, fmt.Sprintf("%s: %d", n.ID, g.status)
					}
				}
				return true, ""
			})
			content.InjectFault(contentDir(follower), content.FaultRead, after, 1, syscall.EIO)
			status, _, got, err := getRaw(t, follower.URL()+p)
			content.ClearFaults()
			if status != http.StatusOK || err != nil || !bytes.Equal(got, body) {
				t.Fatalf("GET %s on a follower whose read of block %d fails: %d, %d of %d bytes, %v; want the whole file from a peer's copy",
					p, after, status, len(got), len(body), err)
			}
			// Healed: the follower reads its own copy again.
			if g := do(t, http.MethodGet, follower.URL()+p, nil, nil); g.status != http.StatusOK || g.body != string(body) {
				t.Fatalf("GET %s again: %d", p, g.status)
			}
		}
	})
}
