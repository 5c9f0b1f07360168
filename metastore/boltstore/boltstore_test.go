package boltstore_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/metastore/storetest"
	bolt "go.etcd.io/bbolt"
)

// factory opens stores on files in the test's temporary directory.
type factory struct {
	paths map[metastore.Store]string
}

func (f *factory) open(t *testing.T, path string) metastore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.paths[s] = path
	return s
}

func (f *factory) Open(t *testing.T) metastore.Store {
	return f.open(t, filepath.Join(t.TempDir(), "meta.db"))
}

func (f *factory) Reopen(t *testing.T, s metastore.Store) metastore.Store {
	path, ok := f.paths[s]
	if !ok {
		t.Fatalf("Reopen of a store this factory did not open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return f.open(t, path)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, &factory{paths: map[metastore.Store]string{}})
}

func TestOpenBadPath(t *testing.T) {
	if s, err := boltstore.Open(filepath.Join(t.TempDir(), "missing", "meta.db")); err == nil {
		s.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
}

// The on-disk layout is what the package doc promises: other tools (and a
// future migration) may rely on it.
func TestLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := &metastore.Batch{Index: 7}
	b.PutInode(metastore.Inode{ID: 2, Kind: metastore.KindFile}).Link(1, "a b", 2)
	b.SetProp(2, metastore.PropName{Space: "DAV:", Local: "x"}, "v")
	b.AddRef("h0", 1).AddRef("h1", 2).AddRef("h1", -2)
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	be := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	err = db.View(func(tx *bolt.Tx) error {
		checks := []struct {
			bucket, key string
			want        []byte // nil: key must be absent
		}{
			{"inodes", string(be(2)), metastore.Inode{ID: 2, Kind: metastore.KindFile}.Encode()},
			{"dentries", string(be(1)) + "a b", be(2)},
			{"props", string(be(2)) + "{DAV:}x", []byte("v")},
			{"refs", "h0", be(1)},
			{"refs", "h1", nil}, // removed at zero
			{"meta", "applied", be(7)},
			{"meta", "used", be(0)}, // present even at 0
		}
		for _, c := range checks {
			bk := tx.Bucket([]byte(c.bucket))
			if bk == nil {
				t.Errorf("bucket %s missing", c.bucket)
				continue
			}
			got := bk.Get([]byte(c.key))
			if string(got) != string(c.want) || (got == nil) != (c.want == nil) {
				t.Errorf("%s[%q] = %q, want %q", c.bucket, c.key, got, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkList10000(b *testing.B) {
	storetest.BenchList(b, openBench(b), 10_000)
}

func BenchmarkCommitSmall(b *testing.B) {
	storetest.BenchCommitSmall(b, openBench(b))
}

func openBench(b *testing.B) *boltstore.Store {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// A store written before the usage counter existed gets it counted when it
// opens: the sum of its files' sizes, directories aside.
func TestUsageCountedForOlderStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := &metastore.Batch{Index: 3}
	b.PutInode(metastore.Inode{ID: 1, Kind: metastore.KindDir})
	b.PutInode(metastore.Inode{ID: 2, Kind: metastore.KindFile, Size: 1000}).Link(1, "a", 2)
	b.PutInode(metastore.Inode{ID: 3, Kind: metastore.KindDir}).Link(1, "d", 3)
	b.PutInode(metastore.Inode{ID: 4, Kind: metastore.KindFile, Size: 234}).Link(3, "b", 4)
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What an older version left: no counter.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("used")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.UsedBytes(ctx); err != nil || n != 1234 {
		t.Fatalf("UsedBytes after opening an older store = %d, %v; want 1234", n, err)
	}
	// From then on batches keep it.
	if err := s.Commit(ctx, (&metastore.Batch{Index: 4}).AddUsage(-1234)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.UsedBytes(ctx); err != nil || n != 0 {
		t.Fatalf("UsedBytes = %d, %v; want 0", n, err)
	}
}
