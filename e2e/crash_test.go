package e2e

// Crash tests: the durability promises of one node, checked by SIGKILL of a
// real dfs process and a restart on the same data directory, addresses and
// metadata store. For the Redis store the redis-server outlives the crash
// (only dfs is killed), as the per-node Redis sidecar does in Kubernetes.
//
// What a kill -9 proves and what it does not: the process dies at an
// arbitrary instruction, so every step that must be atomic (temp file ->
// rename, log append -> apply -> acknowledge, apply -> applied index) is
// exercised, and so is recovery (temp file cleanup, log replay). The page
// cache survives a process crash, so these tests cannot tell a missing
// fsync; power loss is out of their reach.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// forEachStore runs fn as a subtest per metadata store, both at once.
// They run concurrently through goroutines rather than t.Parallel: most of
// their time is spent waiting for a restarted node to elect itself, which
// costs no CPU, and -parallel (GOMAXPROCS by default) would serialise them.
func forEachStore(t *testing.T, fn func(t *testing.T, st store)) {
	var wg sync.WaitGroup
	for _, st := range []store{embedded, redisStore} {
		wg.Go(func() {
			t.Run(st.String(), func(t *testing.T) { fn(t, st) })
		})
	}
	wg.Wait()
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// randData returns n pseudo-random bytes, the same for the same seed.
func randData(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// dav is a WebDAV client of one node process, with its own connection
// pool so that no connection outlives the process it was made to.
type dav struct {
	t  *testing.T
	n  *node
	hc *http.Client
}

func newDAV(t *testing.T, n *node) *dav {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &dav{t: t, n: n, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

func (d *dav) url(p string) string {
	return d.n.URL + strings.TrimPrefix((&url.URL{Path: p}).EscapedPath(), "/")
}

func (d *dav) req(method, p string, body io.Reader, hdr map[string]string) *http.Request {
	d.t.Helper()
	req, err := http.NewRequest(method, d.url(p), body)
	if err != nil {
		d.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

// do sends a request and returns the response with its body read.
func (d *dav) do(method, p string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := d.hc.Do(d.req(method, p, r, hdr))
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("%s %s: read body: %v", method, p, err)
	}
	return resp, b
}

// must sends a request and fails unless it answers one of want.
func (d *dav) must(method, p string, body []byte, hdr map[string]string, want ...int) *http.Response {
	d.t.Helper()
	resp, b := d.do(method, p, body, hdr)
	mustStatus(d.t, resp, b, want...)
	return resp
}

// put writes data to p and returns the acknowledged strong ETag.
func (d *dav) put(p string, data []byte, want ...int) string {
	d.t.Helper()
	if len(want) == 0 {
		want = []int{http.StatusCreated, http.StatusNoContent}
	}
	resp := d.must(http.MethodPut, p, data, nil, want...)
	etag := resp.Header.Get("ETag")
	if len(data) > 0 && (!strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`)) {
		d.t.Fatalf("PUT %s: ETag %q is not a strong ETag", p, etag)
	}
	return etag
}

// get streams p and returns its status, SHA-256, size and ETag.
func (d *dav) get(p string) (status int, hash string, size int64, etag string) {
	d.t.Helper()
	resp, err := d.hc.Do(d.req(http.MethodGet, p, nil, nil))
	if err != nil {
		d.t.Fatalf("GET %s: %v", p, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	size, err = io.Copy(h, resp.Body)
	if err != nil {
		d.t.Fatalf("GET %s: read body after %d bytes: %v", p, size, err)
	}
	return resp.StatusCode, hex.EncodeToString(h.Sum(nil)), size, resp.Header.Get("ETag")
}

// expectFile fails unless p holds exactly the bytes hashing to want.
func (d *dav) expectFile(p, want string, wantSize int64, wantETag string) {
	d.t.Helper()
	status, got, size, etag := d.get(p)
	if status != http.StatusOK || got != want || size != wantSize {
		d.t.Errorf("GET %s: status %d, %d bytes, sha256 %.16s; want 200, %d bytes, %.16s", p, status, size, got, wantSize, want)
	}
	if wantETag != "" && etag != wantETag {
		d.t.Errorf("GET %s: ETag %s, want %s (acknowledged before the crash)", p, etag, wantETag)
	}
}

func (d *dav) expectStatus(method, p string, want int) {
	d.t.Helper()
	resp, b := d.do(method, p, nil, nil)
	if resp.StatusCode != want {
		d.t.Errorf("%s %s: status %d, want %d; body: %.300s", method, p, resp.StatusCode, want, b)
	}
}

// multistatus is a 207 body, read generically: every property of every
// propstat with its status.
type multistatus struct {
	Responses []struct {
		Href      string `xml:"DAV: href"`
		Propstats []struct {
			Prop struct {
				Any []struct {
					XMLName xml.Name
					Inner   string `xml:",innerxml"`
				} `xml:",any"`
			} `xml:"DAV: prop"`
			Status string `xml:"DAV: status"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

// props maps each href (unescaped, without a trailing slash) to its
// properties found with status 200, as "namespace local" -> inner XML.
type props map[string]map[string]string

func parseMultistatus(t testing.TB, body []byte) (ok props, statuses map[string][]string) {
	t.Helper()
	var ms multistatus
	if err := xml.Unmarshal(body, &ms); err != nil {
		t.Fatalf("parse multistatus: %v\n%s", err, body)
	}
	ok, statuses = props{}, map[string][]string{}
	for _, r := range ms.Responses {
		href, err := url.PathUnescape(r.Href)
		if err != nil {
			t.Fatalf("href %q: %v", r.Href, err)
		}
		if u, err := url.Parse(href); err == nil && u.Host != "" {
			href = u.Path
		}
		if href != "/" {
			href = strings.TrimSuffix(href, "/")
		}
		if ok[href] == nil {
			ok[href] = map[string]string{}
		}
		for _, ps := range r.Propstats {
			for _, p := range ps.Prop.Any {
				key := p.XMLName.Space + " " + p.XMLName.Local
				statuses[href+" "+key] = append(statuses[href+" "+key], ps.Status)
				if strings.Contains(ps.Status, " 200 ") {
					ok[href][key] = strings.TrimSpace(p.Inner)
				}
			}
		}
	}
	return ok, statuses
}

// propfind sends a PROPFIND and parses the 207.
func (d *dav) propfind(p, depth, body string) (props, map[string][]string) {
	d.t.Helper()
	resp, b := d.do("PROPFIND", p, []byte(body), map[string]string{"Depth": depth, "Content-Type": "application/xml"})
	mustStatus(d.t, resp, b, http.StatusMultiStatus)
	return parseMultistatus(d.t, b)
}

const testNS = "urn:dfs-test:"

func proppatchBody(set map[string]string, remove []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:T="` + testNS + `" xmlns:Z="urn:schemas-microsoft-com:">`)
	if len(set) > 0 {
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("<D:set><D:prop>")
		for _, k := range keys {
			fmt.Fprintf(&b, "<%s>%s</%s>", k, set[k], k)
		}
		b.WriteString("</D:prop></D:set>")
	}
	if len(remove) > 0 {
		b.WriteString("<D:remove><D:prop>")
		for _, k := range remove {
			fmt.Fprintf(&b, "<%s/>", k)
		}
		b.WriteString("</D:prop></D:remove>")
	}
	b.WriteString("</D:propertyupdate>")
	return b.String()
}

// proppatch sets and removes properties ("T:name" in testNS, "Z:name" in
// Microsoft's namespace) and fails unless every one of them succeeded.
func (d *dav) proppatch(p string, set map[string]string, remove ...string) {
	d.t.Helper()
	resp, b := d.do("PROPPATCH", p, []byte(proppatchBody(set, remove)), map[string]string{"Content-Type": "application/xml"})
	mustStatus(d.t, resp, b, http.StatusMultiStatus)
	_, statuses := parseMultistatus(d.t, b)
	if len(statuses) != len(set)+len(remove) {
		d.t.Fatalf("PROPPATCH %s: %d property results, want %d:\n%s", p, len(statuses), len(set)+len(remove), b)
	}
	for k, st := range statuses {
		for _, s := range st {
			if !strings.Contains(s, " 200 ") {
				d.t.Fatalf("PROPPATCH %s: %s: %s\n%s", p, k, s, b)
			}
		}
	}
}

func (d *dav) lock(p string) string {
	d.t.Helper()
	body := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>` +
		`<D:locktype><D:write/></D:locktype><D:owner>crash-test</D:owner></D:lockinfo>`
	resp := d.must("LOCK", p, []byte(body), map[string]string{"Timeout": "Second-3600", "Depth": "0", "Content-Type": "application/xml"},
		http.StatusOK, http.StatusCreated)
	tok := strings.Trim(resp.Header.Get("Lock-Token"), "<>")
	if tok == "" {
		d.t.Fatalf("LOCK %s: no Lock-Token", p)
	}
	return tok
}

// clusterStatus is the part of /cluster/status the tests read.
type clusterStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID           string `json:"id"`
		RaftAddr     string `json:"raft_addr"`
		AppliedIndex uint64 `json:"applied_index"`
		Voter        bool   `json:"voter"`
	} `json:"nodes"`
}

func (d *dav) status() clusterStatus {
	d.t.Helper()
	resp, b := d.do(http.MethodGet, "/cluster/status", nil, nil)
	mustStatus(d.t, resp, b, http.StatusOK)
	var cs clusterStatus
	if err := json.Unmarshal(b, &cs); err != nil {
		d.t.Fatalf("cluster status: %v\n%s", err, b)
	}
	if len(cs.Nodes) != 1 || cs.Nodes[0].ID != "n1" || cs.Leader != "n1" || !cs.Nodes[0].Voter ||
		cs.Nodes[0].RaftAddr != d.n.spec.RaftAddr {
		d.t.Fatalf("cluster status: want the single voter n1 at %s leading, got %s", d.n.spec.RaftAddr, b)
	}
	return cs
}

// objects returns every object in the node's content store by hash, and
// fails if any object's bytes do not hash to its name.
func objects(t testing.TB, n *node) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(n.DataDir, "content", "objects")
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by a sweep while we walked
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		size, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Errorf("object %s holds %d bytes hashing to %s: a torn or corrupt object", e.Name(), size, got)
		}
		out[e.Name()] = size
		return nil
	})
	if err != nil {
		t.Fatalf("walk content objects: %v", err)
	}
	return out
}

func tmpDir(n *node) string { return filepath.Join(n.DataDir, "content", "tmp") }

// uploads returns the temp files of uploads in progress and their sizes.
func uploads(t testing.TB, n *node) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(tmpDir(n))
	if err != nil {
		t.Fatalf("list temp files: %v", err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			out[e.Name()] = fi.Size()
		}
	}
	return out
}

