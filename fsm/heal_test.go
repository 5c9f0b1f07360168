package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// memHistory is a node's log and newest snapshot, kept in memory.
type memHistory struct {
	entries map[uint64][]byte
	terms   map[uint64]uint64 // term of each entry; nil: all 0
	snap    []byte            // nil: no snapshot
}

func (h *memHistory) NewestSnapshot() (io.ReadCloser, bool, error) {
	if h.snap == nil {
		return nil, false, nil
	}
	return io.NopCloser(bytes.NewReader(h.snap)), true, nil
}

func (h *memHistory) Entry(i uint64) (LogEntry, error) {
	d, ok := h.entries[i]
	if !ok {
		return LogEntry{}, fmt.Errorf("entry %d: %w", i, ErrNotInLog)
	}
	return LogEntry{Term: h.terms[i], Data: d, Command: true}, nil
}

// TestRebuildLostStore loses the store under a running state machine in
// the ways a Redis or a volume loses it, and checks that the state machine
// notices, rebuilds it from its snapshot and log to exactly the state it
// had, and never applies an entry on top of the lost state.
func TestRebuildLostStore(t *testing.T) {
	cmds := script()
	last := uint64(len(cmds))
	for _, tc := range []struct {
		name     string
		snapAt   uint64 // entries applied when the snapshot was taken; 0 = none
		loss     string // "reset" (FLUSHALL, empty Redis) or "rollback" (an older copy)
		byApply  bool   // noticed by the next entry rather than by CheckStore
		noLog    bool   // the history lacks the entries after the snapshot
		wantLost bool
	}{
		{name: "flushed, log only", loss: "reset"},
		{name: "flushed, snapshot and log", snapAt: 12, loss: "reset"},
		{name: "rolled back to an older copy", snapAt: 9, loss: "rollback"},
		{name: "flushed, noticed by the next entry", loss: "reset", byApply: true},
		{name: "rolled back, noticed by the next entry", snapAt: 5, loss: "rollback", byApply: true},
		{name: "flushed, log truncated", snapAt: 6, loss: "reset", noLog: true, wantLost: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ctx := context.Background()
				// The reference: the whole script on a store that loses nothing.
				ref := open(t)
				want := applyAll(t, New(ref, zerolog.Nop()), cmds, 1)

				s := open(t)
				f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()))
				h := &memHistory{entries: map[uint64][]byte{}}
				f.SetHistory(h)
				upTo := last
				if tc.byApply {
					upTo = last - 1
				}
				var older []byte
				for i := uint64(1); i <= upTo; i++ {
					data, err := cmds[i-1].Encode()
					if err != nil {
						t.Fatal(err)
					}
					h.entries[i] = data
					if _, err := f.ApplyEntry(ctx, i, data); err != nil {
						t.Fatal(err)
					}
					if i == tc.snapAt {
						var b bytes.Buffer
						if _, err := f.WriteSnapshot(ctx, &b); err != nil {
							t.Fatal(err)
						}
						h.snap, older = b.Bytes(), b.Bytes()
					}
				}
				if tc.noLog {
					delete(h.entries, tc.snapAt+1)
				}
				before := dump(t, s)

				switch tc.loss {
				case "reset":
					if err := s.Reset(ctx); err != nil {
						t.Fatal(err)
					}
				case "rollback":
					if _, err := New(s, zerolog.Nop()).RestoreFrom(ctx, bytes.NewReader(older)); err != nil {
						t.Fatal(err)
					}
				}

				if tc.wantLost {
					cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					defer cancel()
					if err := f.CheckStore(cctx); !errors.Is(err, ErrStoreLost) {
						t.Fatalf("CheckStore without the log = %v, want ErrStoreLost", err)
					}
					data, _ := cmds[last-1].Encode()
					if _, err := f.ApplyEntry(cctx, last+1, data); err == nil {
						t.Fatal("an entry was applied on top of a store that lost data")
					}
					return
				}
				if !tc.byApply {
					if err := f.CheckStore(ctx); err != nil {
						t.Fatal(err)
					}
					if d := diffLines(before, dump(t, s)); d != "" {
						t.Fatalf("rebuilt store differs from the one that was lost: %s", d)
					}
					if f.Rebuilding() != "" {
						t.Fatalf("still rebuilding: %s", f.Rebuilding())
					}
					return
				}
				data, _ := cmds[last-1].Encode()
				r, err := f.ApplyEntry(ctx, last, data)
				if err != nil {
					t.Fatal(err)
				}
				if *r != *want[last-1] {
					t.Fatalf("entry applied after the rebuild: %+v, want %+v", r, want[last-1])
				}
				if d := diffLines(dump(t, ref), dump(t, s)); d != "" {
					t.Fatalf("store differs from the reference after the rebuild: %s", d)
				}
			})
		})
	}
}

// blockingStore holds every Commit while hold is open.
type blockingStore struct {
	metastore.Store
	held chan struct{} // receives once a Commit is held
	hold chan struct{} // closed: let commits through
}

