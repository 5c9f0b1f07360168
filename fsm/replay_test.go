package fsm

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// script is a command sequence exercising every op, including refused
// ones, with the entry times fixed so it can be replayed on any store.
func script() []Command {
	p := func(name, v string) []PropPatch {
		return []PropPatch{{Name: metastore.PropName{Space: "urn:s", Local: name}, Value: v}}
	}
	lk := func(path, tok string, inf, shared bool, exp int64) Command {
		return lockCmd(path, tok, inf, shared, exp)
	}
	cs := []Command{
		{Op: OpInit},
		{Op: OpMkcol, Path: "/docs"},
		{Op: OpMkcol, Path: "/docs/sub"},
		{Op: OpPut, Path: "/docs/a.txt", Hash: hA, Size: 1, ContentType: "text/plain"},
		{Op: OpPut, Path: "/docs/sub/b.txt", Hash: hB, Size: 2},
		{Op: OpPut, Path: "/docs/sub/c.txt", Hash: hA, Size: 1},
		{Op: OpPropPatch, Path: "/docs", Patches: p("z", "1")},
		{Op: OpPropPatch, Path: "/docs/a.txt", Patches: append(p("b", "2"), p("a", "<x xmlns=\"urn:q\">3</x>")...)},
		{Op: OpCopy, Path: "/docs", Dest: "/copy", Depth: DepthInfinity},
		{Op: OpCopy, Path: "/docs", Dest: "/copy0", Depth: 0},
		{Op: OpMove, Path: "/copy/sub", Dest: "/moved"},
		{Op: OpPut, Path: "/docs/a.txt", Hash: hC, Size: 3},
		lk("/docs", "tok-1", true, false, T(100)),
		{Op: OpPut, Path: "/docs/sub/b.txt", Hash: hC}, // Locked
		{Op: OpPut, Path: "/docs/sub/b.txt", Hash: hC, Tokens: []string{"tok-1"}},
		lk("/new-lock", "tok-2", false, true, T(20)),
		lk("/new-lock", "tok-3", false, true, 0),
		{Op: OpRefresh, Token: "tok-1", Expires: T(200), Timeout: 100},
		{Op: OpDelete, Path: "/copy0"},
		{Op: OpMkcol, Path: "/x/y"},                                                        // Conflict
		{Op: OpCopy, Path: "/moved", Dest: "/docs", Overwrite: true, Depth: DepthInfinity}, // Locked
		{Op: OpCopy, Path: "/moved", Dest: "/copy", Overwrite: true, Depth: DepthInfinity},
		{Op: OpUnlock, Path: "/docs/sub", Token: "tok-1"},
		{Op: OpMove, Path: "/docs", Dest: "/copy/docs"},
		// A lock with a principal: only its user may submit its token.
		func() Command {
			c := lk("/principal", "tok-4", false, false, 0)
			c.User, c.Lock.Principal = UserOf("alice"), "alice"
			return c
		}(),
		{Op: OpPut, Path: "/principal", Hash: hB, Size: 2, User: UserOf("bob"), Tokens: []string{"tok-4"}}, // Locked
		{Op: OpPut, Path: "/principal", Hash: hB, Size: 2, User: UserOf("alice"), Tokens: []string{"tok-4"}},
	}
	for i := range cs {
		cs[i].Time = T(uint64(i + 1))
	}
	cs = append(cs, Command{Op: OpExpire, Time: T(30)})
	return cs
}

