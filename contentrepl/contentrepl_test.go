package contentrepl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
)

const ctSecret = "test-cluster-secret"

// ctNode is one node's content side: a real content store, a real bolt
// metastore, the replicator and a real HTTP server running its Handler.
type ctNode struct {
	id    string
	dir   string
	store *content.Store
	meta  metastore.Store
	c     *Content
	srv   *httptest.Server

	mu    sync.Mutex
	peers []Peer
}

func (n *ctNode) setPeers(ps ...Peer) {
	n.mu.Lock()
	n.peers = ps
	n.mu.Unlock()
}

func (n *ctNode) peer() Peer { return Peer{ID: n.id, URL: n.srv.URL} }

func ctLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// newCTNode starts a node; mutate adjusts its configuration.
func newCTNode(t testing.TB, id string, mutate func(*ContentConfig)) *ctNode {
	t.Helper()
	n := &ctNode{id: id, dir: t.TempDir()}
	var err error
	n.store, err = content.Open(filepath.Join(n.dir, "content"), ctLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.store.Close() })
	n.meta, err = boltstore.Open(filepath.Join(n.dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.meta.Close() })
	cfg := ContentConfig{
		Store:  n.store,
		Meta:   n.meta,
		SelfID: id,
		Secret: ctSecret,
		Peers: func(context.Context) ([]Peer, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			return append([]Peer(nil), n.peers...), nil
		},
		Log: ctLog(t).With().Str("node", id).Logger(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n.c, err = NewContent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = httptest.NewServer(n.c.Handler())
	t.Cleanup(n.srv.Close)
	return n
}

// newCTCluster starts n nodes; node 0 is the leader, and every node's
// peers are the others, the leader first.
func newCTCluster(t testing.TB, n int, mutate func(*ContentConfig)) []*ctNode {
	t.Helper()
	nodes := make([]*ctNode, n)
	for i := range nodes {
		nodes[i] = newCTNode(t, fmt.Sprintf("n%d", i), mutate)
	}
	for i, a := range nodes {
		var ps []Peer
		for j, b := range nodes {
			if i != j {
				ps = append(ps, b.peer())
			}
		}
		a.setPeers(ps...)
	}
	return nodes
}

func randData(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ctCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readLocal returns the object as the node's own store has it.
func (n *ctNode) readLocal(t testing.TB, h string) []byte {
	t.Helper()
	f, err := n.store.Open(h)
	if err != nil {
		t.Fatalf("%s: open %s: %v", n.id, h[:8], err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("%s: read %s: %v", n.id, h[:8], err)
	}
	return b
}

func (n *ctNode) write(t testing.TB, data []byte) (string, error) {
	t.Helper()
	h, size, err := n.c.Write(ctCtx(t), bytes.NewReader(data))
	if err == nil && (h != sum(data) || size != int64(len(data))) {
		t.Fatalf("Write = %s, %d; want %s, %d", h, size, sum(data), len(data))
	}
	return h, err
}

func TestParseWriteAck(t *testing.T) {
	for in, want := range map[string]WriteAck{"": WriteAckMajority, "majority": WriteAckMajority, " Leader ": WriteAckLeader} {
		if got, err := ParseWriteAck(in); err != nil || got != want {
			t.Errorf("ParseWriteAck(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseWriteAck("all"); err == nil {
		t.Error("ParseWriteAck accepted nonsense")
	}
	if _, err := NewContent(ContentConfig{Store: &content.Store{}, Peers: func(context.Context) ([]Peer, error) { return nil, nil }, WriteAck: "some"}); err == nil {
		t.Error("NewContent accepted a bad WriteAck")
	}
}

func TestQuorum(t *testing.T) {
	// voters -> copies: a majority, and 1 when the configuration cannot
	// be read (0 voters).
	for voters, want := range map[int]int{-1: 1, 0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		if got := Quorum(voters); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", voters, got, want)
		}
	}
}

func TestPushMajority(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	data := randData(t, 5<<20+123)
	h, err := nodes[0].write(t, data)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Write waits for a majority only; the third copy may still be on its
	// way, so give it a moment.
	for _, n := range nodes {
		waitFor(t, n.id+" has the content", func() bool { return n.store.Has(h) })
		if !bytes.Equal(n.readLocal(t, h), data) {
			t.Fatalf("%s holds different bytes", n.id)
		}
	}
	if p := nodes[0].store.Pins(h); p != 1 {
		t.Fatalf("leader pins = %d, want 1 (until Unpin)", p)
	}
	nodes[0].c.Unpin(h)
	if p := nodes[0].store.Pins(h); p != 0 {
		t.Fatalf("leader pins after Unpin = %d", p)
	}
	// Followers keep their copy pinned for PinTTL.
	for _, n := range nodes[1:] {
		if p := n.store.Pins(h); p != 1 {
			t.Fatalf("%s pins = %d, want 1", n.id, p)
		}
	}
	// Small and empty bodies go the same way.
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1} {
		d := randData(t, size)
		h, err := nodes[0].write(t, d)
		if err != nil {
			t.Fatalf("Write of %d bytes: %v", size, err)
		}
		for _, n := range nodes {
			waitFor(t, "copy", func() bool { return n.store.Has(h) })
		}
	}
}

func TestPushPinExpires(t *testing.T) {
	nodes := newCTCluster(t, 2, func(c *ContentConfig) { c.PinTTL = 50 * time.Millisecond })
	h, err := nodes[0].write(t, randData(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "follower pin expiry", func() bool { return nodes[1].store.Pins(h) == 0 })
	if !nodes[1].store.Has(h) {
		t.Fatal("content gone with the pin")
	}
}

func TestPushOneFollowerDown(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	nodes[2].srv.Close()
	data := randData(t, 3<<20)
	h, err := nodes[0].write(t, data)
	if err != nil {
		t.Fatalf("Write with one of two followers down: %v", err)
	}
	if !bytes.Equal(nodes[1].readLocal(t, h), data) {
		t.Fatal("follower holds different bytes")
	}
}

func TestPushNoQuorum(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	nodes[1].srv.Close()
	nodes[2].srv.Close()
	data := randData(t, 1<<20)
	_, err := nodes[0].write(t, data)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Write with both followers down: %v, want ErrNoQuorum", err)
	}
	// Nothing holds the leader's copy: garbage collection may take it.
	if p := nodes[0].store.Pins(sum(data)); p != 0 {
		t.Fatalf("leader pins after a failed write = %d", p)
	}

	// A quorum larger than the known peers allow fails before reading.
	lone := newCTNode(t, "lone", func(c *ContentConfig) { c.Quorum = func() int { return 2 } })
	r := &countingReader{r: bytes.NewReader(data)}
	if _, _, err := lone.c.Write(ctCtx(t), r); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Write with no peers and quorum 2: %v", err)
	}
	if r.n.Load() != 0 {
		t.Fatalf("read %d bytes of a write that cannot succeed", r.n.Load())
	}

	// Followers that store something else do not count.
	nodes = newCTCluster(t, 3, func(c *ContentConfig) { c.Secret = "per-node-" + c.SelfID })
	if _, err := nodes[0].write(t, data); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Write rejected by every follower: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestPushSlowFollower: a follower that stops reading, or reads far slower
// than the other, is dropped once it is a buffer behind, and the write
// completes with the other follower. PushStall is long, so it is the
// buffer bound, not the stall timer, that frees the upload.
func TestPushSlowFollower(t *testing.T) {
	for name, handler := range map[string]func(release <-chan struct{}) http.HandlerFunc{
		"blocked": func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { <-release }
		},
		"slow": func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, 16<<10)
				for {
					select {
					case <-release:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := r.Body.Read(buf); err != nil {
						return
					}
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			nodes := newCTCluster(t, 2, func(c *ContentConfig) {
				c.PushStall = 10 * time.Minute
				c.Quorum = func() int { return 2 }
			})
			release := make(chan struct{})
			slow := httptest.NewServer(handler(release))
			t.Cleanup(slow.Close)
			t.Cleanup(func() { close(release) }) // before slow.Close
			nodes[0].setPeers(Peer{ID: "slow", URL: slow.URL}, nodes[1].peer())

			data := randData(t, 48<<20)
			done := make(chan error, 1)
			go func() { _, err := nodes[0].write(t, data); done <- err }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
			case <-time.After(90 * time.Second):
				t.Fatal("the write waits for the slow follower")
			}
			if !bytes.Equal(nodes[1].readLocal(t, sum(data)), data) {
				t.Fatal("the good follower holds different bytes")
			}
		})
	}
}

