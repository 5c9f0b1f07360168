package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runAppInput(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = strings.NewReader(stdin)
	err := app.Run(append([]string{"dfs"}, args...))
	return out.String() + errOut.String(), err
}

// TestUserCommands: dfs user add, list and remove edit the file Apache's
// htpasswd reads and verifies, and keep the lines they do not own.
func TestUserCommands(t *testing.T) {
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Fatalf("htpasswd not found on PATH (apt-get install apache2-utils): %v", err)
	}
	path := filepath.Join(t.TempDir(), "users")
	// A user htpasswd -B wrote, and one dfs must ignore (MD5).
	if out, err := exec.Command(htpasswd, "-cbB", "-C", "4", path, "carol", "carol-pw").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v %s", err, out)
	}
	if out, err := exec.Command(htpasswd, "-bm", path, "md5user", "x").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v %s", err, out)
	}

	steps := []struct {
		args    []string
		stdin   string
		wantErr string
		wantOut string
	}{
		{args: []string{"user", "add", "--file", path, "--cost", "4", "alice"}, stdin: "alice pw: 1\n", wantOut: "added user alice"},
		{args: []string{"user", "add", "--file", path, "--cost", "4", "--password-stdin", "bob"}, stdin: "bob-pw", wantOut: "added user bob"},
		{args: []string{"user", "add", "--file", path, "--cost", "4", "alice"}, stdin: "alice-pw-2\r\n", wantOut: "password changed for user alice"},
		{args: []string{"user", "add", "--file", path, "eve"}, stdin: "\n", wantErr: "empty password"},
		{args: []string{"user", "add", "--file", path, "eve"}, stdin: "", wantErr: "read password"},
		{args: []string{"user", "add", "--file", path, "a:b"}, stdin: "x\n", wantErr: "contains ':'"},
		{args: []string{"user", "add", "--file", path}, stdin: "x\n", wantErr: "exactly one user NAME"},
		{args: []string{"user", "add", "alice"}, stdin: "x\n", wantErr: "DFS_HTPASSWD"},
		{args: []string{"user", "remove", "--file", path, "bob"}, wantOut: "removed user bob"},
		{args: []string{"user", "remove", "--file", path, "bob"}, wantErr: "no user bob"},
		{args: []string{"user", "list", "--file", path}, wantOut: "alice\ncarol\nignored: line 2 (user \"md5user\"): MD5"},
	}
	for _, s := range steps {
		out, err := runAppInput(t, s.stdin, s.args...)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Fatalf("dfs %s: err %v, want one saying %q", strings.Join(s.args, " "), err, s.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(out, s.wantOut) {
			t.Fatalf("dfs %s: err %v, output %q, want %q", strings.Join(s.args, " "), err, out, s.wantOut)
		}
	}
	// Apache's htpasswd verifies what dfs wrote.
	for _, v := range []struct {
		user, pw string
		ok       bool
	}{{"alice", "alice-pw-2", true}, {"alice", "alice pw: 1", false}, {"carol", "carol-pw", true}} {
		err := exec.Command(htpasswd, "-vb", path, v.user, v.pw).Run()
		if (err == nil) != v.ok {
			t.Errorf("htpasswd -v %s %q: %v, want ok=%v", v.user, v.pw, err, v.ok)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
