package webdav_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// fuzzUsers are the users FuzzAccessRequest picks from (teamRules);
// "../root" and "a/b" are names no {user} rule or folder may take in.
var fuzzUsers = []string{"root", "alice", "bob", "carol", "../root", "a/b"}

// FuzzAccessRequest sends fuzzed requests as fuzzed users to a handler
// with teamRules, with and without --user-root, and requires that a
// request changes nothing where its user may not write (every path that
// changed is one they may write, inside their folder) and that no answer
// carries what they may not read.
func FuzzAccessRequest(f *testing.F) {
	seeds := []struct {
		user, method            uint8
		mapped                  bool
		path, dest, depth, body string
	}{
		{1, 2, false, "/home/alice/x", "", "", "x"},
		{1, 2, false, "/home/bob/x", "", "", "x"},
		{2, 3, false, "/shared", "", "", ""},
		{1, 3, false, "/shared", "", "", ""},
		{1, 5, false, "/shared", "/home/alice/s", "infinity", ""},
		{2, 5, false, "/shared", "/home/bob/s", "infinity", ""},
		{1, 6, false, "/home/alice/a.txt", "/secret/a.txt", "", ""},
		{1, 6, true, "/a.txt", "/../bob/a.txt", "", ""},
		{1, 2, true, "/%2e%2e/bob/x", "", "", "x"},
		{4, 2, true, "/x", "", "", "x"},
		{5, 4, false, "/home/a/b", "", "", ""},
		{1, 7, false, "/", "", "1", ""},
		{2, 0, false, "/shared/board/minutes.txt", "", "", ""},
		{1, 9, false, "/shared", "", "infinity", lockInfo("exclusive", "")},
		{0, 4, false, "/home/{user}", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.user, s.method, s.mapped, s.path, s.dest, s.depth, []byte(s.body))
	}
	rules, err := access.Parse(strings.NewReader(teamRules))
	if err != nil {
		f.Fatal(err)
	}
	plain, mapped := newFuzzTeamHarness(f, ""), newFuzzTeamHarness(f, "/home/{user}")
	f.Fuzz(func(t *testing.T, user, method uint8, userRoot bool, path, dest, depth string, body []byte) {
		hs := plain
		if userRoot {
			hs = mapped
		}
		hs.t = t
		u := fuzzUsers[int(user)%len(fuzzUsers)]
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		if len(body) > 4<<10 {
			body = body[:4<<10]
		}
		h := hdr{}
		if dest != "" && validHeaderValue(dest) {
			h["Destination"] = dest
		}
		if depth != "" && validHeaderValue(depth) {
			h["Depth"] = depth
		}
		target := requestTarget(path)
		if _, err := url.ParseRequestURI(target); err != nil {
			return // net/http answers 400 before any handler runs
		}
		before := tree(t, hs)
		// The user comes as a node vouches for it: names no htpasswd file
		// holds ("../root", "a/b") reach the rules too.
		r := hs.do(hreq{method: m, target: target, fromNode: u, hdr: h, body: string(body)})
		if r.status >= 500 && r.status != http.StatusNotImplemented && r.status != http.StatusBadGateway {
			t.Fatalf("%s %s %q as %q: %s", m, path, dest, u, r)
		}
		after := tree(t, hs)
		root := ""
		if userRoot {
			root = "/home/" + u
		}
		for p := range changed(before, after) {
			if rules.Level(u, p) < access.Write {
				t.Fatalf("%s %q (Destination %q) as %q changed %s, where the user may not write: %s", m, path, dest, u, p, r)
			}
			if root != "" && p != root && !fspath.IsAncestor(root, p) && !fspath.IsAncestor(p, root) {
				t.Fatalf("%s %q (Destination %q) as %q changed %s, outside the user's folder %s: %s", m, path, dest, u, p, root, r)
			}
		}
		for _, secret := range []string{"content of /secret", "content of /vault", "content of /shared/board"} {
			if secret == "content of /shared/board" && (u == "alice" || u == "carol" || u == "root") {
				continue
			}
			if u == "root" && !userRoot {
				continue
			}
			if strings.Contains(string(r.body), secret) {
				t.Fatalf("%s %q as %q: the answer carries %q: %s", m, path, u, secret, r)
			}
		}
	})
}

func newFuzzTeamHarness(t testing.TB, userRoot string) *harness {
	hs := newHarness(t, harnessOptions{
		users: map[string]string{"root": "root-pw", "alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"},
		rules: teamRules, userRoot: userRoot,
	})
	for _, d := range []string{"/home", "/home/alice", "/home/bob", "/shared", "/shared/board", "/secret", "/vault", "/vault/inbox"} {
		hs.must(http.StatusCreated, hreq{method: "MKCOL", target: d, fromNode: "root"})
	}
	for _, f := range []string{"/home/alice/a.txt", "/home/bob/b.txt", "/shared/s.txt", "/shared/board/minutes.txt", "/secret/s.txt", "/vault/v.txt"} {
		hs.must(http.StatusCreated, hreq{method: http.MethodPut, target: f, body: "content of " + f, fromNode: "root"})
	}
	return hs
}

// tree is every path of the harness's store with its inode (hash and
// modification time for files, "<dir>" and the properties' count for
// collections are left to the inode's own fields).
func tree(t *testing.T, hs *harness) map[string]metastore.Inode {
	t.Helper()
	ctx := context.Background()
	rootIno, err := fsm.Resolve(ctx, hs.store, "/")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metastore.Inode{"/": rootIno}
	var walk func(p string, id metastore.ID)
	walk = func(p string, id metastore.ID) {
		ents, err := hs.store.List(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			q := fspath.Join(p, e.Name)
			out[q] = e.Inode
			if e.Inode.IsDir() {
				walk(q, e.Inode.ID)
			}
		}
	}
	walk("/", rootIno.ID)
	return out
}

// changed is every path added, removed or changed between two trees. A
// collection whose members changed is not itself counted: its
// modification time follows them.
func changed(before, after map[string]metastore.Inode) map[string]bool {
	out := map[string]bool{}
	for p, a := range after {
		b, ok := before[p]
		if !ok || b.ID != a.ID || b.Hash != a.Hash || (!a.IsDir() && b.Modified != a.Modified) {
			out[p] = true
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out[p] = true
		}
	}
	return out
}