func applyAll(t *testing.T, f *FSM, cmds []Command, from uint64) []*Result {
	t.Helper()
	var out []*Result
	for i, c := range cmds {
		data, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.ApplyEntry(context.Background(), from+uint64(i), data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestDeterminism applies one script to two bolt stores and a Redis store:
// all three must end up byte-identical.
func TestDeterminism(t *testing.T) {
	redis := redisStores(t)
	stores := []metastore.Store{openBolt(t), openBolt(t), redis(t)}
	var dumps []string
	var results [][]*Result
	for _, s := range stores {
		results = append(results, applyAll(t, New(s, zerolog.Nop()), script(), 1))
		dumps = append(dumps, dump(t, s))
	}
	for i := 1; i < len(dumps); i++ {
		if d := diffLines(dumps[0], dumps[i]); d != "" {
			t.Fatalf("store %d differs from store 0: %s", i, d)
		}
		for j := range results[0] {
			if *results[0][j] != *results[i][j] {
				t.Fatalf("entry %d: result %+v on store 0, %+v on store %d", j+1, results[0][j], results[i][j], i)
			}
		}
	}
	// The script must exercise refusals too.
	var refused int
	for _, r := range results[0] {
		if r.Code != OK {
			refused++
		}
	}
	if refused < 3 {
		t.Fatalf("script refused only %d entries", refused)
	}
	if !strings.Contains(dumps[0], `"t":"l"`) || !strings.Contains(dumps[0], `"pr":`) {
		t.Fatalf("dump lacks locks or properties:\n%s", dumps[0])
	}
}

// TestReplay re-applies the whole log through a fresh FSM, as after a
// crash: nothing changes and every entry reports "replayed".
func TestReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		s := open(t)
		cmds := script()
		applyAll(t, New(s, zerolog.Nop()), cmds, 1)
		before := dump(t, s)
		var batches int
		f := New(s, zerolog.Nop(), withBatchHook(func(*metastore.Batch) { batches++ }))
		for _, r := range applyAll(t, f, cmds, 1) {
			if r.Code != OK || r.Msg != "replayed" {
				t.Fatalf("replayed entry returned %+v", r)
			}
		}
		if batches != 0 {
			t.Fatalf("replay committed %d batches", batches)
		}
		if d := diffLines(before, dump(t, s)); d != "" {
			t.Fatalf("replay changed the store: %s", d)
		}
		// A half-replayed log continues where the store left off.
		s2 := open(t)
		applyAll(t, New(s2, zerolog.Nop()), cmds[:10], 1)
		f2 := New(s2, zerolog.Nop())
		applyAll(t, f2, cmds, 1)
		if d := diffLines(before, dump(t, s2)); d != "" {
			t.Fatalf("resumed replay differs: %s", d)
		}
	})
}

func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := f.WriteSnapshot(context.Background(), &b); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return b.Bytes()
}

