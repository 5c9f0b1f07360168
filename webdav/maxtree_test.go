package webdav_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/server"
)

// TestMaxTreeEntries checks that DELETE, COPY and MOVE over an existing
// destination of a subtree beyond --max-tree-entries get 403 with the
// reason and change nothing, while smaller trees and MOVE (one relink)
// go through.
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
		{"delete of a tree beyond the limit", http.MethodDelete, "/big", nil, http.StatusForbidden},
		{"copy of a tree beyond the limit", "COPY", "/big", hdr{"Destination": n.abs("/copy")}, http.StatusForbidden},
		{"move onto a tree beyond the limit", "MOVE", "/small", hdr{"Destination": n.abs("/big"), "Overwrite": "T"}, http.StatusForbidden},
		{"copy of a tree within the limit", "COPY", "/small", hdr{"Destination": n.abs("/small2")}, http.StatusCreated},
		{"move of a tree beyond the limit is one relink", "MOVE", "/big", hdr{"Destination": n.abs("/moved")}, http.StatusCreated},
		{"delete of a tree within the limit", http.MethodDelete, "/small2", nil, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.must(t, tc.want, tc.method, tc.target, "", tc.h)
			if tc.want == http.StatusForbidden && !strings.Contains(string(r.body), "--max-tree-entries") {
				t.Fatalf("403 does not say why: %q", r.body)
			}
		})
	}
	for _, p := range []string{"/moved/sub/a", "/moved/b", "/small/x"} {
		if !n.exists(t, p) {
			t.Errorf("%s is gone", p)
		}
	}
	if n.exists(t, "/copy") {
		t.Error("a refused COPY left /copy behind")
	}
}
