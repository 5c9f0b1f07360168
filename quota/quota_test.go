package quota

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
)

// usageStore is a real embedded metadata store whose usage counter the
// tests set through committed batches, as the state machine does.
type usageStore struct {
	t   *testing.T
	s   metastore.Store
	idx uint64
}

func newUsage(t *testing.T) *usageStore {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &usageStore{t: t, s: s}
}

func (u *usageStore) add(delta int64) {
	u.t.Helper()
	u.idx++
	b := &metastore.Batch{Index: u.idx}
	b.AddUsage(delta)
	if err := u.s.Commit(context.Background(), b); err != nil {
		u.t.Fatal(err)
	}
}

func newSpace(t *testing.T, u *usageStore, cfg Config) *Space {
	t.Helper()
	cfg.Dir = t.TempDir()
	s, err := New(cfg, u.s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewValidates(t *testing.T) {
	u := newUsage(t)
	for _, cfg := range []Config{
		{QuotaBytes: -1},
		{MinFreeBytes: -1},
		{MinFreePercent: -0.5},
		{MinFreePercent: 101},
	} {
		cfg.Dir = t.TempDir()
		if _, err := New(cfg, u.s); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
	if _, err := New(Config{Dir: t.TempDir()}, nil); err == nil {
		t.Error("New without a usage source accepted it")
	}
}

// TestAdmitKnownSize walks a sequence of admissions against a quota of
// 1000 bytes with 600 used: reservations add up until released, and the
// size of a replaced file is credited.
func TestAdmitKnownSize(t *testing.T) {
	ctx := context.Background()
	u := newUsage(t)
	u.add(600)
	s := newSpace(t, u, Config{QuotaBytes: 1000})
	var held []*Grant
	steps := []struct {
		name          string
		size, replace int64
		ok            bool
	}{
		{"fits", 300, 0, true},
		{"the reservation counts: 100 left", 101, 0, false},
		{"exactly what is left", 100, 0, true},
		{"nothing left", 1, 0, false},
		{"an empty file always fits", 0, 0, true},
		{"an overwrite that shrinks", 50, 200, true},
		{"an overwrite that grows by one", 201, 200, false},
		{"unknown size is never refused early", -1, 0, true},
	}
	for _, st := range steps {
		g, err := s.Admit(ctx, st.size, st.replace)
		if st.ok != (err == nil) {
			t.Fatalf("%s: Admit(%d, %d) = %v, want ok=%v", st.name, st.size, st.replace, err, st.ok)
		}
		if err != nil {
			var ns *NoSpaceError
			if !errors.As(err, &ns) || ns.Disk || !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "quota 1000 bytes, used 600 bytes") {
				t.Fatalf("%s: refusal %v does not name the quota", st.name, err)
			}
			continue
		}
		held = append(held, g)
	}
	for _, g := range held {
		g.Release()
		g.Release() // twice is harmless
	}
	if g, err := s.Admit(ctx, 400, 0); err != nil {
		t.Fatalf("after every release, 400 bytes must fit: %v", err)
	} else {
		g.Release()
	}
}

// TestGrantReaderStops streams bodies of unknown size through the meter:
// it passes exactly what fits and fails the read that would overshoot.
func TestGrantReaderStops(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name              string
		quota, used, repl int64
		body              int
		wantErr           bool
	}{
		{"small body", 10 << 20, 0, 0, 1 << 20, false},
		{"exactly the quota", 10 << 20, 2 << 20, 0, 8 << 20, false},
		{"one byte over", 10 << 20, 2 << 20, 0, 8<<20 + 1, true},
		{"replaced bytes are credited", 10 << 20, 10 << 20, 3 << 20, 3 << 20, false},
		{"over even with the credit", 10 << 20, 10 << 20, 3 << 20, 3<<20 + 1, true},
		{"no quota", 0, 1 << 40, 0, 9 << 20, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUsage(t)
			if tc.used > 0 {
				u.add(tc.used)
			}
			s := newSpace(t, u, Config{QuotaBytes: tc.quota})
			g, err := s.Admit(ctx, -1, tc.repl)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Release()
			n, err := io.Copy(io.Discard, g.Reader(ctx, bytes.NewReader(make([]byte, tc.body))))
			if tc.wantErr {
				if !errors.Is(err, ErrNoSpace) || n >= int64(tc.body) {
					t.Fatalf("copied %d of %d bytes, err %v; want ErrNoSpace before the end", n, tc.body, err)
				}
				return
			}
			if err != nil || n != int64(tc.body) {
				t.Fatalf("copied %d of %d bytes: %v", n, tc.body, err)
			}
		})
	}
}