func TestSnapshotRestore(t *testing.T) {
	bs := backends(t)
	for _, from := range bs {
		for _, to := range bs {
			t.Run(from.name+" to "+to.name, func(t *testing.T) {
				src := from.open(t)
				f := New(src, zerolog.Nop(), WithTempDir(t.TempDir()))
				applyAll(t, f, script(), 1)
				// Cluster members are replicated state too.
				members := &metastore.Batch{Index: uint64(len(script()) + 1)}
				members.PutMember(metastore.Member{ID: "n1", URL: "http://n1:8080", RaftAddr: "n1:7000"}).
					PutMember(metastore.Member{ID: "n2", URL: "http://n2:8080", RaftAddr: "n2:7000"})
				if err := src.Commit(context.Background(), members); err != nil {
					t.Fatal(err)
				}
				want := dump(t, src)
				if !strings.Contains(want, `"raft_addr":"n2:7000"`) {
					t.Fatalf("dump lacks members:\n%s", want)
				}
				// A lock's principal is state like any other (compared
				// through the dumps below).
				if !strings.Contains(want, `"token":"tok-4"`) || !strings.Contains(want, `"principal":"alice"`) {
					t.Fatalf("dump lacks the lock with a principal:\n%s", want)
				}
				snap := snapshotBytes(t, f)

				info, err := ReadSnapshotInfo(bytes.NewReader(snap))
				if err != nil || info.Index != members.Index || info.Locks == 0 || info.Inodes == 0 || info.Members != 2 {
					t.Fatalf("snapshot info %+v, %v", info, err)
				}

				// Into an empty store.
				dst := to.open(t)
				g := New(dst, zerolog.Nop())
				idx, err := g.RestoreFrom(context.Background(), bytes.NewReader(snap))
				if err != nil || idx != info.Index {
					t.Fatalf("RestoreFrom = %d, %v", idx, err)
				}
				if d := diffLines(want, dump(t, dst)); d != "" {
					t.Fatalf("restored store differs: %s", d)
				}

				// Over a store with other content: replaced, not merged.
				other := to.open(t)
				h := New(other, zerolog.Nop())
				applyAll(t, h, []Command{
					{Op: OpInit, Time: 5}, {Op: OpPut, Path: "/stray", Hash: hC, Time: 6},
					lockCmd("/stray", "stray-lock", false, false, 0),
				}, 1)
				applyAll(t, h, []Command{{Op: OpMkcol, Path: "/later", Time: 7}}, 1000) // index above the snapshot's
				if _, err := h.RestoreFrom(context.Background(), bytes.NewReader(snap)); err != nil {
					t.Fatal(err)
				}
				if d := diffLines(want, dump(t, other)); d != "" {
					t.Fatalf("restore over existing state differs: %s", d)
				}
				// Applying continues after the snapshot's index.
				r := applyAll(t, h, []Command{{Op: OpMkcol, Path: "/after", Time: T(99)}}, info.Index+1)
				if r[0].Code != OK {
					t.Fatalf("apply after restore: %+v", r[0])
				}
			})
		}
	}
}

// TestRestoreBatches restores a snapshot whose index is far smaller than
// the number of batches a restore would normally use, and a large one
// through the raft.FSM interface.
func TestRestoreBatches(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		src := open(t)
		e := newEnv(t, src)
		e.init()
		e.raw = &metastore.Batch{}
		for i := 0; i < 5000; i++ {
			id := metastore.ID(1<<40 + i)
			e.raw.PutInode(metastore.Inode{ID: id, Kind: metastore.KindFile, Hash: hA, Created: 1, Modified: 1}).
				Link(metastore.RootID, "f"+itoa(i), id).SetProp(id, pName, itoa(i))
		}
		e.raw.AddRef(hA, 5000)
		e.commitRaw() // applied index 2, 5001 inodes
		want := e.dump()

		dst := open(t)
		rs := &countingStore{Store: dst}
		g := New(rs, zerolog.Nop())
		if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, e.f)))); err != nil {
			t.Fatal(err)
		}
		if d := diffLines(want, dump(t, dst)); d != "" {
			t.Fatalf("restored store differs: %s", d)
		}
		if n := len(rs.indexes); n == 0 || n > 2 || rs.indexes[n-1] != 2 || rs.indexes[0] != uint64(3-n) {
			t.Fatalf("restore committed batches at %v, want indexes up to 2", rs.indexes)
		}
		if rs.maxOps < 5000 {
			t.Fatalf("largest restore batch %d ops: batches did not grow", rs.maxOps)
		}

		// A snapshot at a high index loads in bounded batches.
		e.raw = &metastore.Batch{}
		e.index = 999
		e.raw.SetProp(metastore.RootID, pName, "root")
		e.commitRaw()
		rs2 := &countingStore{Store: open(t)}
		g2 := New(rs2, zerolog.Nop())
		if _, err := g2.RestoreFrom(context.Background(), bytes.NewReader(snapshotBytes(t, e.f))); err != nil {
			t.Fatal(err)
		}
		if rs2.maxOps > restoreBatchOps+10 || len(rs2.indexes) < 10 || rs2.indexes[len(rs2.indexes)-1] != 1000 {
			t.Fatalf("restore batches %v, largest %d ops", rs2.indexes, rs2.maxOps)
		}
		if d := diffLines(e.dump(), dump(t, rs2)); d != "" {
			t.Fatalf("restored store differs: %s", d)
		}
	})
}

