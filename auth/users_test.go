package auth

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func entry(t *testing.T, name, password string) string {
	t.Helper()
	h, err := HashPassword(password, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return name + ":" + string(h) + "\n"
}

func verifies(u *Users, name, password string) bool {
	h, _, ok := u.Lookup(name)
	return ok && bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

func TestUsersReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeFile(t, path, entry(t, "alice", "a1")+apacheCarol+"\n")
	var logs bytes.Buffer
	u, err := OpenUsers(path, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if !verifies(u, "alice", "a1") || u.Has("carol") {
		t.Fatal("first load: want alice, and carol's MD5 line ignored")
	}
	if !strings.Contains(logs.String(), `"line":2`) || !strings.Contains(logs.String(), "MD5") {
		t.Errorf("the ignored line is not named in the log: %s", logs.String())
	}
	gen := u.Generation()

	// Unchanged: nothing is re-read.
	if changed, err := u.Reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged file: changed %v, %v", changed, err)
	}

	steps := []struct {
		name    string
		change  func()
		changed bool
		wantErr bool
		alice   string // password alice has afterwards
		bob     bool   // whether bob exists afterwards
	}{
		{name: "replaced by rename", changed: true, alice: "a2", bob: true, change: func() {
			tmp := path + ".new"
			writeFile(t, tmp, entry(t, "alice", "a2")+entry(t, "bob", "b"))
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rewritten in place", changed: true, alice: "a3", bob: false, change: func() {
			writeFile(t, path, entry(t, "alice", "a3"))
		}},
		{name: "only invalid lines: the last good set stays", wantErr: true, alice: "a3", change: func() {
			writeFile(t, path, "alice:plaintext\n")
		}},
		{name: "unreadable: the last good set stays", wantErr: true, alice: "a3", change: func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "back", changed: true, alice: "a4", bob: true, change: func() {
			writeFile(t, path, entry(t, "alice", "a4")+entry(t, "bob", "b"))
		}},
	}
	for _, s := range steps {
		s.change()
		changed, err := u.Reload()
		if changed != s.changed || (err != nil) != s.wantErr {
			t.Fatalf("%s: changed %v, err %v; want changed %v, error %v", s.name, changed, err, s.changed, s.wantErr)
		}
		if !verifies(u, "alice", s.alice) || u.Has("bob") != s.bob {
			t.Fatalf("%s: alice's password is not %q or bob's presence is not %v", s.name, s.alice, s.bob)
		}
		if s.changed {
			if u.Generation() <= gen {
				t.Fatalf("%s: generation did not advance", s.name)
			}
			gen = u.Generation()
		} else if u.Generation() != gen {
			t.Fatalf("%s: generation moved without a load", s.name)
		}
	}
}

// TestUsersKubernetesSecretSwap: a Secret volume holds the file behind
// two symlinks (users -> ..data/users, ..data -> ..2026_...); an update
// writes a new timestamped directory and swaps ..data atomically.
func TestUsersKubernetesSecretSwap(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "..v1"), filepath.Join(dir, "..v2")
	for _, d := range []string{v1, v2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(v1, "users"), entry(t, "alice", "old"))
	writeFile(t, filepath.Join(v2, "users"), entry(t, "alice", "new"))
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users")
	if err := os.Symlink("..data/users", path); err != nil {
		t.Fatal(err)
	}
	u, err := OpenUsers(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.Watch(ctx, 10*time.Millisecond)
	if !verifies(u, "alice", "old") {
		t.Fatal("alice's first password does not verify")
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..v2", tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !verifies(u, "alice", "new") {
		if time.Now().After(deadline) {
			t.Fatal("the swapped Secret was not picked up by Watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if verifies(u, "alice", "old") {
		t.Fatal("the old password still verifies")
	}
}

func TestOpenUsersFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenUsers(filepath.Join(dir, "missing"), zerolog.Nop()); err == nil {
		t.Error("a missing file was accepted")
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, apacheErin+"\n"+apacheFrank+"\n")
	if _, err := OpenUsers(bad, zerolog.Nop()); err == nil {
		t.Error("a file with only non-bcrypt entries was accepted")
	}
}

// TestDummyCost: an unknown user's password is checked against a hash of
// the cost most users have, so it takes as long as a real user's check.
func TestDummyCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, apacheBob+"\n"+entry(t, "x", "1")+entry(t, "y", "2")+apacheAlice+"\n")
	u, err := OpenUsers(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(u.Dummy()); err != nil || c != bcrypt.MinCost {
		t.Fatalf("dummy cost %d (%v), want %d, the cost of 3 of 4 entries", c, err, bcrypt.MinCost)
	}
	writeFile(t, path, apacheAlice+"\n")
	if _, err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(u.Dummy()); c != 5 {
		t.Fatalf("dummy cost %d after reload, want 5", c)
	}
}
