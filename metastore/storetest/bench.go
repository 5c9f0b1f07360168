package storetest

import (
	"fmt"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// BenchList measures List on a directory of n entries. s must be empty.
func BenchList(b *testing.B, s metastore.Store, n int) {
	ctx := b.Context()
	fillDir(b, ctx, s, 1, dirA, 100, n)
	b.ResetTimer()
	for b.Loop() {
		ents, err := s.List(ctx, dirA)
		if err != nil {
			b.Fatal(err)
		}
		if len(ents) != n {
			b.Fatalf("List returned %d entries, want %d", len(ents), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
}

// BenchCommitSmall measures committing the batch a typical PUT of a new file
// produces: the inode, its entry, the parent's new mtime and a reference.
// s must be empty.
func BenchCommitSmall(b *testing.B, s metastore.Store) {
	ctx := b.Context()
	if err := s.Commit(ctx, (&metastore.Batch{Index: 1}).PutInode(dirInode(dirA))); err != nil {
		b.Fatal(err)
	}
	idx := uint64(1)
	for b.Loop() {
		idx++
		id := metastore.ID(idx)
		f := fileInode(id, int64(idx))
		parent := dirInode(dirA)
		parent.Modified = int64(idx)
		batch := &metastore.Batch{Index: idx}
		batch.PutInode(f).Link(dirA, fmt.Sprintf("file-%d", idx), id).PutInode(parent).AddRef(f.Hash, 1)
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
