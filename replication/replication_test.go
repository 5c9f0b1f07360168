package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/testlog"
	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/metastore/redisstore"
)

const (
	hA = "aaaa000000000000000000000000000000000000000000000000000000000000"
	hB = "bbbb000000000000000000000000000000000000000000000000000000000000"
)

// freeAddr returns a loopback address with a port nobody listens on. The
// test reuses it across restarts, as a pod keeps its address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func testLogger(t testing.TB) zerolog.Logger {
	lb := &testlog.Buffer{}
	lb.ShowOnFailure(t, "node logs")
	return zerolog.New(lb).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

type testNode struct {
	*Node
	store metastore.Store
	fsm   *fsm.FSM
	cfg   Config
}

// fastConfig is a Config with loopback-speed timeouts.
func fastConfig(t testing.TB, id, dir, addr string) Config {
	return Config{
		ID:                 id,
		RaftAddr:           addr,
		DataDir:            dir,
		Logger:             testLogger(t),
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotInterval:   time.Hour, // snapshots only when a test asks
		SnapshotThreshold:  1 << 30,
		ApplyTimeout:       5 * time.Second,
		LockExpiryInterval: 50 * time.Millisecond,
	}
}

// start opens a node over store with a fresh FSM (as a restarted process
// would) and closes it when the test ends.
func start(t testing.TB, cfg Config, store metastore.Store) *testNode {
	t.Helper()
	f := fsm.New(store, cfg.Logger, fsm.WithTempDir(t.TempDir()))
	cfg.FSM = f
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tn := &testNode{Node: n, store: store, fsm: f, cfg: cfg}
	t.Cleanup(func() { tn.close(t) })
	return tn
}

