package replication

import (
	"context"
	"fmt"
	"path/filepath"
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
