package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/server"
	"github.com/dfs-project/dfs/verify"
)

// firstLogIndex is the lowest index the node's raft-wal segments start at
// (their files are named after it): above 1 once the head of the log has
// been compacted away.
func firstLogIndex(t *testing.T, n *testcluster.Node) uint64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(n.Cfg.DataDir, "raft", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	first := uint64(0)
	for _, e := range ents {
		base, _, ok := strings.Cut(e.Name(), "-")
		if !ok || !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		i, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			t.Fatalf("segment %s: %v", e.Name(), err)
		}
		if first == 0 || i < first {
			first = i
		}
	}
	return first
}

// TestStoreRebuiltFromLeader loses a follower's whole local history: its
// log is compacted (small segments, one trailing entry after a snapshot),
// its snapshots are deleted, then its Redis is flushed. Neither its
// snapshot nor its log can rebuild the store, so it must fetch the
// leader's snapshot over GET /cluster/snapshot, restore it, replay its own
// log after it, turn ready again, and hold exactly the leader's namespace.
func TestStoreRebuiltFromLeader(t *testing.T) {
	cfgFor := func(id string) server.Config {
		return server.Config{
			ID: id, RedisURL: testredis.Start(t),
			TrailingLogs: 1, WALSegmentSize: 8 << 10,
			SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour, // snapshots only when asked
		}
	}
	c1 := cfgFor("n1")
	c1.Bootstrap = true
	n1 := testcluster.Start(t, c1)
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	nodes := []*testcluster.Node{n1}
	for _, id := range []string{"n2", "n3"} {
		c := cfgFor(id)
		c.Join = []string{n1.URL()}
		nodes = append(nodes, testcluster.Start(t, c))
	}
	leader := testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
	f := testcluster.Followers(nodes, leader)[0]

	// Enough entries for several log segments.
	do(t, "MKCOL", leader.URL()+"/r", nil, nil)
	for i := 0; i < 120; i++ {
		if r := do(t, "MKCOL", fmt.Sprintf("%s/r/d%03d-%s", leader.URL(), i, strings.Repeat("x", 40)), nil, nil); r.status != http.StatusCreated {
			t.Fatalf("MKCOL %d: %d %s", i, r.status, r.body)
		}
	}
	if r := do(t, http.MethodPut, leader.URL()+"/r/file.txt", nil, strings.NewReader("survives the rebuild\n")); r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ri, err := leader.Node().ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Node().WaitApplied(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if err := f.Node().Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, "the follower's log compacted", func() (bool, string) {
		first := firstLogIndex(t, f)
		return first > 1, fmt.Sprintf("its log starts at %d", first)
	})
	snaps := filepath.Join(f.Cfg.DataDir, "raft", "snapshots")
	ents, err := os.ReadDir(snaps)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(snaps, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	opt, err := redis.ParseURL(f.Cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	testcluster.Eventually(t, 30*time.Second, "the follower ready again", func() (bool, string) {
		r := do(t, http.MethodGet, f.URL()+"/readyz", nil, nil)
		return r.status == http.StatusOK, r.body
	})
	// Writes go on; then both hold the same namespace at the same index.
	if r := do(t, "MKCOL", leader.URL()+"/after", nil, nil); r.status != http.StatusCreated {
		t.Fatalf("MKCOL after the rebuild: %d %s", r.status, r.body)
	}
	if ri, err = leader.Node().ReadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	vc := verify.NewClient(cluster.NewClient(testcluster.Secret, nil))
	want, err := vc.Digest(ctx, leader.URL(), false, ri)
	if err != nil {
		t.Fatal(err)
	}
	got, err := vc.Digest(ctx, f.URL(), false, ri)
	if err != nil {
		t.Fatal(err)
	}
	if got.NamespaceDigest != want.NamespaceDigest || got.Entries != want.Entries {
		t.Fatalf("follower after the rebuild: %d entries, digest %s; leader: %d entries, digest %s",
			got.Entries, got.NamespaceDigest, want.Entries, want.NamespaceDigest)
	}
	if r := do(t, http.MethodGet, f.URL()+"/r/file.txt", nil, nil); r.status != http.StatusOK || r.body != "survives the rebuild\n" {
		t.Fatalf("GET on the rebuilt follower: %d %q", r.status, r.body)
	}

	// The node restarts from what it holds now: it snapshotted the state
	// it restored, since its log begins past entry 1.
	testcluster.Eventually(t, 10*time.Second, "a snapshot of the restored state", func() (bool, string) {
		ents, err := os.ReadDir(snaps)
		return err == nil && len(ents) > 0, fmt.Sprintf("%d snapshots, %v", len(ents), err)
	})
	f = f.Restart(t, nil)
	testcluster.Eventually(t, 30*time.Second, "the rebuilt follower ready after a restart", func() (bool, string) {
		r := do(t, http.MethodGet, f.URL()+"/readyz", nil, nil)
		return r.status == http.StatusOK, r.body
	})
	if r := do(t, http.MethodGet, f.URL()+"/after", nil, nil); r.status != http.StatusOK {
		t.Fatalf("GET /after on the restarted follower: %d %q", r.status, r.body)
	}

	// Without its snapshots, its log is headless: it drops it and gets a
	// snapshot from the leader instead of failing to start.
	f.Stop()
	if err := os.RemoveAll(snaps); err != nil {
		t.Fatal(err)
	}
	f = f.Restart(t, nil)
	testcluster.Eventually(t, 30*time.Second, "the follower ready after a restart without snapshots", func() (bool, string) {
		r := do(t, http.MethodGet, f.URL()+"/readyz", nil, nil)
		return r.status == http.StatusOK, r.body
	})
	if r := do(t, http.MethodGet, f.URL()+"/r/file.txt", nil, nil); r.status != http.StatusOK || r.body != "survives the rebuild\n" {
		t.Fatalf("GET after a restart without snapshots: %d %q", r.status, r.body)
	}
}