func TestPushNeedsSecret(t *testing.T) {
	n := newCTNode(t, "n", nil)
	for _, secret := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodPost, n.srv.URL+pushPath, bytes.NewReader([]byte("intruder")))
		if secret != "" {
			req.Header.Set(clusterauth.Header, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusForbidden
		if secret == "" {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Fatalf("push with secret %q: %s, want %d", secret, resp.Status, want)
		}
	}
	// GET needs it too.
	resp, err := http.Get(n.srv.URL + fetchPath + content.EmptyHash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fetch without secret: %s", resp.Status)
	}
	if objs, _, err := n.store.Usage(); err != nil || objs != 0 {
		t.Fatalf("store holds %d objects (%v) after unauthenticated pushes", objs, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(n.dir, "content", "tmp")); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

// TestPushAbortedStoresNothing: a client upload that breaks off midway
// leaves no object on any follower.
func TestPushAbortedStoresNothing(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	for _, cause := range []error{errors.New("client went away"), io.ErrUnexpectedEOF} {
		// 3 MiB + a bit: the break comes mid-chunk.
		r := io.MultiReader(bytes.NewReader(randData(t, 3<<20+1000)), failingReader{cause})
		if _, _, err := nodes[0].c.Write(ctCtx(t), r); !errors.Is(err, cause) {
			t.Fatalf("Write of a body that fails with %v: %v", cause, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let followers see the abort
	for _, n := range nodes {
		if objs, _, _ := n.store.Usage(); objs != 0 {
			t.Fatalf("%s stored %d objects from a broken upload", n.id, objs)
		}
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestWriteAckLeader(t *testing.T) {
	nodes := newCTCluster(t, 3, func(c *ContentConfig) { c.WriteAck = WriteAckLeader })
	data := randData(t, 1<<20)
	h, err := nodes[0].write(t, data)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if nodes[1].store.Has(h) || nodes[2].store.Has(h) {
		t.Fatal("WriteAckLeader pushed to followers")
	}
	// The entry applies on a follower: it fetches.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go nodes[1].c.Run(ctx)
	nodes[1].c.Notify(h, int64(len(data)))
	waitFor(t, "follower fetch after Notify", func() bool { return nodes[1].store.Has(h) })
	if !bytes.Equal(nodes[1].readLocal(t, h), data) {
		t.Fatal("fetched bytes differ")
	}
}

// recorder wraps a real node's handler and records the requests it gets.
type recorder struct {
	mu     sync.Mutex
	gets   int
	ranges []string
	next   http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if req.Method == http.MethodGet {
		r.gets++
		r.ranges = append(r.ranges, req.Header.Get("Range"))
	}
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) snapshot() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets, append([]string(nil), r.ranges...)
}

// put stores data in n's local store only.
func (n *ctNode) put(t testing.TB, data []byte) string {
	t.Helper()
	b, err := n.store.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n.store.Unpin(b.Hash)
	return b.Hash
}

func openAll(t testing.TB, n *ctNode, h string, size int64) ([]byte, error) {
	t.Helper()
	f, err := n.c.Open(ctCtx(t), h, size)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func TestFetchFromSecondPeer(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	data := randData(t, 2<<20+5)
	h := nodes[2].put(t, data)
	rec := &recorder{next: nodes[2].c.Handler()}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	x := nodes[0]
	x.setPeers(nodes[1].peer(), Peer{ID: "n2", URL: srv.URL}) // n1 answers 404

	// Concurrent readers share one fetch.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := openAll(t, x, h, int64(len(data)))
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("wrong bytes")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	if gets, _ := rec.snapshot(); gets != 1 {
		t.Fatalf("peer served %d GETs for 8 concurrent readers, want 1", gets)
	}
	if !x.store.Has(h) || x.store.Pins(h) != 0 {
		t.Fatalf("after the fetch: has %v, pins %d", x.store.Has(h), x.store.Pins(h))
	}
}

func TestFetchNowhere(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	data := randData(t, 1000)
	_, err := openAll(t, nodes[0], sum(data), int64(len(data)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open of content no node has: %v, want ErrUnavailable", err)
	}
	// And with every peer down.
	nodes[1].srv.Close()
	nodes[2].srv.Close()
	if _, err := openAll(t, nodes[0], sum(data), int64(len(data))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open with peers down: %v, want ErrUnavailable", err)
	}
}

func objectPath(n *ctNode, h string) string {
	return filepath.Join(n.dir, "content", "objects", h[:2], h)
}

func TestOpenRepairsCorruptLocal(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	data := randData(t, 1<<20+7)
	h := nodes[1].put(t, data)
	x := nodes[0]

	t.Run("truncated", func(t *testing.T) {
		x.put(t, data)
		if err := os.Truncate(objectPath(x, h), 1000); err != nil {
			t.Fatal(err)
		}
		got, err := openAll(t, x, h, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Open of a truncated object: %v (%d bytes)", err, len(got))
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		x.put(t, data)
		bad := append([]byte(nil), data...)
		bad[len(bad)/2] ^= 0x40
		if err := os.WriteFile(objectPath(x, h), bad, 0o640); err != nil {
			t.Fatal(err)
		}
		// Same size: only reading the block tells. The read repairs it
		// on the fly and delivers the right bytes...
		got, err := openAll(t, x, h, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("reading a corrupt object: %v (%d bytes)", err, len(got))
		}
		// ...and the local copy is good again.
		if !bytes.Equal(x.readLocal(t, h), data) {
			t.Fatal("local copy not repaired")
		}
	})
}

// corruptPeer serves a damaged copy of whatever its store has, as a peer
// with a bad disk would before it noticed.
func corruptPeer(t *testing.T, n *ctNode) *httptest.Server {
	srv := httptest.NewServer(clusterauth.Require(ctSecret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := filepath.Base(r.URL.Path)
		b, err := os.ReadFile(objectPath(n, h))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		b[0] ^= 1
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchRejectsCorruptPeer(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	data := randData(t, 600<<10)
	h := nodes[1].put(t, data)
	nodes[2].put(t, data)
	bad := corruptPeer(t, nodes[1])
	x := nodes[0]
	x.setPeers(Peer{ID: "bad", URL: bad.URL}, nodes[2].peer())
	got, err := openAll(t, x, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open: %v", err)
	}

	// With only the corrupt peer, nothing is committed.
	y := newCTNode(t, "y", nil)
	y.setPeers(Peer{ID: "bad", URL: bad.URL})
	if _, err := openAll(t, y, h, int64(len(data))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open from a corrupt peer only: %v", err)
	}
	if y.store.Has(h) {
		t.Fatal("corrupt download committed")
	}
	if ents, _ := os.ReadDir(filepath.Join(y.dir, "content", "partial")); len(ents) != 0 {
		t.Fatalf("corrupt partial download kept: %v", ents)
	}
}

// cutter serves the first n bytes of an object with the full length
// announced, then breaks the connection.
func cutter(t *testing.T, src *ctNode, n int) *httptest.Server {
	srv := httptest.NewServer(clusterauth.Require(ctSecret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := filepath.Base(r.URL.Path)
		b, err := os.ReadFile(objectPath(src, h))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:n])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchResumes(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	data := randData(t, 3<<20+11)
	h := nodes[1].put(t, data)
	const cut = 1<<20 + 3
	cutSrv := cutter(t, nodes[1], cut)
	rec := &recorder{next: nodes[1].c.Handler()}
	good := httptest.NewServer(rec)
	t.Cleanup(good.Close)
	x := nodes[0]

	// The only peer breaks off: the fetch fails, the bytes stay.
	x.setPeers(Peer{ID: "cutter", URL: cutSrv.URL})
	if _, err := openAll(t, x, h, int64(len(data))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open from a peer that breaks off: %v", err)
	}
	fi, err := os.Stat(filepath.Join(x.dir, "content", "partial", h))
	if err != nil || fi.Size() != cut {
		t.Fatalf("partial download: %v, %d bytes; want %d", err, fi.Size(), cut)
	}

	// The next attempt continues where it stopped.
	x.setPeers(Peer{ID: "good", URL: good.URL})
	got, err := openAll(t, x, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed Open: %v", err)
	}
	if _, ranges := rec.snapshot(); len(ranges) != 1 || ranges[0] != "bytes="+strconv.Itoa(cut)+"-" {
		t.Fatalf("good peer saw Range %q, want bytes=%d-", ranges, cut)
	}

	// Within one fetch, the next peer continues the previous one's bytes.
	y := newCTNode(t, "y", nil)
	y.setPeers(Peer{ID: "cutter", URL: cutSrv.URL}, Peer{ID: "good", URL: good.URL})
	got, err = openAll(t, y, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open via cutter then good: %v", err)
	}
	if _, ranges := rec.snapshot(); len(ranges) != 2 || ranges[1] != "bytes="+strconv.Itoa(cut)+"-" {
		t.Fatalf("good peer saw Range %q", ranges)
	}
}

// TestFetchResumeOfBadPrefix: bytes left by a corrupt peer make the
// resumed download fail verification; it is retried whole, once.
func TestFetchResumeOfBadPrefix(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	data := randData(t, 1<<20)
	h := nodes[1].put(t, data)
	x := nodes[0]
	d, err := x.store.Resume(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	junk := append([]byte(nil), data[:1000]...)
	junk[10] ^= 1
	d.Write(junk)
	d.Close()
	got, err := openAll(t, x, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open: %v", err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// applyCmds applies commands to f as consecutive log entries from index.
func applyCmds(t testing.TB, f *fsm.FSM, index uint64, cmds ...fsm.Command) uint64 {
	t.Helper()
	for _, c := range cmds {
		if c.Time == 0 {
			c.Time = int64(index) * 1000
		}
		data, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.ApplyEntry(context.Background(), index, data)
		if err != nil || res.Code != fsm.OK {
			t.Fatalf("apply %s %s: %+v, %v", c.Op, c.Path, res, err)
		}
		index++
	}
	return index
}

// TestCatchUp: a node with the namespace but none of the content (a new
// node after the snapshot install) fetches everything, then follows new
// entries through the reference hook and rescans after a restore.
func TestCatchUp(t *testing.T) {
	nodes := newCTCluster(t, 2, func(c *ContentConfig) { c.MaxPending = 5 })
	src, x := nodes[0], nodes[1]
	ff := fsm.New(src.meta, zerolog.Nop(), fsm.WithTempDir(t.TempDir()))
	fx := fsm.New(x.meta, zerolog.Nop(), fsm.WithTempDir(t.TempDir()),
		fsm.WithReferenceHook(x.c.Notify), fsm.WithRestoreHook(x.c.Rescan))

	// The namespace: 3 levels, shared content, an empty file.
	cmds := []fsm.Command{{Op: fsm.OpInit}, {Op: fsm.OpMkcol, Path: "/a"}, {Op: fsm.OpMkcol, Path: "/a/b"}}
	files := map[string][]byte{}
	for i := range 12 {
		data := randData(t, 1000+i*50_000)
		h := src.put(t, data)
		files[h] = data
		dir := []string{"", "/a", "/a/b"}[i%3]
		cmds = append(cmds, fsm.Command{Op: fsm.OpPut, Path: fmt.Sprintf("%s/f%d", dir, i), Hash: h, Size: int64(len(data))})
	}
	shared := cmds[len(cmds)-1]
	shared.Path = "/a/copy"
	cmds = append(cmds, shared, fsm.Command{Op: fsm.OpPut, Path: "/empty", Hash: content.EmptyHash})
	next := applyCmds(t, ff, 1, cmds...)

	// x gets the namespace by a snapshot (as a joining node does).
	var snap bytes.Buffer
	if _, err := ff.WriteSnapshot(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.RestoreFrom(context.Background(), bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if x.c.CaughtUp() {
		t.Fatal("caught up before any scan")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() { x.c.Run(ctx); close(runDone) }()
	waitFor(t, "catch-up", x.c.CaughtUp)
	for h, data := range files {
		if !bytes.Equal(x.readLocal(t, h), data) {
			t.Fatalf("%s differs after catch-up", h[:8])
		}
	}
	if n, b := x.c.Backlog(); n != 0 || b != 0 {
		t.Fatalf("backlog %d files, %d bytes after catch-up", n, b)
	}

	// New entries: the reference hook queues their content.
	data := randData(t, 70_000)
	h := src.put(t, data)
	cmd := fsm.Command{Op: fsm.OpPut, Path: "/new", Hash: h, Size: int64(len(data))}
	applyCmds(t, ff, next, cmd)
	next = applyCmds(t, fx, next, cmd)
	waitFor(t, "fetch of new content", func() bool { return x.store.Has(h) })
	waitFor(t, "caught up again", x.c.CaughtUp)

	// A restore asks for a rescan: content lost meanwhile comes back.
	lost := ""
	for h := range files {
		lost = h
		break
	}
	if err := os.Remove(objectPath(x, lost)); err != nil {
		t.Fatal(err)
	}
	snap.Reset()
	if _, err := ff.WriteSnapshot(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.RestoreFrom(context.Background(), bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if x.c.CaughtUp() {
		t.Fatal("caught up right after a restore")
	}
	// Verification must see lost content as on its way, not lost.
	if !x.c.Fetching(lost) && !x.store.Has(lost) {
		t.Fatal("lost content is neither being fetched nor back")
	}
	waitFor(t, "catch-up after restore", x.c.CaughtUp)
	if !x.store.Has(lost) {
		t.Fatal("rescan did not fetch lost content")
	}

	// Content nobody has does not hold readiness back forever, but stays
	// in the backlog.
	ghost := randData(t, 10)
	ghostCmd := fsm.Command{Op: fsm.OpPut, Path: "/ghost", Hash: sum(ghost), Size: 10}
	applyCmds(t, ff, next, ghostCmd)
	applyCmds(t, fx, next, ghostCmd)
	x.c.Rescan()
	waitFor(t, "catch-up despite content nobody has", x.c.CaughtUp)
	if n, _ := x.c.Backlog(); n != 1 {
		t.Fatalf("backlog %d, want the 1 unavailable file", n)
	}
	if x.c.Fetching(sum(ghost)) {
		t.Fatal("content no peer has counts as being fetched: verification would wait for it forever")
	}
	cancel()
	<-runDone
}

// TestCatchUpByLogReplay: a node that scans an empty namespace and then
// learns of content from the entries it applies (a join by log replay,
// no snapshot) is not caught up until it has fetched that content.
func TestCatchUpByLogReplay(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	src, x := nodes[0], nodes[1]
	fx := fsm.New(x.meta, zerolog.Nop(), fsm.WithTempDir(t.TempDir()), fsm.WithReferenceHook(x.c.Notify))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.c.Run(ctx)
	waitFor(t, "empty namespace caught up", x.c.CaughtUp)

	// The source is unreachable for now: the fetch keeps failing.
	x.setPeers(Peer{ID: "down", URL: "http://127.0.0.1:1"})
	data := randData(t, 100_000)
	h := src.put(t, data)
	applyCmds(t, fx, 1, fsm.Command{Op: fsm.OpInit},
		fsm.Command{Op: fsm.OpPut, Path: "/f", Hash: h, Size: int64(len(data))})
	time.Sleep(200 * time.Millisecond)
	if x.c.CaughtUp() {
		t.Fatal("caught up while lacking content a committed entry references")
	}
	if n, b := x.c.Backlog(); n != 1 || b != int64(len(data)) {
		t.Fatalf("backlog %d files, %d bytes", n, b)
	}
	x.setPeers(src.peer())
	waitFor(t, "catch-up once the peer is back", x.c.CaughtUp)
	if !bytes.Equal(x.readLocal(t, h), data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestCatchUpRateLimit: background fetches respect FetchRate, fetches a
// reader waits for do not.
func TestCatchUpRateLimit(t *testing.T) {
	const rate = 4 << 20
	nodes := newCTCluster(t, 2, func(c *ContentConfig) { c.FetchRate = rate })
	src, x := nodes[0], nodes[1]
	data := randData(t, 6<<20)
	h := src.put(t, data)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.c.Run(ctx)
	start := time.Now()
	x.c.Notify(h, int64(len(data)))
	waitFor(t, "rate-limited fetch", func() bool { return x.store.Has(h) })
	// 6 MiB at 4 MiB/s with a 0.4 MiB burst: at least ~1.4 s. This is a
	// lower bound only, so a slow machine cannot fail it.
	if d := time.Since(start); d < time.Second {
		t.Fatalf("6 MiB fetched in %v despite a %d B/s cap", d, rate)
	}
}

// heapSampler records the highest HeapInuse seen while it runs.
func heapSampler() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// prng is an endless deterministic byte stream, so a huge body needs no
// memory in the test either.
type prng struct{ r *mrand.ChaCha8 }

func (p prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func TestPushMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 3 x 256 MiB")
	}
	nodes := newCTCluster(t, 3, nil)
	const size = 256 << 20
	body := func() io.Reader { return io.LimitReader(prng{mrand.NewChaCha8([32]byte{1})}, size) }
	want := sha256.New()
	io.Copy(want, body())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapSampler()
	h, n, err := nodes[0].c.Write(ctCtx(t), body())
	peak := stop()
	if err != nil || n != size || h != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("Write = %s, %d, %v", h, n, err)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, %d MiB peak during a %d MiB push to 2 followers",
		before.HeapInuse>>20, peak>>20, size>>20)
	if growth > 64<<20 {
		t.Fatalf("heap grew by %d MiB during the push", growth>>20)
	}
	for _, n := range nodes[1:] {
		waitFor(t, "follower copy", func() bool { return n.store.Has(h) })
	}
}

// BenchmarkPush64MiB compares a 64 MiB upload replicated to two followers
// over loopback HTTP with a plain local write of the same bytes.
func BenchmarkPush64MiB(b *testing.B) {
	data := randData(b, 64<<20)
	b.Run("local", func(b *testing.B) {
		n := newCTNode(b, "n0", nil)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			blob, err := n.store.Put(context.Background(), bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			n.store.Unpin(blob.Hash)
			b.StopTimer()
			os.Remove(objectPath(n, blob.Hash))
			b.StartTimer()
		}
	})
	b.Run("leader+2", func(b *testing.B) {
		nodes := newCTCluster(b, 3, nil)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			h, _, err := nodes[0].c.Write(context.Background(), bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			nodes[0].c.Unpin(h)
			for _, n := range nodes {
				waitFor(b, "copy", func() bool { return n.store.Has(h) })
				for n.store.Pins(h) > 0 {
					n.store.Unpin(h)
				}
				os.Remove(objectPath(n, h))
			}
			b.StartTimer()
		}
	})
}

// TestIdleTransfers: a peer that stops sending mid-body is given up on
// after IdleTimeout, on both sides of a transfer.
func TestIdleTransfers(t *testing.T) {
	short := func(c *ContentConfig) { c.IdleTimeout = 300 * time.Millisecond }
	nodes := newCTCluster(t, 2, short)
	data := randData(t, 1<<20)
	h := nodes[1].put(t, data)

	// Fetch: the first peer sends half the body and then nothing.
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		<-release
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })
	x := nodes[0]
	x.setPeers(Peer{ID: "stall", URL: stall.URL}, nodes[1].peer())
	got, err := openAll(t, x, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open past a stalling peer: %v", err)
	}

	// Push: a sender that goes quiet mid-body frees the follower.
	conn, err := net.Dial("tcp", nodes[1].srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\n%s: %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		pushPath, clusterauth.Header, ctSecret)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer from a follower whose sender went quiet: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stalled push answered %s", resp.Status)
	}
	if objs, _, _ := nodes[1].store.Usage(); objs != 1 {
		t.Fatalf("follower holds %d objects, want only the original", objs)
	}
}
