// Package storetest owns the conformance suite for metastore.Store. Every
// implementation runs it from its own tests, so the Redis and bbolt stores
// stay interchangeable behind the state machine: whatever one does with a
// batch, the other does too, byte for byte.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// Factory opens the stores the suite runs against.
type Factory interface {
	// Open returns a new, empty store that no other test sees. The factory
	// closes it when t ends.
	Open(t *testing.T) metastore.Store
	// Reopen closes s, which Open or Reopen returned, and opens the same
	// data again, as a restarted node would. The factory closes the new
	// store when t ends.
	Reopen(t *testing.T, s metastore.Store) metastore.Store
}

// Run runs the conformance suite, one subtest per behaviour, each on a
// fresh store from f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"InodePutGetReplaceDelete", testInodes},
		{"InodeMissing", testInodeMissing},
		{"LinkLookupUnlink", testLinkLookupUnlink},
		{"DanglingEntry", testDangling},
		{"ListSortedWithAttributes", testListSorted},
		{"ListMissingOrEmptyDir", testListMissing},
		{"ListLargeDir", testListLarge},
		{"Names", testNames},
		{"Props", testProps},
		{"PropsOfMany", testPropsOfMany},
		{"Locks", testLocks},
		{"Members", testMembers},
		{"RefCounts", testRefs},
		{"UsedBytes", testUsed},
		{"AppliedIndex", testApplied},
		{"PrevIndex", testPrev},
		{"AppliedTerm", testAppliedTerm},
		{"OpsAppliedInOrder", testOrder},
		{"FailedBatchAppliesNothing", testFailedBatch},
		{"Reset", testReset},
		{"Reopen", testReopen},
		{"CanceledContext", testCanceled},
		{"ConcurrentReadsAndCommits", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&env{t: t, f: f, s: f.Open(t), ctx: t.Context()})
		})
	}
}

// env is one subtest's store plus the bookkeeping to commit to it.
type env struct {
	t   *testing.T
	f   Factory
	s   metastore.Store
	ctx context.Context
	idx uint64 // index of the last batch committed through commit
}

// commit commits one batch at the next index and fails the test on error.
func (e *env) commit(fill func(b *metastore.Batch)) {
	e.t.Helper()
	b := &metastore.Batch{Index: e.idx + 1}
	fill(b)
	if err := e.s.Commit(e.ctx, b); err != nil {
		e.t.Fatalf("Commit(index %d, %d ops): %v", b.Index, len(b.Ops), err)
	}
	e.idx = b.Index
}

func (e *env) get(id metastore.ID) metastore.Inode {
	e.t.Helper()
	ino, err := e.s.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%d): %v", id, err)
	}
	return ino
}

func (e *env) wantInode(id metastore.ID, want metastore.Inode) {
	e.t.Helper()
	if got := e.get(id); got != want {
		e.t.Fatalf("Get(%d) = %+v, want %+v", id, got, want)
	}
}

func (e *env) wantNoInode(id metastore.ID) {
	e.t.Helper()
	if ino, err := e.s.Get(e.ctx, id); !errors.Is(err, metastore.ErrNotFound) {
		e.t.Fatalf("Get(%d) = %+v, %v; want ErrNotFound", id, ino, err)
	}
}

func (e *env) wantLookup(parent metastore.ID, name string, want metastore.Inode) {
	e.t.Helper()
	got, err := e.s.Lookup(e.ctx, parent, name)
	if err != nil {
		e.t.Fatalf("Lookup(%d, %q): %v", parent, name, err)
	}
	if got != want {
		e.t.Fatalf("Lookup(%d, %q) = %+v, want %+v", parent, name, got, want)
	}
}

func (e *env) wantNoEntry(parent metastore.ID, name string) {
	e.t.Helper()
	if ino, err := e.s.Lookup(e.ctx, parent, name); !errors.Is(err, metastore.ErrNotFound) {
		e.t.Fatalf("Lookup(%d, %q) = %+v, %v; want ErrNotFound", parent, name, ino, err)
	}
}

