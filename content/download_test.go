package content

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func resume(t *testing.T, s *Store, h string) *Download {
	t.Helper()
	d, err := s.Resume(context.Background(), h)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	return d
}

func write(t *testing.T, d *Download, b []byte) {
	t.Helper()
	if _, err := d.Write(b); err != nil {
		t.Fatalf("Download.Write: %v", err)
	}
}

func TestDownloadResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := randBytes(t, 3<<20+17)
	h := sha(data)

	d := resume(t, s, h)
	if d.Offset() != 0 {
		t.Fatalf("fresh download at offset %d", d.Offset())
	}
	write(t, d, data[:1<<20])
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart keeps partial/ (unlike tmp/).
	s.Close()
	s = openStore(t, dir)

	d = resume(t, s, h)
	if d.Offset() != 1<<20 {
		t.Fatalf("resumed at %d, want %d", d.Offset(), 1<<20)
	}
	write(t, d, data[1<<20:])
	b, err := d.Commit(int64(len(data)))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if b.Hash != h || b.Size != int64(len(data)) || s.Pins(h) != 1 {
		t.Fatalf("blob %+v, pins %d", b, s.Pins(h))
	}
	got, err := readAll(t, s, h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("read back: %v (%d bytes)", err, len(got))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "partial")); len(ents) != 0 {
		t.Fatalf("partial files left: %v", ents)
	}
}

func TestDownloadMismatchDiscarded(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 100<<10)
	h := sha(data)
	bad := append([]byte(nil), data...)
	bad[5000] ^= 1

	for name, tc := range map[string]struct {
		body []byte
		size int64
	}{
		"wrong bytes": {bad, int64(len(data))},
		"too short":   {data[:len(data)-1], int64(len(data))},
		"too long":    {append(append([]byte(nil), data...), 'x'), int64(len(data))},
		"wrong size":  {data, int64(len(data)) + 1},
	} {
		t.Run(name, func(t *testing.T) {
			d := resume(t, s, h)
			write(t, d, tc.body)
			_, err := d.Commit(tc.size)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Commit: %v, want ErrCorrupt", err)
			}
			if s.Has(h) || s.Pins(h) != 0 {
				t.Fatal("a mismatching download became an object")
			}
			// Discarded: the next attempt starts from scratch.
			d = resume(t, s, h)
			defer d.Discard()
			if d.Offset() != 0 {
				t.Fatalf("next download starts at %d", d.Offset())
			}
		})
	}

	// Any size is accepted with -1, the hash still decides.
	d := resume(t, s, h)
	write(t, d, data)
	if _, err := d.Commit(-1); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadRestartAndBusy(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 10<<10)
	h := sha(data)
	d := resume(t, s, h)
	if _, err := s.Resume(context.Background(), h); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Resume: %v, want ErrBusy", err)
	}
	write(t, d, []byte("garbage from a peer that ignored Range"))
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	write(t, d, data)
	if _, err := d.Commit(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// Finished downloads free the hash.
	d = resume(t, s, h)
	d.Discard()
	d.Discard() // no-op
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadOfExistingObject(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 10<<10)
	b := put(t, s, data)
	d := resume(t, s, b.Hash)
	write(t, d, data)
	if _, err := d.Commit(b.Size); err != nil {
		t.Fatal(err)
	}
	if s.Pins(b.Hash) != 2 {
		t.Fatalf("pins %d, want 2", s.Pins(b.Hash))
	}
}

func TestDownloadEmpty(t *testing.T) {
	s := newStore(t)
	d := resume(t, s, EmptyHash)
	b, err := d.Commit(0)
	if err != nil || b.Hash != EmptyHash {
		t.Fatalf("Commit: %+v, %v", b, err)
	}
}

func TestPrunePartials(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	old, busy, young := randBytes(t, 100), randBytes(t, 100), randBytes(t, 100)
	for _, b := range [][]byte{old, busy, young} {
		d := resume(t, s, sha(b))
		write(t, d, b[:50])
		d.Close()
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, b := range [][]byte{old, busy} {
		if err := os.Chtimes(filepath.Join(dir, "partial", sha(b)), past, past); err != nil {
			t.Fatal(err)
		}
	}
	d := resume(t, s, sha(busy))
	defer d.Discard()

	st, err := s.Collect(context.Background(), refMap{}, time.Hour)
	if err != nil || st.Partials != 1 {
		t.Fatalf("Collect: %+v, %v", st, err)
	}
	for _, tc := range []struct {
		b    []byte
		keep bool
	}{{old, false}, {busy, true}, {young, true}} {
		_, err := os.Stat(filepath.Join(dir, "partial", sha(tc.b)))
		if (err == nil) != tc.keep {
			t.Errorf("partial %s kept=%v, want %v", sha(tc.b)[:8], err == nil, tc.keep)
		}
	}
}

func TestQuarantine(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 1000)
	b := put(t, s, data)
	if err := s.Quarantine(b.Hash, errors.New("size disagrees with metadata")); err != nil {
		t.Fatal(err)
	}
	if s.Has(b.Hash) {
		t.Fatal("quarantined object still present")
	}
	if err := s.Quarantine(b.Hash, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Quarantine: %v", err)
	}
	if err := s.Quarantine(EmptyHash, nil); err != nil {
		t.Fatal(err)
	}
	// A good copy can come back.
	d := resume(t, s, b.Hash)
	write(t, d, data)
	if _, err := d.Commit(b.Size); err != nil || !s.Has(b.Hash) {
		t.Fatalf("Commit after quarantine: %v", err)
	}
}
