package fsm

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/metastore/redisstore"
)

// BenchmarkRebuild measures how long a node takes to rebuild a metadata
// store that lost everything (FLUSHALL) from a snapshot of N files plus
// 100 log entries after it: the time the node is not ready.
//
//	go test ./fsm -run '^$' -bench BenchmarkRebuild -benchtime 1x
func BenchmarkRebuild(b *testing.B) {
	redisURL := testredis.Start(b)
	open := map[string]func(b *testing.B) metastore.Store{
		"bolt": func(b *testing.B) metastore.Store {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "meta.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"redis": func(b *testing.B) metastore.Store {
			s, err := redisstore.Open(context.Background(), redisURL, redisstore.WithPrefix(b.Name()+":"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, n := range []int{10_000, 100_000} {
		for _, name := range []string{"bolt", "redis"} {
			b.Run(fmt.Sprintf("%s/files=%d", name, n), func(b *testing.B) {
				s := open[name](b)
				ctx := context.Background()
				f := New(s, zerolog.Nop(), WithTempDir(b.TempDir()))
				h := &memHistory{entries: map[uint64][]byte{}}
				f.SetHistory(h)
				index := uint64(0)
				apply := func(c Command) {
					index++
					c.Time = T(index)
					data, _ := c.Encode()
					h.entries[index] = data
					if _, err := f.ApplyEntry(ctx, index, data); err != nil {
						b.Fatal(err)
					}
				}
				apply(Command{Op: OpInit})
				const perDir = 1000
				for d := 0; d < n/perDir; d++ {
					apply(Command{Op: OpMkcol, Path: fmt.Sprintf("/d%03d", d)})
				}
				// Files go straight into the store, a batch per directory:
				// proposing 100 000 entries one by one would measure the
				// set-up, not the rebuild.
				for d := 0; d < n/perDir; d++ {
					dir, err := Resolve(ctx, s, fmt.Sprintf("/d%03d", d))
					if err != nil {
						b.Fatal(err)
					}
					index++
					batch := &metastore.Batch{Index: index}
					for i := 0; i < perDir; i++ {
						id := metastore.ID(index<<20 | uint64(i))
						batch.PutInode(metastore.Inode{ID: id, Kind: metastore.KindFile, Size: 4096, Hash: hA, Created: 1, Modified: 1})
						batch.Link(dir.ID, fmt.Sprintf("f%04d", i), id)
						batch.AddRef(hA, 1)
					}
					if err := s.Commit(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.CheckStore(ctx); err != nil {
					b.Fatal(err)
				}
				var snap bytes.Buffer
				if _, err := f.WriteSnapshot(ctx, &snap); err != nil {
					b.Fatal(err)
				}
				h.snap = snap.Bytes()
				for i := 0; i < 100; i++ {
					apply(Command{Op: OpPut, Path: fmt.Sprintf("/d000/new%03d", i), Hash: hB, Size: 2})
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					if err := s.Reset(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := f.CheckStore(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n), "files")
			})
		}
	}
}