func (e *env) list(dir metastore.ID) []metastore.Dirent {
	e.t.Helper()
	ents, err := e.s.List(e.ctx, dir)
	if err != nil {
		e.t.Fatalf("List(%d): %v", dir, err)
	}
	return ents
}

func (e *env) wantList(dir metastore.ID, want []metastore.Dirent) {
	e.t.Helper()
	got := e.list(dir)
	if !slices.Equal(got, want) {
		e.t.Fatalf("List(%d) =\n%s\nwant\n%s", dir, fmtDirents(got), fmtDirents(want))
	}
}

func fmtDirents(ds []metastore.Dirent) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %q → %+v\n", d.Name, d.Inode)
	}
	if len(ds) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

func (e *env) wantProps(id metastore.ID, want map[metastore.PropName]string) {
	e.t.Helper()
	got, err := e.s.Props(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Props(%d): %v", id, err)
	}
	if !maps.Equal(got, want) {
		e.t.Fatalf("Props(%d) = %q, want %q", id, got, want)
	}
	many, err := e.s.PropsOf(e.ctx, []metastore.ID{id})
	if err != nil {
		e.t.Fatalf("PropsOf(%d): %v", id, err)
	}
	if p, ok := many[id]; !ok || len(many) != 1 || !maps.Equal(p, want) {
		e.t.Fatalf("PropsOf(%d) = %v, want {%d: %q}", id, many, id, want)
	}
}

func (e *env) wantLocks(want ...metastore.Lock) {
	e.t.Helper()
	got, err := e.s.Locks(e.ctx)
	if err != nil {
		e.t.Fatalf("Locks: %v", err)
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("Locks =\n%+v\nwant\n%+v", got, want)
	}
}

func (e *env) wantRef(hash string, want int64) {
	e.t.Helper()
	got, err := e.s.RefCount(e.ctx, hash)
	if err != nil {
		e.t.Fatalf("RefCount(%s): %v", hash, err)
	}
	if got != want {
		e.t.Fatalf("RefCount(%s) = %d, want %d", hash, got, want)
	}
}

func (e *env) wantUsed(want int64) {
	e.t.Helper()
	got, err := e.s.UsedBytes(e.ctx)
	if err != nil {
		e.t.Fatalf("UsedBytes: %v", err)
	}
	if got != want {
		e.t.Fatalf("UsedBytes = %d, want %d", got, want)
	}
}

func (e *env) wantApplied(want uint64) {
	e.t.Helper()
	got, err := e.s.AppliedIndex(e.ctx)
	if err != nil {
		e.t.Fatalf("AppliedIndex: %v", err)
	}
	if got != want {
		e.t.Fatalf("AppliedIndex = %d, want %d", got, want)
	}
}

// IDs chosen so that a store encoding IDs wrongly (truncated, little
// endian, decimal prefixes such as 1 vs 10) mixes their records up.
const (
	dirA metastore.ID = metastore.RootID
	dirB metastore.ID = 257       // same low byte as dirA
	dirC metastore.ID = 1<<32 + 1 // same low 32 bits as dirA
	dirD metastore.ID = 10        // decimal "1" + "0"
)

func hashOf(n int) string { return fmt.Sprintf("%064x", n) }

func fileInode(id metastore.ID, size int64) metastore.Inode {
	return metastore.Inode{
		ID: id, Kind: metastore.KindFile, Size: size, Hash: hashOf(int(size)),
		ContentType: "text/plain; charset=utf-8",
		Created:     1_700_000_000_000_000_000 + int64(id), Modified: 1_700_000_000_000_000_001 + int64(id),
	}
}

func dirInode(id metastore.ID) metastore.Inode {
	return metastore.Inode{ID: id, Kind: metastore.KindDir, Created: 1, Modified: 2}
}
