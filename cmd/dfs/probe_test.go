package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestProbe(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, "no leader known\nmore", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()

	out, err := runApp(t, "probe", "--url", srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no leader known") {
		t.Fatalf("probe of a node that is not ready: err %v, output %q", err, out)
	}
	ready.Store(true)
	out, err = runApp(t, "probe", "--url", srv.URL+"/readyz")
	if err != nil || !strings.Contains(out, "200") {
		t.Fatalf("probe of a ready node: err %v, output %q", err, out)
	}
	srv.Close()
	if _, err := runApp(t, "probe", "--url", srv.URL+"/readyz"); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}
