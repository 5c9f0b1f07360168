package auth

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Lines written by Apache's htpasswd 2.4 (-B bcrypt, -m MD5, -s SHA, -d
// crypt, -p plaintext).
const (
	apacheAlice = `alice:$2y$05$KVuRTDy3hdTuJuo5/bWej.mSaIIwowvay20A3xrzAysrBQI9fgLMW` // password "s3cret: pw"
	apacheBob   = `bob:$2y$04$sfyY5tfI0FYVYZw1cUhRGe6eulYa787vWgasju8UBnY5BUGDTi0zG`   // password "hunter2"
	apacheCarol = `carol:$apr1$BT7MrM0C$cc.cpf30u7EOX3XZCwesR1`
	apacheDave  = `dave:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=`
	apacheErin  = `erin:Md2915Y.sLVTE`
	apacheFrank = `frank:x`
)

func TestParseHtpasswd(t *testing.T) {
	b2a, _ := bcrypt.GenerateFromPassword([]byte("pa"), bcrypt.MinCost)
	b2b := "$2b$" + strings.TrimPrefix(string(b2a), "$2a$")
	tests := []struct {
		name     string
		in       string
		users    []string
		problems []int // lines reported
		check    map[string]string
	}{
		{name: "apache bcrypt", in: apacheAlice + "\n" + apacheBob + "\n", users: []string{"alice", "bob"},
			check: map[string]string{"alice": "s3cret: pw", "bob": "hunter2"}},
		{name: "go bcrypt 2a and 2b", in: "x:" + string(b2a) + "\ny:" + b2b, users: []string{"x", "y"},
			check: map[string]string{"x": "pa", "y": "pa"}},
		{name: "weak schemes never taken", in: strings.Join([]string{apacheCarol, apacheDave, apacheErin, apacheFrank, apacheBob}, "\n"),
			users: []string{"bob"}, problems: []int{1, 2, 3, 4}},
		{name: "comments, blank lines, CRLF", in: "# users\r\n\r\n   \n" + apacheBob + "\r\n", users: []string{"bob"}},
		{name: "malformed", in: "nocolon\n:" + string(b2a) + "\nbad user:" + string(b2a) + "\nz:$2y$05$short\nz2:\n" + apacheBob,
			users: []string{"bob"}, problems: []int{1, 2, 3, 4, 5}},
		{name: "first entry of a duplicate counts", in: apacheBob + "\nbob:" + string(b2a), users: []string{"bob"}, problems: []int{2},
			check: map[string]string{"bob": "hunter2"}},
		{name: "empty", in: "", users: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, problems, err := ParseHtpasswd(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			for u := range entries {
				users = append(users, u)
			}
			slices.Sort(users)
			if !slices.Equal(users, tt.users) {
				t.Errorf("users %q, want %q", users, tt.users)
			}
			var lines []int
			for _, p := range problems {
				lines = append(lines, p.Line)
				if p.Reason == "" {
					t.Errorf("problem without a reason: %+v", p)
				}
			}
			if !slices.Equal(lines, tt.problems) {
				t.Errorf("problems on lines %v, want %v: %v", lines, tt.problems, problems)
			}
			for u, pw := range tt.check {
				if err := bcrypt.CompareHashAndPassword(entries[u], []byte(pw)); err != nil {
					t.Errorf("%s's password does not verify: %v", u, err)
				}
			}
		})
	}
}

func TestSetAndRemoveUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("# dfs users\n"+apacheBob+"\n\n"+apacheCarol+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h1, err := HashPassword("first", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if replaced, err := SetUser(path, "alice", h1); err != nil || replaced {
		t.Fatalf("add alice: replaced %v, %v", replaced, err)
	}
	h2, _ := HashPassword("second", bcrypt.MinCost)
	if replaced, err := SetUser(path, "alice", h2); err != nil || !replaced {
		t.Fatalf("replace alice: replaced %v, %v", replaced, err)
	}
	b, _ := os.ReadFile(path)
	want := "# dfs users\n" + apacheBob + "\n\n" + apacheCarol + "\nalice:" + string(h2) + "\n"
	if string(b) != want {
		t.Fatalf("file after add+replace:\n%s\nwant:\n%s", b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if found, err := RemoveUser(path, "bob"); err != nil || !found {
		t.Fatalf("remove bob: %v %v", found, err)
	}
	if found, err := RemoveUser(path, "nobody"); err != nil || found {
		t.Fatalf("remove nobody: %v %v", found, err)
	}
	b, _ = os.ReadFile(path)
	if want := "# dfs users\n\n" + apacheCarol + "\nalice:" + string(h2) + "\n"; string(b) != want {
		t.Fatalf("file after remove:\n%s\nwant:\n%s", b, want)
	}
	entries, _, _ := ParseHtpasswd(bytes.NewReader(b))
	if bcrypt.CompareHashAndPassword(entries["alice"], []byte("second")) != nil {
		t.Error("alice's new password does not verify")
	}
	// No temp files left behind.
	if names, _ := os.ReadDir(filepath.Dir(path)); len(names) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(names))
	}
	// A new file is created.
	fresh := filepath.Join(t.TempDir(), "new")
	if _, err := SetUser(fresh, "alice", h1); err != nil {
		t.Fatal(err)
	}
}

func TestSetUserRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	h, _ := HashPassword("pw", bcrypt.MinCost)
	for _, name := range []string{"", "a:b", "a b", "a\nb", strings.Repeat("x", 256), "\xff"} {
		if _, err := SetUser(path, name, h); err == nil {
			t.Errorf("SetUser(%q) accepted", name)
		}
	}
	if _, err := SetUser(path, "alice", []byte("plaintext")); err == nil {
		t.Error("SetUser accepted a non-bcrypt hash")
	}
	for _, pw := range []string{"", strings.Repeat("p", MaxPasswordBytes+1)} {
		if _, err := HashPassword(pw, bcrypt.MinCost); err == nil {
			t.Errorf("HashPassword accepted a %d-byte password", len(pw))
		}
	}
	if _, err := HashPassword("pw", 99); err == nil {
		t.Error("HashPassword accepted cost 99")
	}
}