func (s *blockingStore) Commit(ctx context.Context, b *metastore.Batch) error {
	select {
	case s.held <- struct{}{}:
	default:
	}
	<-s.hold
	return s.Store.Commit(ctx, b)
}

// TestRefCountDuringRestore checks that reference counts are refused, not
// read as 0, while a snapshot restore has the store half loaded: garbage
// collection would otherwise delete content the namespace references.
func TestRefCountDuringRestore(t *testing.T) {
	ctx := context.Background()
	src := New(openBolt(t), zerolog.Nop(), WithTempDir(t.TempDir()))
	applyAll(t, src, []Command{{Op: OpInit, Time: 1}, {Op: OpPut, Path: "/a", Hash: hA, Size: 1, Time: 2}}, 1)
	var snap bytes.Buffer
	if _, err := src.WriteSnapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}

	bs := &blockingStore{Store: openBolt(t), held: make(chan struct{}, 1), hold: make(chan struct{})}
	f := New(bs, zerolog.Nop())
	done := make(chan error, 1)
	go func() {
		_, err := f.RestoreFrom(ctx, bytes.NewReader(snap.Bytes()))
		done <- err
	}()
	<-bs.held
	if n, err := f.RefCount(ctx, hA); !errors.Is(err, ErrRebuilding) {
		t.Fatalf("RefCount during a restore = %d, %v; want ErrRebuilding", n, err)
	}
	if f.Rebuilding() == "" {
		t.Fatal("Rebuilding() is empty during a restore")
	}
	close(bs.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := f.RefCount(ctx, hA); err != nil || n != 1 {
		t.Fatalf("RefCount after the restore = %d, %v; want 1", n, err)
	}
}

// TestAppliedIndexRefusesLostStore checks that the applied index is
// refused, not reported, as soon as the store went back, and that a reader
// cannot be answered from the lost state in the second before the periodic
// check: WaitApplied for an index this state machine committed returns
// from memory, but the read guard the reader checks after its reads
// fails, and a wait for a later index reads the store and fails.
func TestAppliedIndexRefusesLostStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		ctx := context.Background()
		s := open(t)
		f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()))
		h := &memHistory{entries: map[uint64][]byte{}}
		f.SetHistory(h)
		for i, c := range script()[:6] {
			data, _ := c.Encode()
			h.entries[uint64(i+1)] = data
			if _, err := f.ApplyEntry(ctx, uint64(i+1), data); err != nil {
				t.Fatal(err)
			}
		}
		if i, err := f.AppliedIndex(ctx); err != nil || i != 6 {
			t.Fatalf("AppliedIndex = %d, %v", i, err)
		}
		guard := f.ReadGuard()
		if err := guard.CheckSeen(6); err != nil {
			t.Fatalf("CheckSeen of a read at the index the store had reached = %v", err)
		}
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if i, err := f.AppliedIndex(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("AppliedIndex of a flushed store = %d, %v; want ErrRebuilding", i, err)
		}
		if err := f.WaitApplied(ctx, 6); err != nil {
			t.Fatalf("WaitApplied for an index this state machine committed = %v; want nil, from memory", err)
		}
		if err := guard.Check(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("a read guard taken before the flush, checked after = %v; want ErrRebuilding", err)
		}
		if err := guard.CheckSeen(0); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("CheckSeen of a read that came with the flushed store's index 0 = %v; want ErrRebuilding", err)
		}
		if err := f.WaitApplied(ctx, 7); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("WaitApplied for a later index on a flushed store = %v; want ErrRebuilding", err)
		}
		if err := f.CheckStore(ctx); err != nil {
			t.Fatal(err)
		}
		if i, err := f.AppliedIndex(ctx); err != nil || i != 6 {
			t.Fatalf("AppliedIndex after the rebuild = %d, %v", i, err)
		}
	})
}

// TestReadGuard checks that a read guard fails when a reload of the store
// began, ended or was under way since it was taken, and when the store
// lost what the state machine applied, and passes otherwise.
func TestReadGuard(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.put("/a", "ha")
		ctx := context.Background()
		if err := e.f.ReadGuard().Check(ctx); err != nil {
			t.Fatalf("a guard over a quiet store: %v", err)
		}
		g := e.f.ReadGuard()
		e.f.setRebuilding("test")
		during := e.f.ReadGuard()
		if err := g.Check(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("a guard taken before a reload that is under way: %v", err)
		}
		e.f.setRebuilding("")
		if err := g.Check(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("a guard taken before a reload that ended: %v", err)
		}
		if err := during.Check(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("a guard taken during a reload: %v", err)
		}
		if err := e.f.ReadGuard().Check(ctx); err != nil {
			t.Fatalf("a guard taken after the reload: %v", err)
		}
		g = e.f.ReadGuard()
		if err := e.s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if err := g.Check(ctx); !errors.Is(err, ErrRebuilding) {
			t.Fatalf("a guard over a store that lost its data: %v", err)
		}
	})
}
