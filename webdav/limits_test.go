package webdav_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfs-project/dfs/server"
)

// limitedNode starts a fresh single-node cluster with the given limits.
func limitedNode(t *testing.T, l server.Limits) *testNode {
	t.Helper()
	return startNodeWith(t, nodeOptions{dataDir: t.TempDir(), bootstrap: true, limits: l})
}

// recordingBody is a request body that counts the reads made of it, to
// prove a refusal came before the body was read.
type recordingBody struct {
	r     io.Reader
	reads atomic.Int64
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	return b.r.Read(p)
}

// upload sends a PUT of size bytes. With chunked it sends no
// Content-Length. The request asks for 100-continue: the client sends the
// body only once the server starts reading it, so a refusal before
// reading leaves the body untouched (reads == 0). Extra headers in h.
func (n *testNode) upload(t *testing.T, target string, size int64, chunked bool, h hdr) (response, int64) {
	t.Helper()
	body := &recordingBody{r: io.LimitReader(zeros{}, size)}
	var rd io.Reader = body
	req, err := n.newRequest(http.MethodPut, target, rd, h)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	if chunked {
		req.ContentLength = -1
	} else {
		req.ContentLength = size
	}
	r := n.send(t, req)
	return r, body.reads.Load()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

const quotaPropsBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>` +
	`<D:quota-available-bytes/><D:quota-used-bytes/><D:getcontentlength/></D:prop></D:propfind>`

// quotaProps reads the RFC 4331 properties of target.
func (n *testNode) quotaProps(t *testing.T, target string) (used, avail int64) {
	t.Helper()
	r := n.propfind(t, target, "0", quotaPropsBody)[strings.TrimSuffix(target, "/")]
	if target == "/" {
		r = n.propfind(t, target, "0", quotaPropsBody)["/"]
	}
	u, ok1 := r.value("DAV:", "quota-used-bytes")
	a, ok2 := r.value("DAV:", "quota-available-bytes")
	if !ok1 || !ok2 {
		t.Fatalf("PROPFIND %s: quota properties missing: %+v", target, r.props)
	}
	var err error
	if used, err = strconv.ParseInt(u, 10, 64); err != nil {
		t.Fatalf("quota-used-bytes %q: %v", u, err)
	}
	if avail, err = strconv.ParseInt(a, 10, 64); err != nil {
		t.Fatalf("quota-available-bytes %q: %v", a, err)
	}
	return used, avail
}

// objects lists the files under a node's content directory: objects,
// temp files and partial downloads alike.
func objects(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dataDir, "content"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && filepath.Base(p) != "LOCK" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestQuotaPut(t *testing.T) {
	n := limitedNode(t, server.Limits{QuotaBytes: 1000})
	dataDir := n.opts.dataDir
	n.put(t, "/a", strings.Repeat("a", 600))
	before := objects(t, dataDir)

	cases := []struct {
		name      string
		target    string
		size      int64
		chunked   bool
		h         hdr
		want      int
		wantReads bool // the body is read (streamed) before the answer
		wantMsg   string
	}{
		{"Content-Length over the quota", "/b", 401, false, nil, http.StatusInsufficientStorage, false, "quota 1000 bytes, used 600 bytes"},
		{"Finder's size hint over the quota", "/b", 401, true, hdr{"X-Expected-Entity-Length": "401"}, http.StatusInsufficientStorage, false, "quota 1000 bytes, used 600 bytes"},
		{"chunked, stopped while streaming", "/b", 5000, true, nil, http.StatusInsufficientStorage, true, "quota 1000 bytes"},
		{"overwrite that grows over the quota", "/a", 1001, false, nil, http.StatusInsufficientStorage, false, "quota 1000 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, reads := n.upload(t, tc.target, tc.size, tc.chunked, tc.h)
			if r.status != tc.want {
				t.Fatalf("got %s, want %d", r, tc.want)
			}
			if !strings.Contains(string(r.body), tc.wantMsg) || !strings.Contains(string(r.body), "<D:quota-not-exceeded>") {
				t.Errorf("body %q does not say %q in a DAV:quota-not-exceeded error", r.body, tc.wantMsg)
			}
			if !tc.wantReads && reads != 0 {
				t.Errorf("the body was read %d times before the refusal", reads)
			}
		})
	}
	if n.exists(t, "/b") {
		t.Error("/b exists after refused uploads")
	}
	if got := n.get(t, "/a"); got != strings.Repeat("a", 600) {
		t.Errorf("/a changed by a refused overwrite: %d bytes", len(got))
	}
	// Nothing left behind: no new object, no temp file.
	if after := objects(t, dataDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("content directory changed by refused uploads:\nbefore %v\nafter  %v", before, after)
	}

	// Within the quota: an overwrite counts only its growth, and exactly
	// reaching the quota is allowed.
	n.put(t, "/a", strings.Repeat("b", 900))
	n.put(t, "/c", strings.Repeat("c", 100))
	used, avail := n.quotaProps(t, "/")
	if used != 1000 || avail != 0 {
		t.Fatalf("at the quota: used %d, available %d; want 1000, 0", used, avail)
	}
	// COPY counts the copied bytes against the quota too.
	r := n.do(t, "COPY", "/c", "", hdr{"Destination": n.abs("/c2")})
	if r.status != http.StatusInsufficientStorage || !strings.Contains(string(r.body), "quota 1000") ||
		!strings.Contains(string(r.body), "<D:quota-not-exceeded>") {
		t.Fatalf("COPY over the quota: %s, want 507 naming the quota", r)
	}
	// Deleting makes room again.
	n.must(t, http.StatusNoContent, http.MethodDelete, "/a", "", nil)
	if used, avail := n.quotaProps(t, "/"); used != 100 || avail != 900 {
		t.Fatalf("after DELETE: used %d, available %d; want 100, 900", used, avail)
	}
	n.must(t, http.StatusCreated, "COPY", "/c", "", hdr{"Destination": n.abs("/c2")})
	if used, _ := n.quotaProps(t, "/"); used != 200 {
		t.Fatalf("after COPY: used %d, want 200", used)
	}
}

func TestLowWaterMark(t *testing.T) {
	// A mark above the volume's size: every upload would cross it.
	n := limitedNode(t, server.Limits{MinFreeBytes: 1 << 62, MinFreePercent: 100})
	before := objects(t, n.opts.dataDir)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			r, reads := n.upload(t, "/f", 1<<20, chunked, nil)
			if r.status != http.StatusInsufficientStorage || !strings.Contains(string(r.body), "low-water mark") ||
				!strings.Contains(string(r.body), "<D:sufficient-disk-space>") {
				t.Fatalf("got %s, want 507 naming the low-water mark", r)
			}
			if reads != 0 {
				t.Errorf("the body was read %d times before the refusal", reads)
			}
		})
	}
	if n.exists(t, "/f") {
		t.Error("/f exists")
	}
	if after := objects(t, n.opts.dataDir); len(after) != len(before) {
		t.Errorf("content directory changed: before %v, after %v", before, after)
	}
	// Below the mark there is nothing available.
	if used, avail := n.quotaProps(t, "/"); used != 0 || avail != 0 {
		t.Errorf("used %d, available %d; want 0, 0", used, avail)
	}
}

func TestMaxUploadBytes(t *testing.T) {
	n := limitedNode(t, server.Limits{MaxUploadBytes: 1000})
	before := objects(t, n.opts.dataDir)
	cases := []struct {
		name      string
		size      int64
		chunked   bool
		h         hdr
		want      int
		wantReads bool
	}{
		{"Content-Length over the limit", 1001, false, nil, http.StatusRequestEntityTooLarge, false},
		{"size hint over the limit", 1001, true, hdr{"X-Expected-Entity-Length": "1001"}, http.StatusRequestEntityTooLarge, false},
		{"chunked, stopped at the limit", 5000, true, nil, http.StatusRequestEntityTooLarge, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, reads := n.upload(t, "/big", tc.size, tc.chunked, tc.h)
			if r.status != tc.want || !strings.Contains(string(r.body), "limit of 1000 bytes") {
				t.Fatalf("got %s, want %d naming the limit", r, tc.want)
			}
			if !tc.wantReads && reads != 0 {
				t.Errorf("the body was read %d times before the refusal", reads)
			}
		})
	}
	if n.exists(t, "/big") {
		t.Error("/big exists")
	}
	if after := objects(t, n.opts.dataDir); len(after) != len(before) {
		t.Errorf("content directory changed: before %v, after %v", before, after)
	}
	for _, chunked := range []bool{false, true} {
		if r, _ := n.upload(t, "/exact", 1000, chunked, nil); r.status != http.StatusCreated && r.status != http.StatusNoContent {
			t.Fatalf("upload of exactly the limit (chunked=%v): %s", chunked, r)
		}
	}
}

func TestMaxXMLBytesMessage(t *testing.T) {
	n := startNodeWith(t, nodeOptions{dataDir: t.TempDir(), bootstrap: true, maxXMLBytes: 100})
	body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:displayname/>", 20) + `</D:prop></D:propfind>`
	r := n.do(t, "PROPFIND", "/", body, hdr{"Depth": "0"})
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "limit of 100 bytes (--max-xml-bytes)") {
		t.Fatalf("got %s, want 413 naming the limit", r)
	}
}

func TestMaxConcurrentUploads(t *testing.T) {
	n := limitedNode(t, server.Limits{MaxConcurrentUploads: 1})
	pr, pw := io.Pipe()
	first := make(chan response, 1)
	go func() {
		req, err := n.newRequest(http.MethodPut, "/slow", pr, nil)
		if err != nil {
			first <- response{body: []byte(err.Error())}
			return
		}
		// With 100-continue the client sends the body only once the
		// handler reads it, that is once the upload holds its slot.
		req.Header.Set("Expect", "100-continue")
		r, err := n.sendErr(req)
		if err != nil {
			r = response{body: []byte(err.Error())}
		}
		first <- r
	}()
	wrote := make(chan error, 1)
	go func() { _, err := pw.Write([]byte("first bytes")); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case r := <-first:
		t.Fatalf("first upload ended before its body was read: %s", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the first upload's body was never read")
	}
	r, reads := n.upload(t, "/second", 10, false, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.Contains(string(r.body), "--max-concurrent-uploads") {
		t.Fatalf("second upload while the first streams: %s %v, want 503 with Retry-After and why", r, r.header)
	}
	if reads != 0 {
		t.Errorf("the refused body was read %d times", reads)
	}
	pw.Close()
	if r := <-first; r.status != http.StatusCreated {
		t.Fatalf("first upload: %s", r)
	}
	// The slot is free again.
	n.put(t, "/second", "now")
}

func TestPropfindInfinityPolicy(t *testing.T) {
	tree := func(n *testNode) {
		n.mkcol(t, "/t")
		n.mkcol(t, "/t/sub")
		n.put(t, "/t/a", "a")
		n.put(t, "/t/sub/b", "b")
	}
	t.Run("refuse", func(t *testing.T) {
		n := limitedNode(t, server.Limits{PropfindInfinity: "refuse"})
		tree(n)
		for _, depth := range []string{"infinity", ""} {
			h := hdr{}
			if depth != "" {
				h["Depth"] = depth
			}
			r := n.do(t, "PROPFIND", "/t", "", h)
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "propfind-finite-depth") {
				t.Fatalf("Depth %q: got %s, want 403 with propfind-finite-depth", depth, r)
			}
			var e struct {
				XMLName xml.Name
				Cond    *struct{} `xml:"DAV: propfind-finite-depth"`
			}
			if err := xml.Unmarshal(r.body, &e); err != nil || e.XMLName != (xml.Name{Space: "DAV:", Local: "error"}) || e.Cond == nil {
				t.Fatalf("Depth %q: body is not a DAV:error with propfind-finite-depth: %v %s", depth, err, r.body)
			}
		}
		// Finite depths are served.
		if got := len(n.propfind(t, "/t", "1", "")); got != 3 {
			t.Fatalf("Depth 1 listed %d resources, want 3", got)
		}
	})
	t.Run("allow, bounded", func(t *testing.T) {
		n := limitedNode(t, server.Limits{PropfindInfinity: "allow", PropfindMaxEntries: 4})
		tree(n)
		if got := len(n.propfind(t, "/t", "infinity", "")); got != 4 {
			t.Fatalf("Depth infinity listed %d resources, want 4", got)
		}
		n.put(t, "/t/sub/c", "c")
		r := n.do(t, "PROPFIND", "/t", "", hdr{"Depth": "infinity"})
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "propfind-finite-depth") ||
			!strings.Contains(string(r.body), "more than 4 resources") {
			t.Fatalf("over the bound: got %s, want 403 with propfind-finite-depth", r)
		}
	})
}

func TestQuotaProperties(t *testing.T) {
	const q = 1 << 40 // far above the free disk: available follows the disk
	n := limitedNode(t, server.Limits{QuotaBytes: q})
	n.mkcol(t, "/d")
	n.put(t, "/d/one", strings.Repeat("x", 1234))
	n.put(t, "/two", strings.Repeat("y", 766))

	used, avail := n.quotaProps(t, "/")
	if used != 2000 {
		t.Fatalf("quota-used-bytes %d, want 2000 (the sum of the files)", used)
	}
	if avail <= 0 || avail > q-used {
		t.Fatalf("quota-available-bytes %d not in (0, quota-used]", avail)
	}
	// On collections and files alike, with the same cluster-wide values.
	for _, target := range []string{"/d", "/d/one"} {
		if u, _ := n.quotaProps(t, target); u != used {
			t.Errorf("%s: quota-used-bytes %d, want %d", target, u, used)
		}
	}
	// Named among other properties, the others still answer.
	if v, ok := n.propfind(t, "/two", "0", quotaPropsBody)["/two"].value("DAV:", "getcontentlength"); !ok || v != "766" {
		t.Errorf("getcontentlength beside the quota properties: %q %v", v, ok)
	}
	// Never in allprop nor propname (RFC 4331 §3).
	for name, body := range map[string]string{
		"allprop":  allpropBody,
		"empty":    "",
		"propname": `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`,
	} {
		for href, r := range n.propfind(t, "/", "1", body) {
			for pn := range r.props {
				if pn.Space == "DAV:" && strings.HasPrefix(pn.Local, "quota-") {
					t.Errorf("%s: %s lists %s", name, href, pn.Local)
				}
			}
		}
	}
	// A write moves both.
	n.put(t, "/three", strings.Repeat("z", 5<<20))
	used2, avail2 := n.quotaProps(t, "/")
	if used2 != used+5<<20 {
		t.Errorf("after a 5 MiB write: used %d, want %d", used2, used+5<<20)
	}
	if avail2 >= avail {
		t.Errorf("after a 5 MiB write: available %d, was %d", avail2, avail)
	}

	// With a quota below the free disk, available is what the quota leaves.
	m := limitedNode(t, server.Limits{QuotaBytes: 10000})
	m.put(t, "/f", strings.Repeat("f", 2500))
	if u, a := m.quotaProps(t, "/"); u != 2500 || a != 7500 {
		t.Errorf("quota 10000: used %d, available %d; want 2500, 7500", u, a)
	}
}

// TestQuotaDecidedByTheLog: an upload admitted early (its size reserved)
// can still lose the race to a COPY, which reserves nothing: the log entry
// carries the quota, apply refuses the upload, the client gets 507 and the
// upload's content is deleted at once.
func TestQuotaDecidedByTheLog(t *testing.T) {
	n := limitedNode(t, server.Limits{QuotaBytes: 1000})
	n.put(t, "/a", strings.Repeat("a", 400))
	before := objects(t, n.opts.dataDir)

	pr, pw := io.Pipe()
	done := make(chan response, 1)
	go func() {
		req, err := n.newRequest(http.MethodPut, "/b", pr, nil)
		if err != nil {
			done <- response{body: []byte(err.Error())}
			return
		}
		req.ContentLength = 500
		req.Header.Set("Expect", "100-continue") // the body flows once admitted
		r, err := n.sendErr(req)
		if err != nil {
			r = response{body: []byte(err.Error())}
		}
		done <- r
	}()
	// Admitted: the handler reads the body.
	if _, err := pw.Write([]byte(strings.Repeat("b", 100))); err != nil {
		t.Fatal(err)
	}
	// 400 used + 500 reserved: a COPY of 400 bytes fits the usage alone
	// and commits first.
	n.must(t, http.StatusCreated, "COPY", "/a", "", hdr{"Destination": n.abs("/a2")})
	if _, err := pw.Write([]byte(strings.Repeat("b", 400))); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-done
	if r.status != http.StatusInsufficientStorage || !strings.Contains(string(r.body), "quota 1000 bytes, used 800") ||
		!strings.Contains(string(r.body), "<D:quota-not-exceeded>") {
		t.Fatalf("the upload that lost the race: %s, want 507 naming the quota", r)
	}
	if n.exists(t, "/b") {
		t.Fatal("/b exists")
	}
	if used, avail := n.quotaProps(t, "/"); used != 800 || avail != 200 {
		t.Fatalf("used %d, available %d; want 800, 200", used, avail)
	}
	// COPY shares content: no new object; the refused upload's is gone.
	if after := objects(t, n.opts.dataDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("content left behind:\nbefore %v\nafter  %v", before, after)
	}
}
