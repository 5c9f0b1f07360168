package storetest

import (
	"errors"

	"github.com/dfs-project/dfs/metastore"
)

// populate fills a store with one of everything and returns a check that
// it is all there.
func populate(e *env) (check func()) {
	e.t.Helper()
	display := metastore.PropName{Space: "DAV:", Local: "displayname"}
	lock := metastore.Lock{Token: "opaquelocktoken:1", Root: "/d", Infinite: true, Owner: "<o/>", Created: 7}
	root, d, f := dirInode(dirA), dirInode(dirB), fileInode(3, 33)
	e.commit(func(b *metastore.Batch) {
		b.PutInode(root).PutInode(d).PutInode(f)
		b.Link(dirA, "d", dirB).Link(dirB, "f 日本", 3)
		b.SetProp(3, display, "<b>x</b>").SetProp(dirB, display, "dir")
		b.PutLock(lock).AddRef(f.Hash, 2).AddUsage(33)
	})
	e.commit(func(b *metastore.Batch) { b.AddRef(f.Hash, -1) })
	idx := e.idx
	return func() {
		e.t.Helper()
		e.wantInode(dirA, root)
		e.wantLookup(dirA, "d", d)
		e.wantList(dirB, []metastore.Dirent{{Name: "f 日本", Inode: f}})
		e.wantProps(3, map[metastore.PropName]string{display: "<b>x</b>"})
		e.wantProps(dirB, map[metastore.PropName]string{display: "dir"})
		e.wantLocks(lock)
		e.wantRef(f.Hash, 1)
		e.wantUsed(33)
		e.wantApplied(idx)
	}
}

func testReset(e *env) {
	// Resetting an empty store is fine.
	if err := e.s.Reset(e.ctx); err != nil {
		e.t.Fatalf("Reset of an empty store: %v", err)
	}
	populate(e)
	e.commit(func(bt *metastore.Batch) {
		bt.PutMember(metastore.Member{ID: "n1", URL: "http://n1", RaftAddr: "n1:7000"})
	})
	// A large directory too, so a store that resets in pieces must loop.
	_, e.idx = fillDir(e.t, e.ctx, e.s, e.idx+1, dirC, 1000, 3000)
	if err := e.s.Reset(e.ctx); err != nil {
		e.t.Fatalf("Reset: %v", err)
	}
	e.wantNoInode(dirA)
	e.wantNoInode(3)
	e.wantNoEntry(dirA, "d")
	e.wantList(dirB, nil)
	e.wantList(dirC, nil)
	e.wantProps(3, map[metastore.PropName]string{})
	e.wantProps(dirB, map[metastore.PropName]string{})
	e.wantLocks()
	if ms, err := e.s.Members(e.ctx); err != nil || len(ms) != 0 {
		e.t.Fatalf("Members after Reset = %+v, %v; want none", ms, err)
	}
	e.wantRef(fileInode(3, 33).Hash, 0)
	e.wantUsed(0)
	e.wantApplied(0)

	// After a reset the store accepts the log from the start again.
	e.idx = 0
	check := populate(e)
	check()
}

func testReopen(e *env) {
	check := populate(e)
	e.s = e.f.Reopen(e.t, e.s)
	check()
	b := &metastore.Batch{Index: e.idx}
	b.PutInode(fileInode(50, 50))
	if err := e.s.Commit(e.ctx, b); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index %d) after reopen at applied index %d = %v, want ErrStaleBatch", e.idx, e.idx, err)
	}
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(50, 50)) })
	e.s = e.f.Reopen(e.t, e.s)
	e.wantInode(50, fileInode(50, 50))
	e.wantApplied(e.idx)
}
