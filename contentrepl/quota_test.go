package contentrepl

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/quota"
)

// contentFiles lists every file in a node's content directory (objects,
// temp files, partial downloads), the directory lock aside.
func (n *ctNode) contentFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(n.dir, "content"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != "LOCK" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitEmpty waits until no node holds any content file.
func waitEmpty(t *testing.T, nodes []*ctNode) {
	t.Helper()
	waitFor(t, "every node's content directory to be empty", func() bool {
		for _, n := range nodes {
			if len(n.contentFiles(t)) > 0 {
				return false
			}
		}
		return true
	})
}

func newSpace(t testing.TB, n *ctNode, cfg quota.Config) *quota.Space {
	t.Helper()
	cfg.Dir = n.dir
	s, err := quota.New(cfg, n.meta)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPushRefusedForSpace: followers at their low-water mark refuse the
// push before reading it; the leader cannot reach a majority, fails with
// an error that says why (507 for the client, not 503), and keeps nothing.
func TestPushRefusedForSpace(t *testing.T) {
	for _, size := range []int{10 << 10, 3 << 20} { // inside one chunk, and several
		nodes := newCTCluster(t, 3, nil)
		for _, f := range nodes[1:] {
			f.c.cfg.Space = newSpace(t, f, quota.Config{MinFreeBytes: 1 << 62, MinFreePercent: 100})
		}
		_, err := nodes[0].write(t, randData(t, size))
		if !errors.Is(err, ErrNoQuorum) || !errors.Is(err, quota.ErrNoSpace) {
			t.Fatalf("%d bytes: Write with both followers full: %v, want ErrNoQuorum and quota.ErrNoSpace", size, err)
		}
		if !strings.Contains(err.Error(), "low-water mark") {
			t.Errorf("the error does not say why: %v", err)
		}
		waitEmpty(t, nodes)
	}
}

// TestPushOneFollowerFull: one follower at its mark refuses; the other
// makes the majority and the write succeeds.
func TestPushOneFollowerFull(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	nodes[2].c.cfg.Space = newSpace(t, nodes[2], quota.Config{MinFreeBytes: 1 << 62, MinFreePercent: 100})
	data := randData(t, 1<<20)
	h, err := nodes[0].write(t, data)
	if err != nil {
		t.Fatalf("Write with one follower full: %v", err)
	}
	if !bytes.Equal(nodes[1].readLocal(t, h), data) {
		t.Fatal("the follower with room has other bytes")
	}
	if files := nodes[2].contentFiles(t); len(files) != 0 {
		t.Fatalf("the full follower kept %v", files)
	}
}

// TestPushStoppedByQuota: an upload whose body outgrows the quota while
// streaming (the handler's meter) fails with ErrNoSpace, and neither the
// leader nor the followers keep anything: the followers' temp files of
// the aborted push are discarded.
func TestPushStoppedByQuota(t *testing.T) {
	nodes := newCTCluster(t, 3, nil)
	space := newSpace(t, nodes[0], quota.Config{QuotaBytes: 2 << 20})
	g, err := space.Admit(ctCtx(t), -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	_, _, err = nodes[0].c.Write(ctCtx(t), g.Reader(ctCtx(t), bytes.NewReader(randData(t, 8<<20))))
	var ns *quota.NoSpaceError
	if !errors.As(err, &ns) || !strings.Contains(ns.Msg, "quota 2097152 bytes") {
		t.Fatalf("Write past the quota: %v, want a quota.NoSpaceError naming the quota", err)
	}
	waitEmpty(t, nodes)
}
