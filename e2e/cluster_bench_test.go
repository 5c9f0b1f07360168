package e2e

// Cluster benchmarks: real dfs processes with a real redis-server each, on
// loopback, measured beside a baseline from the same run on the same
// machine. Nothing here runs without -bench. docs/benchmarks.md ("Cluster")
// reports:
//
//	go test ./e2e -run '^$' -bench '^BenchmarkCluster' -benchtime 2x -v -timeout 60m
//
// The figures are custom metrics (ReportMetric); ns/op includes setup
// work between measurements and means nothing here.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testredis"
)

// BenchmarkClusterFailover: SIGKILL of the leader of a 3-node cluster to
// the first PUT acknowledged through a surviving node, with the default
// Raft timeouts; one failover per iteration (the killed node restarts
// between iterations, outside the measurement).
func BenchmarkClusterFailover(b *testing.B) {
	c := startCluster(b, 3, redisStore)
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		took = append(took, failoverOnce(b, c, i))
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(took)), "ms-failover")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms-failover")
	b.Logf("summary: %d failovers, mean %s, p50 %s, max %s", len(took), (sum / time.Duration(len(took))).Round(time.Millisecond),
		took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}

// catchUpContent is what BenchmarkClusterCatchUp's new node fetches.
const (
	catchUpFiles = 48
	catchUpSize  = 8 << 20 // 48 x 8 MiB = 384 MiB
)

// BenchmarkClusterCatchUp: a new node with an empty data directory and an
// empty Redis joins a 3-node cluster holding catchUpFiles x catchUpSize of
// content; measured from its start to its first /readyz 200 (joined,
// metadata applied, every object fetched, verified and fsynced). Beside it,
// `cp -r` of the leader's object directory to a new directory on the same
// file system, alone and followed by `sync`. The node leaves the cluster
// again (dfs cluster remove) after each iteration.
func BenchmarkClusterCatchUp(b *testing.B) {
	c := startCluster(b, 3, redisStore)
	l := c.nodes[c.leader(b)]
	total := int64(0)
	for i := range catchUpFiles {
		if err := put(b.Context(), benchClient, fmt.Sprintf("%scatchup-%02d.bin", l.URL, i), newGenReader(uint64(1000+i), catchUpSize), catchUpSize); err != nil {
			b.Fatal(err)
		}
		total += catchUpSize
	}
	objDir := filepath.Join(l.DataDir, "content", "objects")
	mb := float64(total) / 1e6

	var dfsTook, cpTook, cpSyncTook time.Duration
	for i := 0; i < b.N; i++ {
		// The baseline first: a plain copy of the same bytes.
		quiesce()
		dst := filepath.Join(b.TempDir(), "cp")
		start := time.Now()
		if out, err := exec.Command("cp", "-r", objDir, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -r: %v\n%s", err, out)
		}
		cpTook += time.Since(start)
		if out, err := exec.Command("sync").CombinedOutput(); err != nil {
			b.Fatalf("sync: %v\n%s", err, out)
		}
		cpSyncTook += time.Since(start)
		if got := dirSize(b, dst); got < total {
			b.Fatalf("cp copied %d bytes, want %d", got, total)
		}
		os.RemoveAll(dst)

		quiesce()
		id := fmt.Sprintf("joiner%d", i)
		spec := nodeSpec{ID: id, DataDir: b.TempDir(), HTTPAddr: freeAddr(b), RaftAddr: freeAddr(b), RedisURL: testredis.Start(b),
			Extra: []string{"--cluster-secret", clusterSecret, "--join", strings.TrimSuffix(l.URL, "/")}}
		start = time.Now()
		n := launchNode(b, spec, false)
		if !poll(5*time.Minute, func() bool {
			status, _, err := c.get(n, "readyz")
			return err == nil && status == http.StatusOK
		}) {
			b.Fatalf("the joining node was not ready after 5 minutes:\n%s", n.logText())
		}
		dfsTook += time.Since(start)
		if got := dirSize(b, filepath.Join(spec.DataDir, "content", "objects")); got < total {
			b.Fatalf("ready holding %d bytes of content, want %d", got, total)
		}
		n.kill(b)
		cmd := exec.Command(dfsBin, "cluster", "remove", "--addr", l.URL, id)
		cmd.Env = append(os.Environ(), "DFS_CLUSTER_SECRET="+clusterSecret)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("dfs cluster remove %s: %v\n%s", id, err, out)
		}
	}
	dfsRate := mb * float64(b.N) / dfsTook.Seconds()
	cpRate := mb * float64(b.N) / cpTook.Seconds()
	cpSyncRate := mb * float64(b.N) / cpSyncTook.Seconds()
	b.ReportMetric(dfsRate, "MB/s")
	b.ReportMetric(cpRate, "cp-MB/s")
	b.ReportMetric(cpSyncRate, "cp+sync-MB/s")
	b.ReportMetric(dfsRate/cpSyncRate, "x-cp+sync")
	b.Logf("summary: a new node caught up on %d files, %.0f MB, at %.0f MB/s (start to ready); cp -r %.0f MB/s, cp -r + sync %.0f MB/s: %.2fx cp, %.2fx cp+sync",
		catchUpFiles, mb, dfsRate, cpRate, cpSyncRate, dfsRate/cpRate, dfsRate/cpSyncRate)
}

// clusterPutSize is the file BenchmarkClusterPut uploads.
const clusterPutSize = 1 << 30

// BenchmarkClusterPut uploads a 1 GiB file (new content each time, the
// same path) to a single-node cluster, to the leader of a 3-node cluster
// and through a follower of it (forwarded to the leader, which streams the
// content to both followers and acknowledges once a majority has fsynced
// it), and reports MB/s and each one's ratio to the single node.
func BenchmarkClusterPut(b *testing.B) {
	single := startNode(b, redisStore)
	c := startCluster(b, 3, redisStore)
	l := c.nodes[c.leader(b)]
	f := c.followers(b)[0]
	targets := []struct{ name, url string }{
		{"single-node", single.URL},
		{"3-nodes-via-leader", l.URL},
		{"3-nodes-via-follower", f.URL},
	}
	rates := map[string]float64{}
	var seed atomic.Uint64
	seed.Store(5000)
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			b.SetBytes(clusterPutSize)
			quiesce()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
				err := put(ctx, benchClient, tg.url+"big.bin", newGenReader(seed.Add(1), clusterPutSize), clusterPutSize)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rate := float64(clusterPutSize) * float64(b.N) / 1e6 / b.Elapsed().Seconds()
			rates[tg.name] = rate
			if base, ok := rates["single-node"]; ok && tg.name != "single-node" {
				b.ReportMetric(rate/base, "x-single-node")
			}
		})
	}
	var parts []string
	for _, tg := range targets {
		s := fmt.Sprintf("%s %.0f MB/s", tg.name, rates[tg.name])
		if tg.name != "single-node" && rates["single-node"] > 0 {
			s += fmt.Sprintf(" (%.2fx single node)", rates[tg.name]/rates["single-node"])
		}
		parts = append(parts, s)
	}
	b.Logf("summary: 1 GiB PUT: %s", strings.Join(parts, "; "))
}
