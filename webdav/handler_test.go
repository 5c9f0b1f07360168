package webdav_test

// The handler's own suite: raw HTTP against a real in-process dfs node
// (node_test.go), asserting exact statuses, headers and effects, including
// the cases litmus does not exercise (conditional PUTs as gvfs sends them,
// Destinations naming other servers, lock persistence across a restart, hostile
// paths, XML limits).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	strongETag = regexp.MustCompile(`^"[^"\s]+"$`)
	lockTokenH = regexp.MustCompile(`^<opaquelocktoken:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}>$`)
)

// ifToken is an untagged If header submitting one lock token.
func ifToken(token string) string { return "(<" + token + ">)" }

// tokenOf strips the angle brackets of a Lock-Token header.
func tokenOf(h string) string { return strings.TrimSuffix(strings.TrimPrefix(h, "<"), ">") }

// lock takes a lock and returns its token; want is the expected status.
func (n *testNode) lock(tb testing.TB, want int, target, scope, depth string, h hdr) (string, response) {
	tb.Helper()
	if h == nil {
		h = hdr{}
	}
	h["Content-Type"] = "application/xml"
	if depth != "" {
		h["Depth"] = depth
	}
	r := n.must(tb, want, "LOCK", target, lockInfo(scope, "tester"), h)
	if want != http.StatusOK && want != http.StatusCreated {
		return "", r
	}
	lt := r.header.Get("Lock-Token")
	if !lockTokenH.MatchString(lt) {
		tb.Fatalf("LOCK %s: Lock-Token %q is not <opaquelocktoken:uuid-v4>", target, lt)
	}
	als := activeLocks(tb, r.body)
	if len(als) != 1 || lockToken(als[0]) != tokenOf(lt) {
		tb.Fatalf("LOCK %s: body does not describe exactly the new lock %s:\n%s", target, lt, r.body)
	}
	return tokenOf(lt), r
}

// ---------------------------------------------------------------------------
// PUT and GET

func TestPutCreateOverwriteGet(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	f := dir + "/greeting.txt"

	r := n.must(t, http.StatusCreated, http.MethodPut, f, "hello", hdr{"Content-Type": "text/plain"})
	etag1 := r.header.Get("ETag")
	if !strongETag.MatchString(etag1) {
		t.Fatalf("PUT (create): ETag %q is not a strong quoted entity tag", etag1)
	}
	if loc := r.header.Get("Location"); loc != f {
		t.Errorf("PUT (create): Location %q, want %q", loc, f)
	}

	r = n.must(t, http.StatusNoContent, http.MethodPut, f, "hello, world", nil)
	etag2 := r.header.Get("ETag")
	if !strongETag.MatchString(etag2) || etag2 == etag1 {
		t.Fatalf("PUT (overwrite): ETag %q, want a new strong tag (old %s)", etag2, etag1)
	}
	if len(r.body) != 0 {
		t.Errorf("PUT (overwrite): 204 with a body: %q", r.body)
	}

	r = n.must(t, http.StatusOK, http.MethodGet, f, "", nil)
	if string(r.body) != "hello, world" {
		t.Errorf("GET: body %q, want the overwritten content", r.body)
	}
	if got := r.header.Get("ETag"); got != etag2 {
		t.Errorf("GET: ETag %q, want the last PUT's %q", got, etag2)
	}
	if _, err := http.ParseTime(r.header.Get("Last-Modified")); err != nil {
		t.Errorf("GET: Last-Modified %q is not an HTTP date: %v", r.header.Get("Last-Modified"), err)
	}

	r = n.must(t, http.StatusOK, http.MethodHead, f, "", nil)
	if got := r.header.Get("Content-Length"); got != "12" {
		t.Errorf("HEAD: Content-Length %q, want 12", got)
	}
	if len(r.body) != 0 {
		t.Errorf("HEAD: body %q, want none", r.body)
	}
	if got := r.header.Get("ETag"); got != etag2 {
		t.Errorf("HEAD: ETag %q, want %q", got, etag2)
	}

	// Equal bytes, equal tags: the tag is the content hash.
	r = n.must(t, http.StatusCreated, http.MethodPut, dir+"/same.txt", "hello, world", nil)
	if got := r.header.Get("ETag"); got != etag2 {
		t.Errorf("PUT of identical content elsewhere: ETag %q, want %q", got, etag2)
	}
}

func TestPutContentTypeAndBodies(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)

	t.Run("stored content type", func(t *testing.T) {
		n.must(t, http.StatusCreated, http.MethodPut, dir+"/data.bin", "x", hdr{"Content-Type": "application/x-dfs-test"})
		r := n.must(t, http.StatusOK, http.MethodGet, dir+"/data.bin", "", nil)
		if ct := r.header.Get("Content-Type"); ct != "application/x-dfs-test" {
			t.Errorf("Content-Type %q, want the one given at PUT", ct)
		}
	})
	t.Run("invalid content type falls back to the extension", func(t *testing.T) {
		n.must(t, http.StatusCreated, http.MethodPut, dir+"/page.html", "<p>", hdr{"Content-Type": "text/html; ===="})
		r := n.must(t, http.StatusOK, http.MethodGet, dir+"/page.html", "", nil)
		mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil || mt != "text/html" {
			t.Errorf("Content-Type %q, want text/html from the extension", r.header.Get("Content-Type"))
		}
	})
	t.Run("empty file", func(t *testing.T) {
		r := n.must(t, http.StatusCreated, http.MethodPut, dir+"/empty", "", nil)
		if !strongETag.MatchString(r.header.Get("ETag")) {
			t.Errorf("ETag %q for an empty file", r.header.Get("ETag"))
		}
		r = n.must(t, http.StatusOK, http.MethodGet, dir+"/empty", "", nil)
		if len(r.body) != 0 || r.header.Get("Content-Length") != "0" {
			t.Errorf("GET empty file: %d bytes, Content-Length %q", len(r.body), r.header.Get("Content-Length"))
		}
	})
	t.Run("chunked upload of unknown length", func(t *testing.T) {
		// macOS Finder uploads this way.
		want := bytes.Repeat([]byte("0123456789abcdef"), 40000)
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(want); i += 7777 {
				_, _ = pw.Write(want[i:min(i+7777, len(want))])
			}
			_ = pw.Close()
		}()
		req, err := n.newRequest(http.MethodPut, dir+"/chunked.bin", pr, hdr{"X-Expected-Entity-Length": strconv.Itoa(len(want))})
		if err != nil {
			t.Fatal(err)
		}
		if r := n.send(t, req); r.status != http.StatusCreated {
			t.Fatalf("chunked PUT: got %s, want 201", r)
		}
		if got := n.get(t, dir+"/chunked.bin"); got != string(want) {
			t.Errorf("chunked PUT stored %d bytes, want the %d sent", len(got), len(want))
		}
	})
}

func TestGetRangesAndConditionals(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	content := make([]byte, 300_000)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	f := dir + "/random.bin"
	etag := n.must(t, http.StatusCreated, http.MethodPut, f, string(content), nil).header.Get("ETag")
	lastMod := n.must(t, http.StatusOK, http.MethodHead, f, "", nil).header.Get("Last-Modified")
	size := len(content)

	ranges := []struct {
		name, rng    string
		want         int
		from, to     int // the slice expected for 206
		contentRange string
	}{
		{"first bytes", "bytes=0-9", http.StatusPartialContent, 0, 10, fmt.Sprintf("bytes 0-9/%d", size)},
		{"middle", "bytes=123456-200000", http.StatusPartialContent, 123456, 200001, fmt.Sprintf("bytes 123456-200000/%d", size)},
		{"open-ended", "bytes=299990-", http.StatusPartialContent, 299990, size, fmt.Sprintf("bytes 299990-%d/%d", size-1, size)},
		{"suffix", "bytes=-5", http.StatusPartialContent, size - 5, size, fmt.Sprintf("bytes %d-%d/%d", size-5, size-1, size)},
		{"past the end", "bytes=400000-", http.StatusRequestedRangeNotSatisfiable, 0, 0, fmt.Sprintf("bytes */%d", size)},
	}
	for _, tc := range ranges {
		t.Run("range "+tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, http.MethodGet, f, "", hdr{"Range": tc.rng})
			if got := r.header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRange)
			}
			if tc.want == http.StatusPartialContent && !bytes.Equal(r.body, content[tc.from:tc.to]) {
				t.Errorf("body is %d bytes, not the slice [%d:%d]", len(r.body), tc.from, tc.to)
			}
		})
	}

	t.Run("range out of order multipart", func(t *testing.T) {
		// Several ranges seek back and forth in the content.
		r := n.must(t, http.StatusPartialContent, http.MethodGet, f, "", hdr{"Range": "bytes=200000-200009,10-19,299999-"})
		mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type %q, want multipart/byteranges", r.header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		want := [][]byte{content[200000:200010], content[10:20], content[299999:]}
		for i, w := range want {
			part, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			got, _ := io.ReadAll(part)
			if !bytes.Equal(got, w) {
				t.Errorf("part %d (%s): wrong bytes", i, part.Header.Get("Content-Range"))
			}
		}
	})

	conds := []struct {
		name string
		h    hdr
		want int
	}{
		{"If-None-Match current", hdr{"If-None-Match": etag}, http.StatusNotModified},
		{"If-None-Match in a list", hdr{"If-None-Match": `"nope", ` + etag}, http.StatusNotModified},
		{"If-None-Match star", hdr{"If-None-Match": "*"}, http.StatusNotModified},
		{"If-None-Match other", hdr{"If-None-Match": `"other"`}, http.StatusOK},
		{"If-Modified-Since Last-Modified", hdr{"If-Modified-Since": lastMod}, http.StatusNotModified},
		{"If-Modified-Since later", hdr{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, http.StatusNotModified},
		{"If-Modified-Since long ago", hdr{"If-Modified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}, http.StatusOK},
		{"If-None-Match wins over If-Modified-Since", hdr{"If-None-Match": `"other"`, "If-Modified-Since": lastMod}, http.StatusOK},
		{"If-Match current", hdr{"If-Match": etag}, http.StatusOK},
		{"If-Match other", hdr{"If-Match": `"other"`}, http.StatusPreconditionFailed},
		{"If-Unmodified-Since long ago", hdr{"If-Unmodified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}, http.StatusPreconditionFailed},
		{"If-Range current", hdr{"If-Range": etag, "Range": "bytes=0-0"}, http.StatusPartialContent},
		{"If-Range stale", hdr{"If-Range": `"stale"`, "Range": "bytes=0-0"}, http.StatusOK},
	}
	for _, tc := range conds {
		t.Run(tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, http.MethodGet, f, "", tc.h)
			if tc.want == http.StatusNotModified {
				if len(r.body) != 0 {
					t.Errorf("304 with a body of %d bytes", len(r.body))
				}
				if got := r.header.Get("ETag"); got != etag {
					t.Errorf("304: ETag %q, want %q", got, etag)
				}
			}
			if tc.want == http.StatusOK && !bytes.Equal(r.body, content) {
				t.Errorf("200 with %d bytes, want the whole %d", len(r.body), size)
			}
		})
	}
}

func TestPutConditionals(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	const orig = "original"
	tests := []struct {
		name    string
		exists  bool                  // create the file with orig first
		h       func(etag string) hdr // headers, given the file's ETag
		want    int
		changed bool // the file holds the new content afterwards
	}{
		{"If-None-Match star on existing", true, func(string) hdr { return hdr{"If-None-Match": "*"} }, http.StatusPreconditionFailed, false},
		{"If-None-Match star creates", false, func(string) hdr { return hdr{"If-None-Match": "*"} }, http.StatusCreated, true},
		{"If-None-Match current etag", true, func(e string) hdr { return hdr{"If-None-Match": e} }, http.StatusPreconditionFailed, false},
		{"If-None-Match other etag", true, func(string) hdr { return hdr{"If-None-Match": `"other"`} }, http.StatusNoContent, true},
		{"If-Match wrong etag", true, func(string) hdr { return hdr{"If-Match": `"0123456789abcdef"`} }, http.StatusPreconditionFailed, false},
		{"If-Match weak form of current etag", true, func(e string) hdr { return hdr{"If-Match": "W/" + e} }, http.StatusPreconditionFailed, false},
		{"If-Match right etag", true, func(e string) hdr { return hdr{"If-Match": e} }, http.StatusNoContent, true},
		{"If-Match right etag in a list", true, func(e string) hdr { return hdr{"If-Match": `"x", ` + e} }, http.StatusNoContent, true},
		{"If-Match star on existing", true, func(string) hdr { return hdr{"If-Match": "*"} }, http.StatusNoContent, true},
		{"If-Match on missing", false, func(string) hdr { return hdr{"If-Match": `"0123456789abcdef"`} }, http.StatusPreconditionFailed, false},
		{"If-Match star on missing", false, func(string) hdr { return hdr{"If-Match": "*"} }, http.StatusPreconditionFailed, false},
		{"Content-Range on existing", true, func(string) hdr { return hdr{"Content-Range": "bytes 0-2/10"} }, http.StatusBadRequest, false},
		{"Content-Range on missing", false, func(string) hdr { return hdr{"Content-Range": "bytes 0-2/10"} }, http.StatusBadRequest, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fmt.Sprintf("%s/f%d", dir, i)
			etag := ""
			if tc.exists {
				etag = n.put(t, f, orig)
			}
			n.must(t, tc.want, http.MethodPut, f, "replacement", tc.h(etag))
			r := n.do(t, http.MethodGet, f, "", nil)
			switch {
			case tc.changed:
				if r.status != http.StatusOK || string(r.body) != "replacement" {
					t.Errorf("afterwards GET: %s, want 200 replacement", r)
				}
			case tc.exists:
				if r.status != http.StatusOK || string(r.body) != orig {
					t.Errorf("afterwards GET: %s, want 200 %s (unchanged)", r, orig)
				}
			default:
				if r.status != http.StatusNotFound {
					t.Errorf("afterwards GET: %s, want 404 (nothing created)", r)
				}
			}
		})
	}
}

// TestPutPreconditionBeforeBody: a PUT whose If-Match or If-None-Match the
// state machine will refuse is answered 412 before its body is read, so the
// body is not uploaded and pushed to a majority for nothing. The handler's
// early check must agree with the state machine on every form a client may
// send: star, weak tags (If-None-Match compares weakly), lists, and lists
// with a malformed element (the state machine stops parsing there).
func TestPutPreconditionBeforeBody(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	f := dir + "/f"
	const orig = "original"
	etag := n.put(t, f, orig)
	tests := []struct {
		name string
		h    hdr
	}{
		{"If-None-Match weak form of current etag", hdr{"If-None-Match": "W/" + etag}},
		{"If-None-Match star", hdr{"If-None-Match": "*"}},
		{"If-None-Match current etag", hdr{"If-None-Match": etag}},
		{"If-None-Match list holding current etag", hdr{"If-None-Match": `"x", ` + etag}},
		{"If-None-Match list holding weak form", hdr{"If-None-Match": `"x",W/` + etag}},
		{"If-Match weak form of current etag", hdr{"If-Match": "W/" + etag}},
		{"If-Match current etag after a malformed element", hdr{"If-Match": "bogus, " + etag}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, reads := n.upload(t, f, 1000, false, tc.h)
			if r.status != http.StatusPreconditionFailed {
				t.Fatalf("got %s, want 412", r)
			}
			if reads != 0 {
				t.Errorf("the body was read %d times before the 412", reads)
			}
		})
	}
	if got := n.get(t, f); got != orig {
		t.Errorf("afterwards GET: %q, want %q (unchanged)", got, orig)
	}
}

