package webdav_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/dfs-project/dfs/fsm"
)

// TestAbsenceConfirmed checks that a GET, and an answer saying something
// is missing, read from the local store, are sent only once the store
// confirms it still holds what the node applied: a store emptied or
// reloaded between the read and the answer turns them into a 503 with
// Retry-After. Refusals that do not depend on it are not delayed.
func TestAbsenceConfirmed(t *testing.T) {
	lost := fmt.Errorf("%w: the store is at index 0, below the 42 it had reached", fsm.ErrRebuilding)
	for _, tc := range []struct {
		name string
		q    hreq
		want int // with an intact store
	}{
		{"GET of a missing file", hreq{method: "GET", target: "/missing"}, http.StatusNotFound},
		{"PROPFIND of a missing file", hreq{method: "PROPFIND", target: "/missing", hdr: hdr{"Depth": "0"}}, http.StatusNotFound},
		{"DELETE of a missing file", hreq{method: "DELETE", target: "/missing"}, http.StatusNotFound},
		{"PUT below a missing collection", hreq{method: "PUT", target: "/nodir/f", body: "x"}, http.StatusConflict},
		{"MKCOL below a missing collection", hreq{method: "MKCOL", target: "/nodir/d"}, http.StatusConflict},
		{"PUT If-Match on a missing file", hreq{method: "PUT", target: "/new", body: "x", hdr: hdr{"If-Match": `"abc"`}}, http.StatusPreconditionFailed},
		{"a refusal that is not about absence", hreq{method: "DELETE", target: "/"}, http.StatusForbidden},
		{"GET of a file", hreq{method: "GET", target: "/here"}, http.StatusOK},
		{"HEAD of a file", hreq{method: "HEAD", target: "/here"}, http.StatusOK},
		{"GET of a collection", hreq{method: "GET", target: "/"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var intactErr error
			hs := newHarness(t, harnessOptions{intact: func(context.Context) error { return intactErr }})
			hs.must(http.StatusCreated, hreq{method: "PUT", target: "/here", body: "here"})
			hs.must(tc.want, tc.q)

			intactErr = lost
			r := hs.do(tc.q)
			switch tc.want {
			case http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed, http.StatusOK:
				if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
					t.Fatalf("with a lost store: %s, want 503 with Retry-After", r)
				}
			default:
				if r.status != tc.want {
					t.Fatalf("with a lost store: %s, want %d unchanged", r, tc.want)
				}
			}
		})
	}
}
