package redisstore_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/redisstore"
)

// walker hides ResolvePath: fsm.Resolve then walks one Lookup per
// segment, the answer ResolvePath must give in one round trip.
type walker struct{ metastore.Reader }

// resolveTree is /a (dir), /a/b (dir), /a/b/f (file), /g (file), and an
// entry /a/gone whose inode is missing.
func resolveTree(t testing.TB, s *redisstore.Store) {
	t.Helper()
	b := &metastore.Batch{Index: 1}
	b.PutInode(metastore.Inode{ID: 1, Kind: metastore.KindDir})
	b.PutInode(metastore.Inode{ID: 2, Kind: metastore.KindDir}).Link(1, "a", 2)
	b.PutInode(metastore.Inode{ID: 3, Kind: metastore.KindDir}).Link(2, "b", 3)
	b.PutInode(metastore.Inode{ID: 4, Kind: metastore.KindFile, Size: 7, Hash: "h4"}).Link(3, "f", 4)
	b.PutInode(metastore.Inode{ID: 5, Kind: metastore.KindFile, Size: 9, Hash: "h5"}).Link(1, "g", 5)
	b.Link(2, "gone", 99)
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestResolvePathMatchesWalk(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url, redisstore.WithPrefix("resolve:"))
	ctx := t.Context()
	check := func(paths []string) {
		t.Helper()
		for _, p := range paths {
			got, gerr := fsm.Resolve(ctx, s, p)
			want, werr := fsm.Resolve(ctx, walker{s}, p)
			var gpe, wpe *fsm.PathError
			switch {
			case werr == nil && (gerr != nil || !reflect.DeepEqual(got, want)):
				t.Errorf("Resolve(%q) = %+v, %v; the walk gives %+v", p, got, gerr, want)
			case errors.As(werr, &wpe) && !(errors.As(gerr, &gpe) && *gpe == *wpe):
				t.Errorf("Resolve(%q) error %v; the walk gives %v", p, gerr, werr)
			case werr != nil && wpe == nil:
				t.Fatalf("the walk of %q failed: %v", p, werr)
			}
		}
	}
	paths := []string{"/", "/a", "/a/b", "/a/b/f", "/g", "/a/b/f/x", "/g/x/y", "/missing", "/missing/x", "/a/gone", "/a/gone/x", "/a/b/nope", "/a/ü"}
	appliedIs := func(want uint64) {
		t.Helper()
		for _, p := range paths {
			if _, applied, seen, _ := fsm.ResolveSeen(ctx, s, p); !seen || applied != want {
				t.Errorf("ResolveSeen(%q): applied %d (seen %v); want %d, read with the walk", p, applied, seen, want)
			}
		}
	}
	// Before anything is stored: the root is synthesized, nothing else is.
	check(paths)
	appliedIs(0)
	resolveTree(t, s)
	check(paths)
	appliedIs(1)
	if _, _, seen, _ := fsm.ResolveSeen(ctx, walker{s}, "/a"); seen {
		t.Error("a store that does not walk paths itself reports an applied index")
	}
}

// BenchmarkResolve resolves a file four segments deep: one round trip
// with ResolvePath, nine (the root, then an HGET and a GET per segment)
// walking.
func BenchmarkResolve(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	bt := &metastore.Batch{Index: 1}
	bt.PutInode(metastore.Inode{ID: 1, Kind: metastore.KindDir})
	for i, name := range []string{"home", "alice", "docs"} {
		id := metastore.ID(i + 2)
		bt.PutInode(metastore.Inode{ID: id, Kind: metastore.KindDir}).Link(id-1, name, id)
	}
	bt.PutInode(metastore.Inode{ID: 5, Kind: metastore.KindFile, Size: 4096, Hash: "h"}).Link(4, "f.txt", 5)
	if err := s.Commit(ctx, bt); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    metastore.Reader
	}{{"script", s}, {"walk", walker{s}}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := fsm.Resolve(ctx, tc.r, "/home/alice/docs/f.txt"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
