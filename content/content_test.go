package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/testdisk"
)

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store { return openStore(t, t.TempDir()) }

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func put(t testing.TB, s *Store, b []byte) Blob {
	t.Helper()
	blob, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return blob
}

func readAll(t testing.TB, s *Store, h string) ([]byte, error) {
	t.Helper()
	f, err := s.Open(h)
	if err != nil {
		t.Fatalf("Open(%s): %v", h, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

func tmpEntries(t testing.TB, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		chunk int // Writer chunk size; 0 means Put
	}{
		{"empty put", 0, 0},
		{"empty writer", 0, 7},
		{"one byte", 1, 0},
		{"one copy buffer", copyBufSize, 0},
		{"copy buffer plus one", copyBufSize + 1, 0},
		{"odd chunks", 100_003, 4093},
		{"5 MiB put", 5 << 20, 0},
		{"5 MiB writer", 5 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			data := randBytes(t, tc.size)
			var blob Blob
			if tc.chunk == 0 {
				blob = put(t, s, data)
			} else {
				w, err := s.NewWriter()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Abort()
				for off := 0; off < len(data); off += tc.chunk {
					if _, err := w.Write(data[off:min(off+tc.chunk, len(data))]); err != nil {
						t.Fatal(err)
					}
				}
				if blob, err = w.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if want := (Blob{Hash: sha(data), Size: int64(tc.size)}); blob != want {
				t.Fatalf("blob = %+v, want %+v", blob, want)
			}
			if !s.Has(blob.Hash) {
				t.Fatal("Has = false after commit")
			}
			got, err := readAll(t, s, blob.Hash)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, err %v; want %d bytes", len(got), err, len(data))
			}
			if err := s.Verify(context.Background(), blob.Hash); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			objs, size, err := s.Usage()
			if err != nil {
				t.Fatal(err)
			}
			wantObjs, wantPins := int64(1), int64(1)
			if tc.size == 0 {
				wantObjs, wantPins = 0, 0 // virtual: nothing on disk, nothing to pin
			} else if _, err := os.Stat(filepath.Join(s.dir, "objects", blob.Hash[:2], blob.Hash)); err != nil {
				t.Fatalf("object not at its content path: %v", err)
			}
			if objs != wantObjs || size != int64(tc.size) {
				t.Fatalf("Usage = %d objects, %d bytes; want %d, %d", objs, size, wantObjs, tc.size)
			}
			if p := s.Pins(blob.Hash); p != wantPins {
				t.Fatalf("Pins = %d, want %d", p, wantPins)
			}
			if n := tmpEntries(t, s); len(n) != 0 {
				t.Fatalf("temp files left: %v", n)
			}
		})
	}
}

func TestEmptyIsVirtual(t *testing.T) {
	s := newStore(t)
	if EmptyHash != sha(nil) {
		t.Fatalf("EmptyHash is not the SHA-256 of nothing")
	}
	if !s.Has(EmptyHash) {
		t.Fatal("Has(EmptyHash) = false")
	}
	f, err := s.Open(EmptyHash)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != 0 {
		t.Fatalf("Size = %d", f.Size())
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 0, EOF", n, err)
	}
	if n, err := f.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt = %d, %v; want 0, EOF", n, err)
	}
	if p, err := f.Seek(0, io.SeekEnd); p != 0 || err != nil {
		t.Fatalf("Seek end = %d, %v", p, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Verify": s.Verify(context.Background(), EmptyHash),
		"Pin":    s.Pin(EmptyHash),
		"Unpin":  s.Unpin(EmptyHash),
	} {
		if err != nil {
			t.Errorf("%s(EmptyHash) = %v", name, err)
		}
	}
	if ok, err := s.Release(context.Background(), refMap{}, EmptyHash); ok || err != nil {
		t.Fatalf("Release(EmptyHash) = %v, %v", ok, err)
	}
}

func TestAbort(t *testing.T) {
	s := newStore(t)
	w, err := s.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randBytes(t, 1000)); err != nil {
		t.Fatal(err)
	}
	if n := tmpEntries(t, s); len(n) != 1 {
		t.Fatalf("temp files while writing: %v", n)
	}
	w.Abort()
	w.Abort() // idempotent
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files after Abort: %v", n)
	}
	if objs, _, _ := s.Usage(); objs != 0 {
		t.Fatalf("Usage = %d objects after Abort", objs)
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}

	// Abort after Commit is a no-op: the object stays.
	w, err = s.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("keep me"))
	blob, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if !s.Has(blob.Hash) || s.Pins(blob.Hash) != 1 {
		t.Fatal("Abort after Commit removed or unpinned the object")
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
}

