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
)

// TestDeviceTokensReload: the token set follows the file as Users follows
// htpasswd, except that a missing file is an empty set (it grants nothing),
// at start as later.
func TestDeviceTokensReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	var logs bytes.Buffer
	d, err := OpenDeviceTokens(path, zerolog.New(&logs))
	if err != nil {
		t.Fatalf("a missing file at start: %v", err)
	}
	if d.Len() != 0 || d.Generation() == 0 {
		t.Fatalf("missing file: %d tokens, generation %d", d.Len(), d.Generation())
	}
	laptop, laptopSecret := newToken(t, "alice", "laptop", false, time.Time{})
	phone, phoneSecret := newToken(t, "alice", "phone", true, time.Time{})
	laptop.ID, phone.ID = "lap1", "pho1"
	both := laptop.line() + "\n" + phone.line() + "\n"

	steps := []struct {
		name          string
		change        func()
		changed       bool
		wantErr       bool
		laptop, phone bool // whether the laptop's and the phone's token match afterwards
	}{
		{name: "still missing", change: func() {}},
		{name: "created", changed: true, laptop: true, phone: true, change: func() { writeFile(t, path, both) }},
		{name: "unchanged", laptop: true, phone: true, change: func() {}},
		{name: "phone revoked by rename", changed: true, laptop: true, change: func() {
			writeFile(t, path+".new", "# kept\n"+laptop.line()+"\n")
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "only broken lines: the last good set stays", wantErr: true, laptop: true, change: func() {
			writeFile(t, path, strings.Replace(laptop.line(), " - ", " ro,new ", 1)+"\n")
		}},
		{name: "comments only: no tokens", changed: true, change: func() { writeFile(t, path, "# nothing yet\n") }},
		{name: "back", changed: true, laptop: true, phone: true, change: func() { writeFile(t, path, both) }},
		{name: "removed: everything revoked", changed: true, change: func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	gen := d.Generation()
	for _, s := range steps {
		s.change()
		changed, err := d.Reload()
		if changed != s.changed || (err != nil) != s.wantErr {
			t.Fatalf("%s: changed %v, err %v; want changed %v, error %v", s.name, changed, err, s.changed, s.wantErr)
		}
		_, okLaptop := d.Match("alice", laptopSecret)
		_, okPhone := d.Match("alice", phoneSecret)
		if okLaptop != s.laptop || okPhone != s.phone {
			t.Fatalf("%s: laptop matches %v, phone %v; want %v, %v", s.name, okLaptop, okPhone, s.laptop, s.phone)
		}
		if s.changed != (d.Generation() != gen) {
			t.Fatalf("%s: generation %d -> %d", s.name, gen, d.Generation())
		}
		gen = d.Generation()
	}
	if strings.Contains(logs.String(), laptopSecret) || strings.Contains(logs.String(), tokenHash) {
		t.Fatalf("a secret reached the log: %s", logs.String())
	}
}

func TestDeviceTokensMatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	laptop, secret := newToken(t, "alice", "laptop", false, time.Time{})
	laptop.ID = "lap1"
	writeFile(t, path, laptop.line()+"\n")
	d, err := OpenDeviceTokens(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", secret, true},
		{"bob", secret, false}, // a token is its user's only
		{"alice", secret[:len(secret)-1], false},
		{"alice", secret + "x", false},
		{"alice", strings.TrimPrefix(secret, TokenPrefix), false},
		{"alice", "", false},
	}
	for _, tt := range tests {
		got, ok := d.Match(tt.user, tt.password)
		if ok != tt.want || ok && got.ID != "lap1" {
			t.Errorf("Match(%s, %q) = %+v, %v; want %v", tt.user, tt.password, got, ok, tt.want)
		}
	}
}

func TestOpenDeviceTokensFails(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "alice laptop\n")
	if _, err := OpenDeviceTokens(bad, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "no valid token") {
		t.Errorf("a file of broken lines: %v", err)
	}
	// A directory where the file should be cannot be read.
	if _, err := OpenDeviceTokens(dir, zerolog.Nop()); err == nil {
		t.Error("a directory was accepted")
	}
}

// TestDeviceTokensWatch: a revocation reaches a running node through
// Watch, without a call to Reload.
func TestDeviceTokensWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	laptop, secret := newToken(t, "alice", "laptop", false, time.Time{})
	added, err := AddToken(path, laptop)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDeviceTokens(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Watch(ctx, 5*time.Millisecond)
	if _, ok := d.Match("alice", secret); !ok {
		t.Fatal("the token does not match")
	}
	if _, err := RevokeToken(path, "alice", added.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := d.Match("alice", secret); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