func (tn *testNode) close(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func openBolt(t testing.TB, path string) metastore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t testing.TB, url, prefix string) metastore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), url, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitRoot waits until the leader's automatic OpInit has been applied.
func waitRoot(t testing.TB, tn *testNode) metastore.Inode {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		root, err := tn.store.Get(context.Background(), metastore.RootID)
		if err == nil {
			return root
		}
		if time.Now().After(deadline) {
			t.Fatalf("root never created: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tn *testNode) propose(t *testing.T, c fsm.Command) *fsm.Result {
	t.Helper()
	r, err := tn.Propose(ctxT(t), &c)
	if err != nil {
		t.Fatalf("Propose(%s %s): %v", c.Op, c.Path, err)
	}
	return r
}

func (tn *testNode) mustPropose(t *testing.T, c fsm.Command) *fsm.Result {
	t.Helper()
	r := tn.propose(t, c)
	if r.Code != fsm.OK {
		t.Fatalf("%s %s: %v (%s)", c.Op, c.Path, r.Code, r.Msg)
	}
	return r
}

func dump(t *testing.T, r metastore.Reader) string {
	t.Helper()
	var b bytes.Buffer
	if err := fsm.Dump(context.Background(), r, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// workload proposes a mix of mutations, content shared between files.
func workload(t *testing.T, tn *testNode, prefix string) {
	t.Helper()
	tn.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: prefix})
	for i := 0; i < 5; i++ {
		tn.mustPropose(t, fsm.Command{Op: fsm.OpPut, Path: fmt.Sprintf("%s/f%d", prefix, i), Hash: hA, Size: 1})
	}
	tn.mustPropose(t, fsm.Command{Op: fsm.OpPut, Path: prefix + "/f0", Hash: hB, Size: 2})
	tn.mustPropose(t, fsm.Command{Op: fsm.OpPropPatch, Path: prefix + "/f1",
		Patches: []fsm.PropPatch{{Name: metastore.PropName{Space: "urn:t", Local: "p"}, Value: "v"}}})
	tn.mustPropose(t, fsm.Command{Op: fsm.OpMove, Path: prefix + "/f2", Dest: prefix + "/moved"})
	tn.mustPropose(t, fsm.Command{Op: fsm.OpDelete, Path: prefix + "/f3"})
}

func TestSingleNode(t *testing.T) {
	dir := t.TempDir()
	tn := start(t, func() Config {
		c := fastConfig(t, "n1", dir, freeAddr(t))
		c.Bootstrap = true
		return c
	}(), openBolt(t, filepath.Join(dir, "meta.db")))
	ctx := ctxT(t)
	if id, _, err := tn.WaitForLeader(ctx); err != nil || id != "n1" {
		t.Fatalf("WaitForLeader = %q, %v", id, err)
	}
	root := waitRoot(t, tn)
	if root.Created == 0 || root.Created > time.Now().UnixNano() || !root.IsDir() {
		t.Fatalf("root %+v", root)
	}

	r := tn.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/a"})
	if !r.Created || !r.Inode.IsDir() {
		t.Fatalf("mkcol %+v", r)
	}
	before := time.Now().UnixNano()
	r = tn.mustPropose(t, fsm.Command{Op: fsm.OpPut, Path: "/a/f", Hash: hA, Size: 1})
	if !r.Created || r.Inode.Created < before || r.Inode.Created > time.Now().UnixNano() {
		t.Fatalf("put %+v: time not the leader's clock", r)
	}
	// A refused mutation is an outcome, not an error.
	if r := tn.propose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/x/y"}); r.Code != fsm.Conflict {
		t.Fatalf("mkcol without parent: %+v", r)
	}
	if r := tn.propose(t, fsm.Command{Op: fsm.OpPut, Path: "/a/f", Hash: hB, IfNoneMatch: "*"}); r.Code != fsm.PreconditionFailed {
		t.Fatalf("put If-None-Match *: %+v", r)
	}

	st, err := tn.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != "Leader" || st.LeaderID != "n1" || len(st.Servers) != 1 || st.Servers[0].Suffrage != "Voter" ||
		st.AppliedIndex == 0 || st.CommitIndex < st.AppliedIndex || st.Term == 0 {
		t.Fatalf("status %+v", st)
	}
	ri, err := tn.ReadIndex(ctx)
	if err != nil || ri != st.AppliedIndex {
		t.Fatalf("ReadIndex = %d, %v; applied %d", ri, err, st.AppliedIndex)
	}
	if err := tn.WaitApplied(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if !tn.IsLeader() || tn.State() != "Leader" || tn.Stats()["state"] != "Leader" {
		t.Fatal("leader accessors disagree")
	}
}

func TestOpenNeedsBootstrapOrState(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.FSM = fsm.New(openBolt(t, filepath.Join(dir, "meta.db")), zerolog.Nop())
	_, err := Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--bootstrap") {
		t.Fatalf("Open without state or bootstrap: %v", err)
	}
	// The port is free again: Open cleaned up after itself.
	l, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		t.Fatalf("transport left open: %v", err)
	}
	l.Close()
}

// countingStore counts commits, to prove a restart applies nothing twice.
type countingStore struct {
	metastore.Store
	commits atomic.Int64
}

func (c *countingStore) Commit(ctx context.Context, b *metastore.Batch) error {
	c.commits.Add(1)
	return c.Store.Commit(ctx, b)
}

