package webdav_test

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// fuzzMethods are the methods FuzzHandler picks from; one index past the
// end means the fuzzed junk method.
var fuzzMethods = []string{
	"GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPFIND",
	"PROPPATCH", "LOCK", "UNLOCK", "OPTIONS", "POST", "PATCH", "TRACE",
}

// fuzzRequest is one input of FuzzHandler.
type fuzzRequest struct {
	method    uint8
	junk      string // the method when method indexes past fuzzMethods
	path      string
	depth     string
	dest      string
	ifh       string
	overwrite string
	timeout   string
	lockToken string
	body      string
}

var fuzzSeeds = []fuzzRequest{
	{method: 2, path: "/a", body: "hello"},
	{method: 4, path: "/c"},
	{method: 2, path: "/c/f.txt", body: "in c"},
	{method: 0, path: "/c/f.txt"},
	{method: 0, path: "/c/"},
	{method: 1, path: "/a"},
	{method: 7, path: "/", depth: "1", body: allpropBody},
	{method: 7, path: "/c", depth: "infinity", body: `<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`},
	{method: 7, path: "/a", depth: "0", body: `<D:propfind xmlns:D="DAV:"><D:prop><z:x/></D:prop></D:propfind>`},
	{method: 7, path: "/a", depth: "2"},
	{method: 8, path: "/a", body: propertyupdate(`<t:a xmlns:t="urn:t">Zoë <b xmlns="">x</b><t:a>nested same name</t:a></t:a>`, `<q:r xmlns:q="urn:q"/>`)},
	{method: 8, path: "/c", body: propertyupdate(`<D:getetag>x</D:getetag>`, "")},
	{method: 8, path: "/", body: `<!DOCTYPE x [<!ENTITY a "b">]><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><t:v xmlns:t="urn:t">&a;</t:v></D:prop></D:set></D:propertyupdate>`},
	{method: 9, path: "/a", depth: "0", timeout: "Second-5", body: lockInfo("exclusive", "<D:href>me</D:href>")},
	{method: 9, path: "/c", depth: "infinity", timeout: "Infinite, Second-4100000000", body: lockInfo("shared", "x")},
	{method: 9, path: "/new-by-lock", body: lockInfo("exclusive", "")},
	{method: 9, path: "/a", ifh: "(<opaquelocktoken:00000000-0000-4000-8000-000000000000>)", timeout: "Second-10"},
	{method: 9, path: "/a", body: `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:read/></D:locktype></D:lockinfo>`},
	{method: 10, path: "/a", lockToken: "<opaquelocktoken:00000000-0000-4000-8000-000000000000>"},
	{method: 10, path: "/a", lockToken: "no brackets"},
	{method: 5, path: "/a", dest: "/b", overwrite: "F"},
	{method: 5, path: "/c", dest: "http://ingress.example.com/c2", depth: "0"},
	{method: 6, path: "/c", dest: "/c/inside"},
	{method: 6, path: "/b", dest: "https://other:8443/%C3%A9t%C3%A9", overwrite: "T"},
	{method: 6, path: "/a", dest: "/../../etc/passwd"},
	{method: 6, path: "/a", dest: "//evil/x"},
	{method: 5, path: "/", dest: "/root-copy"},
	{method: 3, path: "/"},
	{method: 3, path: "/c", depth: "0"},
	{method: 2, path: "/%2e%2e/x", body: "x"},
	{method: 2, path: "/a%00b", body: "x"},
	{method: 2, path: "/%ff", body: "x"},
	{method: 4, path: "/" + strings.Repeat("n", 300)},
	{method: 0, path: `/a\b`},
	{method: 2, path: "/healthz", body: "x"},
	{method: 4, path: "/cluster"},
	{method: 0, path: "/healthz"},
	{method: 2, path: "/a", ifh: `<http://h/a> (Not <urn:x> ["etag"]) (<opaquelocktoken:x>) <http://h/b> ([W/"w"])`, body: "x"},
	{method: 2, path: "/a", ifh: "(<urn:a", body: "x"},
	{method: 2, path: "/a", ifh: "()", body: "x"},
	{method: 15, junk: "BREW", path: "/a"},
	{method: 15, junk: "PROPFIND", path: "/a", body: "<x"},
	{method: 12, path: "/a", body: "x"},
	{method: 11, path: "*"},
}

