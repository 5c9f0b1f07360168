package fsm

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// history is a log of commands with their terms, from index 1.
type history struct {
	cmds  []Command
	terms []uint64
}

// ourHistory is script() in term 1, its second half in term 3.
func ourHistory() history {
	cmds := script()
	terms := make([]uint64, len(cmds))
	for i := range terms {
		terms[i] = 1
		if i >= len(cmds)/2 {
			terms[i] = 3
		}
	}
	return history{cmds, terms}
}

// applyHistory applies h's entries from..to (1-based, inclusive) to f.
func applyHistory(t *testing.T, f *FSM, h history, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		data, err := h.cmds[i-1].Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ApplyLogEntry(context.Background(), uint64(i), h.terms[i-1], data); err != nil {
			t.Fatal(err)
		}
	}
}

// memOf is h as a node's local log, without a snapshot.
func memOf(t *testing.T, h history) *memHistory {
	t.Helper()
	m := &memHistory{entries: map[uint64][]byte{}, terms: map[uint64]uint64{}}
	for i, c := range h.cmds {
		data, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m.entries[uint64(i+1)], m.terms[uint64(i+1)] = data, h.terms[i]
	}
	return m
}

// TestStoreOfAnotherHistory swaps a state machine's store for one that
// followed another log (another term at the same or a lower index, or
// another cluster at the same index and terms), while it runs and at
// start: the state machine must notice, rebuild the store from its own
// snapshot and log, and end with exactly the reference state. A store
// that only lags behind the node's own history is kept as it is.
func TestStoreOfAnotherHistory(t *testing.T) {
	ours := ourHistory()
	last := len(ours.cmds)
	// Another leader's history: the same first 5 entries, then other
	// entries in term 2.
	diverged := history{cmds: append([]Command(nil), ours.cmds...), terms: append([]uint64(nil), ours.terms...)}
	for i := 5; i < last; i++ {
		diverged.cmds[i] = Command{Op: OpMkcol, Path: fmt.Sprintf("/other-%d", i)}
		diverged.terms[i] = 2
	}
	// Another cluster: other entries, in the very same terms.
	cluster := history{cmds: make([]Command, last), terms: ours.terms}
	cluster.cmds[0] = Command{Op: OpInit, Time: 42}
	for i := 1; i < last; i++ {
		cluster.cmds[i] = Command{Op: OpMkcol, Path: fmt.Sprintf("/elsewhere-%d", i)}
	}
	for _, tc := range []struct {
		name    string
		store   history
		storeAt int  // the swapped-in store's applied index
		atStart bool // a new state machine (a restarted node) meets the store
		snapAt  int  // the node's newest snapshot; 0: none
		rebuilt bool
	}{
		{name: "running, same index, other term", store: diverged, storeAt: last, rebuilt: true},
		{name: "running, same index and terms, other cluster", store: cluster, storeAt: last, rebuilt: true},
		{name: "at start, same index, other term", store: diverged, storeAt: last, atStart: true, snapAt: 8, rebuilt: true},
		{name: "at start, lower index, other term", store: diverged, storeAt: last - 3, atStart: true, rebuilt: true},
		{name: "at start, lower index past the snapshot, other term", store: diverged, storeAt: last - 3, atStart: true, snapAt: 6, rebuilt: true},
		{name: "at start, other cluster", store: cluster, storeAt: last - 2, atStart: true, snapAt: 6, rebuilt: true},
		{name: "at start, own history lagging", store: ours, storeAt: last - 4, atStart: true, snapAt: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ctx := context.Background()
				ref := open(t)
				applyHistory(t, New(ref, zerolog.Nop()), ours, 1, last)
				want := dump(t, ref)

				s := open(t)
				var restores atomic.Int64
				newFSM := func() *FSM {
					f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()), WithRestoreHook(func() { restores.Add(1) }))
					h := memOf(t, ours)
					f.SetHistory(h)
					if tc.snapAt > 0 {
						snapFSM := New(open(t), zerolog.Nop(), WithTempDir(t.TempDir()))
						applyHistory(t, snapFSM, ours, 1, tc.snapAt)
						var b bytes.Buffer
						if _, err := snapFSM.WriteSnapshot(ctx, &b); err != nil {
							t.Fatal(err)
						}
						h.snap = b.Bytes()
					}
					return f
				}
				f := newFSM()
				applyHistory(t, f, ours, 1, last)

				// The swap: the store now holds tc.store up to tc.storeAt.
				if err := s.Reset(ctx); err != nil {
					t.Fatal(err)
				}
				applyHistory(t, New(s, zerolog.Nop()), tc.store, 1, tc.storeAt)
				swapped := dump(t, s)
				if tc.atStart {
					f = newFSM()
				}
				if err := f.CheckStore(ctx); err != nil {
					t.Fatal(err)
				}
				if got := restores.Load() > 0; got != tc.rebuilt {
					t.Fatalf("rebuilt: %v, want %v", got, tc.rebuilt)
				}
				if !tc.rebuilt && dump(t, s) != swapped {
					t.Fatal("a store of this node's own history was changed by the check")
				}
				// Raft replays what it has not applied yet (at start: the
				// whole log; the store skips what it holds).
				applyHistory(t, f, ours, 1, last)
				if d := diffLines(want, dump(t, s)); d != "" {
					t.Fatalf("store differs from the reference: %s", d)
				}
				pos, err := s.AppliedPosition(ctx)
				if err != nil || pos != (metastore.Position{Index: uint64(last), Term: ours.terms[last-1]}) {
					t.Fatalf("AppliedPosition = %+v, %v; want index %d, term %d", pos, err, last, ours.terms[last-1])
				}
			})
		})
	}
}

