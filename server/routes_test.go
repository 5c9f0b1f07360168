package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/internal/testlog"
)

// TestRouteTable: the node API's mux serves exactly the route table.
// Every entry's pattern is what the mux picks for a request of its method
// and path; through the whole HTTP handler, every entry reaches its own
// handler (the secret ones answer 401 without the cluster secret, before
// WebDAV could see the request, and something other than 404 with it),
// and a path or method the table does not list goes to WebDAV, which
// answers 404.
func TestRouteTable(t *testing.T) {
	const secretValue = "route-table-secret"
	logs := &testlog.Buffer{}
	logs.ShowOnFailure(t, "node log")
	s, err := New(context.Background(), Config{
		ID: "node1", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Bootstrap: true, ClusterSecret: secretValue,
		HeartbeatTimeout: 400 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond,
		Log:                zerolog.New(logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for len(s.readiness(ctx)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %q", s.readiness(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The hash of the empty content, which the push below stores, so that
	// the fetch route finds what it serves.
	empty := sha256.Sum256(nil)
	hash := hex.EncodeToString(empty[:])
	call := func(method, path string, withSecret bool) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if withSecret {
			clusterauth.Set(req, secretValue)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	if status, body := call(http.MethodPost, "/cluster/content", true); status != http.StatusOK || !strings.Contains(body, hash) {
		t.Fatalf("push of empty content: %d %q", status, body)
	}

	// Only read-only reports are public; everything else needs the secret.
	publicRoutes := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true,
		"GET /cluster/node": true, "GET /cluster/status": true}
	seen := map[string]bool{}
	for _, r := range s.api {
		pattern := r.pattern()
		if seen[pattern] {
			t.Errorf("%s: listed twice", pattern)
		}
		seen[pattern] = true
		if (r.access == public) != publicRoutes[pattern] {
			t.Errorf("%s: access %s", pattern, r.access)
		}
		if r.purpose == "" || r.handler == nil {
			t.Errorf("%s: no purpose or no handler", pattern)
		}
		method := r.method
		if method == "" {
			method = http.MethodDelete // a method no other entry of the path takes
		}
		path := strings.ReplaceAll(r.path, "{hash}", hash)
		if strings.HasSuffix(path, "/") {
			path += hash
		}
		req, err := http.NewRequest(method, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := s.apiMux.Handler(req); got != pattern {
			t.Errorf("%s %s: the mux picks %q, the table says %q", method, path, got, pattern)
		}

		status, body := call(method, path, false)
		if r.access == public {
			if status == http.StatusNotFound || status == http.StatusUnauthorized {
				t.Errorf("%s %s (public): %d %q", method, path, status, body)
			}
		} else if status != http.StatusUnauthorized {
			t.Errorf("%s %s (%s) without the secret: %d %q, want 401", method, path, r.access, status, body)
		}
		if r.access != public {
			status, body = call(method, path, true)
			if status == http.StatusNotFound || status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Errorf("%s %s (%s) with the secret: %d %q", method, path, r.access, status, body)
			}
		}
	}

	// Everything else goes to WebDAV: 404 for what does not exist, and
	// WebDAV's refusal for a write to the reserved names.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/cluster/nothing"},
		{http.MethodGet, "/cluster/"},
		{http.MethodGet, "/cluster/digest/more"},
		{http.MethodGet, "/cluster/join"},        // POST only
		{http.MethodGet, "/cluster/scrub"},       // POST only
		{http.MethodDelete, "/cluster/node"},     // GET only
		{http.MethodDelete, "/cluster/snapshot"}, // GET only
		{http.MethodGet, "/healthzz"},
	} {
		req, err := http.NewRequest(c.method, c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := s.apiMux.Handler(req); got != "" {
			t.Errorf("%s %s: the mux has %q for it", c.method, c.path, got)
		}
		if status, body := call(c.method, c.path, true); status != http.StatusNotFound {
			t.Errorf("%s %s: %d %q, want WebDAV's 404", c.method, c.path, status, body)
		}
	}
	if status, body := call(http.MethodPut, "/cluster/join", true); status != http.StatusForbidden {
		t.Errorf("PUT /cluster/join: %d %q, want WebDAV's 403 for a reserved name", status, body)
	}
}