func TestSameContentTwice(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 300_000)
	a, b := put(t, s, data), put(t, s, data)
	if a != b {
		t.Fatalf("blobs differ: %+v %+v", a, b)
	}
	if objs, size, _ := s.Usage(); objs != 1 || size != int64(len(data)) {
		t.Fatalf("Usage = %d, %d; want 1 object", objs, size)
	}
	if p := s.Pins(a.Hash); p != 2 {
		t.Fatalf("Pins = %d, want 2", p)
	}
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files left: %v", n)
	}
}

func TestConcurrentWritersSameContent(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 1<<20)
	const n = 8
	blobs := make([]Blob, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { blobs[i], errs[i] = s.Put(context.Background(), bytes.NewReader(data)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || blobs[i].Hash != sha(data) {
			t.Fatalf("writer %d: %+v, %v", i, blobs[i], errs[i])
		}
	}
	if objs, _, _ := s.Usage(); objs != 1 {
		t.Fatalf("Usage = %d objects, want 1", objs)
	}
	if p := s.Pins(sha(data)); p != n {
		t.Fatalf("Pins = %d, want %d", p, n)
	}
	if got, err := readAll(t, s, sha(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files left: %v", n)
	}
}

// corrupt damages the object h on disk with f and returns its path.
func corrupt(t *testing.T, s *Store, h string, f func(path string) error) {
	t.Helper()
	if err := f(s.path(h)); err != nil {
		t.Fatal(err)
	}
}

func truncateTo(n int64) func(string) error {
	return func(p string) error { return os.Truncate(p, n) }
}

func appendByte(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte{0})
	return err
}

// TestCorruptionDetected damages objects in several ways and reads them the
// ways a server does; each must end in ErrCorrupt, deliver fewer bytes than
// the object's size, and quarantine the object.
func TestCorruptionDetected(t *testing.T) {
	const size = 1<<20 + 17
	damages := []struct {
		name string
		f    func(string) error
	}{
		{"flip first byte", flipByte(0)},
		{"flip middle byte", flipByte(size / 2)},
		{"flip last byte", flipByte(size - 1)},
		{"truncated to half", truncateTo(size / 2)},
		{"truncated to zero", truncateTo(0)},
		{"extra byte", appendByte},
	}
	reads := []struct {
		name string
		read func(f *File) (int64, error)
	}{
		{"ReadAll", func(f *File) (int64, error) {
			b, err := io.ReadAll(f)
			return int64(len(b)), err
		}},
		{"CopyN size", func(f *File) (int64, error) {
			return io.CopyN(io.Discard, f, f.Size())
		}},
		{"ServeContent pattern", func(f *File) (int64, error) {
			// Seek to the end for the size, sniff 512 bytes, rewind, copy.
			size, err := f.Seek(0, io.SeekEnd)
			if err != nil {
				return 0, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return 0, err
			}
			io.ReadFull(f, make([]byte, 512))
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return 0, err
			}
			return io.CopyN(io.Discard, f, size)
		}},
		{"Verify", nil},
	}
	for _, d := range damages {
		for _, r := range reads {
			t.Run(d.name+"/"+r.name, func(t *testing.T) {
				s := newStore(t)
				blob := put(t, s, randBytes(t, size))
				corrupt(t, s, blob.Hash, d.f)
				var err error
				if r.read == nil {
					err = s.Verify(context.Background(), blob.Hash)
				} else {
					// An empty file is caught by Open already.
					f, oerr := s.Open(blob.Hash)
					err = oerr
					if oerr == nil {
						var n int64
						n, err = r.read(f)
						if n >= f.Size() {
							t.Errorf("delivered %d bytes of %d: the last chunk must be withheld", n, f.Size())
						}
						if _, again := f.Read(make([]byte, 10)); !errors.Is(again, ErrCorrupt) {
							t.Errorf("Read after corruption = %v, want sticky ErrCorrupt", again)
						}
						f.Close()
					}
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if s.Has(blob.Hash) {
					t.Fatal("corrupt object still in objects/")
				}
				if ents, _ := os.ReadDir(s.corrupt); len(ents) != 1 {
					t.Fatalf("quarantine holds %d files, want 1", len(ents))
				}
				if err := s.Verify(context.Background(), blob.Hash); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Verify after quarantine = %v, want ErrNotFound", err)
				}
			})
		}
	}
}