// checkRecovered is what must hold after any restart: no temp file is
// left, and every object is whole.
func checkRecovered(t testing.TB, n *node) {
	t.Helper()
	if left := uploads(t, n); len(left) > 0 {
		t.Errorf("temp files left in %s after restart: %v", tmpDir(n), left)
	}
	objects(t, n)
}

// bigSize is the declared size of the uploads killed mid-body: far more
// than is ever sent.
const bigSize = 256 << 20

// killMidPut starts a PUT of a bigSize body to p, fed through a pipe, and
// SIGKILLs the node once its temp file for the upload holds at least
// killAt bytes, i.e. mid-body. It checks the upload was not acknowledged
// and that the crash left a partial temp file behind, and returns that
// file's size.
func killMidPut(t *testing.T, d *dav, p string, killAt int64, chunked bool, hdr map[string]string) int64 {
	t.Helper()
	n := d.n
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	fed := make(chan int64, 1)
	go func() {
		src := rand.NewChaCha8([32]byte{byte(killAt), 0xc7})
		buf := make([]byte, 64<<10)
		var sent int64
		defer func() { fed <- sent }()
		for sent < bigSize {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = src.Read(buf)
			m, err := pw.Write(buf)
			sent += int64(m)
			if err != nil {
				return
			}
		}
		pw.Close()
	}()
	req := d.req(http.MethodPut, p, pr, hdr)
	if !chunked {
		req.ContentLength = bigSize
	}
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := d.hc.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()

	var partial string
	waitFor(t, 30*time.Second, fmt.Sprintf("the upload's temp file to reach %d bytes", killAt), func() bool {
		select {
		case r := <-done:
			done <- r
			t.Fatalf("PUT %s ended before the kill: status %d, %v", p, r.status, r.err)
		default:
		}
		for name, size := range uploads(t, n) {
			if size >= killAt {
				partial = name
				return true
			}
		}
		return false
	})
	n.kill(t)
	close(stop)
	pw.CloseWithError(errors.New("node killed"))
	sent := <-fed
	r := <-done
	if r.err == nil && r.status < 300 {
		t.Fatalf("PUT %s of a body cut at %d bytes was acknowledged with %d", p, sent, r.status)
	}
	size := uploads(t, n)[partial]
	if size < killAt || size >= bigSize {
		t.Fatalf("after the kill the temp file %s holds %d bytes; want a partial upload of at least %d", partial, size, killAt)
	}
	t.Logf("killed PUT %s mid-body: %d bytes sent, %d in the temp file", p, sent, size)
	return size
}

