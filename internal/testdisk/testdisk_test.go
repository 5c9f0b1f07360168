package testdisk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFlipByte(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	orig := []byte("0123456789")
	if err := os.WriteFile(p, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := FlipByte(p, 4); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(orig)
	want[4] ^= 0x01
	if !bytes.Equal(got, want) {
		t.Fatalf("after FlipByte: %q, want %q", got, want)
	}
	if err := FlipByte(p, 10); err == nil {
		t.Fatal("FlipByte past the end succeeded")
	}
}
