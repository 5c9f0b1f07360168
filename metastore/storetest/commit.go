package storetest

import (
	"errors"

	"github.com/dfs-project/dfs/metastore"
)

func testApplied(e *env) {
	e.wantApplied(0)
	commitAt := func(idx uint64, fill func(b *metastore.Batch)) error {
		b := &metastore.Batch{Index: idx}
		fill(b)
		return e.s.Commit(e.ctx, b)
	}
	nop := func(*metastore.Batch) {}
	if err := commitAt(0, nop); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index 0) on a fresh store = %v, want ErrStaleBatch", err)
	}
	e.wantApplied(0)

	if err := commitAt(5, func(b *metastore.Batch) { b.PutInode(fileInode(5, 5)) }); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(5)
	// An empty batch still moves the index.
	if err := commitAt(6, nop); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(6)

	for _, idx := range []uint64{6, 5, 3, 0} {
		err := commitAt(idx, func(b *metastore.Batch) {
			b.PutInode(fileInode(99, 99)).DeleteInode(5).Link(dirA, "stale", 99).SetProp(5, metastore.PropName{Local: "p"}, "v").AddRef("stale", 1)
		})
		if !errors.Is(err, metastore.ErrStaleBatch) {
			e.t.Fatalf("Commit(index %d) with applied index 6 = %v, want ErrStaleBatch", idx, err)
		}
	}
	e.wantApplied(6)
	e.wantNoInode(99)
	e.wantInode(5, fileInode(5, 5))
	e.wantNoEntry(dirA, "stale")
	e.wantProps(5, map[metastore.PropName]string{})
	e.wantRef("stale", 0)

	// Indexes need not be contiguous: Raft entries that change no metadata
	// produce no batch.
	if err := commitAt(1000, nop); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(1000)
	if err := commitAt(999, nop); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index 999) with applied index 1000 = %v, want ErrStaleBatch", err)
	}
}

// A batch built on a known applied index commits only on a store at that
// index: a store that lost data or went back must not take changes
// computed for another state.
func testPrev(e *env) {
	commit := func(idx, prev uint64) error {
		b := &metastore.Batch{Index: idx, Prev: prev}
		b.PutInode(fileInode(metastore.ID(1000*idx+prev), 1))
		return e.s.Commit(e.ctx, b)
	}
	if err := commit(10, 0); err != nil {
		e.t.Fatal(err)
	}
	for _, tc := range []struct {
		idx, prev uint64
		want      error
	}{
		{12, 11, metastore.ErrIndexMismatch}, // store behind the writer
		{12, 9, metastore.ErrIndexMismatch},  // store ahead of the writer
		{10, 10, metastore.ErrStaleBatch},
		{12, 10, nil},
		{13, 0, nil}, // no expectation: any lower index will do
		{14, 13, nil},
	} {
		err := commit(tc.idx, tc.prev)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			e.t.Fatalf("Commit(index %d, prev %d) = %v, want %v", tc.idx, tc.prev, err, tc.want)
		}
		if tc.want != nil {
			e.wantNoInode(metastore.ID(1000*tc.idx + tc.prev))
		}
	}
	e.wantApplied(14)
	e.wantInode(12010, fileInode(12010, 1))
}

// Ops of one batch apply in order: each sees the effect of those before it.
func testOrder(e *env) {
	p, q := metastore.PropName{Space: "urn:o", Local: "p"}, metastore.PropName{Space: "urn:o", Local: "q"}
	t1 := metastore.Lock{Token: "t1", Root: "/x", Created: 1}
	t2 := metastore.Lock{Token: "t2", Root: "/y", Created: 2}
	final11 := fileInode(11, 3)
	e.commit(func(b *metastore.Batch) {
		b.PutInode(dirInode(dirA))
		b.PutInode(fileInode(10, 1)).PutInode(fileInode(10, 2)).DeleteInode(10)
		b.PutInode(fileInode(11, 1)).PutInode(final11)
		b.Link(dirA, "x", 10).Unlink(dirA, "x")
		b.Link(dirA, "y", 10).Link(dirA, "y", 11)
		b.Unlink(dirA, "z").Link(dirA, "z", 11)
		b.SetProp(11, p, "1").DeleteProps(11).SetProp(11, q, "2").SetProp(11, q, "3")
		b.SetProp(11, p, "gone").DeleteProp(11, p)
		b.PutLock(t1).DeleteLock("t1").PutLock(t2)
		b.AddRef("h", 1).AddRef("h", -1).AddRef("h", 2)
	})
	e.wantNoInode(10)
	e.wantInode(11, final11)
	e.wantNoEntry(dirA, "x")
	e.wantList(dirA, []metastore.Dirent{{Name: "y", Inode: final11}, {Name: "z", Inode: final11}})
	e.wantProps(11, map[metastore.PropName]string{q: "3"})
	e.wantLocks(t2)
	e.wantRef("h", 2)
}

// A batch that cannot be applied leaves no trace, not even the ops before
// the bad one, and does not move the applied index.
func testFailedBatch(e *env) {
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(2, 2)) })
	b := &metastore.Batch{Index: e.idx + 1}
	b.PutInode(fileInode(3, 3)).DeleteInode(2).Link(dirA, "x", 3).AddRef("h", 1).AddUsage(3)
	b.Ops = append(b.Ops, metastore.Op{Kind: 200})
	b.PutLock(metastore.Lock{Token: "after"})
	if err := e.s.Commit(e.ctx, b); err == nil {
		e.t.Fatal("Commit of a batch with an unknown op kind succeeded")
	} else if errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit of a batch with an unknown op kind = %v, want an error other than ErrStaleBatch", err)
	}
	e.wantApplied(e.idx)
	e.wantUsed(0)
	e.wantNoInode(3)
	e.wantInode(2, fileInode(2, 2))
	e.wantNoEntry(dirA, "x")
	e.wantRef("h", 0)
	e.wantLocks()
	// The same index is still usable.
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(3, 3)) })
	e.wantInode(3, fileInode(3, 3))
}
