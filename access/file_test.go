package access

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// replace writes content to path as a ConfigMap update does: a new file
// renamed over the old one, so the inode changes even when the size and
// the modification time's granularity would not tell.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.yaml")
	replace(t, path, example)
	var logs bytes.Buffer
	f, err := OpenFile(path, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if f.Path() != path {
		t.Errorf("Path() = %q", f.Path())
	}
	if got := f.Level("bob", "/shared"); got != Read {
		t.Fatalf("first load: bob at /shared = %v, want read", got)
	}
	if !strings.Contains(logs.String(), `"rules":3`) {
		t.Errorf("the load is not logged with its rule count: %s", logs.String())
	}
	first := f.Rules()

	// Unchanged: nothing is re-read.
	if changed, err := f.Reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged file: changed %v, %v", changed, err)
	}

	// Broken: the last good rules stay, and the error names the line.
	replace(t, path, example+"  - path: /shared\n")
	changed, err := f.Reload()
	var pe *ParseError
	if changed || !errors.As(err, &pe) || pe.Line != 13 || !strings.Contains(err.Error(), path) {
		t.Fatalf("reload of a broken file: changed %v, %v (want a ParseError at line 13 naming the file)", changed, err)
	}
	if f.Rules() != first || f.Level("bob", "/shared") != Read {
		t.Fatal("a broken file replaced the last good rules")
	}
	// Still broken, still refused: the failed read did not count as seen.
	if _, err := f.Reload(); err == nil {
		t.Fatal("second reload of the broken file succeeded")
	}

	// Gone: same.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reload of a missing file: %v", err)
	}
	if f.Level("bob", "/shared") != Read {
		t.Fatal("a missing file dropped the rules")
	}

	// A good change is picked up.
	replace(t, path, strings.Replace(example, `write: ["@staff"]`, `write: ["@staff", bob]`, 1))
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("reload of a good change: changed %v, %v", changed, err)
	}
	if got := f.Level("bob", "/shared"); got != Write {
		t.Errorf("after the change: bob at /shared = %v, want write", got)
	}
	if got := f.Below("bob", "/"); len(got) != 3 || got[2] != (Boundary{"/shared", Write}) {
		t.Errorf("after the change: Below(bob, /) = %v", got)
	}
}

func TestOpenFileRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.yaml")
	replace(t, path, "default: maybe\n")
	_, err := OpenFile(path, zerolog.Nop())
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 {
		t.Fatalf("OpenFile of a bad file: %v", err)
	}
	if _, err := OpenFile(filepath.Join(dir, "missing.yaml"), zerolog.Nop()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenFile of a missing file: %v", err)
	}
}

func TestFileWarnsWhenNothingIsGranted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.yaml")
	replace(t, path, "# nothing yet\n")
	var logs bytes.Buffer
	if _, err := OpenFile(path, zerolog.New(&logs)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "grant nothing") {
		t.Errorf("no warning for a file that grants nothing: %s", logs.String())
	}
}

// Watch returns when its context ends; a Watch running beside readers is
// what the race detector checks here.
func TestWatchStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.yaml")
	replace(t, path, example)
	f, err := OpenFile(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Watch(ctx, time.Millisecond)
		close(done)
	}()
	for range 100 {
		f.Level("alice", "/home/alice")
		f.Below("alice", "/")
	}
	cancel()
	<-done
}
