package content

import (
	"bytes"
	"context"
	"testing"

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
