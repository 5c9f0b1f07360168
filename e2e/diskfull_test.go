package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testredis"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after the nodes started later have stopped:
// cleanups run last first). A full tmpfs fails writes with ENOSPC exactly
// as a full volume does, and it can be grown in place (growTmpfs). It
// skips the test where mounting is not permitted (not root, no
// CAP_SYS_ADMIN, a container without it).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a size-limited tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// growTmpfs gives a tmpfs mounted by mountTmpfs a new size, in place: the
// files on it, and the node using it, stay as they are.
func growTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+strconv.FormatInt(size, 10), dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s with size %d: %v: %s", dir, size, err, out)
	}
}

// fillVolume writes a file at path until the volume holding it has no
// more than leave bytes free (0: until the volume refuses a single byte
// more with ENOSPC) and returns how many bytes it wrote.
func fillVolume(t *testing.T, path string, leave int64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 64 << 10, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if leave > 0 && freeBytes(t, filepath.Dir(path))-int64(chunk) < leave {
				break
			}
			m, err := f.Write(buf)
			n += int64(m)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", path, err)
			}
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	return n
}

// rawUpload PUTs size zero bytes to p over a plain TCP connection and
// returns the server's answer, read while the body is still being sent.
// Go's HTTP client may report the reset of a connection that the server
// answered early and closed instead of the answer (the reset drops the
// unread answer from the client's receive buffer), which would hide
// what the server said.
func rawUpload(t *testing.T, addr, p string, size int64, chunked bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "PUT " + p + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		head += "Content-Length: " + strconv.FormatInt(size, 10) + "\r\n\r\n"
	}
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for sent := int64(0); sent < size; sent += int64(len(buf)) {
			chunk := buf
			if chunked {
				chunk = append([]byte(fmt.Sprintf("%x\r\n", len(buf))), append(buf, '\r', '\n')...)
			}
			if _, err := conn.Write(chunk); err != nil {
				return // the server answered and closed: expected
			}
		}
		if chunked {
			_, _ = io.WriteString(conn, "0\r\n\r\n")
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("PUT %s (%d bytes, chunked %v): no answer: %v", p, size, chunked, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// leftovers lists the files under a node's content directory that only an
// unfinished write leaves: temp files and partial downloads.
func leftovers(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, f := range contentFiles(t, dataDir) {
		if strings.HasPrefix(f, filepath.Join("content", "tmp")) || strings.HasPrefix(f, filepath.Join("content", "partial")) {
			out = append(out, f)
		}
	}
	return out
}

// TestDiskFull fills the volume that holds a node's whole data directory
// (content, Raft log, the embedded store's meta.db) while it runs. What it
// proves: an upload that does not fit, and every write once the volume is
// full, is answered 507 (DAV:sufficient-disk-space) or, when only its
// outcome is unknown, 503 with Retry-After, never 500 and never 2xx for
// what the node could not make durable; nothing half-written is visible or
// left in the content directory; reads of existing files go on; and once
// space returns the node takes writes again without a restart, and what it
// acknowledged survives a kill -9. The Raft log shares the volume with the
// content (--data-dir holds both), so small log segments make the log roll
// over to new segment files, which need space, while the volume is full.
func TestDiskFull(t *testing.T) {
	const volSize = 48 * mib
	for _, tc := range []struct {
		name     string
		st       store
		lowWater int64 // --min-free-bytes; 0 turns the mark off so real ENOSPC is reached
	}{
		{"embedded store, no low-water mark", embedded, 0},
		{"redis store, no low-water mark", redisStore, 0},
		{"embedded store, low-water mark", embedded, 8 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := mountTmpfs(t, volSize)
			// The mark is the smaller of the two flags: a percentage of
			// 100 leaves --min-free-bytes in charge, 0 turns it off.
			percent := "100"
			if tc.lowWater == 0 {
				percent = "0"
			}
			spec := nodeSpec{DataDir: filepath.Join(vol, "data"), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
				Extra: []string{"--min-free-bytes", strconv.FormatInt(tc.lowWater, 10), "--min-free-percent", percent,
					"--raft-wal-segment-size", strconv.Itoa(64 << 10)}}
			if tc.st == redisStore {
				spec.RedisURL = testredis.Start(t)
			}
			n := startNodeAt(t, spec, true)
			d := newDAV(t, n)
			keep := randData(1, 200<<10)
			keepETag := d.put("/keep.bin", keep)
			d.must("MKCOL", "/dir", nil, nil, http.StatusCreated)

			// An upload larger than the free space: refused, and nothing of
			// it stays.
			for _, chunked := range []bool{false, true} {
				status, body := rawUpload(t, spec.HTTPAddr, "/big.bin", 2*volSize, chunked)
				if status != http.StatusInsufficientStorage || !strings.Contains(body, "sufficient-disk-space") {
					t.Fatalf("PUT of %d bytes (chunked %v) onto a %d-byte volume: %d %q, want 507 with DAV:sufficient-disk-space",
						2*volSize, chunked, volSize, status, body)
				}
				d.expectStatus(http.MethodGet, "/big.bin", http.StatusNotFound)
				if l := leftovers(t, n.DataDir); len(l) > 0 {
					t.Fatalf("after the refused upload (chunked %v) the content directory holds %v", chunked, l)
				}
			}

			// The volume full, to the last byte (or down to the mark).
			filler := filepath.Join(vol, "filler")
			fillVolume(t, filler, tc.lowWater/2)
			t.Logf("volume filled: %d bytes free", freeBytes(t, vol))

			// Reads go on while the volume is full.
			d.expectFile("/keep.bin", sha(keep), int64(len(keep)), keepETag)
			d.propfind("/", "1", "")

			acked := map[string][]byte{"/keep.bin": keep}
			for i, w := range []struct {
				method, path string
				body         []byte
			}{
				{http.MethodPut, "/full.bin", randData(2, 256<<10)},
				{http.MethodPut, "/dir/full-small.txt", []byte("a small file on a full volume\n")},
				{http.MethodPut, "/full-empty.txt", []byte{}}, // no content: only the Raft log and the store
				{"MKCOL", "/full-dir", nil},
				{http.MethodPut, "/keep.bin", randData(3, 100<<10)}, // an overwrite
			} {
				// Enough writes that the Raft log has to open a new
				// segment file on the full volume.
				for j := 0; j < 3; j++ {
					p := w.path
					if j > 0 && p != "/keep.bin" {
						p += "." + strconv.Itoa(j)
					}
					body := w.body
					if w.method == http.MethodPut && body == nil {
						body = []byte{}
					}
					resp, b := d.do(w.method, p, body, nil)
					switch {
					case resp.StatusCode == http.StatusInsufficientStorage:
						if !strings.Contains(string(b), "sufficient-disk-space") {
							t.Errorf("%s %s on a full volume: 507 without DAV:sufficient-disk-space: %s", w.method, p, b)
						}
					case resp.StatusCode == http.StatusServiceUnavailable:
						if resp.Header.Get("Retry-After") == "" {
							t.Errorf("%s %s on a full volume: 503 without Retry-After: %s", w.method, p, b)
						}
					case resp.StatusCode/100 == 2:
						// Acknowledged: it must have been made durable
						// (checked after the kill -9 below).
						if w.method == http.MethodPut {
							acked[p] = body
						}
						if len(body) > 0 {
							t.Errorf("%s %s (%d bytes) on a volume with no room for it: %d", w.method, p, len(body), resp.StatusCode)
						}
					default:
						t.Errorf("write %d: %s %s on a full volume: %d %s, want 507 or 503", i, w.method, p, resp.StatusCode, b)
					}
					t.Logf("full volume: %s %s: %d %s", w.method, p, resp.StatusCode, strings.TrimSpace(string(b)))
				}
			}
			if strings.Contains(n.logText(), "panic") {
				t.Fatalf("the node panicked on a full volume:\n%s", n.logText())
			}
			select {
			case <-n.exited:
				t.Fatalf("the node exited on a full volume:\n%s", n.logText())
			default:
			}

			// Reads go on while the volume is full, and nothing refused is
			// visible.
			checkRefusedInvisible := func(when string) {
				t.Helper()
				ps, _ := d.propfind("/", "1", "")
				for href := range ps {
					if strings.Contains(href, "big.bin") {
						t.Errorf("%s: PROPFIND lists %s", when, href)
					}
				}
				d.expectStatus(http.MethodGet, "/big.bin", http.StatusNotFound)
				if _, ok := acked["/full.bin"]; !ok {
					d.expectStatus(http.MethodGet, "/full.bin", http.StatusNotFound)
					for href := range ps {
						if strings.HasSuffix(href, "/full.bin") {
							t.Errorf("%s: PROPFIND lists %s, which was refused", when, href)
						}
					}
				}
			}
			// Once an entry cannot be applied (the embedded store's file
			// cannot grow), the node cannot confirm it holds the latest
			// committed state: reads get 503 with Retry-After, never an
			// answer from behind. With Redis the metadata is elsewhere and
			// reads are served.
			resp, b := d.do(http.MethodGet, "/keep.bin", nil, nil)
			switch {
			case resp.StatusCode == http.StatusOK:
				if sha(b) != sha(keep) {
					t.Fatalf("GET /keep.bin on a full volume: wrong bytes")
				}
			case resp.StatusCode == http.StatusServiceUnavailable && tc.st == embedded && resp.Header.Get("Retry-After") != "":
				t.Logf("GET /keep.bin once the embedded store cannot apply: 503 %s", b)
			default:
				t.Fatalf("GET /keep.bin on a full volume after the writes: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
			}
			if resp.StatusCode == http.StatusOK {
				checkRefusedInvisible("full volume")
			}
			if l := leftovers(t, n.DataDir); len(l) > 0 {
				t.Fatalf("on the full volume the content directory holds leftovers of refused writes: %v", l)
			}

			// Space returns: half of it by deleting the filler, the rest
			// by growing the volume in place. No restart.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			growTmpfs(t, vol, 2*volSize)
			after := randData(4, 300<<10)
			var last string
			ok := poll(30*time.Second, func() bool {
				resp, b := d.do(http.MethodPut, "/after.bin", after, nil)
				last = strconv.Itoa(resp.StatusCode) + " " + strings.TrimSpace(string(b))
				return resp.StatusCode/100 == 2
			})
			if !ok {
				t.Fatalf("the node takes no writes 30 s after space returned: last answer %s", last)
			}
			acked["/after.bin"] = after
			d.put("/dir/after-small.txt", []byte("after\n"))
			acked["/dir/after-small.txt"] = []byte("after\n")
			checkRefusedInvisible("space back")

			// What was acknowledged is durable: a kill -9 loses none of it.
			n = n.restart(t, false)
			d = newDAV(t, n)
			for p, want := range acked {
				d.expectFile(p, sha(want), int64(len(want)), "")
			}
			checkRefusedInvisible("after kill -9 and restart")
			if strings.Contains(n.logText(), "panic") {
				t.Fatalf("the node panicked:\n%s", n.logText())
			}
		})
	}
}