type countingStore struct {
	metastore.Store
	indexes []uint64
	maxOps  int
}

func (c *countingStore) Commit(ctx context.Context, b *metastore.Batch) error {
	c.indexes = append(c.indexes, b.Index)
	c.maxOps = max(c.maxOps, len(b.Ops))
	return c.Store.Commit(ctx, b)
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	s := openBolt(t)
	f := New(s, zerolog.Nop())
	applyAll(t, f, script(), 1)
	snap := snapshotBytes(t, f)

	// Truncated compressed stream.
	if _, err := New(openBolt(t), zerolog.Nop()).RestoreFrom(context.Background(), bytes.NewReader(snap[:len(snap)/2])); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	// A well-formed gzip stream missing its end record.
	raw := gunzip(t, snap)
	lines := strings.SplitAfter(strings.TrimSuffix(raw, "\n"), "\n")
	cut := strings.Join(lines[:len(lines)-1], "")
	if _, err := New(openBolt(t), zerolog.Nop()).RestoreFrom(context.Background(), bytes.NewReader(gz(t, cut))); err == nil {
		t.Fatal("snapshot without end record restored")
	}
	// Wrong format.
	if _, err := New(openBolt(t), zerolog.Nop()).RestoreFrom(context.Background(), bytes.NewReader(gz(t, `{"format":"other","version":1}`+"\n"))); err == nil {
		t.Fatal("foreign snapshot restored")
	}
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// TestRaftAdapter drives the FSM through hashicorp/raft's interfaces.
func TestRaftAdapter(t *testing.T) {
	s := openBolt(t)
	f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()))
	for i, c := range script() {
		data, _ := c.Encode()
		resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		if _, ok := resp.(*Result); !ok {
			t.Fatalf("Apply returned %T", resp)
		}
	}
	if resp := f.Apply(&raft.Log{Index: 1000, Type: raft.LogNoop}); resp != nil {
		t.Fatalf("noop returned %v", resp)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("Persist: %v (closed %v)", err, sink.closed)
	}
	snap.Release()
	dst := openBolt(t)
	if err := New(dst, zerolog.Nop()).Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if d := diffLines(dump(t, s), dump(t, dst)); d != "" {
		t.Fatalf("restored differs: %s", d)
	}
}

type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (m *memSink) ID() string     { return "mem" }
func (m *memSink) Close() error   { m.closed = true; return nil }
func (m *memSink) Cancel() error  { m.cancelled = true; return nil }
func (m *memSink) String() string { return "memSink" }

// failingStore fails every Commit until healed.
type failingStore struct {
	metastore.Store
	fail chan struct{} // closed: stop failing
}

func (s *failingStore) Commit(ctx context.Context, b *metastore.Batch) error {
	select {
	case <-s.fail:
		return s.Store.Commit(ctx, b)
	default:
		return errors.New("store down")
	}
}

// TestApplyRetries checks that a store failure is retried, never skipped,
// and that a cancelled context gives up without applying.
func TestApplyRetries(t *testing.T) {
	fs := &failingStore{Store: openBolt(t), fail: make(chan struct{})}
	f := New(fs, zerolog.Nop())
	data, _ := (&Command{Op: OpInit, Time: 1}).Encode()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.ApplyEntry(ctx, 1, data); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ApplyEntry on a failing store: %v", err)
	}
	if i, _ := fs.AppliedIndex(context.Background()); i != 0 {
		t.Fatalf("applied index %d after failure", i)
	}
	done := make(chan *Result)
	go func() {
		r, _ := f.ApplyEntry(context.Background(), 1, data)
		done <- r
	}()
	close(fs.fail)
	if r := <-done; r == nil || r.Code != OK || !r.Created {
		t.Fatalf("retried entry: %+v", r)
	}
}
