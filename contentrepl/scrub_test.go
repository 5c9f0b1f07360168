package contentrepl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/testdisk"
)

// TestReadRepair corrupts a block of the local copy and reads it the way
// a GET does: the reader must deliver exactly the right bytes (fetching a
// good copy from the peer in the middle of the stream), or, with no peer
// that has it, fail without delivering a byte of the corrupt block.
func TestReadRepair(t *testing.T) {
	const size = 10*content.BlockSize + 99
	cases := []struct {
		name    string
		flip    int64 // offset of the damaged byte
		from    int64 // where the read starts (a Range request)
		noPeer  bool
		wantErr bool
	}{
		{name: "first block", flip: 3},
		{name: "middle block", flip: 5*content.BlockSize + 1},
		{name: "last block", flip: size - 1},
		{name: "range into the damage", flip: 7 * content.BlockSize, from: 6*content.BlockSize + 10},
		{name: "no peer has it", flip: 5 * content.BlockSize, noPeer: true, wantErr: true},
		{name: "first block, no peer has it", flip: 3, noPeer: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newCTCluster(t, 2, nil)
			x, peer := nodes[0], nodes[1]
			data := randData(t, size)
			h := x.put(t, data)
			if !tc.noPeer {
				peer.put(t, data)
			}
			flipByte(t, objectPath(x, h), tc.flip)

			f, err := x.c.Open(ctCtx(t), h, size)
			if err != nil {
				// Only a damaged first block is found before the first byte
				// (the caller answers 503).
				if tc.wantErr && tc.flip < content.BlockSize && errors.Is(err, ErrUnavailable) {
					if rr := x.c.ReadRepairs(); rr.Unrepaired != 1 {
						t.Fatalf("read repairs %+v, want 1 unrepaired", rr)
					}
					return
				}
				t.Fatalf("Open: %v", err)
			}
			defer f.Close()
			if _, err := f.Seek(tc.from, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			if tc.wantErr {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("read = %v, want ErrUnavailable", err)
				}
				good := tc.flip / content.BlockSize * content.BlockSize
				if !bytes.Equal(got, data[tc.from:good]) {
					t.Fatalf("delivered %d bytes, want only the %d good ones before the damaged block", len(got), good-tc.from)
				}
				if rr := x.c.ReadRepairs(); rr.Unrepaired != 1 {
					t.Fatalf("read repairs %+v, want 1 unrepaired", rr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data[tc.from:]) {
				t.Fatalf("read: %v, %d bytes right: %v", err, len(got), bytes.Equal(got, data[tc.from:]))
			}
			if !bytes.Equal(x.readLocal(t, h), data) {
				t.Fatal("local copy not repaired")
			}
			if rr := x.c.ReadRepairs(); rr.Repaired != 1 || rr.Unrepaired != 0 {
				t.Fatalf("read repairs %+v, want 1 repaired", rr)
			}
		})
	}
}

// TestReadRepairLegacy: an object without block sums (stored by an earlier
// version) is only found corrupt at its end, after its bytes were
// returned: the read must fail, not complete, and the copy is repaired
// for the next reader.
func TestReadRepairLegacy(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	x, peer := nodes[0], nodes[1]
	data := randData(t, 3*content.BlockSize+10)
	h := x.put(t, data)
	peer.put(t, data)
	if err := os.Remove(filepath.Join(x.dir, "content", "sums", h[:2], h)); err != nil {
		t.Fatal(err)
	}
	flipByte(t, objectPath(x, h), 100)
	if _, err := openAll(t, x, h, int64(len(data))); !errors.Is(err, content.ErrCorrupt) {
		t.Fatalf("reading a corrupt object without sums: %v, want ErrCorrupt", err)
	}
	if rr := x.c.ReadRepairs(); rr.Repaired != 1 {
		t.Fatalf("read repairs %+v, want 1 repaired", rr)
	}
	got, err := openAll(t, x, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("next read: %v", err)
	}
}

// TestReadRepairOverHTTP serves the healing reader with http.ServeContent,
// as WebDAV does, and checks what a client receives.
func TestReadRepairOverHTTP(t *testing.T) {
	const size = 6*content.BlockSize + 1
	nodes := newCTCluster(t, 2, nil)
	x, peer := nodes[0], nodes[1]
	data := randData(t, size)
	h := x.put(t, data)
	peer.put(t, data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := x.c.Open(r.Context(), h, size)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	defer srv.Close()
	get := func(rng string) []byte {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %q: body: %v", rng, err)
		}
		return b
	}
	flipByte(t, objectPath(x, h), 4*content.BlockSize+3)
	if got := get("bytes=100-"); !bytes.Equal(got, data[100:]) {
		t.Fatal("range GET over a corrupt block delivered wrong bytes")
	}
	flipByte(t, objectPath(x, h), 2*content.BlockSize)
	if got := get(""); !bytes.Equal(got, data) {
		t.Fatal("GET over a corrupt block delivered wrong bytes")
	}
}

// TestScrub damages a node's content every way a disk can and runs a
// pass: everything must be found, counted and repaired from the peer.
func TestScrub(t *testing.T) {
	nodes := newCTCluster(t, 2, nil)
	x, peer := nodes[0], nodes[1]
	fx := fsm.New(x.meta, zerolog.Nop(), fsm.WithTempDir(t.TempDir()))
	ctx := ctCtx(t)

	files := map[string][]byte{}
	next := applyCmds(t, fx, 1, fsm.Command{Op: fsm.OpInit}, fsm.Command{Op: fsm.OpMkcol, Path: "/d"})
	var hashes []string
	for i, size := range []int{100, 70_000, 300_000, 3*content.BlockSize + 5, 1 << 20} {
		data := randData(t, size)
		h := x.put(t, data)
		peer.put(t, data)
		files[h] = data
		hashes = append(hashes, h)
		next = applyCmds(t, fx, next, fsm.Command{Op: fsm.OpPut, Path: "/d/f" + string(rune('a'+i)), Hash: h, Size: int64(size)})
	}
	// Garbage: corrupt and unreferenced, only quarantined.
	garbage := x.put(t, randData(t, 5000))
	flipByte(t, objectPath(x, garbage), 10)

	flipByte(t, objectPath(x, hashes[0]), 50)                    // small object
	flipByte(t, objectPath(x, hashes[3]), 2*content.BlockSize+1) // a block
	if err := os.Truncate(objectPath(x, hashes[2]), 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(objectPath(x, hashes[1])); err != nil { // missing
		t.Fatal(err)
	}
	// Sums lost (an object from before block sums): rewritten.
	if err := os.Remove(filepath.Join(x.dir, "content", "sums", hashes[4][:2], hashes[4])); err != nil {
		t.Fatal(err)
	}

	var throttled int64
	st, err := x.c.Scrub(ctx, func(_ context.Context, n int) error { throttled += int64(n); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Objects: 4 referenced ones here plus the garbage; Corrupt: 3 plus the
	// garbage; Repaired: the 3 referenced corrupt ones and the missing one.
	want := ScrubStats{Objects: 5, Corrupt: 4, Missing: 1, SumsRewritten: 1, Repaired: 4, Unrepaired: 0}
	st.Bytes = 0
	if st != want {
		t.Fatalf("scrub = %+v\nwant     %+v", st, want)
	}
	if throttled == 0 {
		t.Fatal("scrub never asked the throttle")
	}
	for h, data := range files {
		if !bytes.Equal(x.readLocal(t, h), data) {
			t.Fatalf("%s not repaired", h[:8])
		}
	}
	if x.store.Has(garbage) {
		t.Fatal("corrupt garbage still in objects/")
	}

	// A second pass finds nothing; losing the only copy is reported.
	st, err = x.c.Scrub(ctx, nil, nil)
	if err != nil || st.Corrupt+st.Missing+st.SumsRewritten+st.Repaired != 0 || st.Objects != 5 {
		t.Fatalf("clean pass = %+v, %v", st, err)
	}
	x.setPeers()
	flipByte(t, objectPath(x, hashes[4]), 7)
	st, err = x.c.Scrub(ctx, nil, nil)
	if err != nil || st.Corrupt != 1 || st.Unrepaired != 1 || st.Missing != 0 {
		t.Fatalf("pass without peers = %+v, %v; want 1 corrupt, unrepaired, not also missing", st, err)
	}
}

// flipByte damages one byte of the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	if err := testdisk.FlipByte(path, off); err != nil {
		t.Fatal(err)
	}
}
