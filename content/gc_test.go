package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// refMap is a RefCounter backed by a map: the counts a metastore would hold.
type refMap map[string]int64

func (r refMap) RefCount(_ context.Context, h string) (int64, error) { return r[h], nil }

// refFunc adapts a function to RefCounter.
type refFunc func(ctx context.Context, h string) (int64, error)

func (f refFunc) RefCount(ctx context.Context, h string) (int64, error) { return f(ctx, h) }

func age(t *testing.T, s *Store, h string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(s.path(h), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestCollect(t *testing.T) {
	s := newStore(t)
	const grace = time.Hour
	mk := func(name string, pinned bool, ago time.Duration) Blob {
		b := put(t, s, []byte(name))
		if !pinned {
			s.Unpin(b.Hash)
		}
		if ago > 0 {
			age(t, s, b.Hash, ago)
		}
		return b
	}
	garbage := mk("garbage", false, 2*grace)
	garbage2 := mk("more garbage", false, 100*grace)
	referenced := mk("referenced", false, 2*grace)
	pinned := mk("pinned", true, 2*grace)
	young := mk("young", false, 0)
	almost := mk("almost old enough", false, grace-time.Minute)
	refs := refMap{referenced.Hash: 1}

	st, err := s.Collect(context.Background(), refs, grace)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		Scanned: 6, Removed: 2, BytesFreed: garbage.Size + garbage2.Size,
		Young: 2, Pinned: 1, Referenced: 1,
	}
	if st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	for _, tc := range []struct {
		b    Blob
		keep bool
	}{
		{garbage, false}, {garbage2, false}, {referenced, true}, {pinned, true}, {young, true}, {almost, true},
	} {
		if s.Has(tc.b.Hash) != tc.keep {
			t.Errorf("Has(%s) = %v, want %v", tc.b.Hash, !tc.keep, tc.keep)
		}
	}

	// Once unpinned, the pinned object goes too.
	s.Unpin(pinned.Hash)
	st, err = s.Collect(context.Background(), refs, grace)
	if err != nil || st.Removed != 1 || s.Has(pinned.Hash) {
		t.Fatalf("after Unpin: %+v, %v, Has=%v", st, err, s.Has(pinned.Hash))
	}
}

func TestCollectStopsOnRefCountError(t *testing.T) {
	s := newStore(t)
	b := put(t, s, []byte("x"))
	s.Unpin(b.Hash)
	boom := errors.New("metastore down")
	_, err := s.Collect(context.Background(), refFunc(func(context.Context, string) (int64, error) {
		return 0, boom
	}), 0)
	if !errors.Is(err, boom) {
		t.Fatalf("Collect = %v, want %v", err, boom)
	}
	if !s.Has(b.Hash) {
		t.Fatal("object deleted without a reference count")
	}
}

func TestCollectCancelled(t *testing.T) {
	s := newStore(t)
	b := put(t, s, []byte("x"))
	s.Unpin(b.Hash)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Collect(ctx, refMap{}, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Collect = %v", err)
	}
	if !s.Has(b.Hash) {
		t.Fatal("cancelled Collect deleted an object")
	}
}

// TestCommitRefreshesMtime: writing bytes that already exist counts as a
// write for the grace period.
func TestCommitRefreshesMtime(t *testing.T) {
	s := newStore(t)
	b := put(t, s, []byte("old bytes"))
	s.Unpin(b.Hash)
	age(t, s, b.Hash, 48*time.Hour)
	put(t, s, []byte("old bytes"))
	s.Unpin(b.Hash)
	if st, err := s.Collect(context.Background(), refMap{}, time.Hour); err != nil || st.Young != 1 || !s.Has(b.Hash) {
		t.Fatalf("Collect = %+v, %v; the rewritten object must count as young", st, err)
	}
}

func TestRelease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pinned  bool
		refs    int64
		absent  bool
		removed bool
	}{
		{name: "unreferenced unpinned", removed: true},
		{name: "pinned", pinned: true},
		{name: "referenced again", refs: 1},
		{name: "already gone", absent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			b := put(t, s, []byte("release me"))
			if !tc.pinned {
				s.Unpin(b.Hash)
			}
			if tc.absent {
				os.Remove(s.path(b.Hash))
			}
			// No grace: a brand new object goes at once.
			ok, err := s.Release(context.Background(), refMap{b.Hash: tc.refs}, b.Hash)
			if err != nil || ok != tc.removed {
				t.Fatalf("Release = %v, %v; want %v", ok, err, tc.removed)
			}
			if want := !tc.removed && !tc.absent; s.Has(b.Hash) != want {
				t.Fatalf("Has = %v, want %v", !want, want)
			}
		})
	}
}