// TestCrashAcknowledgedWritesSurviveKill9: every acknowledged mutation of
// every kind is there after a SIGKILL right after the last acknowledgement.
func TestCrashAcknowledgedWritesSurviveKill9(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		n := startNode(t, st)
		d := newDAV(t, n)

		for _, p := range []string{"/a", "/a/b", "/a/b/c", "/gone", "/gone/sub"} {
			d.must("MKCOL", p, nil, nil, http.StatusCreated)
		}
		type file struct {
			hash string
			size int64
			etag string
		}
		want := map[string]file{}
		put := func(p string, seed uint64, size int) {
			data := randData(seed, size)
			want[p] = file{sha(data), int64(size), d.put(p, data)}
		}
		put("/empty.txt", 1, 0)
		put("/one.txt", 2, 1)
		put("/a/small.txt", 3, 4096+3)
		put("/a/b/big.bin", 4, 3<<20+17)
		put("/a/b/c/huge.bin", 5, 9<<20+5)
		put("/to-move.bin", 6, 1<<20)
		put("/to-delete.txt", 7, 100)
		put("/gone/sub/x.txt", 8, 10)
		put("/over.txt", 9, 1000)
		put("/over.txt", 10, 2<<20+1) // overwrite: 204
		moved := want["/to-move.bin"]

		d.must("MOVE", "/to-move.bin", nil, map[string]string{"Destination": d.url("/a/b/c/moved.bin")}, http.StatusCreated)
		want["/a/b/c/moved.bin"] = moved
		delete(want, "/to-move.bin")
		d.must("COPY", "/a/b/big.bin", nil, map[string]string{"Destination": d.url("/a/copy.bin")}, http.StatusCreated)
		want["/a/copy.bin"] = want["/a/b/big.bin"]
		d.must("COPY", "/a/b", nil, map[string]string{"Destination": d.url("/b-copy"), "Depth": "infinity"}, http.StatusCreated)
		for p, f := range want {
			if rest, ok := strings.CutPrefix(p, "/a/b/"); ok {
				want["/b-copy/"+rest] = f
			}
		}
		d.must(http.MethodDelete, "/to-delete.txt", nil, nil, http.StatusNoContent)
		delete(want, "/to-delete.txt")
		d.must(http.MethodDelete, "/gone", nil, nil, http.StatusNoContent)
		delete(want, "/gone/sub/x.txt")

		d.proppatch("/a/b/c/huge.bin", map[string]string{"T:color": "blue", "Z:Win32FileAttributes": "00000020"})
		d.proppatch("/a", map[string]string{"T:note": "on a collection"})
		d.proppatch("/one.txt", map[string]string{"T:transient": "x"})
		d.proppatch("/one.txt", map[string]string{"T:kept": "yes"}, "T:transient")
		token := d.lock("/a/small.txt")

		// The last acknowledgement is in: crash now.
		n.kill(t)
		n = n.restart(t, false)
		d = newDAV(t, n)

		for p, f := range want {
			d.expectFile(p, f.hash, f.size, f.etag)
		}
		for _, p := range []string{"/to-move.bin", "/to-delete.txt", "/gone", "/gone/sub", "/gone/sub/x.txt"} {
			d.expectStatus(http.MethodGet, p, http.StatusNotFound)
		}
		for _, p := range []string{"/a", "/a/b", "/a/b/c", "/b-copy", "/b-copy/c"} {
			d.propfind(p, "0", `<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>`)
		}

		got, _ := d.propfind("/", "infinity", `<D:propfind xmlns:D="DAV:" xmlns:T="`+testNS+`" xmlns:Z="urn:schemas-microsoft-com:">`+
			`<D:prop><T:color/><T:note/><T:kept/><T:transient/><Z:Win32FileAttributes/></D:prop></D:propfind>`)
		wantProps := map[string]map[string]string{
			"/a/b/c/huge.bin": {testNS + " color": "blue", "urn:schemas-microsoft-com: Win32FileAttributes": "00000020"},
			"/a":              {testNS + " note": "on a collection"},
			"/one.txt":        {testNS + " kept": "yes"},
		}
		for href, want := range wantProps {
			if !reflect.DeepEqual(got[href], want) {
				t.Errorf("dead properties of %s after restart: %v, want %v", href, got[href], want)
			}
		}

		// The lock still holds: a PUT without its token is refused, one with
		// it goes through.
		d.must(http.MethodPut, "/a/small.txt", []byte("intruder"), nil, http.StatusLocked)
		d.expectFile("/a/small.txt", want["/a/small.txt"].hash, want["/a/small.txt"].size, want["/a/small.txt"].etag)
		disc, _ := d.propfind("/a/small.txt", "0", `<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`)
		if ld := disc["/a/small.txt"]["DAV: lockdiscovery"]; !strings.Contains(ld, token) {
			t.Errorf("lockdiscovery of /a/small.txt after restart lacks token %s: %s", token, ld)
		}
		d.must(http.MethodPut, "/a/small.txt", []byte("owner"), map[string]string{"If": "(<" + token + ">)"}, http.StatusNoContent)
		d.must("UNLOCK", "/a/small.txt", nil, map[string]string{"Lock-Token": "<" + token + ">"}, http.StatusNoContent)

		checkRecovered(t, n)
	})
}

