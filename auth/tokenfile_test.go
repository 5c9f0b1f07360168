package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newToken returns a token of user labelled label, and its secret.
func newToken(t *testing.T, user, label string, readOnly bool, expires time.Time) (DeviceToken, string) {
	t.Helper()
	secret, sum, err := NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	return DeviceToken{User: user, Label: label, Hash: sum, ReadOnly: readOnly, Created: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Expires: expires}, secret
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTokenFileEdits: add, revoke and remove rewrite the file atomically
// and keep every line they do not own, comments and lines a server
// ignores included.
func TestTokenFileEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	laptop, _ := newToken(t, "alice", "laptop", false, time.Time{})
	added, err := AddToken(path, laptop)
	if err != nil {
		t.Fatal(err)
	}
	if validTokenID(added.ID) != nil {
		t.Fatalf("AddToken gave id %q", added.ID)
	}
	content := readFile(t, path)
	if !strings.HasPrefix(content, tokenFileHeader+"\n") || !strings.Contains(content, added.line()+"\n") {
		t.Fatalf("new file:\n%s", content)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// An operator's comment and a line this dfs does not take.
	const keep = "# bob's devices, ticket 42\nbob tablet zzzz9999 " + tokenHash + " ro,nfc " + created + " -\n"
	writeFile(t, path, content+keep)

	phone, _ := newToken(t, "alice", "phone", true, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	phone.ID = "given1"
	phoneAdded, err := AddToken(path, phone)
	if err != nil || phoneAdded.ID != "given1" {
		t.Fatalf("AddToken with an id: %+v, %v", phoneAdded, err)
	}
	bobs, _ := newToken(t, "bob", "laptop", false, time.Time{})
	if _, err := AddToken(path, bobs); err != nil {
		t.Fatalf("another user's laptop: %v", err)
	}

	steps := []struct {
		name string
		do   func() error
		want string // in the error; "" for success
	}{
		{"label taken", func() error { _, err := AddToken(path, laptop); return err }, `already has a device password labelled "laptop"`},
		{"bad label", func() error { d := laptop; d.Label = "my laptop"; _, err := AddToken(path, d); return err }, "space"},
		{"id taken elsewhere gets a fresh one", func() error {
			d, _ := newToken(t, "carol", "pc", false, time.Time{})
			d.ID = "given1"
			got, err := AddToken(path, d)
			if err == nil && got.ID == "given1" {
				return errors.New("a second token got id given1")
			}
			return err
		}, ""},
		{"revoke unknown", func() error { _, err := RevokeToken(path, "alice", "tablet"); return err }, "no such device password"},
		{"revoke another user's", func() error { _, err := RevokeToken(path, "alice", "zzzz9999"); return err }, "no such device password"},
		{"revoke by id", func() error {
			d, err := RevokeToken(path, "alice", "given1")
			if err == nil && d.Label != "phone" {
				return errors.New("revoked " + d.Label)
			}
			return err
		}, ""},
		{"revoke by label", func() error { _, err := RevokeToken(path, "alice", "laptop"); return err }, ""},
		{"revoke in a missing file", func() error { _, err := RevokeToken(path+".missing", "alice", "laptop"); return err }, "no such file"},
	}
	for _, s := range steps {
		err := s.do()
		if s.want == "" && err != nil || s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)) {
			t.Fatalf("%s: %v, want %q", s.name, err, s.want)
		}
	}
	tokens, problems, err := ReadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, d := range tokens {
		labels = append(labels, d.User+"/"+d.Label)
	}
	if strings.Join(labels, " ") != "bob/laptop carol/pc" || len(problems) != 1 || problems[0].User != "bob" {
		t.Fatalf("left %v, problems %v; want bob/laptop carol/pc and bob's unknown flag", labels, problems)
	}
	if !strings.Contains(readFile(t, path), keep) {
		t.Fatalf("lines not owned by the edits are gone:\n%s", readFile(t, path))
	}

	// A user who goes takes every token along, and only theirs.
	if n, err := RemoveUserTokens(path, "bob"); n != 2 || err != nil {
		t.Fatalf("RemoveUserTokens(bob): %d, %v; want 2 (the ignored line too)", n, err)
	}
	if got := readFile(t, path); strings.Contains(got, "\nbob ") || !strings.Contains(got, "# bob's devices") || !strings.Contains(got, "carol pc") {
		t.Fatalf("after removing bob:\n%s", got)
	}
	if n, err := RemoveUserTokens(filepath.Join(t.TempDir(), "none"), "bob"); n != 0 || err != nil {
		t.Fatalf("RemoveUserTokens on a missing file: %d, %v", n, err)
	}
}

// TestRevokeAmbiguous: a name that is one token's label and another's id
// revokes neither.
func TestRevokeAmbiguous(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	a, _ := newToken(t, "alice", "abcd1234", false, time.Time{})
	b, _ := newToken(t, "alice", "phone", false, time.Time{})
	b.ID = "abcd1234"
	// AddToken keeps them apart; a hand-edited file need not.
	writeFile(t, path, func() string { a.ID = "efgh5678"; return a.line() + "\n" + b.line() + "\n" }())
	before := readFile(t, path)
	_, err := RevokeToken(path, "alice", "abcd1234")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("RevokeToken: %v, want ambiguous", err)
	}
	if readFile(t, path) != before {
		t.Fatal("an ambiguous revoke changed the file")
	}
	if _, err := RevokeToken(path, "alice", "efgh5678"); err != nil {
		t.Fatalf("by the other id: %v", err)
	}
}

func TestParseTokensDuplicates(t *testing.T) {
	a := "alice laptop abcd1234 " + tokenHash + " - " + created + " -\n"
	tokens, problems, err := ParseTokens(strings.NewReader(a +
		"alice laptop efgh5678 " + tokenHash + " - " + created + " -\n" + // same label
		"bob laptop abcd1234 " + tokenHash + " - " + created + " -\n" + // same id
		"garbage\n"))
	if err != nil || len(tokens) != 1 || tokens[0].ID != "abcd1234" {
		t.Fatalf("tokens %+v (%v), want only the first line", tokens, err)
	}
	var lines []int
	for _, p := range problems {
		lines = append(lines, p.Line)
	}
	if len(lines) != 3 || lines[0] != 2 || lines[1] != 3 || lines[2] != 4 || !strings.Contains(problems[0].Reason, "first one counts") {
		t.Fatalf("problems %v", problems)
	}
}
