package content

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testdisk"
)

// TestPutReplacesRottenCopy checks that storing bytes whose object is
// already present, but rotted in place (same size, a flipped bit), leaves
// a good object: a follower that acknowledged a push over a bad copy would
// count it toward the majority.
func TestPutReplacesRottenCopy(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("dfs content "), 20000)
	b, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(b.Hash); err != nil {
		t.Fatal(err)
	}
	if err := testdisk.FlipByte(s.path(b.Hash), 100_000); err != nil {
		t.Fatal(err)
	}
	b2, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || b2 != b {
		t.Fatalf("Put = %+v, %v", b2, err)
	}
	if err := s.Verify(ctx, b.Hash); err != nil {
		t.Fatalf("after storing the same bytes again the object does not verify: %v", err)
	}
}

// TestReleaseKeepsPinsOfAPreviousProcess checks that content stored just
// before a restart, when its pin died with the process, is not released
// by a replayed entry within the pin's lifetime, while content stored
// after the restart is (its pins are live).
func TestReleaseKeepsPinsOfAPreviousProcess(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		window     time.Duration
		afterOpen  bool // stored by the new process
		wantRemove bool
	}{
		{"stored before the restart, within the pin window", 5 * time.Minute, false, false},
		{"stored before the restart, no window", 0, false, true},
		{"stored after the restart", 5 * time.Minute, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := []byte("pushed to a follower that then restarted")
			s := openStore(t, dir)
			var b Blob
			var err error
			if !tc.afterOpen {
				if b, err = s.Put(ctx, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				s.Close()
				time.Sleep(10 * time.Millisecond) // the object predates the reopen
				s = openStore(t, dir)
			}
			s.KeepPinnedAcrossRestart(tc.window)
			if tc.afterOpen {
				if b, err = s.Put(ctx, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				_ = s.Unpin(b.Hash)
			}
			removed, err := s.Release(ctx, refMap{}, b.Hash)
			if err != nil || removed != tc.wantRemove {
				t.Fatalf("Release = %v, %v; want %v", removed, err, tc.wantRemove)
			}
		})
	}
}