// TestCrashKillMidUploadLeavesNoPartialFile: a PUT killed mid-body is never
// visible, in part or at all, and leaves no temp file or torn object.
func TestCrashKillMidUploadLeavesNoPartialFile(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		n := startNode(t, st)
		d := newDAV(t, n)
		d.must("MKCOL", "/dir", nil, nil, http.StatusCreated)
		neighbour := randData(1, 1<<20)
		etag := d.put("/dir/neighbour.bin", neighbour)

		for _, tc := range []struct {
			path    string
			killAt  int64
			chunked bool
		}{
			{"/new-1MiB.bin", 1 << 20, false},      // Content-Length: 256 MiB
			{"/dir/new-50MiB.bin", 50 << 20, true}, // chunked, as Finder sends
		} {
			partial := killMidPut(t, d, tc.path, tc.killAt, tc.chunked, nil)
			n = n.restart(t, false)
			d = newDAV(t, n)
			d.expectStatus(http.MethodGet, tc.path, http.StatusNotFound)
			d.expectStatus("PROPFIND", tc.path, http.StatusNotFound)
			d.expectFile("/dir/neighbour.bin", sha(neighbour), int64(len(neighbour)), etag)
			checkRecovered(t, n)
			for h, size := range objects(t, n) {
				// The neighbour is 1 MiB: as large as the killed upload
				// when the kill lands right at 1 MiB.
				if h != sha(neighbour) && size >= partial {
					t.Errorf("object %s of %d bytes: the killed upload of %d bytes became an object", h, size, partial)
				}
			}
			if !strings.Contains(n.logText(), "removed leftover temp file") {
				t.Errorf("the restarted node did not report removing the killed upload's temp file")
			}
			// The path is usable again.
			small := randData(uint64(tc.killAt), 1000)
			d.put(tc.path, small, http.StatusCreated)
			d.expectFile(tc.path, sha(small), 1000, "")
		}
	})
}

