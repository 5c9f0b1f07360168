package storetest

import (
	"errors"

	"github.com/dfs-project/dfs/metastore"
)

func testRefs(e *env) {
	h, g := hashOf(1), hashOf(2)
	e.wantRef(h, 0)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 2).AddRef(h, 1).AddRef(g, 7) })
	e.wantRef(h, 4)
	e.wantRef(g, 7)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -4) })
	e.wantRef(h, 0)
	e.wantRef(g, 7)
	// Back from zero, and through zero within one batch.
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -1).AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -1).AddRef(g, -7) })
	e.wantRef(h, 0)
	e.wantRef(g, 0)
	// A count never goes negative: too big a decrement removes the count,
	// and the next increment starts from zero.
	e.commit(func(b *metastore.Batch) { b.AddRef(g, -3) })
	e.wantRef(g, 0)
	e.commit(func(b *metastore.Batch) { b.AddRef(g, 1) })
	e.wantRef(g, 1)
}

func testUsed(e *env) {
	e.wantUsed(0)
	steps := []struct {
		name   string
		deltas []int64
		want   int64
	}{
		{"first file", []int64{100}, 100},
		{"several in one batch", []int64{5, 7, -2}, 110},
		{"a large file", []int64{1 << 40}, 1<<40 + 110},
		{"delete it", []int64{-(1 << 40)}, 110},
		{"through zero within one batch", []int64{-110, 3}, 3},
		{"back to zero", []int64{-3}, 0},
		// The counter never goes negative: too big a decrement leaves 0,
		// and the next increment starts from there.
		{"below zero clamps", []int64{-50}, 0},
		{"after the clamp", []int64{9}, 9},
	}
	for _, st := range steps {
		e.commit(func(b *metastore.Batch) {
			for _, d := range st.deltas {
				b.AddUsage(d)
			}
		})
		got, err := e.s.UsedBytes(e.ctx)
		if err != nil || got != st.want {
			e.t.Fatalf("%s: UsedBytes = %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	// A stale batch changes nothing, usage included.
	b := &metastore.Batch{Index: e.idx}
	b.AddUsage(1000)
	if err := e.s.Commit(e.ctx, b); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("stale Commit = %v, want ErrStaleBatch", err)
	}
	e.wantUsed(9)
}