// TestPinDuringRefCount exercises the window tryDelete leaves open while it
// reads the reference count: a Pin or Commit arriving then (even one that is
// released again before the count returns, like an upload whose entry was
// applied meanwhile) must cancel the deletion.
func TestPinDuringRefCount(t *testing.T) {
	data := []byte("contended")
	for _, tc := range []struct {
		name   string
		during func(t *testing.T, s *Store, h string)
	}{
		{"Pin", func(t *testing.T, s *Store, h string) {
			if err := s.Pin(h); err != nil {
				t.Error(err)
			}
		}},
		{"Pin then Unpin", func(t *testing.T, s *Store, h string) {
			s.Pin(h)
			s.Unpin(h)
		}},
		{"Commit then Unpin", func(t *testing.T, s *Store, h string) {
			put(t, s, data)
			s.Unpin(h)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			b := put(t, s, data)
			s.Unpin(b.Hash)
			refs := refFunc(func(context.Context, string) (int64, error) {
				tc.during(t, s, b.Hash)
				return 0, nil // the count read before the pin
			})
			if ok, err := s.Release(context.Background(), refs, b.Hash); ok || err != nil {
				t.Fatalf("Release = %v, %v; want kept", ok, err)
			}
			if !s.Has(b.Hash) {
				t.Fatal("object deleted although pinned during the decision")
			}
		})
	}
}

// TestRaceCommitPinVersusGC hammers a few hashes with Commit, Pin, Collect
// and Release at once. Invariant: while a goroutine holds a pin it obtained
// from Commit or a successful Pin, the object is present and reads back
// intact.
func TestRaceCommitPinVersusGC(t *testing.T) {
	s := newStore(t)
	var contents [][]byte
	for i := range 3 {
		contents = append(contents, []byte(fmt.Sprintf("content %d %s", i, string(make([]byte, 1000*i)))))
	}
	hashes := make([]string, len(contents))
	for i, c := range contents {
		hashes[i] = sha(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var violations, held, deleted atomic.Int64
	check := func(i int) {
		held.Add(1)
		if !s.Has(hashes[i]) {
			violations.Add(1)
			t.Errorf("pinned %s missing", hashes[i])
			return
		}
		f, err := s.Open(hashes[i])
		if err != nil {
			violations.Add(1)
			t.Errorf("pinned %s cannot be opened: %v", hashes[i], err)
			return
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(got) != string(contents[i]) {
			violations.Add(1)
			t.Errorf("pinned %s unreadable: %v", hashes[i], err)
		}
	}
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				i := (n + w) % len(contents)
				if w%2 == 0 {
					b, err := s.Put(context.Background(), bytes.NewReader(contents[i]))
					if err != nil {
						t.Error(err)
						return
					}
					check(i)
					s.Unpin(b.Hash)
				} else if err := s.Pin(hashes[i]); err == nil {
					check(i)
					s.Unpin(hashes[i])
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			st, err := s.Collect(context.Background(), refMap{}, 0)
			if err != nil {
				t.Error(err)
			}
			deleted.Add(st.Removed)
		}
	})
	wg.Go(func() {
		for n := 0; ctx.Err() == nil; n++ {
			ok, err := s.Release(context.Background(), refMap{}, hashes[n%len(hashes)])
			if err != nil {
				t.Error(err)
			}
			if ok {
				deleted.Add(1)
			}
		}
	})
	wg.Wait()
	if violations.Load() != 0 {
		t.Fatalf("%d violations", violations.Load())
	}
	if held.Load() == 0 || deleted.Load() == 0 {
		t.Fatalf("%d pins held, %d deletions: the test exercised nothing", held.Load(), deleted.Load())
	}
	t.Logf("%d pinned checks, %d deletions", held.Load(), deleted.Load())
	for _, h := range hashes {
		if p := s.Pins(h); p != 0 {
			t.Fatalf("pins leaked on %s: %d", h, p)
		}
	}
}
