package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/auth"
)

// runAppSplit runs dfs and returns its standard output and standard error
// apart: `token add` prints the token, and only it, on standard output.
func runAppSplit(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
		defer t.Setenv(k, "") // for this run only
	}
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = strings.NewReader("")
	err = app.Run(append([]string{"dfs"}, args...))
	return out.String(), errOut.String(), err
}

// TestTokenCommands: dfs user token add, list and revoke on real files,
// with flags before and after the arguments, and dfs user remove taking
// the user's tokens along.
func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	users, tokens := filepath.Join(dir, "users"), filepath.Join(dir, "tokens")
	for _, u := range []string{"alice", "bob"} {
		if _, err := runAppInput(t, u+"-pw\n", "user", "add", "--file", users, "--cost", "4", u); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"DFS_DEVICE_TOKENS": tokens, "DFS_HTPASSWD": ""}
	secrets := map[string]string{}
	steps := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		stdout  string // in standard output; for a successful add, the label the token is kept under
		stderr  string
		notOut  string // not in standard output
	}{
		{name: "add, flags after NAME", args: []string{"user", "token", "add", "alice", "--label", "laptop", "--file", users, "--expires", "90d", "--tokens-file", tokens},
			stdout: "laptop", stderr: "added device password laptop"},
		{name: "add read-only, flags first, env file", args: []string{"user", "token", "add", "-l", "phone", "--read-only", "alice"}, env: env,
			stdout: "phone", stderr: "read-only"},
		{name: "add with a date", args: []string{"user", "token", "add", "--tokens-file", tokens, "bob", "--label=ci", "--expires", "2999-03-01"},
			stdout: "bob/ci", stderr: "expires 2999-03-01T00:00:00Z"},
		{name: "label taken", args: []string{"user", "token", "add", "--tokens-file", tokens, "alice", "--label", "laptop"},
			wantErr: "already has a device password labelled"},
		{name: "no label", args: []string{"user", "token", "add", "--tokens-file", tokens, "alice"}, wantErr: "--label is required"},
		{name: "user not in htpasswd", args: []string{"user", "token", "add", "--tokens-file", tokens, "--file", users, "carol", "--label", "x"},
			wantErr: "no user carol in"},
		{name: "expiry in the past", args: []string{"user", "token", "add", "--tokens-file", tokens, "alice", "--label", "old", "--expires", "2001-01-01"},
			wantErr: "not in the future"},
		{name: "no token file", args: []string{"user", "token", "add", "alice", "--label", "x"}, env: map[string]string{"DFS_DEVICE_TOKENS": ""},
			wantErr: "DFS_DEVICE_TOKENS"},
		{name: "unknown trailing flag", args: []string{"user", "token", "add", "--tokens-file", tokens, "alice", "--lable", "x"},
			wantErr: "not defined: --lable"},
		{name: "help after NAME adds nothing", args: []string{"user", "token", "add", "--tokens-file", tokens, "alice", "--label", "helped", "--help"},
			stdout: "dfs user token add"},
		{name: "list", args: []string{"user", "token", "list", "--tokens-file", tokens, "--file", users},
			stdout: "USER   LABEL   ID"},
		{name: "list one user", args: []string{"user", "token", "list", "bob"}, env: env, stdout: "\nbob   ci ", notOut: "alice"},
		{name: "revoke ambiguous or missing", args: []string{"user", "token", "revoke", "alice", "tablet"}, env: env, wantErr: "no such device password"},
		{name: "revoke wants two arguments", args: []string{"user", "token", "revoke", "alice"}, env: env, wantErr: "LABEL_OR_ID"},
		{name: "revoke", args: []string{"user", "token", "revoke", "alice", "phone"}, env: env, stdout: "revoked device password phone"},
		{name: "remove bob with his tokens", args: []string{"user", "remove", "--file", users, "--tokens-file", tokens, "bob"},
			stdout: "removed 1 device passwords of bob"},
	}
	for _, s := range steps {
		out, errOut, err := runAppSplit(t, s.env, s.args...)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Fatalf("%s: err %v, want one saying %q", s.name, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, errOut)
		}
		if s.args[2] == "add" && !strings.Contains(out, "NAME") {
			// The token alone on standard output.
			tok := strings.TrimSuffix(out, "\n")
			if !strings.HasPrefix(tok, auth.TokenPrefix) || strings.ContainsAny(tok, " \n") {
				t.Fatalf("%s: standard output %q, want the token alone", s.name, out)
			}
			secrets[s.stdout] = tok
		} else if !strings.Contains(out, s.stdout) || s.notOut != "" && strings.Contains(out, s.notOut) {
			t.Fatalf("%s: standard output %q, want %q and not %q", s.name, out, s.stdout, s.notOut)
		}
		if !strings.Contains(errOut, s.stderr) {
			t.Fatalf("%s: standard error %q, want %q", s.name, errOut, s.stderr)
		}
	}

	// The file holds the hash of what was printed, never the token.
	content, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := auth.ReadTokens(tokens)
	if err != nil || len(list) != 1 {
		t.Fatalf("tokens left: %+v (%v), want alice's laptop only", list, err)
	}
	laptop := list[0]
	if laptop.Hash != sha256.Sum256([]byte(secrets["laptop"])) || strings.Contains(string(content), secrets["laptop"]) {
		t.Fatal("the file does not hold the SHA-256 of the printed token, or holds the token")
	}
	if d := time.Until(laptop.Expires); d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Errorf("--expires 90d: expires in %s", d)
	}
	if strings.Contains(string(content), "helped") {
		t.Error("--help after the arguments added a token")
	}
	if fi, err := os.Stat(tokens); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// list never shows a secret or a hash, and marks what will not work.
	out, _, err := runAppSplit(t, nil, "user", "token", "list", "--tokens-file", tokens, "--file", users)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		sum := sha256.Sum256([]byte(secret))
		if strings.Contains(out, secret) || strings.Contains(out, hex.EncodeToString(sum[:8])) {
			t.Fatalf("list shows a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, laptop.ID) || !strings.Contains(out, "active") {
		t.Fatalf("list:\n%s", out)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "", want: time.Time{}},
		{in: "90d", want: now.AddDate(0, 0, 90)},
		{in: "1d", want: now.Add(24 * time.Hour)},
		{in: "36h", want: now.Add(36 * time.Hour)},
		{in: "1h30m", want: now.Add(90 * time.Minute)},
		{in: "2027-03-01", want: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2027-03-01T12:00:00+01:00", want: time.Date(2027, 3, 1, 11, 0, 0, 0, time.UTC)},
		{in: "0d", wantErr: "whole number of days"},
		{in: "1.5d", wantErr: "whole number of days"},
		{in: "99999999d", wantErr: "whole number of days"},
		{in: "-1h", wantErr: "not in the future"},
		{in: "2026-12-07", wantErr: "not in the future"},
		{in: "soon", wantErr: "want a duration"},
	}
	for _, tt := range tests {
		got, err := parseExpiry(tt.in, now)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
