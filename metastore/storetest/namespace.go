package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

func testInodes(e *env) {
	f := metastore.Inode{
		ID: 42, Kind: metastore.KindFile, Size: 1 << 40, Hash: hashOf(42),
		ContentType: `application/xml; charset="utf-8"`, Created: -1, Modified: 1<<62 + 3,
	}
	d := dirInode(dirC)
	e.commit(func(b *metastore.Batch) { b.PutInode(f).PutInode(d) })
	e.wantInode(42, f)
	e.wantInode(dirC, d)

	f2 := metastore.Inode{ID: 42, Kind: metastore.KindFile, Created: -1, Modified: 5}
	e.commit(func(b *metastore.Batch) { b.PutInode(f2) })
	e.wantInode(42, f2)

	e.commit(func(b *metastore.Batch) { b.DeleteInode(dirC) })
	e.wantNoInode(dirC)
	e.wantInode(42, f2)
	e.wantNoInode(dirA) // same low 32 bits as dirC, never written
}

func testInodeMissing(e *env) {
	e.wantNoInode(metastore.RootID)
	e.wantNoInode(12345)
	// Deleting what is not there is not an error.
	e.commit(func(b *metastore.Batch) { b.DeleteInode(12345) })
	e.wantNoInode(12345)
}

func testLinkLookupUnlink(e *env) {
	root, two, three := dirInode(dirA), fileInode(2, 20), fileInode(3, 30)
	e.commit(func(b *metastore.Batch) {
		b.PutInode(root).PutInode(two).PutInode(three).Link(dirA, "a", 2)
	})
	e.wantLookup(dirA, "a", two)
	e.wantNoEntry(dirA, "b")
	e.wantNoEntry(dirA, "A")
	e.wantNoEntry(dirA, "a ")
	e.wantNoEntry(dirB, "a")
	e.wantNoEntry(dirD, "a")
	e.wantNoEntry(2, "a")

	// Link replaces an existing entry.
	e.commit(func(b *metastore.Batch) { b.Link(dirA, "a", 3) })
	e.wantLookup(dirA, "a", three)
	e.wantList(dirA, []metastore.Dirent{{Name: "a", Inode: three}})

	e.commit(func(b *metastore.Batch) { b.Unlink(dirA, "a") })
	e.wantNoEntry(dirA, "a")
	e.wantList(dirA, nil)
	// Unlink leaves the inode alone, and unlinking twice is not an error.
	e.wantInode(3, three)
	e.commit(func(b *metastore.Batch) { b.Unlink(dirA, "a").Unlink(dirB, "never") })
	e.wantNoEntry(dirA, "a")
}

// An entry whose inode was deleted without unlinking (DeleteInode does not
// touch entries) reads as missing, in Lookup and in List alike.
func testDangling(e *env) {
	e.commit(func(b *metastore.Batch) {
		b.PutInode(dirInode(dirA)).PutInode(fileInode(5, 5)).PutInode(fileInode(6, 6))
		b.Link(dirA, "gone", 5).Link(dirA, "kept", 6).Link(dirA, "never", 7)
	})
	e.commit(func(b *metastore.Batch) { b.DeleteInode(5) })
	e.wantNoEntry(dirA, "gone")
	e.wantNoEntry(dirA, "never")
	e.wantList(dirA, []metastore.Dirent{{Name: "kept", Inode: fileInode(6, 6)}})
}

func testListSorted(e *env) {
	names := []string{"b", "a", "B", "a b", "ä", "Z", "10", "9", "a.txt", "a-b", "ab", "~", "日本", "_", "A"}
	want := map[metastore.ID][]metastore.Dirent{}
	next := metastore.ID(100)
	e.commit(func(b *metastore.Batch) {
		for _, dir := range []metastore.ID{dirA, dirB, dirC, dirD} {
			b.PutInode(dirInode(dir))
			// Each directory gets a different subset, so a listing that
			// leaks entries of a neighbour shows up.
			for i, name := range names {
				if (i+int(dir))%3 == 0 {
					continue
				}
				ino := fileInode(next, int64(next)*3)
				next++
				b.PutInode(ino).Link(dir, name, ino.ID)
				want[dir] = append(want[dir], metastore.Dirent{Name: name, Inode: ino})
			}
		}
	})
	for dir, ents := range want {
		slices.SortFunc(ents, func(a, b metastore.Dirent) int { return strings.Compare(a.Name, b.Name) })
		e.wantList(dir, ents)
	}
	// Changing a child's attributes shows in the listing: List reads the
	// inodes, it does not cache them in the entries.
	changed := want[dirA][0].Inode
	changed.Size, changed.Modified = 999, 12345
	e.commit(func(b *metastore.Batch) { b.PutInode(changed) })
	if got := e.list(dirA)[0]; got.Inode != changed {
		e.t.Fatalf("List(%d)[0] = %+v after PutInode, want %+v", dirA, got.Inode, changed)
	}
}

