package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

// blockedSize spans several blocks and ends in a partial one.
const blockedSize = 5*BlockSize + 123

func sumsExist(s *Store, h string) bool {
	_, err := os.Stat(s.sumsPath(h))
	return err == nil
}

// TestBlockVerification flips one byte in block k and reads the object
// every way a server does: no byte of block k may come out, every good
// byte before it must, and the object ends up quarantined.
func TestBlockVerification(t *testing.T) {
	last := int64(blockedSize / BlockSize)
	for _, k := range []int64{0, 2, last} {
		reads := []struct {
			name string
			// read returns the bytes delivered and the error that ended it,
			// and the bytes that should have been delivered.
			read func(f *File, data []byte) (got, want []byte, err error)
		}{
			{"sequential", func(f *File, data []byte) ([]byte, []byte, error) {
				got, err := io.ReadAll(f)
				return got, data[:k*BlockSize], err
			}},
			{"seek into the block", func(f *File, data []byte) ([]byte, []byte, error) {
				if _, err := f.Seek(k*BlockSize+5, io.SeekStart); err != nil {
					return nil, nil, err
				}
				got, err := io.ReadAll(f)
				return got, nil, err
			}},
			{"seek before the block", func(f *File, data []byte) ([]byte, []byte, error) {
				from := max(0, k*BlockSize-1000)
				if _, err := f.Seek(from, io.SeekStart); err != nil {
					return nil, nil, err
				}
				got, err := io.ReadAll(f)
				return got, data[from : k*BlockSize], err
			}},
			{"ReadAt in the block", func(f *File, data []byte) ([]byte, []byte, error) {
				p := make([]byte, 10)
				n, err := f.ReadAt(p, k*BlockSize+1)
				return p[:n], nil, err
			}},
			{"ReadAt across the block", func(f *File, data []byte) ([]byte, []byte, error) {
				from := max(0, k*BlockSize-100)
				p := make([]byte, 200)
				n, err := f.ReadAt(p, from)
				return p[:n], data[from : k*BlockSize], err
			}},
		}
		for _, r := range reads {
			t.Run(r.name+"/block "+string(rune('0'+k)), func(t *testing.T) {
				s := newStore(t)
				data := randBytes(t, blockedSize)
				blob := put(t, s, data)
				if !sumsExist(s, blob.Hash) {
					t.Fatal("upload wrote no block sums")
				}
				corrupt(t, s, blob.Hash, flipByte(k*BlockSize+7))
				f, err := s.Open(blob.Hash)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				got, want, err := r.read(f, data)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("delivered %d bytes, want the %d good bytes before block %d", len(got), len(want), k)
				}
				if s.Has(blob.Hash) || sumsExist(s, blob.Hash) {
					t.Fatal("corrupt object (or its sums) still in place")
				}
			})
		}
	}
}

// TestGoodReads reads a healthy object in pieces from everywhere.
func TestGoodReads(t *testing.T) {
	for _, size := range []int{1, 1000, BlockSize - 1, BlockSize, BlockSize + 1, blockedSize} {
		s := newStore(t)
		data := randBytes(t, size)
		blob := put(t, s, data)
		if got := sumsExist(s, blob.Hash); got != (size > BlockSize) {
			t.Fatalf("size %d: sums exist = %v", size, got)
		}
		f, err := s.Open(blob.Hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int{0, size / 3, size - 1} {
			if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Fatalf("size %d from %d: %d bytes, %v", size, off, len(got), err)
			}
			p := make([]byte, min(3*BlockSize, size-off))
			if n, err := f.ReadAt(p, int64(off)); n != len(p) || (err != nil && err != io.EOF) || !bytes.Equal(p, data[off:off+n]) {
				t.Fatalf("size %d ReadAt %d: %d bytes, %v", size, off, n, err)
			}
		}
		f.Close()
	}
}

// TestSmallObjectRangeVerified: an object of one block is checked against
// its name before any byte of it is returned, wherever the read starts.
func TestSmallObjectRangeVerified(t *testing.T) {
	s := newStore(t)
	blob := put(t, s, randBytes(t, 1000))
	corrupt(t, s, blob.Hash, flipByte(999))
	f, err := s.Open(blob.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(f); len(got) != 0 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("range read: %d bytes, %v; want 0, ErrCorrupt", len(got), err)
	}
}