func TestPutWhereNoFileCanBe(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	n.mkcol(t, dir+"/col")
	n.put(t, dir+"/file", "f")
	tests := []struct {
		name, target string
		want         int
	}{
		{"onto a collection", dir + "/col", http.StatusMethodNotAllowed},
		{"onto a collection with a slash", dir + "/col/", http.StatusMethodNotAllowed},
		{"under a missing parent", dir + "/missing/f", http.StatusConflict},
		{"under a missing grandparent", dir + "/missing/deeper/f", http.StatusConflict},
		{"under a file", dir + "/file/f", http.StatusConflict},
		{"the root", "/", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, http.MethodPut, tc.target, "data", nil)
			if tc.want == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" && tc.target != "/" {
				t.Errorf("405 without an Allow header")
			}
			if tc.want == http.StatusMethodNotAllowed && strings.Contains(r.header.Get("Allow"), "PUT") {
				t.Errorf("405 for PUT with Allow %q listing PUT", r.header.Get("Allow"))
			}
		})
	}
	if got := n.get(t, dir+"/file"); got != "f" {
		t.Errorf("the file a PUT tried to go under changed: %q", got)
	}
	ms := n.propfind(t, dir+"/col", "1", "")
	if len(ms) != 1 {
		t.Errorf("the collection gained members: %v", keys(ms))
	}
}

// ---------------------------------------------------------------------------
// GET on collections

