package e2e

import (
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The quota, the low-water mark and the request limits against real
// three-node clusters: refusals carry the right status and say why, and
// leave nothing behind on any node.

const mib = 1 << 20

// quotaClient sends uploads with "Expect: 100-continue" and waits for the
// server's go-ahead before sending a body, so a refusal before the body is
// read leaves the body unread on the client side too.
func quotaClient(t *testing.T) *http.Client {
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countedBody counts the bytes taken from it.
type countedBody struct {
	r io.Reader
	n atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// upload PUTs size zero bytes to p on n, with a Content-Length unless
// chunked, and returns the status, the response body and how many body
// bytes the client sent.
func upload(t *testing.T, hc *http.Client, n *node, p string, size int64, chunked bool) (int, string, http.Header, int64) {
	t.Helper()
	body := &countedBody{r: io.LimitReader(zeroReader{}, size)}
	req, err := http.NewRequest(http.MethodPut, n.URL+strings.TrimPrefix(p, "/"), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	req.ContentLength = size
	if chunked {
		req.ContentLength = -1
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("PUT %s on %s: %v", p, n.spec.ID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header, body.n.Load()
}

// contentFiles lists every file under a node's content directory
// (objects, temp files, partial downloads), its lock file aside.
func contentFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dataDir, "content"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != "LOCK" {
			rel, _ := filepath.Rel(dataDir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// snapshotContent records every node's content files.
func snapshotContent(t *testing.T, nodes []*node) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, n := range nodes {
		out[n.spec.ID] = contentFiles(t, n.DataDir)
	}
	return out
}

// nothingLeftBehind waits until every node's content directory is as it
// was before (followers discard an aborted push's temp file once they see
// the abort) and checks that path p exists through no node.
func nothingLeftBehind(t *testing.T, nodes []*node, before map[string][]string, p string) {
	t.Helper()
	var diff string
	ok := poll(20*time.Second, func() bool {
		for _, n := range nodes {
			got := contentFiles(t, n.DataDir)
			if !slices.Equal(got, before[n.spec.ID]) {
				diff = n.spec.ID + ": before " + strings.Join(before[n.spec.ID], ",") + "; now " + strings.Join(got, ",")
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("content left behind: %s", diff)
	}
	for _, n := range nodes {
		d := newDAV(t, n)
		if resp, _ := d.do(http.MethodGet, p, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s on %s: %d, want 404", p, n.spec.ID, resp.StatusCode)
		}
	}
}

const quotaPropfind = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>` +
	`<D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`

// quotaOf reads the RFC 4331 properties of p through n.
func quotaOf(t *testing.T, n *node, p string) (used, avail int64) {
	t.Helper()
	ps, _ := newDAV(t, n).propfind(p, "0", quotaPropfind)
	r := ps[strings.TrimSuffix(p, "/")]
	if p == "/" {
		r = ps["/"]
	}
	u, err1 := strconv.ParseInt(r["DAV: quota-used-bytes"], 10, 64)
	a, err2 := strconv.ParseInt(r["DAV: quota-available-bytes"], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("PROPFIND %s on %s: quota properties %v", p, n.spec.ID, r)
	}
	return u, a
}

// wantQuota checks the quota properties through every node.
func wantQuota(t *testing.T, nodes []*node, used, avail int64) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range []string{"/", "/d"} {
			u, a := quotaOf(t, n, p)
			if u != used || a != avail {
				t.Fatalf("PROPFIND %s on %s: quota-used-bytes %d, quota-available-bytes %d; want %d, %d", p, n.spec.ID, u, a, used, avail)
			}
		}
	}
}

func TestQuotaCluster(t *testing.T) {
	const quota = 8 * mib
	c := startCluster(t, 3, redisStore,
		"--quota-bytes", strconv.Itoa(quota), "--max-upload-bytes", strconv.Itoa(6*mib), "--max-concurrent-uploads", "1")
	leader := c.nodes[c.leader(t)]
	followers := c.followers(t)
	all := c.running()
	hc := quotaClient(t)

	// The properties match what was written, through every node.
	ld := newDAV(t, leader)
	ld.must("MKCOL", "/d", nil, nil, http.StatusCreated)
	wantQuota(t, all, 0, quota)
	ld.put("/d/a", make([]byte, 1*mib))
	newDAV(t, followers[0]).put("/b", make([]byte, 2*mib))
	wantQuota(t, all, 3*mib, quota-3*mib)

	before := snapshotContent(t, all)
	cases := []struct {
		name    string
		via     *node
		size    int64
		chunked bool
		want    int
		msg     string
		early   bool // refused before the body is read
	}{
		{"Content-Length over the quota, leader", leader, 6 * mib, false, http.StatusInsufficientStorage, "<D:quota-not-exceeded></D:quota-not-exceeded><D:responsedescription>insufficient storage: quota 8388608 bytes, used 3145728 bytes", true},
		{"Content-Length over the quota, follower", followers[0], 6 * mib, false, http.StatusInsufficientStorage, "quota 8388608 bytes, used 3145728 bytes", false},
		{"chunked over the quota, leader", leader, 6 * mib, true, http.StatusInsufficientStorage, "quota 8388608 bytes", false},
		{"chunked over the quota, follower", followers[1], 6 * mib, true, http.StatusInsufficientStorage, "quota 8388608 bytes", false},
		{"over the upload limit, leader", leader, 7 * mib, false, http.StatusRequestEntityTooLarge, "limit of 6291456 bytes (--max-upload-bytes)", true},
		{"over the upload limit, follower", followers[1], 7 * mib, false, http.StatusRequestEntityTooLarge, "limit of 6291456 bytes (--max-upload-bytes)", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _, sent := upload(t, hc, tc.via, "/x", tc.size, tc.chunked)
			if status != tc.want || !strings.Contains(body, tc.msg) {
				t.Fatalf("got %d %q, want %d saying %q", status, body, tc.want, tc.msg)
			}
			if tc.early && sent != 0 {
				t.Errorf("the client sent %d body bytes before the refusal", sent)
			}
			nothingLeftBehind(t, all, before, "/x")
		})
	}
	wantQuota(t, all, 3*mib, quota-3*mib)

	// COPY counts the copied bytes.
	ld.must("COPY", "/b", nil, map[string]string{"Destination": ld.url("/b2")}, http.StatusCreated)
	ld.must("COPY", "/d", nil, map[string]string{"Destination": ld.url("/d2")}, http.StatusCreated)
	wantQuota(t, all, 6*mib, 2*mib)
	ld.put("/c", make([]byte, 3*mib/2))
	resp, body := newDAV(t, followers[0]).do("COPY", "/b", nil, map[string]string{"Destination": ld.url("/b3")})
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "quota 8388608") {
		t.Fatalf("COPY over the quota: %d %s, want 507", resp.StatusCode, body)
	}
	wantQuota(t, all, 15*mib/2, mib/2)

	// One upload at a time on the leader: one forwarded by a follower
	// while another streams gets 503 with Retry-After.
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, leader.URL+"slow", pr)
		req.Header.Set("Expect", "100-continue")
		resp, err := hc.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("the first bytes")); err != nil { // returns once the leader reads the body
		t.Fatal(err)
	}
	status, msg, hdr, _ := upload(t, hc, followers[1], "/second", 10, false)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "--max-concurrent-uploads") {
		t.Fatalf("upload beyond the cap: %d %q Retry-After %q; want 503 with Retry-After saying why", status, msg, hdr.Get("Retry-After"))
	}
	pw.Close()
	if s := <-first; s != http.StatusCreated {
		t.Fatalf("the first upload: %d", s)
	}
	// Deleting makes room again.
	ld.must(http.MethodDelete, "/d2", nil, nil, http.StatusNoContent)
	ld.must(http.MethodDelete, "/slow", nil, nil, http.StatusNoContent)
	wantQuota(t, all, 13*mib/2, 3*mib/2)
}

// freeBytes is what an unprivileged process may still write where dir is.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func TestLowWaterCluster(t *testing.T) {
	// A mark a little below the volume's current free space: the leader
	// refuses what would cross it. The three nodes take about 200 MiB as
	// they start (Raft log segments) and other processes share the
	// volume, so "a little" is 512 MiB and the refused upload is 1 GiB,
	// which the volume itself would hold.
	mark := freeBytes(t, t.TempDir()) - 512*mib
	c := startCluster(t, 3, embedded, "--min-free-bytes", strconv.FormatInt(mark, 10), "--min-free-percent", "100")
	li := c.leader(t)
	leader := c.nodes[li]
	all := c.running()
	hc := quotaClient(t)
	before := snapshotContent(t, all)
	for _, via := range all {
		status, body, _, sent := upload(t, hc, via, "/big", 1<<30, false)
		if status != http.StatusInsufficientStorage || !strings.Contains(body, "low-water mark") || !strings.Contains(body, "sufficient-disk-space") {
			t.Fatalf("1 GiB through %s: %d %q, want 507 naming the low-water mark", via.spec.ID, status, body)
		}
		if via == leader && sent != 0 {
			t.Errorf("the client sent %d body bytes before the refusal", sent)
		}
	}
	nothingLeftBehind(t, all, before, "/big")

	// Followers at their mark refuse the leader's pushes: without a
	// majority the write gets 507 (not 503) and leaves nothing anywhere.
	for i := range c.nodes {
		if i == li {
			continue
		}
		c.nodes[i].spec.Extra = append(slices.Clone(c.nodes[i].spec.Extra), "--min-free-bytes", strconv.FormatInt(1<<62, 10))
		c.restartNode(t, i)
	}
	if c.leader(t) != li {
		t.Fatal("leadership moved while the followers restarted")
	}
	all = c.running()
	before = snapshotContent(t, all)
	for _, tc := range []struct {
		via     *node
		chunked bool
	}{{leader, false}, {c.nodes[(li+1)%3], true}} {
		status, body, _, _ := upload(t, hc, tc.via, "/small", mib, tc.chunked)
		// The refusal names the follower that refused.
		if status != http.StatusInsufficientStorage || !strings.Contains(body, "low-water mark") ||
			!strings.Contains(body, "sufficient-disk-space") || !strings.Contains(body, "follower node") {
			t.Fatalf("1 MiB through %s (chunked %v) with both followers full: %d %q, want 507 naming the low-water mark",
				tc.via.spec.ID, tc.chunked, status, body)
		}
		t.Logf("through %s (chunked %v): %d %s", tc.via.spec.ID, tc.chunked, status, body)
		nothingLeftBehind(t, all, before, "/small")
	}
	// Usage is untouched and reported as such.
	if u, a := quotaOf(t, leader, "/"); u != 0 || a <= 0 {
		t.Fatalf("leader: used %d, available %d; want 0 and above 0", u, a)
	}
}