// TestCrashKillDuringOverwriteKeepsPreviousVersion: a PUT over an existing
// file killed mid-body leaves the previous version, byte for byte.
func TestCrashKillDuringOverwriteKeepsPreviousVersion(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		n := startNode(t, st)
		d := newDAV(t, n)
		v1 := randData(1, 3<<20+1)
		etag1 := d.put("/doc.bin", v1)
		d.proppatch("/doc.bin", map[string]string{"T:version": "1"})

		for _, tc := range []struct {
			killAt int64
			hdr    map[string]string
		}{
			{512 << 10, nil}, // less than v1 has
			{8 << 20, map[string]string{"If-Match": etag1}}, // more than v1 has, gvfs style
		} {
			killMidPut(t, d, "/doc.bin", tc.killAt, false, tc.hdr)
			n = n.restart(t, false)
			d = newDAV(t, n)
			d.expectFile("/doc.bin", sha(v1), int64(len(v1)), etag1)
			got, _ := d.propfind("/doc.bin", "0", `<D:propfind xmlns:D="DAV:" xmlns:T="`+testNS+`"><D:prop><D:getcontentlength/><D:getetag/><T:version/></D:prop></D:propfind>`)
			wantProps := map[string]string{"DAV: getcontentlength": fmt.Sprint(len(v1)), "DAV: getetag": etag1, testNS + " version": "1"}
			if !reflect.DeepEqual(got["/doc.bin"], wantProps) {
				t.Errorf("PROPFIND /doc.bin after the killed overwrite: %v, want %v", got["/doc.bin"], wantProps)
			}
			checkRecovered(t, n)
		}
		// v1 is still the version If-Match sees.
		v2 := randData(2, 1<<20)
		d.put("/doc.bin", v2, http.StatusNoContent)
		d.expectFile("/doc.bin", sha(v2), int64(len(v2)), "")
	})
}

