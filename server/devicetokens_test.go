package server_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

// TestDeviceTokensServed: a node started with --device-tokens before the
// file exists picks up tokens added later and drops revoked ones, through
// its own file watch, with no restart.
func TestDeviceTokensServed(t *testing.T) {
	dir := t.TempDir()
	users, tokens := filepath.Join(dir, "users"), filepath.Join(dir, "tokens")
	hash, err := auth.HashPassword("alice-pw", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.SetUser(users, "alice", hash); err != nil {
		t.Fatal(err)
	}
	n := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true,
		Auth: auth.Options{HtpasswdFile: users, DeviceTokensFile: tokens}})
	testcluster.WaitConverged(t, []*testcluster.Node{n}, "n1")

	add := func(label string, readOnly bool) string {
		secret, sum, err := auth.NewTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.AddToken(tokens, auth.DeviceToken{User: "alice", Label: label, Hash: sum, ReadOnly: readOnly, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	cred := func(pw string) map[string]string {
		return map[string]string{"Authorization": auth.FormatBasic("alice", pw)}
	}
	// waitStatus repeats a request until it gets want: the node sees the
	// file within its poll interval (a second). The 401s before that earn
	// backoff delays of up to 4 s each, hence the long deadline.
	waitStatus := func(what, method, path, pw string, want int) response {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var body io.Reader
			if method == http.MethodPut {
				body = strings.NewReader("x")
			}
			r := do(t, method, n.URL()+path, cred(pw), body)
			if r.status == want {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s %s: %d %s, want %d", what, method, path, r.status, r.body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	laptop, phone := add("laptop", false), add("phone", true)
	waitStatus("token added after start", http.MethodPut, "/f.txt", laptop, http.StatusCreated)
	waitStatus("read-only token reads", http.MethodGet, "/f.txt", phone, http.StatusOK)
	r := waitStatus("read-only token writes", http.MethodPut, "/g.txt", phone, http.StatusForbidden)
	if !strings.Contains(r.body, "device password phone of user alice is read-only") {
		t.Errorf("403 body %q", r.body)
	}
	if _, err := auth.RevokeToken(tokens, "alice", "laptop"); err != nil {
		t.Fatal(err)
	}
	waitStatus("revoked token", http.MethodGet, "/f.txt", laptop, http.StatusUnauthorized)
	waitStatus("account password", http.MethodGet, "/f.txt", "alice-pw", http.StatusOK)
}
