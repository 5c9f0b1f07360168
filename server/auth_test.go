package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/auth"
)

// TestNewAuthRefuses: a node with an auth configuration it cannot honour
// does not start, and says why, before it opens anything.
func TestNewAuthRefuses(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak")
	if err := os.WriteFile(weak, []byte("alice:plaintext\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	hash, err := auth.HashPassword("alice-pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.SetUser(good, "alice", hash); err != nil {
		t.Fatal(err)
	}
	brokenTokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(brokenTokens, []byte("alice laptop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts auth.Options
		want string
	}{
		{"read-only users without a file", auth.Options{ReadOnlyUsers: []string{"bob"}}, "--read-only-users needs --htpasswd"},
		{"missing file", auth.Options{HtpasswdFile: filepath.Join(dir, "missing")}, "--htpasswd"},
		{"only non-bcrypt entries", auth.Options{HtpasswdFile: weak}, "no valid bcrypt entry"},
		{"device tokens without a file of users", auth.Options{DeviceTokensFile: brokenTokens}, "--device-tokens needs --htpasswd"},
		{"broken device-token file", auth.Options{HtpasswdFile: good, DeviceTokensFile: brokenTokens}, "--device-tokens"},
		{"one file for both", auth.Options{HtpasswdFile: good, DeviceTokensFile: good}, "name the same file"},
		{"device-token file is a directory", auth.Options{HtpasswdFile: good, DeviceTokensFile: dir}, "--device-tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			_, err := New(context.Background(), Config{ID: "n1", DataDir: data, Bootstrap: true, HTTPAddr: "127.0.0.1:0", Auth: tt.opts})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error saying %q", err, tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created (%v): something was opened before the auth check", err)
			}
		})
	}
}
