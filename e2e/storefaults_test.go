package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// redisOf connects to a node's own redis-server, as an operator's
// redis-cli would.
func redisOf(t *testing.T, n *node) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(n.spec.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestFollowerRedisFlushHeals empties a follower's Redis while dfs runs
// (FLUSHALL; a Redis sidecar restarted without its data looks the same):
// the follower notices within seconds, rebuilds its metadata from its own
// snapshot and log, turns ready again without an operator, serves every
// file, and `dfs cluster verify` finds the replicas identical.
func TestFollowerRedisFlushHeals(t *testing.T) {
	c := startCluster(t, 3, redisStore)
	leader := c.nodes[c.leader(t)]
	d := newDAV(t, leader)
	d.must("MKCOL", "/h", nil, nil, http.StatusCreated)
	want := map[string]string{}
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("/h/f%02d.txt", i)
		want[p] = d.put(p, fmt.Appendf(nil, "file %d of the flush test\n", i))
	}
	f := c.followers(t)[0]
	fd := newDAV(t, f)
	for p, etag := range want {
		if status, _, _, got := fd.get(p); status != http.StatusOK || got != etag {
			t.Fatalf("before the flush: GET %s on %s: %d %s, want 200 %s", p, f.spec.ID, status, got, etag)
		}
	}

	if err := redisOf(t, f).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The node must heal by itself; a read in the meantime may get 503,
	// never a wrong answer.
	var healed time.Duration
	ok := poll(30*time.Second, func() bool {
		status, etag := 0, ""
		for p, w := range want {
			status, _, _, etag = fd.get(p)
			switch {
			case status == http.StatusServiceUnavailable:
				return false
			case status != http.StatusOK || etag != w:
				t.Fatalf("while healing: GET %s on %s: %d %s, want 200 %s or 503", p, f.spec.ID, status, etag, w)
			}
		}
		st, _, err := c.get(f, "readyz")
		if err == nil && st == http.StatusOK && healed == 0 {
			healed = time.Since(start)
		}
		return err == nil && st == http.StatusOK
	})
	if !ok {
		_, body, _ := c.get(f, "readyz")
		t.Fatalf("%s not healed 30 s after its Redis was flushed; /readyz: %s", f.spec.ID, body)
	}
	t.Logf("%s healed %s after FLUSHALL of its Redis (%d files)", f.spec.ID, healed.Round(time.Millisecond), len(want))
	if !strings.Contains(f.logText(), "metadata store rebuilt") {
		t.Fatalf("%s did not log its rebuild", f.spec.ID)
	}
	// Writes go on, and the healed node applies them.
	d.put("/h/after.txt", []byte("written after the heal\n"))
	c.waitConverged(t)
	if out, code := verifyCLI(t, "--addr", strings.TrimSuffix(leader.URL, "/"), "--deep"); code != 0 {
		t.Fatalf("dfs cluster verify after the heal: exit %d\n%s", code, out)
	}
}

// TestRedisStallAnswers503 pauses a node's Redis (CLIENT PAUSE, what a
// stalled or overloaded Redis looks like) past the timeouts given in
// --redis-url: requests fail within that bound with 503 and Retry-After,
// never hang, reset the connection or answer 500, and the node serves
// again by itself once Redis answers.
func TestRedisStallAnswers503(t *testing.T) {
	n := startNode(t, redisStore)
	d := newDAV(t, n)
	d.put("/s.txt", []byte("before the stall\n"))
	n.kill(t)
	n.spec.RedisURL += "&read_timeout=300ms&write_timeout=300ms"
	n = startNodeAt(t, n.spec, false)
	d = newDAV(t, n)

	if err := redisOf(t, n).Do(context.Background(), "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		body   []byte
	}{
		{http.MethodGet, nil},
		{"PROPFIND", nil},
		{http.MethodPut, []byte("during the stall\n")},
		{"MKCOL", nil},
	} {
		p := "/s.txt"
		if tc.method == "MKCOL" {
			p = "/stalled"
		}
		start := time.Now()
		resp, body := d.do(tc.method, p, tc.body, map[string]string{"Depth": "0"})
		took := time.Since(start)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s during a Redis stall: %d (Retry-After %q) after %s: %s", tc.method, resp.StatusCode,
				resp.Header.Get("Retry-After"), took, body)
		}
		if took > 3*time.Second {
			t.Fatalf("%s during a Redis stall took %s", tc.method, took)
		}
	}
	ok := poll(20*time.Second, func() bool {
		resp, _ := d.do(http.MethodGet, "/s.txt", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		t.Fatal("the node did not serve again after the stall ended")
	}
	d.put("/s.txt", []byte("after the stall\n"))
}

// TestCorruptBoltRebuilt damages the embedded metadata store of a stopped
// node: the node sets the file aside at start, rebuilds the metadata from
// its Raft log and serves every file again.
func TestCorruptBoltRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		off, len int64 // bytes overwritten; a negative off picks a leaf page in use
	}{
		{"both meta pages", 0, 8192},
		{"a leaf page in use", -1, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, embedded)
			d := newDAV(t, n)
			d.must("MKCOL", "/b", nil, nil, http.StatusCreated)
			want := map[string]string{}
			for i := 0; i < 300; i++ {
				p := fmt.Sprintf("/b/f%03d.txt", i)
				want[p] = d.put(p, fmt.Appendf(nil, "bolt file %d\n", i))
			}
			n.kill(t)
			path := filepath.Join(n.spec.DataDir, "meta.db")
			off := tc.off
			if off < 0 {
				off = leafPageInUse(t, path)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, int(tc.len)), off); err != nil {
				t.Fatal(err)
			}
			f.Close()

			n = startNodeAt(t, n.spec, false)
			d = newDAV(t, n)
			for p, etag := range want {
				if status, _, _, got := d.get(p); status != http.StatusOK || got != etag {
					t.Fatalf("after the rebuild: GET %s: %d %s, want 200 %s", p, status, got, etag)
				}
			}
			if !strings.Contains(n.logText(), "setting it aside") {
				t.Fatalf("the node did not report the corrupt store:\n%s", n.logText())
			}
			d.put("/b/after.txt", []byte("after\n"))
		})
	}
}

// leafPageInUse returns the file offset of a leaf page that holds data,
// the middle one of them: a page picked by position alone may be free,
// and damage to a free page is rightly not noticed.
func leafPageInUse(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var leaves []int64
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type == "leaf" && p.Count > 0 {
				leaves = append(leaves, int64(id))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) == 0 {
		t.Fatal("the store has no leaf page in use")
	}
	return leaves[len(leaves)/2] * int64(db.Info().PageSize)
}