func testListMissing(e *env) {
	e.wantList(4242, nil)
	e.commit(func(b *metastore.Batch) { b.PutInode(dirInode(dirB)) })
	e.wantList(dirB, nil)
	// A directory emptied again lists as empty.
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(3, 3)).Link(dirB, "x", 3) })
	e.commit(func(b *metastore.Batch) { b.Unlink(dirB, "x") })
	e.wantList(dirB, nil)
}

// LargeDirEntries is the size of the large directory the suite lists.
const LargeDirEntries = 10_000

func testListLarge(e *env) {
	// Entries in the directories on each side of the big one's key range.
	e.commit(func(b *metastore.Batch) {
		b.PutInode(fileInode(2, 1)).Link(dirC-1, "zz neighbour", 2).Link(dirC+1, "0 neighbour", 2)
	})
	var want []metastore.Dirent
	want, e.idx = fillDir(e.t, e.ctx, e.s, e.idx+1, dirC, 1_000_000, LargeDirEntries)
	e.wantApplied(e.idx)
	got := e.list(dirC)
	if len(got) != len(want) {
		e.t.Fatalf("List of a %d-entry directory returned %d entries", len(want), len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			e.t.Fatalf("List(%d)[%d] = %q → %+v, want %q → %+v", dirC, i, got[i].Name, got[i].Inode, want[i].Name, want[i].Inode)
		}
	}
}

// largeBatch is how many entries fillDir puts in one batch.
const largeBatch = 2500

// fillDir creates dir and n files in it, with IDs from firstID, in batches
// of largeBatch starting at index idx. It returns the entries sorted by name
// and the index of the last batch.
func fillDir(tb testing.TB, ctx context.Context, s metastore.Store, idx uint64, dir, firstID metastore.ID, n int) ([]metastore.Dirent, uint64) {
	tb.Helper()
	ents := make([]metastore.Dirent, n)
	for i := range ents {
		// Names whose byte order differs from numeric order.
		ents[i] = metastore.Dirent{Name: fmt.Sprintf("file-%d.txt", i), Inode: fileInode(firstID+metastore.ID(i), int64(i))}
	}
	// Insertion order must not matter.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ents), func(i, j int) { ents[i], ents[j] = ents[j], ents[i] })
	for lo := 0; lo < n; lo += largeBatch {
		b := &metastore.Batch{Index: idx}
		if lo == 0 {
			b.PutInode(dirInode(dir))
		}
		for _, d := range ents[lo:min(lo+largeBatch, n)] {
			b.PutInode(d.Inode).Link(dir, d.Name, d.Inode.ID)
		}
		if err := s.Commit(ctx, b); err != nil {
			tb.Fatalf("Commit(index %d, %d ops): %v", b.Index, len(b.Ops), err)
		}
		idx++
	}
	slices.SortFunc(ents, func(a, b metastore.Dirent) int { return strings.Compare(a.Name, b.Name) })
	return ents, idx - 1
}

// Names are opaque bytes to a store: nothing is escaped, split or limited.
func testNames(e *env) {
	names := []string{
		"with space", " leading", "trailing ", "two  spaces",
		"unicode ñ é 日本語 🙂", "e\u0301", // decomposed é, distinct from "é"
		"é",
		"100%", "%41", "%2F", "%%", "a#b", "#", "#frag", "?", "q?x=1&y=2",
		"*", "[abc]", "a*b?", "a:b", "i:1", "d:1", "{x}", `\`, `'"<>&`, "+plus+", "tab\there",
		strings.Repeat("n", 255),
		strings.Repeat("日", 85), // 255 bytes
		strings.Repeat("long", 250),
	}
	e.commit(func(b *metastore.Batch) {
		b.PutInode(dirInode(dirA))
		for i, name := range names {
			id := metastore.ID(100 + i)
			b.PutInode(fileInode(id, int64(i))).Link(dirA, name, id)
		}
	})
	want := make([]metastore.Dirent, len(names))
	for i, name := range names {
		ino := fileInode(metastore.ID(100+i), int64(i))
		e.wantLookup(dirA, name, ino)
		want[i] = metastore.Dirent{Name: name, Inode: ino}
	}
	slices.SortFunc(want, func(a, b metastore.Dirent) int { return strings.Compare(a.Name, b.Name) })
	e.wantList(dirA, want)

	e.commit(func(b *metastore.Batch) {
		for _, name := range names[:len(names)/2] {
			b.Unlink(dirA, name)
		}
	})
	for _, name := range names[:len(names)/2] {
		e.wantNoEntry(dirA, name)
	}
	if got := len(e.list(dirA)); got != len(names)-len(names)/2 {
		e.t.Fatalf("List after unlinking half: %d entries, want %d", got, len(names)-len(names)/2)
	}
}