func TestGetCollectionListing(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	hostile := `<script>alert("x")<!--&.txt` // no '/': a name cannot hold one
	n.put(t, dir+"/"+escape(hostile), "boo")
	n.put(t, dir+"/plain.txt", "12345")
	n.mkcol(t, dir+"/sub")
	n.put(t, dir+"/sub/deep.txt", "deep")

	r := n.must(t, http.StatusOK, http.MethodGet, dir, "", nil)
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "text/html" {
		t.Fatalf("Content-Type %q, want text/html", r.header.Get("Content-Type"))
	}
	body := string(r.body)
	if strings.Contains(body, "<script>") {
		t.Errorf("listing contains a raw <script> element (name not escaped):\n%s", body)
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;x&#34;)&lt;!--&amp;.txt`, // the name, escaped as text
		`href="` + dir + `/%3Cscript%3Ealert%28%22x%22%29%3C%21--&amp;.txt"`,
		`href="` + dir + `/plain.txt"`, ">plain.txt<", ">5<",
		`href="` + dir + `/sub/"`, ">sub/<",
		`href="/"`, // the parent
	} {
		if !strings.Contains(body, want) {
			t.Errorf("listing lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "deep.txt") {
		t.Errorf("listing shows a grandchild:\n%s", body)
	}

	r = n.must(t, http.StatusOK, http.MethodGet, dir+"/", "", nil)
	if !strings.Contains(string(r.body), "plain.txt") {
		t.Errorf("GET with a trailing slash does not list the collection")
	}
	r = n.must(t, http.StatusOK, http.MethodHead, dir, "", nil)
	if len(r.body) != 0 {
		t.Errorf("HEAD on a collection returned a body")
	}
	r = n.must(t, http.StatusOK, http.MethodGet, "/", "", nil)
	if !strings.Contains(string(r.body), escape(dir[1:])) {
		t.Errorf("root listing lacks %s", dir)
	}
	n.must(t, http.StatusNotFound, http.MethodGet, dir+"/missing", "", nil)
	n.must(t, http.StatusNotFound, http.MethodGet, dir+"/missing/", "", nil)
	n.must(t, http.StatusNotFound, http.MethodGet, dir+"/plain.txt/child", "", nil)
	if r := n.must(t, http.StatusNotFound, http.MethodHead, dir+"/missing", "", nil); len(r.body) != 0 {
		t.Errorf("HEAD 404 with a body")
	}
}

// ---------------------------------------------------------------------------
// MKCOL and DELETE

func TestMkcol(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)
	n.put(t, dir+"/file", "f")
	chunked := func(target string) *http.Request {
		req, err := n.newRequest("MKCOL", target, io.MultiReader(strings.NewReader("<x/>")), hdr{"Content-Type": "application/xml"})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	tests := []struct {
		name    string
		target  string
		body    string
		req     func(string) *http.Request // overrides body
		want    int
		created bool
	}{
		{name: "new", target: dir + "/new", want: http.StatusCreated, created: true},
		{name: "new with a trailing slash", target: dir + "/slashed/", want: http.StatusCreated, created: true},
		{name: "again", target: dir + "/new", want: http.StatusMethodNotAllowed},
		{name: "over a file", target: dir + "/file", want: http.StatusMethodNotAllowed},
		{name: "missing parent", target: dir + "/nope/new", want: http.StatusConflict},
		{name: "under a file", target: dir + "/file/new", want: http.StatusConflict},
		{name: "with a body", target: dir + "/bodied", body: "<x/>", want: http.StatusUnsupportedMediaType},
		{name: "with a chunked body", target: dir + "/chunked", req: chunked, want: http.StatusUnsupportedMediaType},
		{name: "root", target: "/", want: http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.req != nil {
				r = n.send(t, tc.req(tc.target))
			} else {
				r = n.do(t, "MKCOL", tc.target, tc.body, nil)
			}
			if r.status != tc.want {
				t.Fatalf("MKCOL %s: got %s, want %d", tc.target, r, tc.want)
			}
			if tc.created {
				if loc := r.header.Get("Location"); loc != strings.TrimSuffix(tc.target, "/")+"/" {
					t.Errorf("Location %q, want %q", loc, strings.TrimSuffix(tc.target, "/")+"/")
				}
			}
			if tc.target == "/" {
				return
			}
			ms := n.do(t, "PROPFIND", tc.target, "", hdr{"Depth": "0"})
			isCol := ms.status == http.StatusMultiStatus && bytes.Contains(ms.body, []byte("collection"))
			if tc.created && !isCol {
				t.Errorf("no collection at %s afterwards: %s", tc.target, ms)
			}
			if tc.want == http.StatusUnsupportedMediaType || tc.want == http.StatusConflict {
				if ms.status != http.StatusNotFound {
					t.Errorf("a refused MKCOL left something at %s: %s", tc.target, ms)
				}
			}
		})
	}
	if got := n.get(t, dir+"/file"); got != "f" {
		t.Errorf("MKCOL over a file changed it: %q", got)
	}
}

func TestDelete(t *testing.T) {
	n := sharedNode(t)
	dir := n.scratch(t)

	t.Run("file", func(t *testing.T) {
		n.put(t, dir+"/f", "x")
		n.must(t, http.StatusNoContent, http.MethodDelete, dir+"/f", "", nil)
		n.must(t, http.StatusNotFound, http.MethodGet, dir+"/f", "", nil)
		n.must(t, http.StatusNotFound, http.MethodDelete, dir+"/f", "", nil)
	})
	t.Run("file with Depth 0", func(t *testing.T) {
		n.put(t, dir+"/g", "x")
		n.must(t, http.StatusNoContent, http.MethodDelete, dir+"/g", "", hdr{"Depth": "0"})
	})
	t.Run("collection recursively", func(t *testing.T) {
		c := dir + "/tree"
		n.mkcol(t, c)
		n.mkcol(t, c+"/a")
		n.mkcol(t, c+"/a/b")
		n.put(t, c+"/a/b/leaf", "leaf")
		n.put(t, c+"/top", "top")
		n.must(t, http.StatusNoContent, http.MethodDelete, c, "", nil)
		for _, p := range []string{c, c + "/a", c + "/a/b", c + "/a/b/leaf", c + "/top"} {
			if n.exists(t, p) {
				t.Errorf("%s survived the DELETE of %s", p, c)
			}
		}
		// The name is free again, as a file or a collection.
		n.mkcol(t, c)
		n.must(t, http.StatusNotFound, http.MethodGet, c+"/top", "", nil)
	})
	for _, depth := range []string{"0", "1", "bogus"} {
		t.Run("collection with Depth "+depth, func(t *testing.T) {
			c := dir + "/kept-" + depth
			n.mkcol(t, c)
			n.put(t, c+"/m", "m")
			n.must(t, http.StatusBadRequest, http.MethodDelete, c, "", hdr{"Depth": depth})
			if got := n.get(t, c+"/m"); got != "m" {
				t.Errorf("member changed: %q", got)
			}
		})
	}
	t.Run("collection with Depth infinity", func(t *testing.T) {
		c := dir + "/inf"
		n.mkcol(t, c)
		n.put(t, c+"/m", "m")
		n.must(t, http.StatusNoContent, http.MethodDelete, c, "", hdr{"Depth": "infinity"})
		n.must(t, http.StatusNotFound, http.MethodGet, c, "", nil)
	})
	t.Run("root", func(t *testing.T) {
		n.must(t, http.StatusForbidden, http.MethodDelete, "/", "", nil)
		n.must(t, http.StatusOK, http.MethodGet, dir, "", nil)
	})
}

// ---------------------------------------------------------------------------
// COPY and MOVE

func TestCopyMove(t *testing.T) {
	n := sharedNode(t)
	// Each case gets its own collection holding:
	//   file        "file-content"
	//   other       "other-content"
	//   col/        with col/m1 "m1" and col/sub/m2 "m2"
	//   other-col/  empty
	setup := func(t *testing.T) string {
		t.Helper()
		d := n.scratch(t)
		n.put(t, d+"/file", "file-content")
		n.put(t, d+"/other", "other-content")
		n.mkcol(t, d+"/col")
		n.put(t, d+"/col/m1", "m1")
		n.mkcol(t, d+"/col/sub")
		n.put(t, d+"/col/sub/m2", "m2")
		n.mkcol(t, d+"/other-col")
		return d
	}
	// state describes what a path should hold afterwards: file content,
	// "<dir>" for a collection, "" for nothing.
	type state map[string]string
	tests := []struct {
		name   string
		method string
		src    string
		dst    func(n *testNode, d string) string // the Destination header ("" for none)
		h      hdr
		want   int
		after  state
	}{
		{name: "copy file to new", method: "COPY", src: "/file", dst: rel("/copy"), want: http.StatusCreated,
			after: state{"/file": "file-content", "/copy": "file-content"}},
		{name: "copy file overwrite T", method: "COPY", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "T"}, want: http.StatusNoContent,
			after: state{"/file": "file-content", "/other": "file-content"}},
		{name: "copy file overwrite default", method: "COPY", src: "/file", dst: rel("/other"), want: http.StatusNoContent,
			after: state{"/other": "file-content"}},
		{name: "copy file overwrite F", method: "COPY", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "F"}, want: http.StatusPreconditionFailed,
			after: state{"/file": "file-content", "/other": "other-content"}},
		{name: "copy file onto a collection", method: "COPY", src: "/file", dst: rel("/col"), want: http.StatusNoContent,
			after: state{"/col": "file-content", "/col/m1": ""}},
		{name: "copy collection", method: "COPY", src: "/col", dst: rel("/col2"), want: http.StatusCreated,
			after: state{"/col/m1": "m1", "/col2": "<dir>", "/col2/m1": "m1", "/col2/sub": "<dir>", "/col2/sub/m2": "m2"}},
		{name: "copy collection Depth 0", method: "COPY", src: "/col", dst: rel("/col2"), h: hdr{"Depth": "0"}, want: http.StatusCreated,
			after: state{"/col/m1": "m1", "/col2": "<dir>", "/col2/m1": "", "/col2/sub": ""}},
		{name: "copy collection over a collection", method: "COPY", src: "/col", dst: rel("/other-col"), want: http.StatusNoContent,
			after: state{"/other-col/m1": "m1", "/other-col/sub/m2": "m2"}},
		{name: "copy collection overwrite F", method: "COPY", src: "/col", dst: rel("/other-col"), h: hdr{"Overwrite": "F"}, want: http.StatusPreconditionFailed,
			after: state{"/other-col": "<dir>", "/other-col/m1": ""}},
		{name: "move file to new", method: "MOVE", src: "/file", dst: rel("/moved"), want: http.StatusCreated,
			after: state{"/file": "", "/moved": "file-content"}},
		{name: "move file overwrite T", method: "MOVE", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "T"}, want: http.StatusNoContent,
			after: state{"/file": "", "/other": "file-content"}},
		{name: "move file overwrite F", method: "MOVE", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "F"}, want: http.StatusPreconditionFailed,
			after: state{"/file": "file-content", "/other": "other-content"}},
		{name: "move file overwrite lowercase f", method: "MOVE", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "f"}, want: http.StatusPreconditionFailed,
			after: state{"/file": "file-content", "/other": "other-content"}},
		{name: "move file into a collection", method: "MOVE", src: "/file", dst: rel("/col/sub/file"), want: http.StatusCreated,
			after: state{"/file": "", "/col/sub/file": "file-content", "/col/sub/m2": "m2"}},
		{name: "move collection", method: "MOVE", src: "/col", dst: rel("/renamed"), want: http.StatusCreated,
			after: state{"/col": "", "/col/m1": "", "/renamed/m1": "m1", "/renamed/sub/m2": "m2"}},
		{name: "move collection over a file", method: "MOVE", src: "/col", dst: rel("/file"), want: http.StatusNoContent,
			after: state{"/col": "", "/file": "<dir>", "/file/m1": "m1"}},
		{name: "move collection Depth infinity", method: "MOVE", src: "/col", dst: rel("/renamed"), h: hdr{"Depth": "infinity"}, want: http.StatusCreated,
			after: state{"/renamed/sub/m2": "m2"}},
		{name: "copy dest parent missing", method: "COPY", src: "/file", dst: rel("/nope/copy"), want: http.StatusConflict,
			after: state{"/nope": ""}},
		{name: "move dest parent missing", method: "MOVE", src: "/file", dst: rel("/nope/moved"), want: http.StatusConflict,
			after: state{"/file": "file-content", "/nope": ""}},
		{name: "move dest parent is a file", method: "MOVE", src: "/file", dst: rel("/other/moved"), want: http.StatusConflict,
			after: state{"/file": "file-content", "/other": "other-content"}},
		{name: "copy onto itself", method: "COPY", src: "/file", dst: rel("/file"), want: http.StatusForbidden,
			after: state{"/file": "file-content"}},
		{name: "move onto itself", method: "MOVE", src: "/col", dst: rel("/col/"), want: http.StatusForbidden,
			after: state{"/col/m1": "m1"}},
		{name: "move onto itself spelled differently", method: "MOVE", src: "/file", dst: rel("/./col/../%66ile"), want: http.StatusForbidden,
			after: state{"/file": "file-content"}},
		{name: "copy into own subtree", method: "COPY", src: "/col", dst: rel("/col/sub/inner"), want: http.StatusForbidden,
			after: state{"/col/sub/inner": "", "/col/sub/m2": "m2"}},
		{name: "move into own subtree", method: "MOVE", src: "/col", dst: rel("/col/sub"), want: http.StatusForbidden,
			after: state{"/col/m1": "m1", "/col/sub/m2": "m2"}},
		{name: "move onto own parent", method: "MOVE", src: "/col/sub", dst: rel("/col"), want: http.StatusForbidden,
			after: state{"/col/m1": "m1", "/col/sub/m2": "m2"}},
		{name: "copy Depth 1", method: "COPY", src: "/col", dst: rel("/col2"), h: hdr{"Depth": "1"}, want: http.StatusBadRequest,
			after: state{"/col2": ""}},
		{name: "move Depth 0", method: "MOVE", src: "/col", dst: rel("/col2"), h: hdr{"Depth": "0"}, want: http.StatusBadRequest,
			after: state{"/col2": "", "/col/m1": "m1"}},
		{name: "move Depth 1", method: "MOVE", src: "/file", dst: rel("/f2"), h: hdr{"Depth": "1"}, want: http.StatusBadRequest,
			after: state{"/f2": "", "/file": "file-content"}},
		{name: "copy bad Depth", method: "COPY", src: "/file", dst: rel("/f2"), h: hdr{"Depth": "2"}, want: http.StatusBadRequest,
			after: state{"/f2": ""}},
		{name: "bad Overwrite", method: "COPY", src: "/file", dst: rel("/other"), h: hdr{"Overwrite": "yes"}, want: http.StatusBadRequest,
			after: state{"/other": "other-content"}},
		{name: "missing Destination", method: "MOVE", src: "/file", dst: func(*testNode, string) string { return "" }, want: http.StatusBadRequest,
			after: state{"/file": "file-content"}},
		{name: "relative Destination", method: "COPY", src: "/file", dst: func(_ *testNode, d string) string { return d[1:] + "/x" }, want: http.StatusBadRequest,
			after: state{"/x": ""}},
		{name: "ftp Destination", method: "COPY", src: "/file", dst: func(_ *testNode, d string) string { return "ftp://example.com" + d + "/x" }, want: http.StatusBadRequest,
			after: state{"/x": ""}},
		{name: "Destination with a query", method: "COPY", src: "/file", dst: func(n *testNode, d string) string { return n.abs(d + "/x?y=1") }, want: http.StatusBadRequest,
			after: state{"/x": ""}},
		{name: "Destination with a foreign host", method: "MOVE", src: "/file", dst: func(_ *testNode, d string) string { return "https://dav.example.com" + d + "/elsewhere" }, want: http.StatusBadGateway,
			after: state{"/file": "file-content", "/elsewhere": ""}},
		{name: "Destination with a foreign host, COPY", method: "COPY", src: "/file", dst: func(_ *testNode, d string) string { return "http://elsewhere.example" + d + "/t.txt" }, want: http.StatusBadGateway,
			after: state{"/file": "file-content", "/t.txt": ""}},
		{name: "Destination with another port", method: "MOVE", src: "/file", dst: func(_ *testNode, d string) string { return "http://127.0.0.1:1" + d + "/p" }, want: http.StatusBadGateway,
			after: state{"/file": "file-content", "/p": ""}},
		{name: "Destination as an absolute path", method: "COPY", src: "/file", dst: func(_ *testNode, d string) string { return d + "/by-path" }, want: http.StatusCreated,
			after: state{"/by-path": "file-content"}},
		{name: "Destination percent-encoded", method: "COPY", src: "/file", dst: rel("/sp%20ace%20%C3%A9"), want: http.StatusCreated,
			after: state{"/sp ace é": "file-content"}},
		{name: "missing source", method: "COPY", src: "/ghost", dst: rel("/x"), want: http.StatusNotFound,
			after: state{"/x": ""}},
		{name: "move missing source", method: "MOVE", src: "/ghost", dst: rel("/x"), want: http.StatusNotFound,
			after: state{"/x": ""}},
		{name: "onto the root", method: "COPY", src: "/file", dst: func(n *testNode, _ string) string { return n.abs("/") }, want: http.StatusForbidden,
			after: state{"/file": "file-content"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := setup(t)
			h := hdr{}
			for k, v := range tc.h {
				h[k] = v
			}
			if dst := tc.dst(n, d); dst != "" {
				h["Destination"] = dst
			}
			r := n.must(t, tc.want, tc.method, d+tc.src, "", h)
			if tc.want == http.StatusCreated && r.header.Get("Location") == "" {
				t.Errorf("201 without a Location")
			}
			for p, want := range tc.after {
				target := d + escape(p)
				got := n.do(t, http.MethodGet, target, "", nil)
				switch {
				case want == "":
					if got.status != http.StatusNotFound {
						t.Errorf("%s: got %s, want 404", p, got)
					}
				case want == "<dir>":
					if got.status != http.StatusOK || !strings.HasPrefix(got.header.Get("Content-Type"), "text/html") {
						t.Errorf("%s: got %s, want a collection", p, got)
					}
				default:
					if got.status != http.StatusOK || string(got.body) != want {
						t.Errorf("%s: got %s, want 200 %q", p, got, want)
					}
				}
			}
		})
	}
	t.Run("copy and move of the root", func(t *testing.T) {
		d := n.scratch(t)
		n.must(t, http.StatusForbidden, "COPY", "/", "", hdr{"Destination": d + "/root-copy"})
		n.must(t, http.StatusForbidden, "MOVE", "/", "", hdr{"Destination": d + "/root-moved"})
	})
}