// listing is a normalized PROPFIND Depth: infinity of / with allprop:
// every path with every property found, lockdiscovery aside (its timeout
// counts down).
func (d *dav) listing() props {
	d.t.Helper()
	got, _ := d.propfind("/", "infinity", `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`)
	for _, m := range got {
		delete(m, "DAV: lockdiscovery")
	}
	return got
}

func diffListings(t testing.TB, what string, want, got props) {
	t.Helper()
	if lines := listingDiff(want, got); len(lines) > 0 {
		t.Errorf("%s: PROPFIND / Depth infinity differs from the last acknowledged state:\n  %s", what, strings.Join(lines, "\n  "))
	}
}

// TestCrashReplayIdempotent: replaying the log after a crash, twice, with
// and without --bootstrap, changes nothing that was acknowledged.
func TestCrashReplayIdempotent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		n := startNode(t, st)
		d := newDAV(t, n)
		hashes := map[string]string{}
		for i := range 4 {
			d.must("MKCOL", fmt.Sprintf("/d%d", i), nil, nil, http.StatusCreated)
		}
		for i := range 40 {
			p := fmt.Sprintf("/d%d/f%02d.bin", i%4, i)
			data := randData(uint64(100+i), 1+i*997)
			d.put(p, data)
			hashes[p] = sha(data)
		}
		for i := 0; i < 40; i += 5 {
			p := fmt.Sprintf("/d%d/f%02d.bin", i%4, i)
			d.proppatch(p, map[string]string{"T:i": fmt.Sprint(i), "Z:Win32LastModifiedTime": "Mon, 01 Jan 2024 00:00:00 GMT"})
		}
		for i := 1; i < 40; i += 10 {
			src, dst := fmt.Sprintf("/d%d/f%02d.bin", i%4, i), fmt.Sprintf("/d%d/moved%02d.bin", (i+1)%4, i)
			d.must("MOVE", src, nil, map[string]string{"Destination": d.url(dst)}, http.StatusCreated)
			hashes[dst] = hashes[src]
			delete(hashes, src)
		}
		for i := 2; i < 40; i += 10 {
			src, dst := fmt.Sprintf("/d%d/f%02d.bin", i%4, i), fmt.Sprintf("/d%d/copy%02d.bin", (i+1)%4, i)
			d.must("COPY", src, nil, map[string]string{"Destination": d.url(dst)}, http.StatusCreated)
			hashes[dst] = hashes[src]
		}
		for i := 3; i < 40; i += 10 {
			p := fmt.Sprintf("/d%d/f%02d.bin", i%4, i)
			d.must(http.MethodDelete, p, nil, nil, http.StatusNoContent)
			delete(hashes, p)
		}
		for i := 4; i < 40; i += 10 {
			p := fmt.Sprintf("/d%d/f%02d.bin", i%4, i)
			data := randData(uint64(1000+i), 5000)
			d.put(p, data, http.StatusNoContent)
			hashes[p] = sha(data)
		}
		d.must("MOVE", "/d3", nil, map[string]string{"Destination": d.url("/d2/d3-moved")}, http.StatusCreated)
		for p, h := range hashes {
			if rest, ok := strings.CutPrefix(p, "/d3/"); ok {
				hashes["/d2/d3-moved/"+rest] = h
				delete(hashes, p)
			}
		}
		before := d.listing()
		if len(before) < 45 {
			t.Fatalf("listing before the crash has only %d entries", len(before))
		}
		// allprop must cover what the comparison is for: sizes, ETags and
		// dead properties.
		f00 := before["/d0/f00.bin"]
		if f00["DAV: getcontentlength"] != "1" || f00["DAV: getetag"] == "" || f00[testNS+" i"] != "0" ||
			f00["urn:schemas-microsoft-com: Win32LastModifiedTime"] == "" {
			t.Fatalf("allprop of /d0/f00.bin lacks size, ETag or dead properties: %v", f00)
		}
		applied := d.status().Nodes[0].AppliedIndex

		for i, bootstrap := range []bool{false, true} {
			n.kill(t)
			n = n.restart(t, bootstrap)
			d = newDAV(t, n)
			what := fmt.Sprintf("restart %d (--bootstrap %v)", i+1, bootstrap)
			now := d.status().Nodes[0].AppliedIndex
			if now < applied {
				t.Errorf("%s: applied_index went back from %d to %d", what, applied, now)
			}
			t.Logf("%s: applied_index %d -> %d", what, applied, now)
			applied = now
			diffListings(t, what, before, d.listing())
			checkRecovered(t, n)
		}
		for p, h := range hashes {
			if status, got, _, _ := d.get(p); status != http.StatusOK || got != h {
				t.Errorf("GET %s after two restarts: status %d, sha256 %.16s, want 200, %.16s", p, status, got, h)
			}
		}
		// The replayed node still takes writes, at a higher index.
		d.put("/after.txt", []byte("after"), http.StatusCreated)
		if now := d.status().Nodes[0].AppliedIndex; now <= applied {
			t.Errorf("applied_index %d after a new write, want more than %d", now, applied)
		}
	})
}

