package webdav_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/server"
)

// TestMaxTreeEntries checks that a COPY of a subtree beyond
// --max-tree-entries gets 403 with the reason and changes nothing, while
// DELETE and MOVE, whose work is bounded whatever the size, and smaller
// copies go through.
func TestMaxTreeEntries(t *testing.T) {
	n := startNodeWith(t, nodeOptions{dataDir: t.TempDir(), bootstrap: true,
		limits: server.Limits{MaxTreeEntries: 3}})
	// /big holds 4 resources, /small 2.
	n.mkcol(t, "/big")
	n.mkcol(t, "/big/sub")
	n.put(t, "/big/sub/a", "a")
	n.put(t, "/big/b", "b")
	n.mkcol(t, "/small")
	n.put(t, "/small/x", "x")

	for _, tc := range []struct {
		name   string
		method string
		target string
		h      hdr
		want   int
	}{
		{"copy of a tree beyond the limit", "COPY", "/big", hdr{"Destination": n.abs("/copy")}, http.StatusForbidden},
		{"copy of a tree within the limit", "COPY", "/small", hdr{"Destination": n.abs("/small2")}, http.StatusCreated},
		{"move of a tree beyond the limit is one relink", "MOVE", "/big", hdr{"Destination": n.abs("/moved")}, http.StatusCreated},
		{"move onto a tree beyond the limit", "MOVE", "/small2", hdr{"Destination": n.abs("/moved"), "Overwrite": "T"}, http.StatusNoContent},
		{"delete of a tree beyond the limit", http.MethodDelete, "/moved", nil, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, tc.method, tc.target, "", tc.h)
			if tc.want == http.StatusForbidden && !strings.Contains(string(r.body), "--max-tree-entries") {
				t.Fatalf("403 does not say why: %q", r.body)
			}
		})
	}
	if !n.exists(t, "/small/x") {
		t.Error("/small/x is gone")
	}
	for _, p := range []string{"/copy", "/moved", "/big"} {
		if n.exists(t, p) {
			t.Errorf("%s exists", p)
		}
	}
}

// TestTreeSteps copies and deletes trees larger than the node's step
// through a real node: the COPY is answered once the whole copy can be
// read, and the DELETE at once, with its purge finished by the leader's
// later entries.
func TestTreeSteps(t *testing.T) {
	n := startNodeWith(t, nodeOptions{dataDir: t.TempDir(), bootstrap: true, treeStep: 4})
	n.mkcol(t, "/src")
	var files []string
	for d := range 3 {
		dir := fmt.Sprintf("/src/d%d", d)
		n.mkcol(t, dir)
		for f := range 4 {
			p := fmt.Sprintf("%s/f%d", dir, f)
			n.put(t, p, p)
			files = append(files, strings.TrimPrefix(p, "/src"))
		}
	}
	n.must(t, http.StatusCreated, "COPY", "/src", "", hdr{"Destination": n.abs("/dst")})
	for _, f := range files {
		if got := n.get(t, "/dst"+f); got != "/src"+f {
			t.Fatalf("GET /dst%s right after the COPY: %q", f, got)
		}
	}
	n.must(t, http.StatusCreated, "COPY", "/src", "", hdr{"Destination": n.abs("/dst2")})
	n.must(t, http.StatusNoContent, http.MethodDelete, "/src", "", nil)
	if n.exists(t, "/src") || n.exists(t, "/src/d1/f1") {
		t.Fatal("/src is visible after its DELETE")
	}
	// Over an existing tree: the old one goes, the copy replaces it whole.
	n.must(t, http.StatusNoContent, "COPY", "/dst2", "", hdr{"Destination": n.abs("/dst"), "Overwrite": "T"})
	for _, f := range files {
		if got := n.get(t, "/dst"+f); got != "/src"+f {
			t.Fatalf("GET /dst%s after the COPY over it: %q", f, got)
		}
	}
	if !strings.Contains(n.log.tail(), "subtree work done") {
		t.Fatal("the leader logged no subtree work")
	}
}
