package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// TestProbeTLS checks a node serving HTTPS: verified against --ca-cert,
// refused without it, accepted unverified with --insecure-skip-verify.
func TestProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"system roots do not know the certificate", nil, false},
		{"verified with --ca-cert", []string{"--ca-cert", caFile}, true},
		{"unverified", []string{"--insecure-skip-verify"}, true},
		{"a CA file that is not one", []string{"--ca-cert", filepath.Join(t.TempDir(), "missing.crt")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runApp(t, append([]string{"probe", "--url", srv.URL + "/readyz"}, tc.args...)...)
			if (err == nil) != tc.ok {
				t.Fatalf("probe %v: err %v, output %q; want ok = %v", tc.args, err, out, tc.ok)
			}
		})
	}
}