// TestGarbageCollectedNeverReferenced: content no file references is
// removed, after deletes and after a crash that orphaned an object, while
// referenced content survives every sweep.
func TestGarbageCollectedNeverReferenced(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		// --gc-grace 0s would mean the default (1h): ask for 1ms.
		n := startNode(t, st, "--gc-interval", "200ms", "--gc-grace", "1ms")
		d := newDAV(t, n)
		a, b, c1, c2 := randData(1, 1<<20), randData(2, 2<<20), randData(3, 300<<10), randData(4, 400<<10)
		d.put("/keep.bin", a)
		d.must("COPY", "/keep.bin", nil, map[string]string{"Destination": d.url("/keep-copy.bin")}, http.StatusCreated)
		d.put("/drop.bin", b)
		d.put("/over.bin", c1)
		d.put("/over.bin", c2, http.StatusNoContent)
		d.must(http.MethodDelete, "/keep.bin", nil, nil, http.StatusNoContent) // a is still referenced by the copy
		d.must(http.MethodDelete, "/drop.bin", nil, nil, http.StatusNoContent)

		referenced := map[string]int64{sha(a): int64(len(a)), sha(c2): int64(len(c2))}
		checkReferenced := func(what string) {
			t.Helper()
			got := objects(t, n)
			for h, size := range referenced {
				if got[h] != size {
					t.Fatalf("%s: referenced object %.16s is gone (objects: %v)", what, h, got)
				}
			}
		}
		onlyReferenced := func(what string) {
			t.Helper()
			waitFor(t, 10*time.Second, what, func() bool {
				checkReferenced(what)
				return reflect.DeepEqual(objects(t, n), referenced)
			})
		}
		onlyReferenced("the deleted and overwritten content to be removed")

		// The same bytes as removed garbage can come back.
		d.put("/drop-again.bin", b, http.StatusCreated)
		referenced[sha(b)] = int64(len(b))
		checkReferenced("after re-uploading removed content")

		// A crash between storing an upload's content and committing its
		// entry leaves an object no file references; so does a crash of
		// content replication. Plant one while the node is down, with a
		// leftover temp file.
		n.kill(t)
		orphan := randData(5, 700<<10)
		oh := sha(orphan)
		if err := os.WriteFile(filepath.Join(n.DataDir, "content", "objects", oh[:2], oh), orphan, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmpDir(n), "upload-crashed"), orphan[:1000], 0o640); err != nil {
			t.Fatal(err)
		}
		n = n.restart(t, false)
		d = newDAV(t, n)
		checkRecovered(t, n)
		onlyReferenced("the orphaned object to be removed after the restart")

		// Several more sweeps change nothing.
		sweeps := func() int { return strings.Count(n.logText(), `"message":"garbage collection"`) }
		until := sweeps() + 3
		waitFor(t, 10*time.Second, "three more sweeps", func() bool {
			checkReferenced("during sweeps")
			return sweeps() >= until
		})
		checkReferenced("after sweeps")
		d.expectFile("/keep-copy.bin", sha(a), int64(len(a)), "")
		d.expectFile("/over.bin", sha(c2), int64(len(c2)), "")
		d.expectFile("/drop-again.bin", sha(b), int64(len(b)), "")
		d.expectStatus(http.MethodGet, "/drop.bin", http.StatusNotFound)
	})
}