func TestRestart(t *testing.T) {
	url := testredis.Start(t)
	for _, kind := range []string{"bolt", "redis"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			var store metastore.Store
			if kind == "bolt" {
				store = openBolt(t, filepath.Join(dir, "meta.db"))
			} else {
				store = openRedis(t, url, "restart:")
			}
			cfg := fastConfig(t, "n1", dir, freeAddr(t))
			cfg.Bootstrap = true
			tn := start(t, cfg, store)
			waitRoot(t, tn)
			workload(t, tn, "/w")
			want := dump(t, store)
			applied, _ := tn.AppliedIndex(ctxT(t))
			tn.close(t)

			// Restart without Bootstrap; Bootstrap on existing state would be
			// ignored anyway.
			cs := &countingStore{Store: store}
			cfg.Bootstrap = false
			tn = start(t, cfg, cs)
			if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if err := tn.Barrier(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if n := cs.commits.Load(); n != 0 {
				t.Fatalf("restart committed %d batches: entries applied twice", n)
			}
			if got := dump(t, store); got != want {
				t.Fatalf("state changed across restart:\n%s\nwant:\n%s", got, want)
			}
			if a, _ := tn.AppliedIndex(ctxT(t)); a < applied {
				t.Fatalf("applied index %d < %d before restart", a, applied)
			}
			// And the node keeps working.
			tn.mustPropose(t, fsm.Command{Op: fsm.OpPut, Path: "/w/after", Hash: hA})
			if n, _ := store.RefCount(context.Background(), hA); n != 4 {
				t.Fatalf("refcount %d, want 4", n)
			}
		})
	}
}

func TestSnapshotThenRestart(t *testing.T) {
	dir := t.TempDir()
	store := openBolt(t, filepath.Join(dir, "meta.db"))
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	cfg.TrailingLogs = 1 // compact the log so restart cannot rely on it
	tn := start(t, cfg, store)
	waitRoot(t, tn)
	workload(t, tn, "/before")
	if err := tn.Snapshot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	workload(t, tn, "/after")
	want := dump(t, store)
	tn.close(t)

	cs := &countingStore{Store: store}
	cfg.Bootstrap = false
	tn = start(t, cfg, cs)
	if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := tn.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, store); got != want {
		t.Fatalf("state changed across restart:\n%s\nwant:\n%s", got, want)
	}
	if n := cs.commits.Load(); n != 0 {
		t.Fatalf("restart committed %d batches", n)
	}
	workload(t, tn, "/later")
}

// TestEmptyStoreCatchesUp gives a node its Raft state but an empty
// metastore (a Redis that lost its data): Open restores the store from the
// newest snapshot and raft replays the entries after it.
func TestEmptyStoreCatchesUp(t *testing.T) {
	url := testredis.Start(t)
	dir := t.TempDir()
	store := openBolt(t, filepath.Join(dir, "meta.db"))
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	tn := start(t, cfg, store)
	waitRoot(t, tn)
	workload(t, tn, "/snap")
	tn.mustPropose(t, fsm.Command{Op: fsm.OpLock, Path: "/snap/f1", Lock: &metastore.Lock{Token: "tok", Root: "/snap/f1"}})
	if err := tn.Snapshot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	workload(t, tn, "/log")
	want := dump(t, store)
	tn.close(t)

	// A copy of the raft directory, as a replacement pod would have on its
	// volume, with a fresh Redis.
	dir2 := t.TempDir()
	copyDir(t, filepath.Join(dir, "raft"), filepath.Join(dir2, "raft"))
	empty := openRedis(t, url, "fresh:")
	cfg.DataDir = dir2
	cfg.Bootstrap = false
	tn = start(t, cfg, empty)
	if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := tn.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, empty); got != want {
		t.Fatalf("restored store differs:\n%s\nwant:\n%s", got, want)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJoinInstallsSnapshot adds a second node after the log has been
// compacted: Raft must ship the snapshot, and the new node's FSM.Restore
// (into a Redis store, from a bolt leader) must reproduce the leader's
// state exactly.
func TestJoinInstallsSnapshot(t *testing.T) {
	url := testredis.Start(t)
	dir1 := t.TempDir()
	s1 := openBolt(t, filepath.Join(dir1, "meta.db"))
	cfg1 := fastConfig(t, "n1", dir1, freeAddr(t))
	cfg1.Bootstrap = true
	cfg1.TrailingLogs = 1
	// Small segments, so compaction really deletes the head of the log
	// (raft-wal drops whole segments) and Raft must send the snapshot.
	cfg1.WALSegmentSize = 8 << 10
	n1 := start(t, cfg1, s1)
	waitRoot(t, n1)
	workload(t, n1, "/w")
	for i := 0; i < 100; i++ {
		n1.mustPropose(t, fsm.Command{Op: fsm.OpPut, Path: "/w/f1", Hash: fmt.Sprintf("%064x", i)})
	}
	if err := n1.Snapshot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	n1.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/after-snapshot"})

	s2 := openRedis(t, url, "joiner:")
	cfg2 := fastConfig(t, "n2", t.TempDir(), freeAddr(t))
	cfg2.Joining = true
	n2 := start(t, cfg2, s2)
	if err := n1.AddVoter(ctxT(t), "n2", n2.Addr()); err != nil {
		t.Fatal(err)
	}
	n1.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/after-join"})
	ri, err := n1.ReadIndex(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.WaitApplied(ctxT(t), ri); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(t, s1), dump(t, s2); a != b {
		t.Fatalf("follower differs:\n%s\nleader:\n%s", b, a)
	}
	if si := n2.Stats()["last_snapshot_index"]; si == "" || si == "0" {
		t.Fatalf("follower caught up without installing a snapshot (last_snapshot_index %q)", si)
	}

	// The follower refuses to propose and names the leader.
	_, err = n2.Propose(ctxT(t), &fsm.Command{Op: fsm.OpMkcol, Path: "/nope"})
	var nl *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nl) || nl.LeaderID != "n1" || nl.LeaderAddr != n1.Addr() {
		t.Fatalf("Propose on follower: %v", err)
	}
	st, err := n2.Status(ctxT(t))
	if err != nil || st.Role != "Follower" || len(st.Servers) != 2 || st.LeaderID != "n1" {
		t.Fatalf("follower status %+v, %v", st, err)
	}
}

// gatedStore blocks commits until opened, to make applying slow.
type gatedStore struct {
	metastore.Store
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (g *gatedStore) close() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedStore) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *gatedStore) Commit(ctx context.Context, b *metastore.Batch) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.Store.Commit(ctx, b)
}

