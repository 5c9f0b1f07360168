package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/fsm"
)

// BenchmarkReadIndex measures the leader's read index, which every
// linearizable read (directly on the leader, or for a follower through
// GET /cluster/read-index) and every /readyz probe costs, on one node and
// on three, with the default Raft timing and embedded stores on disk.
// Readers run in parallel, as concurrent clients' reads do.
func BenchmarkReadIndex(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			var nodes []*testNode
			for i := range size {
				dir := b.TempDir()
				cfg := Config{
					ID: fmt.Sprintf("n%d", i+1), RaftAddr: freeAddr(b), DataDir: dir,
					Logger: zerolog.Nop(), Bootstrap: i == 0, Joining: i > 0,
				}
				nodes = append(nodes, start(b, cfg, openBolt(b, filepath.Join(dir, "meta.db"))))
			}
			leader := nodes[0]
			waitRoot(b, leader)
			for _, n := range nodes[1:] {
				if err := leader.AddVoter(ctxT(b), n.cfg.ID, n.Addr()); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := leader.Propose(ctxT(b), &fsm.Command{Op: fsm.OpMkcol, Path: "/d", Time: time.Now().UnixNano()}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := leader.ReadIndex(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkPropose measures small writes committed through Raft and
// applied to an embedded store on disk (fsync on), from 16 concurrent
// proposers, as 16 clients' PUTs of small files are: the log appends and
// the store commits of entries committed together can be grouped.
func BenchmarkPropose(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{ID: "n1", RaftAddr: freeAddr(b), DataDir: dir, Logger: zerolog.Nop(), Bootstrap: true}
	n := start(b, cfg, openBolt(b, filepath.Join(dir, "meta.db")))
	waitRoot(b, n)
	if _, err := n.Propose(ctxT(b), &fsm.Command{Op: fsm.OpMkcol, Path: "/d", Time: time.Now().UnixNano()}); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(8) // 16 proposers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := seq.Add(1)
			res, err := n.Propose(ctx, &fsm.Command{Op: fsm.OpPut, Path: fmt.Sprintf("/d/f%d", i),
				Hash: fmt.Sprintf("%064x", i), Size: 4096, Time: time.Now().UnixNano()})
			if err != nil || res.Code != fsm.OK {
				b.Errorf("put %d: %v %+v", i, err, res)
				return
			}
		}
	})
}