// TestDamagedSumsRewritten: a damaged sidecar with a right object costs a
// re-hash, never the object: reads deliver everything, the sums are
// rewritten, nothing is quarantined.
func TestDamagedSumsRewritten(t *testing.T) {
	damages := []struct {
		name string
		f    func(string) error
	}{
		{"flipped sum", flipByte(8)},
		{"truncated", truncateTo(10)},
		{"empty", truncateTo(0)},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			s := newStore(t)
			data := randBytes(t, blockedSize)
			blob := put(t, s, data)
			if err := d.f(s.sumsPath(blob.Hash)); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, s, blob.Hash)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if !s.Has(blob.Hash) {
				t.Fatal("right object quarantined because of its sums")
			}
			res, err := s.Check(context.Background(), blob.Hash, nil)
			if err != nil || res.SumsWritten {
				t.Fatalf("Check after repair = %+v, %v; want sums in place", res, err)
			}
		})
	}
}

// TestMissingSums: an object without sums (stored before they existed)
// keeps the legacy behaviour until Check writes them: Range reads are not
// verified, a full read is verified at its end. After Check, they are.
func TestMissingSums(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, blockedSize)
	blob := put(t, s, data)
	if err := os.Remove(s.sumsPath(blob.Hash)); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, blob.Hash)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("legacy read: %d bytes, %v", len(got), err)
	}
	res, err := s.Check(context.Background(), blob.Hash, nil)
	if err != nil || !res.SumsWritten || res.Size != blockedSize {
		t.Fatalf("Check = %+v, %v; want sums written", res, err)
	}
	corrupt(t, s, blob.Hash, flipByte(3*BlockSize))
	f, err := s.Open(blob.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(3*BlockSize, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Read(make([]byte, 100)); n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("range read after Check = %d, %v; want 0, ErrCorrupt", n, err)
	}
}

// TestLegacyPartialReadsNotVerified documents the limit of an object
// without sums: Range-style reads are not verified, and a seek back to 0
// re-arms the whole-object check.
func TestLegacyPartialReadsNotVerified(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 100_000)
	blob := put(t, s, data)
	if err := os.Remove(s.sumsPath(blob.Hash)); err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, blob.Hash, flipByte(0))
	f, err := s.Open(blob.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data[10:]) {
		t.Fatalf("range read: %d bytes, %v", len(got), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(f); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("full read after rewind = %v, want ErrCorrupt", err)
	}
}

// TestTruncatedObjectWithSums: the sums record the size, so Open already
// finds a truncated object corrupt, before anything is served.
func TestTruncatedObjectWithSums(t *testing.T) {
	s := newStore(t)
	blob := put(t, s, randBytes(t, blockedSize))
	corrupt(t, s, blob.Hash, truncateTo(2*BlockSize))
	if _, err := s.Open(blob.Hash); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	if s.Has(blob.Hash) {
		t.Fatal("truncated object not quarantined")
	}
}

// TestDownloadWritesSums: a resumed download computes the sums of the
// bytes it already had, so the object it commits has them right.
func TestDownloadWritesSums(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, blockedSize)
	h := sha(data)
	ctx := context.Background()
	d, err := s.Resume(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(data[:BlockSize+100]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = s.Resume(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(data[d.Offset():]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	res, err := s.Check(ctx, h, nil)
	if err != nil || res.SumsWritten {
		t.Fatalf("Check = %+v, %v; want the download's sums right", res, err)
	}
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files left: %v", n)
	}
}

// TestReleaseRemovesSums: deleting an object deletes its sums.
func TestReleaseRemovesSums(t *testing.T) {
	s := newStore(t)
	blob := put(t, s, randBytes(t, blockedSize))
	if err := s.Unpin(blob.Hash); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Release(context.Background(), refMap{}, blob.Hash); !ok || err != nil {
		t.Fatalf("Release = %v, %v", ok, err)
	}
	if sumsExist(s, blob.Hash) {
		t.Fatal("sums outlived their object")
	}
}