// rel makes a Destination: the absolute URL of a path inside the case's
// collection, as clients send it.
func rel(p string) func(*testNode, string) string {
	return func(n *testNode, d string) string { return n.abs(d + p) }
}

func TestCopyMoveContentAndProperties(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	prop := xml.Name{Space: "urn:dfs-test", Local: "color"}
	setColor := func(t *testing.T, target, color string) {
		t.Helper()
		r := n.must(t, http.StatusMultiStatus, "PROPPATCH", target,
			propertyupdate(`<c:color xmlns:c="urn:dfs-test">`+color+`</c:color>`, ""), nil)
		ms := parseMultistatus(t, r.body)
		for _, res := range ms {
			if p := res.props[prop]; p.status != http.StatusOK {
				t.Fatalf("PROPPATCH %s: color got %d", target, p.status)
			}
		}
	}
	color := func(t *testing.T, target string) string {
		t.Helper()
		p, ok := n.prop(t, target, prop)
		if !ok {
			t.Fatalf("PROPFIND %s: color not reported", target)
		}
		if p.status == http.StatusNotFound {
			return "<none>"
		}
		return strings.TrimSpace(p.node.Text)
	}

	etag := n.put(t, d+"/src", "shared bytes")
	setColor(t, d+"/src", "red")

	r := n.must(t, http.StatusCreated, "COPY", d+"/src", "", hdr{"Destination": n.abs(d + "/copy")})
	if r.header.Get("Location") != d+"/copy" {
		t.Errorf("COPY Location %q", r.header.Get("Location"))
	}
	if got := n.must(t, http.StatusOK, http.MethodHead, d+"/copy", "", nil).header.Get("ETag"); got != etag {
		t.Errorf("the copy's ETag %q differs from the source's %q: content should be shared by hash", got, etag)
	}
	if c := color(t, d+"/copy"); c != "red" {
		t.Errorf("COPY: the copy's color %q, want red", c)
	}
	// Copied, not shared: changing one leaves the other alone.
	setColor(t, d+"/copy", "blue")
	if c := color(t, d+"/src"); c != "red" {
		t.Errorf("changing the copy's property changed the source's to %q", c)
	}
	// Overwriting the copy's content leaves the source's alone.
	n.must(t, http.StatusNoContent, http.MethodPut, d+"/copy", "new bytes", nil)
	if got := n.get(t, d+"/src"); got != "shared bytes" {
		t.Errorf("overwriting a copy changed the source to %q", got)
	}

	r = n.must(t, http.StatusCreated, "MOVE", d+"/src", "", hdr{"Destination": n.abs(d + "/moved")})
	if c := color(t, d+"/moved"); c != "red" {
		t.Errorf("MOVE: the moved file's color %q, want red", c)
	}
	if got := n.must(t, http.StatusOK, http.MethodHead, d+"/moved", "", nil).header.Get("ETag"); got != etag {
		t.Errorf("MOVE changed the ETag from %q to %q", etag, got)
	}
	n.must(t, http.StatusNotFound, "PROPFIND", d+"/src", "", hdr{"Depth": "0"})
	// A new file at the old name starts without properties.
	n.put(t, d+"/src", "fresh")
	if c := color(t, d+"/src"); c != "<none>" {
		t.Errorf("a new file at a moved-away name inherited color %q", c)
	}

	// Collections carry their members' properties too.
	n.mkcol(t, d+"/c")
	n.put(t, d+"/c/m", "m")
	setColor(t, d+"/c", "green")
	setColor(t, d+"/c/m", "violet")
	n.must(t, http.StatusCreated, "COPY", d+"/c", "", hdr{"Destination": n.abs(d + "/c2")})
	n.must(t, http.StatusCreated, "MOVE", d+"/c", "", hdr{"Destination": n.abs(d + "/c3")})
	for _, tc := range []struct{ path, want string }{
		{"/c2", "green"}, {"/c2/m", "violet"}, {"/c3", "green"}, {"/c3/m", "violet"},
	} {
		if c := color(t, d+tc.path); c != tc.want {
			t.Errorf("%s: color %q, want %q", tc.path, c, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Properties

func TestProppatchAndPropfind(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/file.txt"
	etag := n.put(t, f, "12345")

	// A value with nested elements in other namespaces, attributes, mixed
	// content, escapes and characters beyond the BMP.
	nested := `<t:author xmlns:t="urn:dfs-test:t"><t:name lang="fr">Zoë 🐹 &amp; &lt;Ω&gt;</t:name>` +
		`<x:ref xmlns:x="urn:dfs-test:x" x:kind="a&quot;b"/>text <b xmlns="">bold</b> tail</t:author>`
	plain := `<t:plain xmlns:t="urn:dfs-test:t">  spaced  value  </t:plain>`
	nameAuthor := xml.Name{Space: "urn:dfs-test:t", Local: "author"}
	namePlain := xml.Name{Space: "urn:dfs-test:t", Local: "plain"}
	nameNoNS := xml.Name{Space: "", Local: "nonamespace"}

	r := n.must(t, http.StatusMultiStatus, "PROPPATCH", f,
		propertyupdate(nested+plain+`<nonamespace xmlns="">no ns</nonamespace>`, ""), hdr{"Content-Type": "application/xml"})
	for _, res := range parseMultistatus(t, r.body) {
		for name, p := range res.props {
			if p.status != http.StatusOK {
				t.Errorf("PROPPATCH set %v: status %d", name, p.status)
			}
		}
		if len(res.props) != 3 {
			t.Errorf("PROPPATCH reported %d properties, want 3: %s", len(res.props), r.body)
		}
	}

	got := n.propfind(t, f, "0", propfindBody(nameAuthor, namePlain, nameNoNS, xml.Name{Space: "urn:dfs-test:t", Local: "unset"}))
	res, ok := got[f]
	if !ok || len(got) != 1 {
		t.Fatalf("PROPFIND Depth 0 on %s listed %v", f, keys(got))
	}
	want := parseXML(t, []byte(nested)).canon()
	if p := res.props[nameAuthor]; p.status != http.StatusOK || p.node.canon() != want {
		t.Errorf("nested value did not round-trip:\n got  %d %s\n want %s", p.status, p.node.canon(), want)
	}
	if p := res.props[namePlain]; p.status != http.StatusOK || p.node.Text != "  spaced  value  " {
		t.Errorf("plain value: %d %q, want white space kept", p.status, p.node.Text)
	}
	if v, ok := res.value("", "nonamespace"); !ok || v != "no ns" {
		t.Errorf("property without a namespace: %q %v", v, ok)
	}
	if p := res.props[xml.Name{Space: "urn:dfs-test:t", Local: "unset"}]; p.status != http.StatusNotFound {
		t.Errorf("a property never set: status %d, want 404", p.status)
	}

	// Remove one, replace another, in one request; removing a property
	// that does not exist is not an error.
	r = n.must(t, http.StatusMultiStatus, "PROPPATCH", f, propertyupdate(
		`<t:plain xmlns:t="urn:dfs-test:t">second</t:plain>`,
		`<t:author xmlns:t="urn:dfs-test:t"/><t:never xmlns:t="urn:dfs-test:t"/>`), nil)
	for _, res := range parseMultistatus(t, r.body) {
		for name, p := range res.props {
			if p.status != http.StatusOK {
				t.Errorf("PROPPATCH remove/set %v: status %d", name, p.status)
			}
		}
	}
	got = n.propfind(t, f, "0", propfindBody(nameAuthor, namePlain))
	if p := got[f].props[nameAuthor]; p.status != http.StatusNotFound {
		t.Errorf("removed property: status %d, want 404", p.status)
	}
	if v, _ := got[f].value(namePlain.Space, namePlain.Local); v != "second" {
		t.Errorf("replaced property: %q, want second", v)
	}

	// Live properties are protected: the whole PROPPATCH fails, 403 for the
	// live one and 424 for the rest, and nothing is changed.
	for _, live := range []string{"getetag", "getcontentlength", "resourcetype", "lockdiscovery", "creationdate"} {
		t.Run("protected "+live, func(t *testing.T) {
			r := n.must(t, http.StatusMultiStatus, "PROPPATCH", f, propertyupdate(
				`<D:`+live+`>x</D:`+live+`><t:plain xmlns:t="urn:dfs-test:t">third</t:plain>`, ""), nil)
			res := parseMultistatus(t, r.body)[f]
			if p := res.props[davName(live)]; p.status != http.StatusForbidden {
				t.Errorf("DAV:%s: status %d, want 403", live, p.status)
			} else if p.err == nil || len(p.err.find("DAV:", "cannot-modify-protected-property")) == 0 {
				t.Errorf("DAV:%s: 403 without DAV:cannot-modify-protected-property: %s", live, r.body)
			}
			if p := res.props[namePlain]; p.status != http.StatusFailedDependency {
				t.Errorf("the dead property beside it: status %d, want 424", p.status)
			}
			if v, _ := n.propfind(t, f, "0", propfindBody(namePlain))[f].value(namePlain.Space, namePlain.Local); v != "second" {
				t.Errorf("a failed PROPPATCH changed a property to %q", v)
			}
		})
	}
	if got := n.must(t, http.StatusOK, http.MethodHead, f, "", nil).header.Get("ETag"); got != etag {
		t.Errorf("ETag changed from %s to %s", etag, got)
	}
	n.must(t, http.StatusNotFound, "PROPPATCH", d+"/missing", propertyupdate(plain, ""), nil)

	// Properties on collections and on the root work the same way.
	for _, target := range []string{d, "/"} {
		n.must(t, http.StatusMultiStatus, "PROPPATCH", target, propertyupdate(`<t:plain xmlns:t="urn:dfs-test:t">on `+target+`</t:plain>`, ""), nil)
		ms := n.propfind(t, target, "0", propfindBody(namePlain))
		if v, _ := ms[target].value(namePlain.Space, namePlain.Local); v != "on "+target {
			t.Errorf("property on collection %s: %q", target, v)
		}
	}
	n.must(t, http.StatusMultiStatus, "PROPPATCH", "/", propertyupdate("", `<t:plain xmlns:t="urn:dfs-test:t"/>`), nil)
}

func TestPropfindDepthAndLiveProperties(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	etag := n.put(t, d+"/a.txt", "abc")
	n.put(t, d+"/b.txt", "")
	n.mkcol(t, d+"/sub")
	n.put(t, d+"/sub/deep.txt", "deep")
	n.mkcol(t, d+"/sub/deeper")

	depths := []struct {
		depth string
		want  []string
	}{
		{"0", []string{d}},
		{"1", []string{d, d + "/a.txt", d + "/b.txt", d + "/sub"}},
		{"infinity", []string{d, d + "/a.txt", d + "/b.txt", d + "/sub", d + "/sub/deep.txt", d + "/sub/deeper"}},
		{"", []string{d, d + "/a.txt", d + "/b.txt", d + "/sub", d + "/sub/deep.txt", d + "/sub/deeper"}},
	}
	for _, tc := range depths {
		t.Run("Depth "+tc.depth, func(t *testing.T) {
			got := keys(n.propfind(t, d, tc.depth, allpropBody))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("listed\n  %s\nwant exactly\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
	t.Run("Depth 1 on a file", func(t *testing.T) {
		if got := keys(n.propfind(t, d+"/a.txt", "1", "")); len(got) != 1 || got[0] != d+"/a.txt" {
			t.Errorf("listed %v, want the file alone", got)
		}
	})

	t.Run("allprop", func(t *testing.T) {
		for _, body := range []string{allpropBody, ""} { // an empty body means allprop
			ms := n.propfind(t, d, "1", body)
			file, col := ms[d+"/a.txt"], ms[d+"/sub"]
			checkDates := func(what string, r davResource) {
				t.Helper()
				cd, ok := r.value("DAV:", "creationdate")
				if _, err := time.Parse(time.RFC3339, cd); !ok || err != nil {
					t.Errorf("%s: creationdate %q is not RFC 3339 (%v)", what, cd, err)
				}
				lm, ok := r.value("DAV:", "getlastmodified")
				if ts, err := time.Parse(http.TimeFormat, lm); !ok || err != nil || ts.Format(http.TimeFormat) != lm {
					t.Errorf("%s: getlastmodified %q is not RFC 1123 with GMT (%v)", what, lm, err)
				} else if time.Since(ts) > time.Hour || time.Until(ts) > time.Minute {
					t.Errorf("%s: getlastmodified %s is not about now", what, lm)
				}
			}
			checkDates("file", file)
			checkDates("collection", col)
			if v, ok := file.value("DAV:", "getcontentlength"); !ok || v != "3" {
				t.Errorf("file getcontentlength %q, want 3", v)
			}
			if v, ok := ms[d+"/b.txt"].value("DAV:", "getcontentlength"); !ok || v != "0" {
				t.Errorf("empty file getcontentlength %q, want 0", v)
			}
			if v, ok := file.value("DAV:", "getetag"); !ok || v != etag {
				t.Errorf("file getetag %q, want the PUT's %q", v, etag)
			}
			if v, ok := file.value("DAV:", "displayname"); !ok || v != "a.txt" {
				t.Errorf("file displayname %q", v)
			}
			if v, ok := file.value("DAV:", "getcontenttype"); !ok || !strings.HasPrefix(v, "text/plain") {
				t.Errorf("file getcontenttype %q", v)
			}
			if p := file.props[davName("resourcetype")]; p.status != http.StatusOK || len(p.node.Children) != 0 {
				t.Errorf("file resourcetype: %d %s", p.status, p.node.canon())
			}
			if p := col.props[davName("resourcetype")]; p.status != http.StatusOK || len(p.node.find("DAV:", "collection")) != 1 {
				t.Errorf("collection resourcetype: %d %s", p.status, p.node.canon())
			}
			if p, ok := col.props[davName("getcontentlength")]; ok && p.status == http.StatusOK && strings.TrimSpace(p.node.Text) != "" && strings.TrimSpace(p.node.Text) != "0" {
				t.Errorf("collection getcontentlength %q", p.node.Text)
			}
			for _, r := range []davResource{file, col} {
				if _, ok := r.props[davName("lockdiscovery")]; !ok {
					t.Errorf("%s: allprop lacks lockdiscovery", r.path)
				}
				if _, ok := r.props[davName("supportedlock")]; !ok {
					t.Errorf("%s: allprop lacks supportedlock", r.path)
				}
			}
		}
	})

	t.Run("propname", func(t *testing.T) {
		ms := n.propfind(t, d+"/a.txt", "0", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`)
		res := ms[d+"/a.txt"]
		for _, name := range []string{"creationdate", "getlastmodified", "getcontentlength", "getetag", "resourcetype"} {
			p, ok := res.props[davName(name)]
			if !ok || p.status != http.StatusOK || strings.TrimSpace(p.node.Text) != "" {
				t.Errorf("propname: DAV:%s missing or has a value", name)
			}
		}
	})

	t.Run("prop with a missing one", func(t *testing.T) {
		ms := n.propfind(t, d+"/a.txt", "0", propfindBody(davName("getcontentlength"), xml.Name{Space: "urn:x", Local: "nope"}))
		res := ms[d+"/a.txt"]
		if v, _ := res.value("DAV:", "getcontentlength"); v != "3" {
			t.Errorf("getcontentlength %q", v)
		}
		if p := res.props[xml.Name{Space: "urn:x", Local: "nope"}]; p.status != http.StatusNotFound {
			t.Errorf("an unknown property: status %d, want 404", p.status)
		}
	})

	t.Run("hrefs are escaped", func(t *testing.T) {
		n.put(t, d+"/sub/"+escape("a b#?%.txt"), "x")
		ms := n.propfind(t, d+"/sub", "1", "")
		res, ok := ms[d+"/sub/a b#?%.txt"]
		if !ok {
			t.Fatalf("member not listed under its unescaped name: %v", keys(ms))
		}
		if !strings.Contains(res.href, "a%20b%23%3F%25.txt") {
			t.Errorf("href %q is not percent-encoded", res.href)
		}
	})

	t.Run("missing", func(t *testing.T) {
		n.must(t, http.StatusNotFound, "PROPFIND", d+"/ghost", allpropBody, hdr{"Depth": "0"})
		n.must(t, http.StatusNotFound, "PROPFIND", d+"/a.txt/child", "", hdr{"Depth": "0"})
	})
}

func TestXMLBodiesRejected(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/f"
	n.put(t, f, "x")
	huge := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>` +
		strings.Repeat(`<D:getetag/>`, testMaxXMLBytes/len(`<D:getetag/>`)+1) + `</D:prop></D:propfind>`
	hugePatch := propertyupdate(`<t:big xmlns:t="urn:t">`+strings.Repeat("x", testMaxXMLBytes)+`</t:big>`, "")
	hugeLock := lockInfo("exclusive", strings.Repeat("o", testMaxXMLBytes))
	tests := []struct {
		name, method, body string
		h                  hdr
		want               int
	}{
		{"propfind malformed", "PROPFIND", `<D:propfind xmlns:D="DAV:"><D:prop>`, nil, http.StatusBadRequest},
		{"propfind not XML", "PROPFIND", `hello`, nil, http.StatusBadRequest},
		{"propfind mismatched tags", "PROPFIND", `<D:propfind xmlns:D="DAV:"><D:allprop></D:propfind></D:allprop>`, nil, http.StatusBadRequest},
		{"propfind undeclared prefix", "PROPFIND", `<D:propfind xmlns:D="DAV:"><D:prop><z:foo/></D:prop></D:propfind>`, nil, http.StatusBadRequest},
		{"propfind undeclared root prefix", "PROPFIND", `<D:propfind><D:allprop/></D:propfind>`, nil, http.StatusBadRequest},
		{"propfind empty namespace prefix", "PROPFIND", `<D:propfind xmlns:D="DAV:" xmlns:z=""><D:allprop/></D:propfind>`, nil, http.StatusBadRequest},
		{"propfind wrong root", "PROPFIND", `<D:propertyupdate xmlns:D="DAV:"/>`, nil, http.StatusBadRequest},
		{"propfind trailing garbage", "PROPFIND", allpropBody + `<x/>`, nil, http.StatusBadRequest},
		{"proppatch entity from a DTD", "PROPPATCH", `<!DOCTYPE x [<!ENTITY a "b">]>` + propertyupdate(`<t:foo xmlns:t="urn:t">&a;</t:foo>`, ""), nil, http.StatusBadRequest},
		{"propfind bad Depth", "PROPFIND", allpropBody, hdr{"Depth": "2"}, http.StatusBadRequest},
		{"propfind too large", "PROPFIND", huge, nil, http.StatusRequestEntityTooLarge},
		{"proppatch malformed", "PROPPATCH", `<D:propertyupdate xmlns:D="DAV:"><D:set>`, nil, http.StatusBadRequest},
		{"proppatch undeclared prefix", "PROPPATCH", propertyupdate(`<z:foo>1</z:foo>`, ""), nil, http.StatusBadRequest},
		{"proppatch undeclared prefix in a value", "PROPPATCH", propertyupdate(`<t:foo xmlns:t="urn:t"><q:bar/></t:foo>`, ""), nil, http.StatusBadRequest},
		{"proppatch empty", "PROPPATCH", ``, nil, http.StatusBadRequest},
		{"proppatch too large", "PROPPATCH", hugePatch, nil, http.StatusRequestEntityTooLarge},
		{"lock malformed", "LOCK", `<D:lockinfo xmlns:D="DAV:"><D:lockscope>`, nil, http.StatusBadRequest},
		{"lock undeclared prefix", "LOCK", `<D:lockinfo xmlns:D="DAV:"><D:lockscope><x:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`, nil, http.StatusBadRequest},
		{"lock too large", "LOCK", hugeLock, nil, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr{"Content-Type": "application/xml", "Depth": "0"}
			for k, v := range tc.h {
				h[k] = v
			}
			n.must(t, tc.want, tc.method, f, tc.body, h)
		})
	}
	// Nothing above took effect.
	if ms := n.propfind(t, f, "0", propfindBody(xml.Name{Space: "urn:t", Local: "big"}, xml.Name{Space: "urn:t", Local: "foo"})); len(ms[f].props) != 2 {
		t.Errorf("unexpected properties: %v", ms[f].props)
	} else {
		for name, p := range ms[f].props {
			if p.status != http.StatusNotFound {
				t.Errorf("%v set by a rejected PROPPATCH", name)
			}
		}
	}
	n.must(t, http.StatusNoContent, http.MethodPut, f, "unlocked", nil)
}

// ---------------------------------------------------------------------------
// Locks

func TestLockScopes(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)

	t.Run("exclusive then exclusive", func(t *testing.T) {
		f := d + "/ex"
		n.put(t, f, "x")
		tok, r := n.lock(t, http.StatusOK, f, "exclusive", "0", nil)
		al := activeLocks(t, r.body)[0]
		if _, ok := al.child("DAV:", "lockscope"); !ok || len(al.find("DAV:", "exclusive")) != 1 {
			t.Errorf("activelock scope is not exclusive: %s", al.canon())
		}
		if root, ok := al.child("DAV:", "lockroot"); !ok || len(root.find("DAV:", "href")) != 1 || strings.TrimSpace(root.find("DAV:", "href")[0].Text) != f {
			t.Errorf("activelock lockroot: %s, want %s", al.canon(), f)
		}
		if dep, ok := al.child("DAV:", "depth"); !ok || strings.TrimSpace(dep.Text) != "0" {
			t.Errorf("activelock depth: %s, want 0", al.canon())
		}
		if own, ok := al.child("DAV:", "owner"); !ok || strings.TrimSpace(own.Text) != "tester" {
			t.Errorf("activelock owner: %s, want tester", al.canon())
		}
		n.lock(t, http.StatusLocked, f, "exclusive", "0", nil)
		n.lock(t, http.StatusLocked, f, "shared", "0", nil)
		n.must(t, http.StatusNoContent, "UNLOCK", f, "", hdr{"Lock-Token": "<" + tok + ">"})
		n.lock(t, http.StatusOK, f, "exclusive", "0", nil)
	})
	t.Run("shared and shared", func(t *testing.T) {
		f := d + "/sh"
		n.put(t, f, "x")
		t1, _ := n.lock(t, http.StatusOK, f, "shared", "0", nil)
		t2, _ := n.lock(t, http.StatusOK, f, "shared", "0", nil)
		if t1 == t2 {
			t.Fatalf("two shared locks got the same token %s", t1)
		}
		n.lock(t, http.StatusLocked, f, "exclusive", "0", nil)
		p, _ := n.prop(t, f, davName("lockdiscovery"))
		var toks []string
		for _, al := range p.node.find("DAV:", "activelock") {
			toks = append(toks, lockToken(al))
		}
		if len(toks) != 2 || !(toks[0] == t1 && toks[1] == t2 || toks[0] == t2 && toks[1] == t1) {
			t.Errorf("lockdiscovery shows %v, want both shared locks %s %s", toks, t1, t2)
		}
		// Either shared token lets its holder write.
		n.must(t, http.StatusNoContent, http.MethodPut, f, "by t2", hdr{"If": ifToken(t2)})
		n.must(t, http.StatusLocked, http.MethodPut, f, "by nobody", nil)
	})
	t.Run("bad requests", func(t *testing.T) {
		f := d + "/bad"
		n.put(t, f, "x")
		n.lock(t, http.StatusBadRequest, f, "exclusive", "1", nil)
		n.lock(t, http.StatusBadRequest, f, "exclusive", "", hdr{"Timeout": "Second-soon"})
		n.must(t, http.StatusUnprocessableEntity, "LOCK", f,
			`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:read/></D:locktype></D:lockinfo>`, nil)
		n.lock(t, http.StatusConflict, d+"/nope/f", "exclusive", "0", nil)
		n.must(t, http.StatusNoContent, http.MethodPut, f, "still writable", nil)
	})
	t.Run("timeouts", func(t *testing.T) {
		for i, tc := range []struct{ h, want string }{
			{"Second-60", "Second-60"},
			{"Second-60, Infinite", "Second-60"},
			{"Infinite", "Second-604800"},
			{"Second-99999999999", "Second-604800"},
			{"Fortnight-2", "Second-604800"}, // unknown forms are ignored (RFC 4918 §10.7)
			{"Second-0", "Second-1"},
		} {
			f := d + "/timeout-" + strconv.Itoa(i)
			n.put(t, f, "x")
			_, r := n.lock(t, http.StatusOK, f, "exclusive", "0", hdr{"Timeout": tc.h})
			to, _ := activeLocks(t, r.body)[0].child("DAV:", "timeout")
			if got := strings.TrimSpace(to.Text); got != tc.want {
				t.Errorf("Timeout: %s gave %q, want %q", tc.h, got, tc.want)
			}
		}
	})
}

func TestLockedFileRefusesWrites(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/locked.txt"
	n.put(t, f, "v1")
	n.put(t, d+"/free", "free")
	tok, _ := n.lock(t, http.StatusOK, f, "exclusive", "0", nil)
	tagged := "<" + n.abs(f) + "> " + ifToken(tok)
	ingress := "<https://dav.example.com" + f + "> " + ifToken(tok)
	setProp := propertyupdate(`<t:p xmlns:t="urn:t">v</t:p>`, "")

	tests := []struct {
		name, method, target, body string
		h                          hdr
		want                       int
	}{
		{"PUT without token", http.MethodPut, f, "v2", nil, http.StatusLocked},
		{"PUT with a bogus token", http.MethodPut, f, "v2", hdr{"If": "(<opaquelocktoken:00000000-0000-4000-8000-000000000000>)"}, http.StatusPreconditionFailed},
		{"PUT with a malformed If", http.MethodPut, f, "v2", hdr{"If": "(<" + tok}, http.StatusBadRequest},
		{"DELETE without token", http.MethodDelete, f, "", nil, http.StatusLocked},
		{"MOVE away without token", "MOVE", f, "", hdr{"Destination": n.abs(d + "/elsewhere")}, http.StatusLocked},
		{"MOVE onto it without token", "MOVE", d + "/free", "", hdr{"Destination": n.abs(f)}, http.StatusLocked},
		{"COPY onto it without token", "COPY", d + "/free", "", hdr{"Destination": n.abs(f)}, http.StatusLocked},
		{"PROPPATCH without token", "PROPPATCH", f, setProp, nil, http.StatusLocked},
		{"LOCK it again", "LOCK", f, lockInfo("exclusive", "other"), nil, http.StatusLocked},
		{"COPY from it", "COPY", f, "", hdr{"Destination": n.abs(d + "/copy")}, http.StatusCreated},
		{"GET it", http.MethodGet, f, "", nil, http.StatusOK},
		{"PROPFIND it", "PROPFIND", f, "", hdr{"Depth": "0"}, http.StatusMultiStatus},
		{"PUT with token", http.MethodPut, f, "v2", hdr{"If": ifToken(tok)}, http.StatusNoContent},
		{"PUT with a tagged token", http.MethodPut, f, "v3", hdr{"If": tagged}, http.StatusNoContent},
		{"PUT with the token and the ingress host", http.MethodPut, f, "v4", hdr{"If": ingress}, http.StatusNoContent},
		{"PUT with token and a stale etag", http.MethodPut, f, "v5", hdr{"If": "(<" + tok + `> ["0123456789abcdef"])`}, http.StatusPreconditionFailed},
		{"PUT with token or a stale etag", http.MethodPut, f, "v4", hdr{"If": ifToken(tok) + ` (["0123456789abcdef"])`}, http.StatusNoContent},
		{"PROPPATCH with token", "PROPPATCH", f, setProp, hdr{"If": ifToken(tok)}, http.StatusMultiStatus},
		{"PROPPATCH with a tagged token", "PROPPATCH", f, setProp, hdr{"If": tagged}, http.StatusMultiStatus},
		// Behind an ingress the If header's resource tag carries the
		// ingress's host, as Destination does.
		{"PROPPATCH with the token and the ingress host", "PROPPATCH", f, setProp, hdr{"If": ingress}, http.StatusMultiStatus},
		{"MOVE with token", "MOVE", f, "", hdr{"Destination": n.abs(d + "/renamed"), "If": ifToken(tok)}, http.StatusCreated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, tc.method, tc.target, tc.body, tc.h)
			switch tc.want {
			case http.StatusLocked:
				if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
					t.Fatalf("423 with Content-Type %q, want an XML error body", ct)
				}
				x := parseXML(t, r.body)
				if x.XMLName != davName("error") {
					t.Fatalf("423 body is not a DAV:error: %s", r.body)
				}
				if tc.method == "LOCK" {
					return // a conflicting LOCK may name either precondition
				}
				lts, ok := x.child("DAV:", "lock-token-submitted")
				if !ok {
					t.Fatalf("423 without DAV:lock-token-submitted: %s", r.body)
				}
				if h, _ := lts.child("DAV:", "href"); strings.TrimSpace(h.Text) != f {
					t.Errorf("lock-token-submitted names %q, want the locked %s", h.Text, f)
				}
			case http.StatusMultiStatus:
				if tc.method == "PROPPATCH" {
					for _, res := range parseMultistatus(t, r.body) {
						for name, p := range res.props {
							if p.status != http.StatusOK {
								t.Errorf("%v: %d, want 200", name, p.status)
							}
						}
					}
				}
			}
		})
	}
	if got := n.get(t, d+"/renamed"); got != "v4" {
		t.Errorf("final content %q, want v4", got)
	}
	// A lock does not travel with a MOVE (RFC 4918 §7.5), and the moved
	// resource's old URL is free.
	n.must(t, http.StatusNoContent, http.MethodPut, d+"/renamed", "v6", nil)
	n.must(t, http.StatusCreated, http.MethodPut, f, "new file at the old name", nil)
}

func TestLockDepthInfinityOnCollection(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	c := d + "/c"
	n.mkcol(t, c)
	n.put(t, c+"/existing", "e")
	n.mkcol(t, c+"/sub")
	tok, _ := n.lock(t, http.StatusOK, c, "exclusive", "infinity", nil)
	withTok := hdr{"If": ifToken(tok)}

	n.must(t, http.StatusLocked, http.MethodPut, c+"/new", "n", nil)
	n.must(t, http.StatusLocked, http.MethodPut, c+"/sub/new", "n", nil)
	n.must(t, http.StatusLocked, http.MethodPut, c+"/existing", "n", nil)
	n.must(t, http.StatusLocked, "MKCOL", c+"/newcol", "", nil)
	n.must(t, http.StatusLocked, http.MethodDelete, c+"/existing", "", nil)
	n.must(t, http.StatusLocked, http.MethodDelete, c, "", nil)
	n.put(t, d+"/outside", "o")
	n.must(t, http.StatusLocked, "MOVE", d+"/outside", "", hdr{"Destination": n.abs(c + "/outside")})

	n.must(t, http.StatusCreated, http.MethodPut, c+"/new", "n", withTok)
	n.must(t, http.StatusCreated, http.MethodPut, c+"/sub/new", "n", withTok)
	n.must(t, http.StatusCreated, "MKCOL", c+"/newcol", "", withTok)
	// The tagged form naming the collection covers its members too.
	n.must(t, http.StatusNoContent, http.MethodPut, c+"/existing", "x", hdr{"If": "<" + n.abs(c) + "> " + ifToken(tok)})

	p, _ := n.prop(t, c+"/sub/new", davName("lockdiscovery"))
	als := p.node.find("DAV:", "activelock")
	if len(als) != 1 || lockToken(als[0]) != tok {
		t.Errorf("a member's lockdiscovery does not show the inherited lock: %s", p.node.canon())
	} else if root, _ := als[0].child("DAV:", "lockroot"); len(root.find("DAV:", "href")) != 1 || strings.TrimSpace(root.find("DAV:", "href")[0].Text) != c {
		t.Errorf("inherited lock's lockroot %s, want %s", root.canon(), c)
	}
	// A member cannot be locked exclusively by someone else.
	n.lock(t, http.StatusLocked, c+"/existing", "exclusive", "0", nil)
	n.lock(t, http.StatusLocked, c+"/brand-new", "exclusive", "0", nil)

	// UNLOCK through a member inside the lock's scope (RFC 4918 §9.11).
	n.must(t, http.StatusNoContent, "UNLOCK", c+"/sub/new", "", hdr{"Lock-Token": "<" + tok + ">"})
	n.must(t, http.StatusNoContent, http.MethodPut, c+"/existing", "free", nil)
}

func TestLockDepthZeroOnCollection(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	c := d + "/c"
	n.mkcol(t, c)
	n.put(t, c+"/existing", "e")
	n.mkcol(t, c+"/sub")
	tok, _ := n.lock(t, http.StatusOK, c, "exclusive", "0", nil)

	// Membership is protected; existing members' content is not.
	n.must(t, http.StatusLocked, http.MethodPut, c+"/new", "n", nil)
	n.must(t, http.StatusLocked, http.MethodDelete, c+"/existing", "", nil)
	n.must(t, http.StatusLocked, "MKCOL", c+"/newcol", "", nil)
	n.must(t, http.StatusNoContent, http.MethodPut, c+"/existing", "changed", nil)
	n.must(t, http.StatusCreated, http.MethodPut, c+"/sub/new", "n", nil)
	// The member is outside the lock, so the token is submitted for the
	// collection it changes: a list tagged with the collection's URL.
	n.must(t, http.StatusCreated, http.MethodPut, c+"/new", "n", hdr{"If": "<" + n.abs(c) + "> " + ifToken(tok)})
	n.must(t, http.StatusNoContent, http.MethodDelete, c+"/existing", "", hdr{"If": "<" + n.abs(c) + "> " + ifToken(tok)})
}

func TestLockUnmappedURL(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/reserved-name.txt"
	tok, _ := n.lock(t, http.StatusCreated, f, "exclusive", "0", nil)
	g := n.must(t, http.StatusOK, http.MethodGet, f, "", nil)
	if len(g.body) != 0 || g.header.Get("Content-Length") != "0" {
		t.Errorf("LOCK on an unmapped URL created %d bytes, want an empty file", len(g.body))
	}
	ms := n.propfind(t, d, "1", "")
	if _, ok := ms[f]; !ok {
		t.Errorf("the lock-null file is not listed in its collection: %v", keys(ms))
	}
	n.must(t, http.StatusLocked, http.MethodPut, f, "other", nil)
	n.must(t, http.StatusNoContent, http.MethodPut, f, "mine", hdr{"If": ifToken(tok)})
	n.must(t, http.StatusNoContent, "UNLOCK", f, "", hdr{"Lock-Token": "<" + tok + ">"})
	if got := n.get(t, f); got != "mine" {
		t.Errorf("content %q after UNLOCK, want mine", got)
	}
}

func TestLockRefreshAndUnlock(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/f"
	n.put(t, f, "x")
	n.put(t, d+"/g", "y")
	tok, _ := n.lock(t, http.StatusOK, f, "exclusive", "0", hdr{"Timeout": "Second-3600"})
	gtok, _ := n.lock(t, http.StatusOK, d+"/g", "exclusive", "0", nil)

	t.Run("refresh", func(t *testing.T) {
		r := n.must(t, http.StatusOK, "LOCK", f, "", hdr{"If": ifToken(tok), "Timeout": "Second-100"})
		als := activeLocks(t, r.body)
		if len(als) != 1 || lockToken(als[0]) != tok {
			t.Fatalf("refresh body does not describe the lock: %s", r.body)
		}
		to, _ := als[0].child("DAV:", "timeout")
		secs, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(to.Text), "Second-"))
		if err != nil || secs > 100 || secs < 90 {
			t.Errorf("refreshed timeout %q, want about Second-100", to.Text)
		}
		if lt := r.header.Get("Lock-Token"); lt != "" && tokenOf(lt) != tok {
			t.Errorf("refresh answered a different Lock-Token %q", lt)
		}
		p, _ := n.prop(t, f, davName("lockdiscovery"))
		if tos := p.node.find("DAV:", "timeout"); len(tos) != 1 || strings.TrimSpace(tos[0].Text) == "Second-3600" {
			t.Errorf("lockdiscovery does not show the refreshed timeout: %s", p.node.canon())
		}
	})
	t.Run("refresh without If", func(t *testing.T) {
		n.must(t, http.StatusBadRequest, "LOCK", f, "", hdr{"Timeout": "Second-100"})
	})
	t.Run("refresh with an unknown token", func(t *testing.T) {
		n.must(t, http.StatusPreconditionFailed, "LOCK", f, "", hdr{"If": "(<opaquelocktoken:00000000-0000-4000-8000-000000000000>)"})
	})
	t.Run("refresh with another resource's token", func(t *testing.T) {
		n.must(t, http.StatusPreconditionFailed, "LOCK", f, "", hdr{"If": ifToken(gtok)})
	})
	t.Run("unlock with an unknown token", func(t *testing.T) {
		n.must(t, http.StatusConflict, "UNLOCK", f, "", hdr{"Lock-Token": "<opaquelocktoken:00000000-0000-4000-8000-000000000000>"})
	})
	t.Run("unlock with another resource's token", func(t *testing.T) {
		n.must(t, http.StatusConflict, "UNLOCK", f, "", hdr{"Lock-Token": "<" + gtok + ">"})
	})
	t.Run("unlock without Lock-Token", func(t *testing.T) {
		n.must(t, http.StatusBadRequest, "UNLOCK", f, "", nil)
		n.must(t, http.StatusBadRequest, "UNLOCK", f, "", hdr{"Lock-Token": tok})
	})
	t.Run("unlock", func(t *testing.T) {
		n.must(t, http.StatusLocked, http.MethodPut, f, "z", nil)
		n.must(t, http.StatusNoContent, "UNLOCK", f, "", hdr{"Lock-Token": "<" + tok + ">"})
		n.must(t, http.StatusNoContent, http.MethodPut, f, "z", nil)
		n.must(t, http.StatusConflict, "UNLOCK", f, "", hdr{"Lock-Token": "<" + tok + ">"})
		if p, _ := n.prop(t, f, davName("lockdiscovery")); len(p.node.find("DAV:", "activelock")) != 0 {
			t.Errorf("lockdiscovery after UNLOCK: %s", p.node.canon())
		}
		// The other lock is untouched.
		n.must(t, http.StatusLocked, http.MethodPut, d+"/g", "z", nil)
	})
}

func TestDeleteCollectionWithLockedMember(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	c := d + "/c"
	n.mkcol(t, c)
	n.mkcol(t, c+"/sub")
	n.put(t, c+"/sub/locked", "l")
	n.put(t, c+"/free", "f")
	tok, _ := n.lock(t, http.StatusOK, c+"/sub/locked", "exclusive", "0", nil)

	r := n.must(t, http.StatusLocked, http.MethodDelete, c, "", nil)
	if !bytes.Contains(r.body, []byte("lock-token-submitted")) || !bytes.Contains(r.body, []byte(c+"/sub/locked")) {
		t.Errorf("423 body does not name the locked member: %s", r.body)
	}
	for _, p := range []string{c + "/free", c + "/sub/locked"} {
		if !n.exists(t, p) {
			t.Errorf("%s deleted by a refused DELETE", p)
		}
	}
	n.must(t, http.StatusLocked, "MOVE", c, "", hdr{"Destination": n.abs(d + "/moved")})
	n.must(t, http.StatusCreated, "COPY", c, "", hdr{"Destination": n.abs(d + "/copied")})
	n.must(t, http.StatusNoContent, http.MethodDelete, c, "", hdr{"If": "<" + n.abs(c+"/sub/locked") + "> " + ifToken(tok)})
	n.must(t, http.StatusNotFound, http.MethodGet, c+"/sub/locked", "", nil)
	// The lock went with the resource.
	n.must(t, http.StatusConflict, "UNLOCK", d+"/copied/sub/locked", "", hdr{"Lock-Token": "<" + tok + ">"})
	n.must(t, http.StatusNoContent, http.MethodPut, d+"/copied/sub/locked", "free now", nil)
}

func TestLockSurvivesRestart(t *testing.T) {
	n := startNodeWith(t, nodeOptions{dataDir: t.TempDir(), bootstrap: true})
	n.mkcol(t, "/c")
	n.put(t, "/c/f", "before")
	n.mkcol(t, "/shared")
	n.put(t, "/shared/m", "m")
	n.put(t, "/plain", "plain")
	tok, _ := n.lock(t, http.StatusOK, "/c/f", "exclusive", "0", hdr{"Timeout": "Second-3600"})
	s1, _ := n.lock(t, http.StatusOK, "/shared", "shared", "infinity", nil)
	s2, _ := n.lock(t, http.StatusOK, "/shared", "shared", "infinity", nil)
	n.must(t, http.StatusMultiStatus, "PROPPATCH", "/plain", propertyupdate(`<t:p xmlns:t="urn:t">kept</t:p>`, ""), nil)

	n2 := n.restart(t)
	n2.must(t, http.StatusLocked, http.MethodPut, "/c/f", "after", nil)
	n2.must(t, http.StatusLocked, http.MethodDelete, "/c", "", nil)
	n2.must(t, http.StatusLocked, http.MethodPut, "/shared/new", "x", nil)
	n2.must(t, http.StatusLocked, http.MethodPut, "/shared/m", "x", nil)
	n2.lock(t, http.StatusLocked, "/c/f", "exclusive", "0", nil)
	n2.lock(t, http.StatusLocked, "/shared", "exclusive", "0", nil)
	for target, want := range map[string][]string{"/c/f": {tok}, "/shared/m": {s1, s2}} {
		p, _ := n2.prop(t, target, davName("lockdiscovery"))
		var got []string
		for _, al := range p.node.find("DAV:", "activelock") {
			got = append(got, lockToken(al))
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: lockdiscovery after restart shows %v, want %v", target, got, want)
		}
	}
	if v, _ := n2.propfind(t, "/plain", "0", propfindBody(xml.Name{Space: "urn:t", Local: "p"}))["/plain"].value("urn:t", "p"); v != "kept" {
		t.Errorf("dead property after restart: %q", v)
	}
	if got := n2.get(t, "/c/f"); got != "before" {
		t.Errorf("content after restart %q", got)
	}
	n2.must(t, http.StatusNoContent, http.MethodPut, "/c/f", "after", hdr{"If": ifToken(tok)})
	n2.must(t, http.StatusCreated, http.MethodPut, "/shared/new", "x", hdr{"If": ifToken(s2)})
	n2.must(t, http.StatusNoContent, "UNLOCK", "/c/f", "", hdr{"Lock-Token": "<" + tok + ">"})
	n2.must(t, http.StatusNoContent, http.MethodPut, "/c/f", "after2", nil)
	if got := n2.get(t, "/c/f"); got != "after2" {
		t.Errorf("content %q, want after2", got)
	}
}

// ---------------------------------------------------------------------------
// The node API's names, methods, OPTIONS

func TestReservedNames(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	n.put(t, d+"/f", "x")
	tests := []struct {
		method, target string
		h              hdr
		body           string
		want           int
	}{
		{http.MethodPut, "/healthz", nil, "x", http.StatusForbidden},
		{http.MethodPut, "/readyz", nil, "x", http.StatusForbidden},
		{http.MethodPut, "/metrics", nil, "x", http.StatusForbidden},
		{http.MethodPut, "/cluster/status", nil, "x", http.StatusForbidden},
		{"MKCOL", "/cluster", nil, "", http.StatusForbidden},
		{"MKCOL", "/healthz", nil, "", http.StatusForbidden},
		{"LOCK", "/metrics", nil, lockInfo("exclusive", "x"), http.StatusForbidden},
		{"COPY", d + "/f", hdr{"Destination": n.abs("/cluster")}, "", http.StatusForbidden},
		{"MOVE", d + "/f", hdr{"Destination": n.abs("/healthz")}, "", http.StatusForbidden},
		{"MOVE", d + "/f", hdr{"Destination": "/readyz/x"}, "", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target+tc.h["Destination"], func(t *testing.T) {
			n.must(t, tc.want, tc.method, tc.target, tc.body, tc.h)
		})
	}
	// Only the exact API paths are reserved from reading; a name that merely
	// starts like one is a normal file.
	n.mkcol(t, "/healthzz-"+strings.TrimPrefix(d, "/"))

	r := n.must(t, http.StatusOK, http.MethodGet, "/healthz", "", nil)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || !bytes.Contains(r.body, []byte(`"status": "ok"`)) {
		t.Errorf("GET /healthz: %s (%s), want the health JSON", r, r.header.Get("Content-Type"))
	}
	r = n.must(t, http.StatusOK, http.MethodGet, "/readyz", "", nil)
	if !bytes.Contains(r.body, []byte(`"ready": true`)) {
		t.Errorf("GET /readyz: %s", r)
	}
	n.must(t, http.StatusOK, http.MethodGet, "/cluster/status", "", nil)

	ms := n.propfind(t, "/", "1", "")
	for p := range ms {
		seg := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]
		switch seg {
		case "healthz", "readyz", "cluster", "metrics":
			t.Errorf("PROPFIND / lists the reserved %s", p)
		}
	}
	if _, ok := ms[d+"/f"]; ok {
		t.Errorf("Depth 1 on / listed a grandchild")
	}
	if !n.exists(t, d+"/f") {
		t.Errorf("a refused COPY or MOVE to a reserved name lost the source")
	}
}

func TestMethodsAndOptions(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	n.put(t, d+"/f", "x")
	all := []string{"OPTIONS", "GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK"}
	for _, target := range []string{"/", d, d + "/f", d + "/missing"} {
		t.Run("OPTIONS "+target, func(t *testing.T) {
			r := n.must(t, http.StatusOK, http.MethodOptions, target, "", nil)
			classes := map[string]bool{}
			for _, c := range strings.Split(r.header.Get("DAV"), ",") {
				classes[strings.TrimSpace(c)] = true
			}
			if !classes["1"] || !classes["2"] {
				t.Errorf("DAV: %q, want classes 1 and 2", r.header.Get("DAV"))
			}
			allow := map[string]bool{}
			for _, m := range strings.Split(r.header.Get("Allow"), ",") {
				allow[strings.TrimSpace(m)] = true
			}
			for _, m := range all {
				if !allow[m] {
					t.Errorf("Allow %q lacks %s", r.header.Get("Allow"), m)
				}
			}
		})
	}
	for _, m := range []string{http.MethodPost, http.MethodPatch} {
		t.Run(m, func(t *testing.T) {
			r := n.must(t, http.StatusMethodNotAllowed, m, d+"/f", "body", nil)
			if !strings.Contains(r.header.Get("Allow"), "PROPFIND") {
				t.Errorf("405 with Allow %q", r.header.Get("Allow"))
			}
		})
	}
	for _, m := range []string{"BREW", "SEARCH", "REPORT", "BIND", "get", "Propfind"} {
		t.Run(m, func(t *testing.T) {
			n.must(t, http.StatusNotImplemented, m, d+"/f", "", nil)
		})
	}
	if got := n.get(t, d+"/f"); got != "x" {
		t.Errorf("an unsupported method changed the file: %q", got)
	}
}

// ---------------------------------------------------------------------------
// Hostile input

// hostileTargets are request-targets that name nothing dfs can store. Each
// must be refused with 400 (or, for a GET-like method, 404), never 500, and
// never create anything.
var hostileTargets = []string{
	"/../../etc/passwd",
	"/a/../../etc/passwd",
	"/%2e%2e/%2e%2e/etc/passwd",
	"/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
	"/..%2f..%2fetc%2fpasswd",
	"/a%00b",
	"/passwd%00.txt",
	"/%ff",
	"/%c0%ae%c0%ae/etc/passwd", // overlong UTF-8 dots
	"/%ed%a0%80",               // a UTF-16 surrogate
	"/" + strings.Repeat("n", 300),
	"/ok/" + strings.Repeat("%C3%A9", 130), // 260 bytes once decoded
	`/a\b`,
	`/..\..\etc\passwd`,
	"/%5C..%5C..%5Cetc%5Cpasswd",
	"/C:%5Cwindows%5Cwin.ini",
	"/a%01b",
	"/a%7fb",
	"/a%0d%0aX-Injected:%20yes",
	"/" + strings.Repeat("d/", 2100), // a path above the length limit
}

func TestHostilePaths(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	n := startNodeWith(t, nodeOptions{dataDir: dataDir, bootstrap: true})
	n.mkcol(t, "/ok")
	n.put(t, "/ok/src", "source")

	methods := []struct {
		method string
		body   string
		h      hdr
	}{
		{http.MethodPut, "pwned", nil},
		{http.MethodGet, "", nil},
		{http.MethodHead, "", nil},
		{"MKCOL", "", nil},
		{http.MethodDelete, "", nil},
		{"PROPFIND", "", hdr{"Depth": "0"}},
		{"PROPPATCH", propertyupdate(`<t:p xmlns:t="urn:t">x</t:p>`, ""), nil},
		{"LOCK", lockInfo("exclusive", "x"), nil},
		{"UNLOCK", "", hdr{"Lock-Token": "<opaquelocktoken:00000000-0000-4000-8000-000000000000>"}},
		{"COPY", "", hdr{"Destination": "/ok/copy"}},
		{"MOVE", "", hdr{"Destination": "/ok/moved"}},
		{"OPTIONS", "", nil},
	}
	for _, target := range hostileTargets {
		name := target
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		for _, m := range methods {
			t.Run(m.method+" "+name, func(t *testing.T) {
				r := n.do(t, m.method, target, m.body, m.h)
				if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
					t.Errorf("%s %s: got %s, want 400 or 404", m.method, target, r)
				}
			})
		}
		// The same targets as a COPY or MOVE Destination, as a path and
		// as an absolute URL.
		for _, method := range []string{"COPY", "MOVE"} {
			for _, dst := range []string{target, n.abs(target), "http://ingress.example.com" + target} {
				t.Run(method+" to "+dst[:min(len(dst), 60)], func(t *testing.T) {
					r := n.do(t, method, "/ok/src", "", hdr{"Destination": dst})
					if r.status != http.StatusBadRequest {
						t.Errorf("%s to %s: got %s, want 400", method, dst, r)
					}
				})
			}
		}
	}

	// Nothing was created or moved, in dfs or on disk.
	ms := n.propfind(t, "/", "infinity", "")
	if got := keys(ms); strings.Join(got, " ") != "/ /ok /ok/src" {
		t.Errorf("the tree changed: %v", got)
	}
	if got := n.get(t, "/ok/src"); got != "source" {
		t.Errorf("/ok/src changed to %q", got)
	}
	checkDataDir(t, root, dataDir)
}

// checkDataDir asserts that the node wrote only inside dataDir, and there
// only its own files: the metadata store, Raft state and content objects
// named by hash. No client-chosen name may appear on disk.
func checkDataDir(t *testing.T, root, dataDir string) {
	t.Helper()
	hexName := regexp.MustCompile(`^[0-9a-f]{64}$`)
	forbidden := regexp.MustCompile(`(?i)passwd|win\.ini|pwned|etc|windows|injected|\\|nnnnnnnn`)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if rel != "data" && !strings.HasPrefix(rel, "data"+string(filepath.Separator)) {
			t.Errorf("%s was created outside the data directory", p)
			return nil
		}
		in, _ := filepath.Rel(dataDir, p)
		parts := strings.Split(in, string(filepath.Separator))
		if forbidden.MatchString(e.Name()) {
			t.Errorf("a client-chosen name reached the disk: %s", p)
		}
		if len(parts) == 4 && parts[0] == "content" && parts[1] == "objects" && !hexName.MatchString(parts[3]) && !e.IsDir() {
			t.Errorf("content object %s is not named by its hash", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"meta.db", "content", "raft"} {
		if _, err := os.Stat(filepath.Join(dataDir, want)); err != nil {
			t.Errorf("data directory lacks %s: %v", want, err)
		}
	}
}

// keys lists a multistatus's paths in order.
func keys(ms map[string]davResource) []string {
	out := make([]string, 0, len(ms))
	for p := range ms {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// Concurrency

// TestReadsDuringOverwrites races GETs against overwrites and DELETEs of
// the same file. Content is released the moment nothing references it, so
// a GET that resolved the path just before an overwrite committed must
// still answer whole: either version, complete, with that version's ETag,
// or 404, never a 200 cut short.
func TestReadsDuringOverwrites(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/hot"
	n.put(t, f, "v0")
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var reads, full atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; time.Now().Before(deadline); i++ {
			body := strings.Repeat(fmt.Sprintf("version %d;", i), 20000)
			method := http.MethodPut
			if i%7 == 0 {
				method, body = http.MethodDelete, ""
			}
			r, err := n.try(method, f, body, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if r.status >= 500 {
				t.Errorf("%s during reads: %s", method, r)
				return
			}
		}
	}()
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, err := n.newRequest(http.MethodGet, f, nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("GET during overwrites: %v", err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				reads.Add(1)
				switch {
				case err != nil:
					t.Errorf("GET during overwrites: %d with a body cut short after %d bytes: %v", resp.StatusCode, len(body), err)
					return
				case resp.StatusCode == http.StatusNotFound:
				case resp.StatusCode != http.StatusOK:
					t.Errorf("GET during overwrites: %d %s", resp.StatusCode, body)
					return
				default:
					full.Add(1)
					sum := sha256.Sum256(body)
					etag := resp.Header.Get("ETag")
					if len(etag) < 3 || !strings.HasPrefix(hex.EncodeToString(sum[:]), strings.Trim(etag, `"`)) {
						t.Errorf("GET during overwrites: ETag %s does not belong to the %d bytes served", etag, len(body))
						return
					}
					if !bytes.HasPrefix(body, []byte("version ")) && string(body) != "v0" {
						t.Errorf("GET during overwrites: unexpected bytes %.40q", body)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d reads, %d whole files", reads.Load(), full.Load())
	if full.Load() == 0 {
		t.Errorf("no GET saw the file")
	}
}

// TestConcurrentMutationsNever5xx runs many clients doing every kind of
// write on a few shared names at once. Every request loses some race; each
// must still get a 2xx or 4xx (207 for PROPPATCH, 404 or 409 for a vanished
// resource, 412, 423), never a 5xx.
func TestConcurrentMutationsNever5xx(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	names := []string{d + "/a", d + "/b", d + "/c", d + "/c/x", d + "/c/y/z"}
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var count atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				p, q := names[i%len(names)], names[(i*7+g)%len(names)]
				var method, body string
				h := hdr{}
				switch (i + g) % 9 {
				case 0:
					method, body = http.MethodPut, fmt.Sprintf("%d-%d", g, i)
				case 1:
					method = "MKCOL"
				case 2:
					method = http.MethodDelete
				case 3:
					method, h["Destination"] = "MOVE", n.abs(q)
				case 4:
					method, h["Destination"] = "COPY", n.abs(q)
				case 5:
					method, body = "PROPPATCH", propertyupdate(fmt.Sprintf(`<t:n xmlns:t="urn:t">%d</t:n>`, i), "")
				case 6:
					method, h["Depth"] = "PROPFIND", "infinity"
				case 7:
					method, body, h["Timeout"] = "LOCK", lockInfo("shared", "racer"), "Second-2"
				case 8:
					method = http.MethodGet
				}
				r, err := n.try(method, p, body, h)
				if err != nil {
					t.Error(err)
					return
				}
				count.Add(1)
				if r.status >= 500 {
					t.Errorf("%s %s: %s", method, p, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests", count.Load())
}

// TestProppatchDuringDelete races PROPPATCH against the resource's DELETE.
// The handler checks that the resource exists before x/net runs; when the
// DELETE commits in between, the PROPPATCH entry applies to nothing, and
// the answer must be 404, not x/net's 500 for a failed patch.
func TestProppatchDuringDelete(t *testing.T) {
	n := sharedNode(t)
	d := n.scratch(t)
	f := d + "/flicker"
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	var patched, gone atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			for _, m := range []string{http.MethodPut, http.MethodDelete} {
				if r, err := n.try(m, f, "x", nil); err != nil || r.status >= 500 {
					t.Errorf("%s: %v %v", m, r, err)
					return
				}
			}
		}
	}()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				r, err := n.try("PROPPATCH", f, propertyupdate(`<t:p xmlns:t="urn:t">x</t:p>`, ""), nil)
				switch {
				case err != nil:
					t.Error(err)
					return
				case r.status == http.StatusMultiStatus:
					patched.Add(1)
				case r.status == http.StatusNotFound:
					gone.Add(1)
				default:
					t.Errorf("PROPPATCH racing DELETE: %s, want 207 or 404", r)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d patched, %d found nothing", patched.Load(), gone.Load())
}