// FuzzHandler sends requests built from fuzzed parts to one real node and
// requires an answer to each that is neither a 5xx (501 for an unknown
// method and 502 for a Destination naming another server aside) nor a
// recovered panic.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.method, s.junk, s.path, s.depth, s.dest, s.ifh, s.overwrite, s.timeout, s.lockToken, []byte(s.body))
	}
	// One node per fuzzing process, started by the first input (the
	// coordinating process of a -fuzz run never needs one).
	var (
		once     sync.Once
		n        *testNode
		dir      string
		startErr error
	)
	f.Cleanup(func() {
		if n != nil {
			if err := n.stop(); err != nil {
				f.Errorf("stopping the fuzz node: %v", err)
			}
		}
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	})
	f.Fuzz(func(t *testing.T, method uint8, junk, path, depth, dest, ifh, overwrite, timeout, lockToken string, body []byte) {
		once.Do(func() {
			if dir, startErr = tempDir("dfs-webdav-fuzz-"); startErr == nil {
				n, startErr = launchNode(nodeOptions{dataDir: dir, bootstrap: true, maxXMLBytes: testMaxXMLBytes})
			}
		})
		if startErr != nil {
			t.Fatalf("starting the fuzz node: %v", startErr)
		}
		m := "BREW"
		if int(method) < len(fuzzMethods) {
			m = fuzzMethods[method]
		} else if isToken(junk) && len(junk) < 64 {
			m = junk // a token: net/http sends any
		}
		if m == http.MethodConnect {
			m = "BREW" // CONNECT takes an authority, not a path
		}
		if len(body) > 64<<10 {
			body = body[:64<<10]
		}
		h := hdr{}
		for k, v := range map[string]string{
			"Depth": depth, "Destination": dest, "If": ifh, "Overwrite": overwrite,
			"Timeout": timeout, "Lock-Token": lockToken,
		} {
			if v != "" && validHeaderValue(v) && len(v) < 8<<10 {
				h[k] = v
			}
		}
		target := requestTarget(path)
		before := len(n.log.panics())
		r, err := n.try(m, target, string(body), h)
		if err != nil {
			t.Fatalf("no answer (a panic in the handler aborts the connection): %v", err)
		}
		if p := n.log.panics(); len(p) > before {
			t.Fatalf("%s %q %v: the handler panicked: %s", m, target, h, p[before])
		}
		// 502 is what RFC 4918 §9.9.4 asks of a COPY or MOVE whose
		// Destination names another server (any host but the node's own).
		foreign := r.status == http.StatusBadGateway && (m == "COPY" || m == "MOVE") && strings.Contains(string(r.body), "names another server")
		if r.status >= 500 && !(r.status == http.StatusNotImplemented && !isKnownMethod(m)) && !foreign {
			t.Fatalf("%s %q %v: %s", m, target, h, r)
		}
		// Drop any lock the input took, so one input cannot lock the
		// whole tree for a week and starve the rest of the run.
		if lt := r.header.Get("Lock-Token"); lt != "" && (r.status == http.StatusOK || r.status == http.StatusCreated) {
			if u, err := n.try("UNLOCK", target, "", hdr{"Lock-Token": lt}); err != nil || u.status != http.StatusNoContent {
				t.Fatalf("UNLOCK %q with the token LOCK just returned: %v %v", target, u, err)
			}
		}
	})
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), which is
// what net/http accepts as a method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether net/http will send s as a field value:
// no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isKnownMethod(m string) bool {
	for _, k := range fuzzMethods {
		if k == m {
			return true
		}
	}
	return false
}

// requestTarget makes a fuzzed path sendable as a request-target: rooted,
// with the bytes a request line cannot carry percent-encoded. Everything
// else, "%" escapes and dot segments included, goes through as it is.
func requestTarget(p string) string {
	if p == "*" {
		return p
	}
	var b strings.Builder
	if !strings.HasPrefix(p, "/") {
		b.WriteByte('/')
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '#' || c == '?' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