func TestProposeContext(t *testing.T) {
	dir := t.TempDir()
	gs := &gatedStore{Store: openBolt(t, filepath.Join(dir, "meta.db"))}
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	cfg.ApplyTimeout = time.Second
	tn := start(t, cfg, gs)
	waitRoot(t, tn)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tn.Propose(cancelled, &fsm.Command{Op: fsm.OpMkcol, Path: "/c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with cancelled ctx: %v", err)
	}

	// Applying hangs: a deadline returns promptly, outcome unknown.
	gs.close()
	defer gs.open()
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	began := time.Now()
	_, err := tn.Propose(ctx, &fsm.Command{Op: fsm.OpMkcol, Path: "/slow"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Propose past its deadline: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("Propose took %v to give up", d)
	}
	// Without a deadline of its own, the wait is bounded by ApplyTimeout:
	// a state machine that cannot apply (its store on a full volume)
	// must not hold the request for as long as the fault lasts.
	began = time.Now()
	_, err = tn.Propose(context.Background(), &fsm.Command{Op: fsm.OpMkcol, Path: "/slow2"})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Propose while applying hangs, no deadline: %v, want outcome unknown", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("Propose without a deadline took %v to give up, want ApplyTimeout (%v)", d, cfg.ApplyTimeout)
	}
	gs.open()
	// The abandoned entries still apply.
	if err := tn.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/slow", "/slow2"} {
		if _, err := fsm.Resolve(context.Background(), gs, p); err != nil {
			t.Fatalf("abandoned entry %s not applied: %v", p, err)
		}
	}
}

