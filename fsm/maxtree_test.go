package fsm

import (
	"strings"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// TestMaxTree checks that DELETE, COPY and MOVE over an existing
// destination refuse a subtree larger than the entry's MaxTree, change
// nothing when they do, and stop counting early (the work is bounded).
func TestMaxTree(t *testing.T) {
	// /d holds 4 inodes: /d, /d/s, /d/s/a, /d/b. /e holds 2: /e, /e/x.
	tree := []Command{
		{Op: OpMkcol, Path: "/d"}, {Op: OpMkcol, Path: "/d/s"},
		{Op: OpPut, Path: "/d/s/a", Hash: hA, Size: 1}, {Op: OpPut, Path: "/d/b", Hash: hB, Size: 2},
		{Op: OpMkcol, Path: "/e"}, {Op: OpPut, Path: "/e/x", Hash: hC, Size: 3},
	}
	for _, tc := range []struct {
		name string
		cmd  Command
		want Code
	}{
		{"delete within the limit", Command{Op: OpDelete, Path: "/d", MaxTree: 4}, OK},
		{"delete beyond the limit", Command{Op: OpDelete, Path: "/d", MaxTree: 3}, Forbidden},
		{"delete without a limit", Command{Op: OpDelete, Path: "/d"}, OK},
		{"copy within the limit", Command{Op: OpCopy, Path: "/d", Dest: "/c", Depth: DepthInfinity, MaxTree: 4}, OK},
		{"copy beyond the limit", Command{Op: OpCopy, Path: "/d", Dest: "/c", Depth: DepthInfinity, MaxTree: 2}, Forbidden},
		{"copy depth 0 counts one", Command{Op: OpCopy, Path: "/d", Dest: "/c", MaxTree: 1}, OK},
		{"move onto a destination beyond the limit", Command{Op: OpMove, Path: "/e", Dest: "/d", Overwrite: true, MaxTree: 3}, Forbidden},
		{"move of a large tree is one relink", Command{Op: OpMove, Path: "/d", Dest: "/m", MaxTree: 1}, OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				e := newEnv(t, open(t))
				e.init()
				for _, c := range tree {
					e.ok(c)
				}
				before := e.dumpState()
				r := e.code(tc.cmd, tc.want)
				if tc.want == OK {
					return
				}
				if !strings.Contains(r.Msg, "--max-tree-entries") {
					t.Fatalf("refusal does not say why: %q", r.Msg)
				}
				if d := diffLines(before, e.dumpState()); d != "" {
					t.Fatalf("a refused entry changed the state: %s", d)
				}
			})
		})
	}
}