// TestSnapshotKeepsTerm: a snapshot records the term of its last entry
// and a restore records it with the index; a snapshot of entries without
// terms (as every snapshot taken before terms were recorded) has no term
// in its header and restores with term 0.
func TestSnapshotKeepsTerm(t *testing.T) {
	for _, tc := range []struct {
		name string
		term uint64
	}{
		{"with a term", 7},
		{"without terms", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ctx := context.Background()
				src := New(open(t), zerolog.Nop(), WithTempDir(t.TempDir()))
				h := ourHistory()
				for i := range h.terms {
					h.terms[i] = tc.term
				}
				applyHistory(t, src, h, 1, 10)
				var snap bytes.Buffer
				info, err := src.WriteSnapshot(ctx, &snap)
				if err != nil {
					t.Fatal(err)
				}
				if info.Index != 10 || info.Term != tc.term {
					t.Fatalf("snapshot info %+v, want index 10, term %d", info, tc.term)
				}
				read, err := ReadSnapshotInfo(bytes.NewReader(snap.Bytes()))
				if err != nil || read != info {
					t.Fatalf("ReadSnapshotInfo = %+v, %v; want %+v", read, err, info)
				}
				zr, err := gzip.NewReader(bytes.NewReader(snap.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				header, _, _ := strings.Cut(string(must(io.ReadAll(zr))), "\n")
				if hasTerm := strings.Contains(header, `"term"`); hasTerm != (tc.term != 0) {
					t.Fatalf("header %s: term field present %v, want %v", header, hasTerm, tc.term != 0)
				}

				dst := open(t)
				if _, err := New(dst, zerolog.Nop()).RestoreFrom(ctx, bytes.NewReader(snap.Bytes())); err != nil {
					t.Fatal(err)
				}
				if pos, err := dst.AppliedPosition(ctx); err != nil || pos != (metastore.Position{Index: 10, Term: tc.term}) {
					t.Fatalf("restored store at %+v, %v; want index 10, term %d", pos, err, tc.term)
				}
				if d := diffLines(dump(t, src.Store()), dump(t, dst)); d != "" {
					t.Fatalf("restored store differs: %s", d)
				}
			})
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// leaderSource serves snapshots of a leader's state machine, or fails.
type leaderSource struct {
	leader   *FSM
	fail     error
	fetches  atomic.Int64
	restored atomic.Int64
}

func (s *leaderSource) Restored(uint64) { s.restored.Add(1) }

func (s *leaderSource) FetchSnapshot(ctx context.Context) (io.ReadCloser, error) {
	s.fetches.Add(1)
	if s.fail != nil {
		return nil, s.fail
	}
	// Streamed, as over HTTP: the restore reads while the leader writes.
	pr, pw := io.Pipe()
	go func() {
		_, err := s.leader.WriteSnapshot(ctx, pw)
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// TestRebuildFromLeader loses the store of a state machine whose own
// snapshot and log cannot rebuild it (the log was compacted past what was
// lost, the snapshot is gone or damaged): it fetches the leader's
// snapshot, restores it, replays the local entries after it, and ends
// with the reference state; without a leader to ask it stays lost.
func TestRebuildFromLeader(t *testing.T) {
	ours := ourHistory()
	last := len(ours.cmds)
	for _, tc := range []struct {
		name      string
		snapshot  string // the node's own newest snapshot: "none", "damaged"
		logFrom   int    // the first entry the node's log still holds
		leaderAt  int    // entries the leader had applied when asked
		fail      error  // the fetch fails
		wantLocal bool   // the local history suffices: no fetch
	}{
		{name: "no snapshot, log compacted", snapshot: "none", logFrom: 9, leaderAt: last - 5},
		{name: "damaged snapshot", snapshot: "damaged", logFrom: 9, leaderAt: last - 5},
		{name: "leader ahead of the node", snapshot: "none", logFrom: 9, leaderAt: last},
		{name: "no leader to ask", snapshot: "none", logFrom: 9, leaderAt: last, fail: errors.New("no leader known")},
		{name: "whole log, no fetch", snapshot: "none", logFrom: 1, leaderAt: last, wantLocal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ctx := context.Background()
				ref := open(t)
				applyHistory(t, New(ref, zerolog.Nop()), ours, 1, last)
				leader := New(open(t), zerolog.Nop(), WithTempDir(t.TempDir()))
				applyHistory(t, leader, ours, 1, tc.leaderAt)
				src := &leaderSource{leader: leader, fail: tc.fail}

				s := open(t)
				f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()))
				h := memOf(t, ours)
				f.SetHistory(h)
				f.SetSnapshotSource(src)
				applyHistory(t, f, ours, 1, last-1)
				for i := 1; i < tc.logFrom; i++ {
					delete(h.entries, uint64(i))
				}
				if tc.snapshot == "damaged" {
					var b bytes.Buffer
					if _, err := f.WriteSnapshot(ctx, &b); err != nil {
						t.Fatal(err)
					}
					h.snap = b.Bytes()[:b.Len()/2]
				}
				if err := s.Reset(ctx); err != nil {
					t.Fatal(err)
				}

				err := f.CheckStore(ctx)
				if tc.fail != nil {
					if !errors.Is(err, ErrStoreLost) || !errors.Is(err, tc.fail) {
						t.Fatalf("CheckStore with a failing fetch = %v, want ErrStoreLost wrapping %v", err, tc.fail)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if n := src.fetches.Load(); (n == 0) != tc.wantLocal {
					t.Fatalf("%d fetches from the leader; local rebuild expected: %v", n, tc.wantLocal)
				}
				if f.Rebuilding() != "" {
					t.Fatalf("still rebuilding: %s", f.Rebuilding())
				}
				// Raft goes on with the entry after those it applied.
				applyHistory(t, f, ours, last, last)
				if d := diffLines(dump(t, ref), dump(t, s)); d != "" {
					t.Fatalf("store differs from the reference: %s", d)
				}
			})
		})
	}
}