func TestLockExpiryLoop(t *testing.T) {
	dir := t.TempDir()
	store := openBolt(t, filepath.Join(dir, "meta.db"))
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	tn := start(t, cfg, store)
	waitRoot(t, tn)
	now := time.Now().UnixNano()
	tn.mustPropose(t, fsm.Command{Op: fsm.OpLock, Path: "/short", Lock: &metastore.Lock{
		Token: "short", Root: "/short", Created: now, Expires: now + int64(150*time.Millisecond), Timeout: 1,
	}})
	tn.mustPropose(t, fsm.Command{Op: fsm.OpLock, Path: "/forever", Lock: &metastore.Lock{Token: "forever", Root: "/forever"}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		locks, err := store.Locks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) == 1 && locks[0].Token == "forever" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired lock not removed: %+v", locks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHCLogAdapter(t *testing.T) {
	var b bytes.Buffer
	l := newHCLogger(zerolog.New(&b).Level(zerolog.InfoLevel))
	l.Named("sub").Info("hello", "n", 3, "err", errors.New("boom"), "odd")
	l.Debug("hidden")
	out := b.String()
	for _, want := range []string{`"message":"hello"`, `"module":"raft.sub"`, `"n":3`, `"err":"boom"`, `"extra":"odd"`, `"level":"info"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("debug message passed an info-level logger")
	}
}

// TestStoreLostWhileRunning flushes the Redis of a running node (FLUSHALL,
// or a Redis restarted without its data) after a snapshot and more writes:
// the node notices within its check interval, rebuilds the store from its
// own snapshot and log, and goes on applying; a flush with no snapshot
// rebuilds from the log alone.
func TestStoreLostWhileRunning(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot bool
	}{
		{"snapshot and log", true},
		{"log only", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := testredis.Start(t)
			dir := t.TempDir()
			store := openRedis(t, url, "n1:")
			cfg := fastConfig(t, "n1", dir, freeAddr(t))
			cfg.Bootstrap = true
			cfg.StoreCheckInterval = 50 * time.Millisecond
			tn := start(t, cfg, store)
			waitRoot(t, tn)
			workload(t, tn, "/a")
			if tc.snapshot {
				if err := tn.Snapshot(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
			workload(t, tn, "/b")
			want := dump(t, store)

			opt, err := redis.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			if err := rdb.FlushAll(ctxT(t)).Err(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for dump(t, store) != want {
				if time.Now().After(deadline) {
					t.Fatalf("store not rebuilt:\n%s\nwant:\n%s", dump(t, store), want)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if why := tn.fsm.Rebuilding(); why != "" {
				t.Fatalf("still rebuilding after the store is whole: %s", why)
			}
			// Writes go on over the rebuilt store (each must succeed).
			workload(t, tn, "/c")
		})
	}
}

// TestLeaderReady checks that a leader's writes wait for it to apply the
// entries of earlier terms: after LeaderReady, the FSM has applied every
// entry committed before the call.
func TestLeaderReady(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	tn := start(t, cfg, openBolt(t, filepath.Join(dir, "meta.db")))
	waitRoot(t, tn)
	workload(t, tn, "/a")
	commit := tn.raft.CommitIndex()
	if err := tn.LeaderReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if applied := tn.raft.AppliedIndex(); applied < commit {
		t.Fatalf("LeaderReady returned with raft applied %d < commit %d", applied, commit)
	}
	// Later calls in the same term cost nothing: no new log entry.
	last := tn.raft.LastIndex()
	if err := tn.LeaderReady(ctxT(t)); err != nil || tn.raft.LastIndex() != last {
		t.Fatalf("second LeaderReady: %v, log %d -> %d", err, last, tn.raft.LastIndex())
	}
	tn.close(t)
	// A restarted node leads a new term and needs a new barrier.
	cfg.Bootstrap = false
	tn = start(t, cfg, tn.store)
	if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := tn.LeaderReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if tn.readyTerm != tn.raft.CurrentTerm() {
		t.Fatalf("ready term %d, current term %d", tn.readyTerm, tn.raft.CurrentTerm())
	}
}

// TestForeignStoreDropped starts a new cluster on a metastore that holds
// another cluster's state at a higher index (a Redis shared by mistake, a
// data directory whose Raft state was lost): the node empties it and
// builds its own state, instead of skipping its own entries as applied.
func TestForeignStoreDropped(t *testing.T) {
	url := testredis.Start(t)
	store := openRedis(t, url, "shared:")
	cfg := fastConfig(t, "n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap = true
	other := start(t, cfg, store)
	waitRoot(t, other)
	workload(t, other, "/other")
	workload(t, other, "/more")
	other.close(t)

	cfg = fastConfig(t, "n1", t.TempDir(), freeAddr(t)) // a new cluster
	cfg.Bootstrap = true
	tn := start(t, cfg, store)
	waitRoot(t, tn)
	tn.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/mine"})
	got := dump(t, store)
	if strings.Contains(got, `"other"`) || strings.Contains(got, `"more"`) {
		t.Fatalf("the other cluster's files survived:\n%s", got)
	}
	if !strings.Contains(got, `"mine"`) {
		t.Fatalf("the new cluster's entry is missing:\n%s", got)
	}
}

// TestStoreOfAnotherClusterRebuilt restarts a node on a metastore that
// holds another cluster's state at an index its own log also reaches (a
// Redis shared by mistake, volumes swapped between clusters): the index
// alone cannot tell, the store's root collection and the terms can. The
// node empties the store and rebuilds its own state from its log, instead
// of skipping its own entries as applied on top of the other cluster's.
func TestStoreOfAnotherClusterRebuilt(t *testing.T) {
	url := testredis.Start(t)
	foreign := openRedis(t, url, "other:")
	cfg := fastConfig(t, "n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap = true
	other := start(t, cfg, foreign)
	waitRoot(t, other)
	workload(t, other, "/other")
	other.close(t)

	own := openRedis(t, url, "own:")
	cfg = fastConfig(t, "n1", t.TempDir(), freeAddr(t)) // this node's cluster
	cfg.Bootstrap = true
	tn := start(t, cfg, own)
	waitRoot(t, tn)
	workload(t, tn, "/mine")
	workload(t, tn, "/more")
	want := dump(t, own)
	foreignAt, err := foreign.AppliedIndex(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if last := tn.raft.LastIndex(); foreignAt > last {
		t.Fatalf("the other cluster's store is at %d, past this node's log (%d): the test needs it within", foreignAt, last)
	}
	tn.close(t)

	cfg.Bootstrap = false
	tn = start(t, cfg, foreign)
	if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := tn.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, foreign); got != want {
		t.Fatalf("store after restart on another cluster's store:\n%s\nwant:\n%s", got, want)
	}
	tn.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/after"})
}

// TestReadIndexWritesNothing checks the read index of the Raft thesis: it
// covers every write acknowledged before it, also right after a new term
// began (whose first entry, a no-op, never reaches the state machine), and
// it appends nothing to the log.
func TestReadIndexWritesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	tn := start(t, cfg, openBolt(t, filepath.Join(dir, "meta.db")))
	waitRoot(t, tn)
	// The first check of a term costs one barrier (LeaderReady); then no
	// read index writes anything.
	if err := tn.LeaderReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	tn.mustPropose(t, fsm.Command{Op: fsm.OpMkcol, Path: "/a"})
	wrote := tn.raft.LastIndex()
	for range 3 {
		ri, err := tn.ReadIndex(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if ri < wrote {
			t.Fatalf("read index %d below the acknowledged write at %d", ri, wrote)
		}
	}
	if last := tn.raft.LastIndex(); last != wrote {
		t.Fatalf("read indexes appended to the log: %d -> %d", wrote, last)
	}
	tn.close(t)

	// A new term: the log ends with the leader's no-op.
	cfg.Bootstrap = false
	tn = start(t, cfg, tn.store)
	if _, _, err := tn.WaitForLeader(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ri, err := tn.ReadIndex(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if ri != wrote {
		t.Fatalf("read index in a new term %d, want the last command's %d (log ends at %d)", ri, wrote, tn.raft.LastIndex())
	}
}
