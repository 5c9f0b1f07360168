package fsm

import (
	"bytes"
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// sumSizes walks the namespace and adds up the sizes of all files: what the
// usage counter must always equal.
func sumSizes(t *testing.T, r metastore.Reader) int64 {
	t.Helper()
	var sum int64
	var walk func(dir metastore.ID)
	walk = func(dir metastore.ID) {
		ents, err := r.List(context.Background(), dir)
		if err != nil {
			t.Fatalf("List(%d): %v", dir, err)
		}
		for _, e := range ents {
			if e.Inode.IsDir() {
				walk(e.Inode.ID)
			} else {
				sum += e.Inode.Size
			}
		}
	}
	walk(metastore.RootID)
	return sum
}

func (e *env) used() int64 {
	e.t.Helper()
	n, err := e.s.UsedBytes(e.ctx)
	if err != nil {
		e.t.Fatalf("UsedBytes: %v", err)
	}
	return n
}

// TestUsageCounter applies every op that changes file sizes and checks the
// counter after each against the expected value and against a walk of the
// namespace.
func TestUsageCounter(t *testing.T) {
	steps := []struct {
		name string
		cmd  Command
		code Code
		used int64
	}{
		{"mkcol", Command{Op: OpMkcol, Path: "/d"}, OK, 0},
		{"put new", Command{Op: OpPut, Path: "/d/a", Hash: hA, Size: 100}, OK, 100},
		{"put same content elsewhere counts again", Command{Op: OpPut, Path: "/d/b", Hash: hA, Size: 100}, OK, 200},
		{"overwrite larger", Command{Op: OpPut, Path: "/d/b", Hash: hB, Size: 250}, OK, 350},
		{"overwrite with the same content", Command{Op: OpPut, Path: "/d/b", Hash: hB, Size: 250}, OK, 350},
		{"overwrite smaller", Command{Op: OpPut, Path: "/d/b", Hash: hC, Size: 50}, OK, 150},
		{"copy a tree doubles it", Command{Op: OpCopy, Path: "/d", Dest: "/e", Depth: DepthInfinity}, OK, 300},
		{"copy depth 0 copies no members", Command{Op: OpCopy, Path: "/d", Dest: "/f", Depth: 0}, OK, 300},
		{"copy a file over a file", Command{Op: OpCopy, Path: "/d/a", Dest: "/e/b", Overwrite: true}, OK, 350},
		{"move is free", Command{Op: OpMove, Path: "/e", Dest: "/g"}, OK, 350},
		{"move over a file drops it", Command{Op: OpMove, Path: "/d/b", Dest: "/g/a", Overwrite: true}, OK, 250},
		{"lock on an unmapped URL makes an empty file", lockCmd("/empty", "tok-u", false, false, 0), OK, 250},
		{"refused put changes nothing", Command{Op: OpPut, Path: "/nope/x", Hash: hA, Size: 7}, Conflict, 250},
		{"delete a tree", Command{Op: OpDelete, Path: "/g"}, OK, 100},
		{"delete a file", Command{Op: OpDelete, Path: "/d/a"}, OK, 0},
	}
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		for _, st := range steps {
			e.code(st.cmd, st.code)
			if got := e.used(); got != st.used {
				t.Fatalf("%s: used %d, want %d", st.name, got, st.used)
			}
			if sum := sumSizes(t, e.s); sum != st.used {
				t.Fatalf("%s: files add up to %d, counter says %d", st.name, sum, st.used)
			}
		}
	})
}

// TestQuotaInEntry checks that apply enforces the quota the entry carries,
// deterministically: refused entries commit nothing, entries that free or
// keep space always pass, and an entry without a quota is never refused.
func TestQuotaInEntry(t *testing.T) {
	steps := []struct {
		name string
		cmd  Command
		code Code
		used int64
	}{
		{"fits", Command{Op: OpPut, Path: "/a", Hash: hA, Size: 600, Quota: 1000}, OK, 600},
		{"exactly at the quota", Command{Op: OpPut, Path: "/b", Hash: hB, Size: 400, Quota: 1000}, OK, 1000},
		{"one byte over", Command{Op: OpPut, Path: "/c", Hash: hC, Size: 1, Quota: 1000}, InsufficientStorage, 1000},
		{"overwrite that grows over", Command{Op: OpPut, Path: "/b", Hash: hC, Size: 401, Quota: 1000}, InsufficientStorage, 1000},
		{"overwrite that shrinks", Command{Op: OpPut, Path: "/b", Hash: hC, Size: 100, Quota: 1000}, OK, 700},
		{"copy over the quota", Command{Op: OpCopy, Path: "/a", Dest: "/a2", Quota: 1000}, InsufficientStorage, 700},
		{"copy with a larger quota", Command{Op: OpCopy, Path: "/a", Dest: "/a2", Quota: 1300}, OK, 1300},
		{"quota lowered: growth refused", Command{Op: OpPut, Path: "/d", Hash: hA, Size: 600, Quota: 500}, InsufficientStorage, 1300},
		{"quota lowered: shrinking still passes", Command{Op: OpPut, Path: "/a2", Hash: hC, Size: 100, Quota: 500}, OK, 800},
		{"move over a file frees", Command{Op: OpMove, Path: "/b", Dest: "/a2", Overwrite: true}, OK, 700},
		{"no quota in the entry", Command{Op: OpPut, Path: "/big", Hash: hB, Size: 1 << 40}, OK, 1<<40 + 700},
		{"delete always passes", Command{Op: OpDelete, Path: "/big"}, OK, 700},
	}
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		for _, st := range steps {
			r := e.code(st.cmd, st.code)
			if got := e.used(); got != st.used {
				t.Fatalf("%s: used %d, want %d", st.name, got, st.used)
			}
			if st.code == InsufficientStorage && r.Err() == nil {
				t.Fatalf("%s: refused entry has no error", st.name)
			}
		}
		if len(e.released) == 0 {
			t.Fatal("the shrinking overwrite released nothing")
		}
	})
}

// TestUsageReplayAndSnapshot checks the counter survives the two ways a
// node rebuilds state: replaying the log after a crash (idempotent: no
// double counting) and restoring a snapshot (recomputed from the files).
func TestUsageReplayAndSnapshot(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		s := open(t)
		f := New(s, zerolog.Nop(), WithTempDir(t.TempDir()))
		cmds := script()
		applyAll(t, f, cmds, 1)
		want := sumSizes(t, s)
		if want == 0 {
			t.Fatal("the script leaves no bytes")
		}
		check := func(what string, r metastore.Reader) {
			t.Helper()
			got, err := r.UsedBytes(context.Background())
			if err != nil || got != want {
				t.Fatalf("%s: used %d, %v; want %d", what, got, err, want)
			}
		}
		check("after the script", s)
		applyAll(t, New(s, zerolog.Nop()), cmds, 1)
		check("after a full replay", s)

		var snap bytes.Buffer
		if _, err := f.WriteSnapshot(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		for _, b := range backends(t) {
			dst := b.open(t)
			// A store with other usage first: restore replaces it.
			applyAll(t, New(dst, zerolog.Nop()), []Command{{Op: OpInit, Time: 1}, {Op: OpPut, Path: "/x", Hash: hA, Size: 12345, Time: 2}}, 1)
			if _, err := New(dst, zerolog.Nop()).RestoreFrom(context.Background(), bytes.NewReader(snap.Bytes())); err != nil {
				t.Fatal(err)
			}
			check("restored into "+b.name, dst)
		}
	})
}
