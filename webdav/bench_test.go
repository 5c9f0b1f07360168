package webdav_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHandlerGet is the handler's own cost of a GET of a 4 KiB file,
// in process: the embedded store, content in memory, no network. It isolates
// the CPU a small-file request costs in dfs's code and x/net/webdav's,
// for profiles (-cpuprofile) of what BenchmarkSmallFiles measures end to
// end.
func BenchmarkHandlerGet(b *testing.B) {
	hs := newHarness(b, harnessOptions{})
	hs.must(http.StatusCreated, hreq{method: "MKCOL", target: "/d"})
	body := string(make([]byte, 4096))
	hs.must(http.StatusCreated, hreq{method: "PUT", target: "/d/f.txt", body: body})
	b.Run("GET", func(b *testing.B) {
		for b.Loop() {
			r := httptest.NewRequest("GET", "http://node.internal:8080/d/f.txt", nil)
			w := httptest.NewRecorder()
			hs.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Body.Len() != 4096 {
				b.Fatalf("GET: %d, %d bytes", w.Code, w.Body.Len())
			}
		}
	})
}
