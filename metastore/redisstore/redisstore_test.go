package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/redisstore"
	"github.com/dfs-project/dfs/metastore/storetest"
	"github.com/redis/go-redis/v9"
)

// factory gives every store its own key prefix on one shared server, which
// also exercises prefix isolation on every test.
type factory struct {
	url      string
	n        int
	prefixes map[metastore.Store]string
}

func (f *factory) open(t *testing.T, prefix string) metastore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), f.url, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.prefixes[s] = prefix
	return s
}

func (f *factory) Open(t *testing.T) metastore.Store {
	f.n++
	return f.open(t, fmt.Sprintf("test%d:", f.n))
}

func (f *factory) Reopen(t *testing.T, s metastore.Store) metastore.Store {
	prefix, ok := f.prefixes[s]
	if !ok {
		t.Fatalf("Reopen of a store this factory did not open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return f.open(t, prefix)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, &factory{url: testredis.Start(t), prefixes: map[metastore.Store]string{}})
}

func open(t *testing.T, url string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func commit(t *testing.T, s metastore.Store, b *metastore.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// The key layout is what the package doc promises; operators read it with
// redis-cli and a future migration will depend on it.
func TestSchema(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url) // default prefix
	ctx := t.Context()
	ino := metastore.Inode{ID: 2, Kind: metastore.KindFile, Size: 3}
	lock := metastore.Lock{Token: "tok", Root: "/a"}
	b := &metastore.Batch{Index: 42}
	b.PutInode(ino).Link(1, "a b", 2).SetProp(2, metastore.PropName{Space: "DAV:", Local: "x"}, "v")
	b.PutLock(lock).AddRef("h0", 1).AddRef("h1", 2).AddRef("h1", -2)
	commit(t, s, b)

	c := rawClient(t, url)
	if got, err := c.Get(ctx, "dfs:i:2").Result(); err != nil || got != string(ino.Encode()) {
		t.Errorf("dfs:i:2 = %q, %v; want %q", got, err, ino.Encode())
	}
	if got, err := c.HGetAll(ctx, "dfs:d:1").Result(); err != nil || len(got) != 1 || got["a b"] != "2" {
		t.Errorf("dfs:d:1 = %v, %v; want {a b: 2}", got, err)
	}
	if got, err := c.HGetAll(ctx, "dfs:p:2").Result(); err != nil || len(got) != 1 || got["{DAV:}x"] != "v" {
		t.Errorf("dfs:p:2 = %v, %v; want {{DAV:}x: v}", got, err)
	}
	if got, err := c.HGet(ctx, "dfs:locks", "tok").Result(); err != nil || !strings.Contains(got, `"root":"/a"`) {
		t.Errorf("dfs:locks[tok] = %q, %v; want the lock as JSON", got, err)
	}
	if got, err := c.HGetAll(ctx, "dfs:refs").Result(); err != nil || len(got) != 1 || got["h0"] != "1" {
		t.Errorf("dfs:refs = %v, %v; want {h0: 1} (h1 removed at zero)", got, err)
	}
	if got, err := c.Get(ctx, "dfs:applied").Result(); err != nil || got != "42" {
		t.Errorf("dfs:applied = %q, %v; want 42", got, err)
	}
	if got, err := c.Get(ctx, "dfs:used").Result(); err != nil || got != "0" {
		t.Errorf("dfs:used = %q, %v; want 0 (present even at 0)", got, err)
	}

	// DeleteProps drops the whole hash.
	commit(t, s, (&metastore.Batch{Index: 43}).DeleteProps(2))
	if n, err := c.Exists(ctx, "dfs:p:2").Result(); err != nil || n != 0 {
		t.Errorf("dfs:p:2 exists after DeleteProps: %d, %v", n, err)
	}
}

// Reset removes its own prefix and nothing else, even when the prefix is
// full of SCAN wildcards.
func TestResetKeepsOtherPrefixes(t *testing.T) {
	url := testredis.Start(t)
	ctx := t.Context()
	c := rawClient(t, url)
	if err := c.Set(ctx, "unrelated", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"a*", "a[b]?:", `a\`, "ab", "a"}
	stores := make([]*redisstore.Store, len(prefixes))
	for i, p := range prefixes {
		stores[i] = open(t, url, redisstore.WithPrefix(p))
		b := &metastore.Batch{Index: 1}
		b.PutInode(metastore.Inode{ID: 1, Kind: metastore.KindDir}).AddRef("h", 1)
		commit(t, stores[i], b)
	}
	for i, s := range stores {
		if err := s.Reset(ctx); err != nil {
			t.Fatalf("Reset(%q): %v", prefixes[i], err)
		}
		for j, other := range stores[i+1:] {
			if _, err := other.Get(ctx, 1); err != nil {
				t.Fatalf("after Reset of prefix %q, store with prefix %q lost its root: %v", prefixes[i], prefixes[i+1+j], err)
			}
		}
		if _, err := s.Get(ctx, 1); !errors.Is(err, metastore.ErrNotFound) {
			t.Fatalf("after Reset of prefix %q its root is still there: %v", prefixes[i], err)
		}
	}
	if got, err := c.Get(ctx, "unrelated").Result(); err != nil || got != "x" {
		t.Fatalf("unrelated key after Resets = %q, %v", got, err)
	}
}

// A Redis that stops answering must not hold a caller past its deadline.
func TestDeadlineWithStalledServer(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url)
	c := rawClient(t, url)
	// PAUSE ALL holds every command, CLIENT UNPAUSE included, so the pause
	// is kept short rather than lifted by hand.
	if err := c.Do(t.Context(), "CLIENT", "PAUSE", 1000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Get(ctx, 1)
	if err == nil {
		t.Fatal("Get on a paused server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get on a paused server took %v with a 200ms deadline", d)
	}
	t.Logf("Get on a paused server: %v", err)
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, url := range []string{
		"http://localhost:6379",
		"redis://user:secret@host:6379/0?nonsense=1",
		"unix://" + t.TempDir() + "/nothing.sock",
	} {
		s, err := redisstore.Open(ctx, url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open error leaks the password: %v", err)
		}
	}
}

// Commit reports which batch failed, so the state machine's log says so.
func TestCommitErrorNamesBatch(t *testing.T) {
	s := open(t, testredis.Start(t))
	commit(t, s, &metastore.Batch{Index: 5})
	err := s.Commit(t.Context(), &metastore.Batch{Index: 4})
	if !errors.Is(err, metastore.ErrStaleBatch) || !strings.Contains(err.Error(), "commit batch 4") {
		t.Fatalf("stale Commit = %v, want ErrStaleBatch naming batch 4", err)
	}
}

func BenchmarkList10000(b *testing.B) {
	storetest.BenchList(b, openBench(b), 10_000)
}

func BenchmarkCommitSmall(b *testing.B) {
	storetest.BenchCommitSmall(b, openBench(b))
}

func openBench(b *testing.B) *redisstore.Store {
	s, err := redisstore.Open(b.Context(), testredis.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// A store written before the usage counter existed gets it counted when it
// opens: the sum of its files' sizes, directories aside.
func TestUsageCountedForOlderStore(t *testing.T) {
	url := testredis.Start(t)
	ctx := t.Context()
	s := open(t, url, redisstore.WithPrefix("old:"))
	b := &metastore.Batch{Index: 3}
	b.PutInode(metastore.Inode{ID: 1, Kind: metastore.KindDir})
	b.PutInode(metastore.Inode{ID: 2, Kind: metastore.KindFile, Size: 1000}).Link(1, "a", 2)
	b.PutInode(metastore.Inode{ID: 3, Kind: metastore.KindDir}).Link(1, "d", 3)
	b.PutInode(metastore.Inode{ID: 4, Kind: metastore.KindFile, Size: 234}).Link(3, "b", 4)
	commit(t, s, b)
	// Another store's files on the same server do not count.
	other := open(t, url, redisstore.WithPrefix("other:"))
	commit(t, other, (&metastore.Batch{Index: 1}).PutInode(metastore.Inode{ID: 9, Kind: metastore.KindFile, Size: 5}))
	// What an older version left: no counter.
	if err := rawClient(t, url).Del(ctx, "old:used").Err(); err != nil {
		t.Fatal(err)
	}
	s = open(t, url, redisstore.WithPrefix("old:"))
	if n, err := s.UsedBytes(ctx); err != nil || n != 1234 {
		t.Fatalf("UsedBytes after opening an older store = %d, %v; want 1234", n, err)
	}
	commit(t, s, (&metastore.Batch{Index: 4}).AddUsage(-1234))
	if n, err := s.UsedBytes(ctx); err != nil || n != 0 {
		t.Fatalf("UsedBytes = %d, %v; want 0", n, err)
	}
}
