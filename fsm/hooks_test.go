package fsm

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// TestReferenceHook checks that the hook sees exactly the hashes whose
// reference count an entry raised from 0, with their size, once per entry.
func TestReferenceHook(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		var got []string
		e := newEnv(t, open(t))
		WithReferenceHook(func(h string, size int64) {
			got = append(got, fmt.Sprintf("%s:%d", h[:4], size))
		})(e.f)
		want := func(step string, w ...string) {
			t.Helper()
			if !slices.Equal(got, w) {
				t.Fatalf("%s: hook saw %q, want %q", step, got, w)
			}
			got = nil
		}
		e.init()
		e.mkcol("/d")
		want("no content yet")

		e.ok(Command{Op: OpPut, Path: "/d/a", Hash: hA, Size: 10})
		want("new content", hA[:4]+":10")

		e.ok(Command{Op: OpPut, Path: "/d/b", Hash: hA, Size: 10})
		want("second reference")

		e.ok(Command{Op: OpPut, Path: "/d/b", Hash: hA, Size: 10})
		want("same content again")

		e.ok(Command{Op: OpPut, Path: "/d/b", Hash: hB, Size: 20})
		want("overwrite with new content", hB[:4]+":20")

		e.ok(Command{Op: OpCopy, Path: "/d", Dest: "/e", Depth: DepthInfinity})
		want("copy of referenced content")

		e.ok(Command{Op: OpDelete, Path: "/d/b"})
		e.ok(Command{Op: OpDelete, Path: "/e/b"})
		want("deletes")

		// hB is unreferenced now: referencing it again is announced.
		e.ok(Command{Op: OpPut, Path: "/d/c", Hash: hB, Size: 20})
		want("referenced again", hB[:4]+":20")

		// Refused entries announce nothing.
		e.code(Command{Op: OpPut, Path: "/missing/x", Hash: hC, Size: 1}, Conflict)
		want("refused")

		// A LOCK on an unmapped URL references the empty content.
		e.ok(lockCmd("/d/new", "tok-1", false, false, 0))
		want("lock-null", EmptyHash[:4]+":0")

		// Replayed entries are skipped before anything is announced.
		data, _ := (&Command{Op: OpPut, Path: "/d/z", Hash: hC, Size: 3, Time: T(1)}).Encode()
		if r, err := e.f.ApplyEntry(e.ctx, 1, data); err != nil || r.Msg != "replayed" {
			t.Fatalf("replay: %+v %v", r, err)
		}
		want("replayed")
	})
}

func TestRestoreHook(t *testing.T) {
	src := openBolt(t)
	f := New(src, zerolog.Nop(), WithTempDir(t.TempDir()))
	applyAll(t, f, []Command{{Op: OpInit, Time: 1}, {Op: OpPut, Path: "/a", Hash: hA, Size: 1, Time: 2}}, 1)
	var b bytes.Buffer
	if _, err := f.WriteSnapshot(context.Background(), &b); err != nil {
		t.Fatal(err)
	}

	restores, refs := 0, 0
	g := New(openBolt(t), zerolog.Nop(),
		WithRestoreHook(func() { restores++ }),
		WithReferenceHook(func(string, int64) { refs++ }))
	if _, err := g.RestoreFrom(context.Background(), bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	if restores != 1 || refs != 0 {
		t.Fatalf("restore hook called %d times, reference hook %d times; want 1 and 0", restores, refs)
	}
	// A failed restore does not announce one.
	if _, err := g.RestoreFrom(context.Background(), bytes.NewReader(b.Bytes()[:b.Len()/2])); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	if restores != 1 {
		t.Fatalf("restore hook called after a failed restore")
	}
}