// TestConcurrentStreamsShareTheQuota: two streaming uploads reserve as
// they go, so together they cannot pass more than the quota.
func TestConcurrentStreamsShareTheQuota(t *testing.T) {
	ctx := context.Background()
	u := newUsage(t)
	s := newSpace(t, u, Config{QuotaBytes: 12 << 20})
	a, _ := s.Admit(ctx, -1, 0)
	b, _ := s.Admit(ctx, -1, 0)
	defer a.Release()
	defer b.Release()
	ra := a.Reader(ctx, bytes.NewReader(make([]byte, 10<<20)))
	rb := b.Reader(ctx, bytes.NewReader(make([]byte, 10<<20)))
	var total int64
	buf := make([]byte, 1<<20)
	var errA, errB error
	for errA == nil || errB == nil {
		if errA == nil {
			n, err := ra.Read(buf)
			total += int64(n)
			errA = err
		}
		if errB == nil {
			n, err := rb.Read(buf)
			total += int64(n)
			errB = err
		}
	}
	if total > 12<<20 {
		t.Fatalf("two uploads passed %d bytes, more than the quota", total)
	}
	if !errors.Is(errA, ErrNoSpace) && !errors.Is(errB, ErrNoSpace) {
		t.Fatalf("neither upload was stopped: %v, %v", errA, errB)
	}
}

func TestLowWater(t *testing.T) {
	ctx := context.Background()
	u := newUsage(t)
	// A mark above any volume: nothing may be written.
	full := newSpace(t, u, Config{MinFreeBytes: 1 << 62, MinFreePercent: 100})
	if !full.DiskChecked() {
		// Without statfs the mark is documented as not enforced.
		if g, err := full.Admit(ctx, 1<<20, 0); err != nil {
			t.Fatalf("Admit where free space cannot be read: %v", err)
		} else {
			g.Release()
		}
		return
	}
	for _, size := range []int64{-1, 0, 1} {
		_, err := full.Admit(ctx, size, 0)
		var ns *NoSpaceError
		if !errors.As(err, &ns) || !ns.Disk || !strings.Contains(err.Error(), "low-water mark") {
			t.Fatalf("Admit(%d) at the mark: %v, want a disk refusal", size, err)
		}
	}
	if _, err := full.AdmitReplica(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("AdmitReplica at the mark: %v", err)
	}
	if _, avail, ok, err := full.Available(ctx); err != nil || !ok || avail != 0 {
		t.Fatalf("Available at the mark: %d %v %v, want 0", avail, ok, err)
	}
	// The smaller of bytes and percentage applies: 0% means no mark.
	free := newSpace(t, u, Config{MinFreeBytes: 1 << 62, MinFreePercent: 0})
	if _, low, err := free.Disk(); err != nil || low != 0 {
		t.Fatalf("mark with 0%%: %d, %v", low, err)
	}
	if g, err := free.Admit(ctx, 1<<20, 0); err != nil {
		t.Fatalf("Admit without a mark: %v", err)
	} else {
		g.Release()
	}
	// Available is the free space above the mark, and the quota left when
	// that is smaller.
	u.add(300)
	q := newSpace(t, u, Config{QuotaBytes: 1000})
	if used, avail, ok, err := q.Available(ctx); err != nil || !ok || used != 300 || avail != 700 {
		t.Fatalf("Available with quota 1000 and 300 used: %d, %d, %v, %v", used, avail, ok, err)
	}
}