func TestRepairAfterCorruption(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 50_000)
	blob := put(t, s, data)
	corrupt(t, s, blob.Hash, flipByte(10))
	if err := s.Verify(context.Background(), blob.Hash); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v", err)
	}
	// Quarantine made room: a fresh Put writes a good copy instead of
	// deduplicating against the corrupt one.
	put(t, s, data)
	if err := s.Verify(context.Background(), blob.Hash); err != nil {
		t.Fatalf("Verify after repair: %v", err)
	}
	if p := s.Pins(blob.Hash); p != 2 {
		t.Fatalf("pins = %d, want 2 (pins survive quarantine)", p)
	}
}

func TestCommitReplacesObjectOfWrongSize(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 50_000)
	blob := put(t, s, data)
	corrupt(t, s, blob.Hash, truncateTo(100))
	put(t, s, data)
	if err := s.Verify(context.Background(), blob.Hash); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestServeContent checks the property verify-on-read exists for: a full GET
// of a corrupt object through http.ServeContent never completes.
func TestServeContent(t *testing.T) {
	s := newStore(t)
	data := randBytes(t, 3<<20)
	blob := put(t, s, data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := s.Open(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	defer srv.Close()
	get := func(rng string) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+blob.Hash, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	if got, err := get(""); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("good GET: %d bytes, %v", len(got), err)
	}
	if got, err := get("bytes=100-199"); err != nil || !bytes.Equal(got, data[100:200]) {
		t.Fatalf("good range GET: %d bytes, %v", len(got), err)
	}
	corrupt(t, s, blob.Hash, flipByte(int64(len(data)-1)))
	got, err := get("")
	if err == nil {
		t.Fatalf("corrupt GET completed with %d bytes and no error", len(got))
	}
	if len(got) >= len(data) {
		t.Fatalf("corrupt GET delivered %d bytes of %d", len(got), len(data))
	}
}

func TestVerify(t *testing.T) {
	s := newStore(t)
	blob := put(t, s, randBytes(t, 1<<20))
	missing := sha([]byte("not stored"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		hash string
		want error
	}{
		{"good", context.Background(), blob.Hash, nil},
		{"missing", context.Background(), missing, ErrNotFound},
		{"invalid", context.Background(), "../x", ErrInvalidHash},
		{"cancelled", cancelled, blob.Hash, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Verify(tc.ctx, tc.hash)
			if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if !s.Has(blob.Hash) {
		t.Fatal("a cancelled Verify must not quarantine")
	}
}

func TestInvalidHashRejected(t *testing.T) {
	s := newStore(t)
	valid := sha([]byte("x"))
	for _, h := range []string{
		"",
		"../etc/passwd",
		strings.Repeat("../", 18) + "etc/passwd", // 64 bytes
		strings.ToUpper(valid),
		valid[:63] + "A",
		valid[:63],
		valid + "0",
		valid[:63] + "\x00",
		"\x00" + valid[1:],
		valid[:2] + "/" + valid[3:],
		strings.Repeat("g", 64),
		valid[:62] + "é",
		" " + valid[1:],
	} {
		t.Run(h, func(t *testing.T) {
			if s.Has(h) {
				t.Error("Has = true")
			}
			_, errOpen := s.Open(h)
			_, errRelease := s.Release(context.Background(), refMap{}, h)
			for name, err := range map[string]error{
				"Open":    errOpen,
				"Pin":     s.Pin(h),
				"Unpin":   s.Unpin(h),
				"Verify":  s.Verify(context.Background(), h),
				"Release": errRelease,
			} {
				if !errors.Is(err, ErrInvalidHash) {
					t.Errorf("%s = %v, want ErrInvalidHash", name, err)
				}
			}
		})
	}
}

func TestOpenRemovesLeftoverTemp(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	blob := put(t, s, []byte("survives"))
	w, err := s.NewWriter() // an upload interrupted by a crash
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half an upl"))
	os.MkdirAll(filepath.Join(dir, "tmp", "junkdir"), 0o700)
	os.WriteFile(filepath.Join(dir, "tmp", "junkdir", "f"), []byte("x"), 0o600)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files after reopen: %v", n)
	}
	if got, err := readAll(t, s, blob.Hash); err != nil || string(got) != "survives" {
		t.Fatalf("object after reopen: %q, %v", got, err)
	}
	if s.Pins(blob.Hash) != 0 {
		t.Fatal("pins are in memory only and must start at 0")
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testLogger(t)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
}

// cancelAfter cancels its context after the first Read.
type cancelAfter struct {
	r      io.Reader
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

func TestPutCancelled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := randBytes(t, 4*copyBufSize)
	_, err := s.Put(ctx, &cancelAfter{r: bytes.NewReader(data), cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if s.Has(sha(data)) {
		t.Fatal("cancelled Put stored an object")
	}
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files left: %v", n)
	}
}

// failReader fails after yielding some bytes, like a dropped client.
type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestPutReaderError(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), &failReader{n: 1000}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Put = %v", err)
	}
	if objs, _, _ := s.Usage(); objs != 0 {
		t.Fatal("failed Put stored an object")
	}
	if n := tmpEntries(t, s); len(n) != 0 {
		t.Fatalf("temp files left: %v", n)
	}
}

func TestPinUnpin(t *testing.T) {
	s := newStore(t)
	missing := sha([]byte("absent"))
	if err := s.Pin(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Pin(missing) = %v, want ErrNotFound", err)
	}
	blob := put(t, s, []byte("pinned"))
	if err := s.Pin(blob.Hash); err != nil {
		t.Fatal(err)
	}
	if p := s.Pins(blob.Hash); p != 2 {
		t.Fatalf("Pins = %d, want 2", p)
	}
	for range 2 {
		if err := s.Unpin(blob.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unpin(blob.Hash); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("extra Unpin = %v, want ErrNotPinned", err)
	}
}

func TestStrayFilesLeftAlone(t *testing.T) {
	s := newStore(t)
	stray := []string{
		filepath.Join(s.objects, "ab", "README"),
		filepath.Join(s.objects, "ab", sha([]byte("wrong fan-out"))), // a hash not starting with ab
	}
	if h := sha([]byte("wrong fan-out")); h[:2] == "ab" {
		t.Fatal("the test input must not hash into fan-out ab; pick another")
	}
	for _, p := range stray {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-48 * time.Hour)
		os.Chtimes(p, old, old)
	}
	if st, err := s.Collect(context.Background(), refMap{}, 0); err != nil || st.Scanned != 0 {
		t.Fatalf("Collect = %+v, %v", st, err)
	}
	if objs, _, _ := s.Usage(); objs != 0 {
		t.Fatalf("Usage counted %d stray files", objs)
	}
	for _, p := range stray {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("stray file removed: %v", err)
		}
	}
}

func flipByte(off int64) func(string) error {
	return func(p string) error { return testdisk.FlipByte(p, off) }
}
