package webdav_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/webdav"
)

func TestParseUserRoot(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"", true},
		{"/home/{user}", true},
		{"/teams/{user}/drive", true},
		{"home/{user}", false},
		{"/home", false},
		{"/", false},
		{"/home/{user}/../x", false},
		{"/home/{name}", false},
		{"/home/x{user}", false},
	} {
		_, err := webdav.ParseUserRoot(tc.pattern)
		if (err == nil) != tc.ok {
			t.Errorf("ParseUserRoot(%q): err %v, want ok %v", tc.pattern, err, tc.ok)
		}
	}
	u, _ := webdav.ParseUserRoot("/home/{user}")
	for _, name := range []string{"", ".", "..", "a/b", "x\x00"} {
		if p, err := u.For(name); err == nil {
			t.Errorf("For(%q) = %q, want an error", name, p)
		}
	}
	if p, err := u.For("zoë"); err != nil || p != "/home/zoë" {
		t.Errorf("For(zoë) = %q, %v", p, err)
	}
}

// TestUserRoot: each user's "/" is their folder, created on the first
// request; paths come in and go out in the user's namespace.
func TestUserRoot(t *testing.T) {
	hs := newHarness(t, harnessOptions{
		users:    map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
		userRoot: "/home/{user}",
	})
	// The first request creates the folder and the one above it.
	hs.must(http.StatusMultiStatus, hreq{method: "PROPFIND", target: "/", user: "alice", hdr: hdr{"Depth": "0"}})
	if hs.content("/home/alice") != "<dir>" {
		t.Fatalf("alice's folder not created: %q", hs.content("/home/alice"))
	}
	r := hs.must(http.StatusCreated, hreq{method: "PUT", target: "/a.txt", user: "alice", body: "alice's"})
	if loc := r.header.Get("Location"); loc != "/a.txt" {
		t.Errorf("Location %q, want /a.txt", loc)
	}
	if hs.content("/home/alice/a.txt") == "" {
		t.Fatal("alice's file is not in her folder")
	}
	hs.must(http.StatusCreated, hreq{method: "MKCOL", target: "/docs", user: "alice"})
	r = hs.must(http.StatusCreated, hreq{method: "COPY", target: "/a.txt", user: "alice", hdr: hdr{"Destination": "http://node.internal:8080/docs/b.txt"}})
	if loc := r.header.Get("Location"); loc != "/docs/b.txt" {
		t.Errorf("COPY Location %q, want /docs/b.txt", loc)
	}
	if hs.content("/home/alice/docs/b.txt") == "" {
		t.Fatal("the copy is not in alice's folder")
	}
	// A listing names only her namespace.
	body := string(hs.must(http.StatusMultiStatus, hreq{method: "PROPFIND", target: "/", user: "alice", hdr: hdr{"Depth": "1"}}).body)
	for _, want := range []string{">/<", ">/a.txt<", ">/docs/<"} {
		if !strings.Contains(body, want) {
			t.Errorf("PROPFIND / lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "/home") {
		t.Errorf("PROPFIND / names the drive's paths:\n%s", body)
	}
	// Bob has his own folder and cannot reach alice's.
	hs.must(http.StatusNotFound, hreq{method: "GET", target: "/a.txt", user: "bob"})
	hs.must(http.StatusBadRequest, hreq{method: "GET", target: "/../alice/a.txt", user: "bob"})
	hs.must(http.StatusNotFound, hreq{method: "GET", target: "/home/alice/a.txt", user: "bob"})
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/a.txt", user: "bob", body: "bob's"})
	if hs.content("/home/bob/a.txt") == hs.content("/home/alice/a.txt") {
		t.Error("bob's file is alice's")
	}
	// The user's root cannot be deleted, moved or replaced.
	hs.must(http.StatusForbidden, hreq{method: "DELETE", target: "/", user: "alice"})
	hs.must(http.StatusForbidden, hreq{method: "MOVE", target: "/", user: "alice", hdr: hdr{"Destination": "/x"}})
	hs.must(http.StatusForbidden, hreq{method: "COPY", target: "/a.txt", user: "alice", hdr: hdr{"Destination": "/", "Overwrite": "T"}})
	// Locks: the lock root is in her namespace; an If header's tagged
	// resource too.
	r = hs.must(http.StatusOK, hreq{method: "LOCK", target: "/docs", user: "alice", hdr: hdr{"Depth": "infinity"},
		body: `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`})
	if !strings.Contains(string(r.body), "<D:href>/docs</D:href>") && !strings.Contains(string(r.body), "<D:href>/docs/</D:href>") {
		t.Errorf("LOCK answer's lockroot is not /docs: %s", r.body)
	}
	token := r.header.Get("Lock-Token")
	r = hs.must(http.StatusLocked, hreq{method: "PUT", target: "/docs/c.txt", user: "alice", body: "c"})
	if strings.Contains(string(r.body), "/home") {
		t.Errorf("423 names the drive's path: %s", r.body)
	}
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/docs/c.txt", user: "alice", body: "c",
		hdr: hdr{"If": "<http://node.internal:8080/docs> (" + token + ")"}})
}
