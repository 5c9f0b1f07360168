// Package storetest owns the conformance suite for metastore.Store. Every
// implementation runs it from its own tests, so the Redis and bbolt stores
// stay interchangeable behind the state machine: whatever one does with a
// batch, the other does too, byte for byte.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfs-project/dfs/metastore"
)

// Factory opens the stores the suite runs against.
type Factory interface {
	// Open returns a new, empty store that no other test sees. The factory
	// closes it when t ends.
	Open(t *testing.T) metastore.Store
	// Reopen closes s, which Open or Reopen returned, and opens the same
	// data again, as a restarted node would. The factory closes the new
	// store when t ends.
	Reopen(t *testing.T, s metastore.Store) metastore.Store
}

// Run runs the conformance suite, one subtest per behaviour, each on a
// fresh store from f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"InodePutGetReplaceDelete", testInodes},
		{"InodeMissing", testInodeMissing},
		{"LinkLookupUnlink", testLinkLookupUnlink},
		{"DanglingEntry", testDangling},
		{"ListSortedWithAttributes", testListSorted},
		{"ListMissingOrEmptyDir", testListMissing},
		{"ListLargeDir", testListLarge},
		{"Names", testNames},
		{"Props", testProps},
		{"PropsOfMany", testPropsOfMany},
		{"Locks", testLocks},
		{"Members", testMembers},
		{"RefCounts", testRefs},
		{"UsedBytes", testUsed},
		{"AppliedIndex", testApplied},
		{"PrevIndex", testPrev},
		{"OpsAppliedInOrder", testOrder},
		{"FailedBatchAppliesNothing", testFailedBatch},
		{"Reset", testReset},
		{"Reopen", testReopen},
		{"CanceledContext", testCanceled},
		{"ConcurrentReadsAndCommits", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&env{t: t, f: f, s: f.Open(t), ctx: t.Context()})
		})
	}
}

// env is one subtest's store plus the bookkeeping to commit to it.
type env struct {
	t   *testing.T
	f   Factory
	s   metastore.Store
	ctx context.Context
	idx uint64 // index of the last batch committed through commit
}

// commit commits one batch at the next index and fails the test on error.
func (e *env) commit(fill func(b *metastore.Batch)) {
	e.t.Helper()
	b := &metastore.Batch{Index: e.idx + 1}
	fill(b)
	if err := e.s.Commit(e.ctx, b); err != nil {
		e.t.Fatalf("Commit(index %d, %d ops): %v", b.Index, len(b.Ops), err)
	}
	e.idx = b.Index
}

func (e *env) get(id metastore.ID) metastore.Inode {
	e.t.Helper()
	ino, err := e.s.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%d): %v", id, err)
	}
	return ino
}

func (e *env) wantInode(id metastore.ID, want metastore.Inode) {
	e.t.Helper()
	if got := e.get(id); got != want {
		e.t.Fatalf("Get(%d) = %+v, want %+v", id, got, want)
	}
}

func (e *env) wantNoInode(id metastore.ID) {
	e.t.Helper()
	if ino, err := e.s.Get(e.ctx, id); !errors.Is(err, metastore.ErrNotFound) {
		e.t.Fatalf("Get(%d) = %+v, %v; want ErrNotFound", id, ino, err)
	}
}

func (e *env) wantLookup(parent metastore.ID, name string, want metastore.Inode) {
	e.t.Helper()
	got, err := e.s.Lookup(e.ctx, parent, name)
	if err != nil {
		e.t.Fatalf("Lookup(%d, %q): %v", parent, name, err)
	}
	if got != want {
		e.t.Fatalf("Lookup(%d, %q) = %+v, want %+v", parent, name, got, want)
	}
}

func (e *env) wantNoEntry(parent metastore.ID, name string) {
	e.t.Helper()
	if ino, err := e.s.Lookup(e.ctx, parent, name); !errors.Is(err, metastore.ErrNotFound) {
		e.t.Fatalf("Lookup(%d, %q) = %+v, %v; want ErrNotFound", parent, name, ino, err)
	}
}

func (e *env) list(dir metastore.ID) []metastore.Dirent {
	e.t.Helper()
	ents, err := e.s.List(e.ctx, dir)
	if err != nil {
		e.t.Fatalf("List(%d): %v", dir, err)
	}
	return ents
}

func (e *env) wantList(dir metastore.ID, want []metastore.Dirent) {
	e.t.Helper()
	got := e.list(dir)
	if !slices.Equal(got, want) {
		e.t.Fatalf("List(%d) =\n%s\nwant\n%s", dir, fmtDirents(got), fmtDirents(want))
	}
}

func fmtDirents(ds []metastore.Dirent) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %q → %+v\n", d.Name, d.Inode)
	}
	if len(ds) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

func (e *env) wantProps(id metastore.ID, want map[metastore.PropName]string) {
	e.t.Helper()
	got, err := e.s.Props(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Props(%d): %v", id, err)
	}
	if !maps.Equal(got, want) {
		e.t.Fatalf("Props(%d) = %q, want %q", id, got, want)
	}
	many, err := e.s.PropsOf(e.ctx, []metastore.ID{id})
	if err != nil {
		e.t.Fatalf("PropsOf(%d): %v", id, err)
	}
	if p, ok := many[id]; !ok || len(many) != 1 || !maps.Equal(p, want) {
		e.t.Fatalf("PropsOf(%d) = %v, want {%d: %q}", id, many, id, want)
	}
}

func (e *env) wantLocks(want ...metastore.Lock) {
	e.t.Helper()
	got, err := e.s.Locks(e.ctx)
	if err != nil {
		e.t.Fatalf("Locks: %v", err)
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("Locks =\n%+v\nwant\n%+v", got, want)
	}
}

func (e *env) wantRef(hash string, want int64) {
	e.t.Helper()
	got, err := e.s.RefCount(e.ctx, hash)
	if err != nil {
		e.t.Fatalf("RefCount(%s): %v", hash, err)
	}
	if got != want {
		e.t.Fatalf("RefCount(%s) = %d, want %d", hash, got, want)
	}
}

func (e *env) wantUsed(want int64) {
	e.t.Helper()
	got, err := e.s.UsedBytes(e.ctx)
	if err != nil {
		e.t.Fatalf("UsedBytes: %v", err)
	}
	if got != want {
		e.t.Fatalf("UsedBytes = %d, want %d", got, want)
	}
}

func (e *env) wantApplied(want uint64) {
	e.t.Helper()
	got, err := e.s.AppliedIndex(e.ctx)
	if err != nil {
		e.t.Fatalf("AppliedIndex: %v", err)
	}
	if got != want {
		e.t.Fatalf("AppliedIndex = %d, want %d", got, want)
	}
}

// IDs chosen so that a store encoding IDs wrongly (truncated, little
// endian, decimal prefixes such as 1 vs 10) mixes their records up.
const (
	dirA metastore.ID = metastore.RootID
	dirB metastore.ID = 257       // same low byte as dirA
	dirC metastore.ID = 1<<32 + 1 // same low 32 bits as dirA
	dirD metastore.ID = 10        // decimal "1" + "0"
)

func hashOf(n int) string { return fmt.Sprintf("%064x", n) }

func fileInode(id metastore.ID, size int64) metastore.Inode {
	return metastore.Inode{
		ID: id, Kind: metastore.KindFile, Size: size, Hash: hashOf(int(size)),
		ContentType: "text/plain; charset=utf-8",
		Created:     1_700_000_000_000_000_000 + int64(id), Modified: 1_700_000_000_000_000_001 + int64(id),
	}
}

func dirInode(id metastore.ID) metastore.Inode {
	return metastore.Inode{ID: id, Kind: metastore.KindDir, Created: 1, Modified: 2}
}

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

func testProps(e *env) {
	var (
		display = metastore.PropName{Space: "DAV:", Local: "displayname"}
		xmlProp = metastore.PropName{Space: "urn:x", Local: "xml"}
		noNS    = metastore.PropName{Space: "", Local: "plain"}
		ws      = metastore.PropName{Space: "http://example.com/ns#frag?q=1%20", Local: "ws"}
		bin     = metastore.PropName{Space: "urn:日本", Local: "bin"}
	)
	one := map[metastore.PropName]string{
		display: "Résumé 日本 🙂",
		xmlProp: `<x:a xmlns:x="urn:x" x:attr='1'>t&amp;&lt;<![CDATA[<raw>&]]><!-- c --></x:a>`,
		noNS:    "",
		ws:      " \r\n\t lead and trail \n",
		bin:     "\xff\xfe\x00raw",
	}
	other := map[metastore.PropName]string{display: "other"}
	e.commit(func(b *metastore.Batch) {
		for n, v := range one {
			b.SetProp(dirA, n, v)
		}
		b.SetProp(dirB, display, "other")
	})
	e.wantProps(dirA, one)
	e.wantProps(dirB, other)
	e.wantProps(dirC, map[metastore.PropName]string{})

	e.commit(func(b *metastore.Batch) {
		b.SetProp(dirA, display, "renamed").DeleteProp(dirA, noNS).DeleteProp(dirA, metastore.PropName{Space: "urn:none", Local: "x"})
	})
	one[display] = "renamed"
	delete(one, noNS)
	e.wantProps(dirA, one)

	e.commit(func(b *metastore.Batch) { b.DeleteProps(dirA).DeleteProps(dirC) })
	e.wantProps(dirA, map[metastore.PropName]string{})
	e.wantProps(dirB, other)

	// Properties come back after being deleted wholesale.
	e.commit(func(b *metastore.Batch) { b.SetProp(dirA, noNS, "again") })
	e.wantProps(dirA, map[metastore.PropName]string{noNS: "again"})
}

func testLocks(e *env) {
	e.wantLocks()
	mk := func(token, root string) metastore.Lock {
		return metastore.Lock{
			Token: "opaquelocktoken:" + token, Root: root, Infinite: true, Shared: token == "b",
			Owner: `<D:href xmlns:D="DAV:">mailto:ü@example.com</D:href>`, Timeout: 3600,
			Created: 1_700_000_000_000_000_000, Expires: 1_700_003_600_000_000_000,
			Principal: map[string]string{"a": "alice", "c": "ünïcode user"}[token], // b: none (any user)
		}
	}
	a, b, c := mk("a", "/a b/日本"), mk("b", "/"), mk("c", "/100%/#x")
	e.commit(func(bt *metastore.Batch) { bt.PutLock(c).PutLock(a).PutLock(b) })
	e.wantLocks(a, b, c)

	b2 := b
	b2.Root, b2.Infinite, b2.Expires = "/moved", false, 0
	e.commit(func(bt *metastore.Batch) {
		bt.PutLock(b2).DeleteLock(a.Token).DeleteLock("opaquelocktoken:none")
	})
	e.wantLocks(b2, c)

	e.commit(func(bt *metastore.Batch) { bt.DeleteLock(b2.Token).DeleteLock(c.Token) })
	e.wantLocks()
}

// testPropsOfMany reads the properties of more inodes than one Redis
// pipeline chunk carries, some with properties and some without.
func testPropsOfMany(e *env) {
	const n = 2500
	color := metastore.PropName{Space: "urn:x", Local: "color"}
	size := metastore.PropName{Space: "urn:y", Local: "size"}
	want := make(map[metastore.ID]map[metastore.PropName]string, n)
	ids := make([]metastore.ID, 0, n+1)
	e.commit(func(b *metastore.Batch) {
		for i := range n {
			id := metastore.ID(5000 + i)
			ids = append(ids, id)
			props := map[metastore.PropName]string{}
			if i%3 != 0 {
				props[color] = fmt.Sprintf("<c>%d</c>", i)
			}
			if i%5 == 0 {
				props[size] = strings.Repeat("s", i%17)
			}
			for k, v := range props {
				b.SetProp(id, k, v)
			}
			want[id] = props
		}
	})
	ids = append(ids, 999_999) // never had properties
	want[999_999] = map[metastore.PropName]string{}
	got, err := e.s.PropsOf(e.ctx, ids)
	if err != nil {
		e.t.Fatalf("PropsOf(%d ids): %v", len(ids), err)
	}
	if len(got) != len(want) {
		e.t.Fatalf("PropsOf returned %d inodes, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !maps.Equal(g, w) {
			e.t.Fatalf("PropsOf[%d] = %q (present %v), want %q", id, g, ok, w)
		}
	}
	if got, err := e.s.PropsOf(e.ctx, nil); err != nil || len(got) != 0 {
		e.t.Fatalf("PropsOf(nil) = %v, %v; want empty", got, err)
	}
}

func testMembers(e *env) {
	want := func(ms ...metastore.Member) {
		e.t.Helper()
		got, err := e.s.Members(e.ctx)
		if err != nil {
			e.t.Fatalf("Members: %v", err)
		}
		if len(got) != len(ms) {
			e.t.Fatalf("Members = %+v, want %+v", got, ms)
		}
		for i := range ms {
			if got[i] != ms[i] {
				e.t.Fatalf("Members[%d] = %+v, want %+v", i, got[i], ms[i])
			}
		}
	}
	want()
	a := metastore.Member{ID: "dfs-0", URL: "http://dfs-0.dfs:8080", RaftAddr: "dfs-0.dfs:7000"}
	b := metastore.Member{ID: "dfs-1", URL: "http://[::1]:8081", RaftAddr: "[::1]:7001"}
	e.commit(func(bt *metastore.Batch) { bt.PutMember(b).PutMember(a) })
	want(a, b)
	b2 := b
	b2.URL = "https://dfs-1.example:8443"
	e.commit(func(bt *metastore.Batch) { bt.PutMember(b2).DeleteMember(a.ID).DeleteMember("nobody") })
	want(b2)
	e.commit(func(bt *metastore.Batch) { bt.DeleteMember(b2.ID) })
	want()
}

func testRefs(e *env) {
	h, g := hashOf(1), hashOf(2)
	e.wantRef(h, 0)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 2).AddRef(h, 1).AddRef(g, 7) })
	e.wantRef(h, 4)
	e.wantRef(g, 7)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -4) })
	e.wantRef(h, 0)
	e.wantRef(g, 7)
	// Back from zero, and through zero within one batch.
	e.commit(func(b *metastore.Batch) { b.AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -1).AddRef(h, 1) })
	e.wantRef(h, 1)
	e.commit(func(b *metastore.Batch) { b.AddRef(h, -1).AddRef(g, -7) })
	e.wantRef(h, 0)
	e.wantRef(g, 0)
	// A count never goes negative: too big a decrement removes the count,
	// and the next increment starts from zero.
	e.commit(func(b *metastore.Batch) { b.AddRef(g, -3) })
	e.wantRef(g, 0)
	e.commit(func(b *metastore.Batch) { b.AddRef(g, 1) })
	e.wantRef(g, 1)
}

func testUsed(e *env) {
	e.wantUsed(0)
	steps := []struct {
		name   string
		deltas []int64
		want   int64
	}{
		{"first file", []int64{100}, 100},
		{"several in one batch", []int64{5, 7, -2}, 110},
		{"a large file", []int64{1 << 40}, 1<<40 + 110},
		{"delete it", []int64{-(1 << 40)}, 110},
		{"through zero within one batch", []int64{-110, 3}, 3},
		{"back to zero", []int64{-3}, 0},
		// The counter never goes negative: too big a decrement leaves 0,
		// and the next increment starts from there.
		{"below zero clamps", []int64{-50}, 0},
		{"after the clamp", []int64{9}, 9},
	}
	for _, st := range steps {
		e.commit(func(b *metastore.Batch) {
			for _, d := range st.deltas {
				b.AddUsage(d)
			}
		})
		got, err := e.s.UsedBytes(e.ctx)
		if err != nil || got != st.want {
			e.t.Fatalf("%s: UsedBytes = %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	// A stale batch changes nothing, usage included.
	b := &metastore.Batch{Index: e.idx}
	b.AddUsage(1000)
	if err := e.s.Commit(e.ctx, b); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("stale Commit = %v, want ErrStaleBatch", err)
	}
	e.wantUsed(9)
}

func testApplied(e *env) {
	e.wantApplied(0)
	commitAt := func(idx uint64, fill func(b *metastore.Batch)) error {
		b := &metastore.Batch{Index: idx}
		fill(b)
		return e.s.Commit(e.ctx, b)
	}
	nop := func(*metastore.Batch) {}
	if err := commitAt(0, nop); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index 0) on a fresh store = %v, want ErrStaleBatch", err)
	}
	e.wantApplied(0)

	if err := commitAt(5, func(b *metastore.Batch) { b.PutInode(fileInode(5, 5)) }); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(5)
	// An empty batch still moves the index.
	if err := commitAt(6, nop); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(6)

	for _, idx := range []uint64{6, 5, 3, 0} {
		err := commitAt(idx, func(b *metastore.Batch) {
			b.PutInode(fileInode(99, 99)).DeleteInode(5).Link(dirA, "stale", 99).SetProp(5, metastore.PropName{Local: "p"}, "v").AddRef("stale", 1)
		})
		if !errors.Is(err, metastore.ErrStaleBatch) {
			e.t.Fatalf("Commit(index %d) with applied index 6 = %v, want ErrStaleBatch", idx, err)
		}
	}
	e.wantApplied(6)
	e.wantNoInode(99)
	e.wantInode(5, fileInode(5, 5))
	e.wantNoEntry(dirA, "stale")
	e.wantProps(5, map[metastore.PropName]string{})
	e.wantRef("stale", 0)

	// Indexes need not be contiguous: Raft entries that change no metadata
	// produce no batch.
	if err := commitAt(1000, nop); err != nil {
		e.t.Fatal(err)
	}
	e.wantApplied(1000)
	if err := commitAt(999, nop); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index 999) with applied index 1000 = %v, want ErrStaleBatch", err)
	}
}

// A batch built on a known applied index commits only on a store at that
// index: a store that lost data or went back must not take changes
// computed for another state.
func testPrev(e *env) {
	commit := func(idx, prev uint64) error {
		b := &metastore.Batch{Index: idx, Prev: prev}
		b.PutInode(fileInode(metastore.ID(1000*idx+prev), 1))
		return e.s.Commit(e.ctx, b)
	}
	if err := commit(10, 0); err != nil {
		e.t.Fatal(err)
	}
	for _, tc := range []struct {
		idx, prev uint64
		want      error
	}{
		{12, 11, metastore.ErrIndexMismatch}, // store behind the writer
		{12, 9, metastore.ErrIndexMismatch},  // store ahead of the writer
		{10, 10, metastore.ErrStaleBatch},
		{12, 10, nil},
		{13, 0, nil}, // no expectation: any lower index will do
		{14, 13, nil},
	} {
		err := commit(tc.idx, tc.prev)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			e.t.Fatalf("Commit(index %d, prev %d) = %v, want %v", tc.idx, tc.prev, err, tc.want)
		}
		if tc.want != nil {
			e.wantNoInode(metastore.ID(1000*tc.idx + tc.prev))
		}
	}
	e.wantApplied(14)
	e.wantInode(12010, fileInode(12010, 1))
}

// Ops of one batch apply in order: each sees the effect of those before it.
func testOrder(e *env) {
	p, q := metastore.PropName{Space: "urn:o", Local: "p"}, metastore.PropName{Space: "urn:o", Local: "q"}
	t1 := metastore.Lock{Token: "t1", Root: "/x", Created: 1}
	t2 := metastore.Lock{Token: "t2", Root: "/y", Created: 2}
	final11 := fileInode(11, 3)
	e.commit(func(b *metastore.Batch) {
		b.PutInode(dirInode(dirA))
		b.PutInode(fileInode(10, 1)).PutInode(fileInode(10, 2)).DeleteInode(10)
		b.PutInode(fileInode(11, 1)).PutInode(final11)
		b.Link(dirA, "x", 10).Unlink(dirA, "x")
		b.Link(dirA, "y", 10).Link(dirA, "y", 11)
		b.Unlink(dirA, "z").Link(dirA, "z", 11)
		b.SetProp(11, p, "1").DeleteProps(11).SetProp(11, q, "2").SetProp(11, q, "3")
		b.SetProp(11, p, "gone").DeleteProp(11, p)
		b.PutLock(t1).DeleteLock("t1").PutLock(t2)
		b.AddRef("h", 1).AddRef("h", -1).AddRef("h", 2)
	})
	e.wantNoInode(10)
	e.wantInode(11, final11)
	e.wantNoEntry(dirA, "x")
	e.wantList(dirA, []metastore.Dirent{{Name: "y", Inode: final11}, {Name: "z", Inode: final11}})
	e.wantProps(11, map[metastore.PropName]string{q: "3"})
	e.wantLocks(t2)
	e.wantRef("h", 2)
}

// A batch that cannot be applied leaves no trace, not even the ops before
// the bad one, and does not move the applied index.
func testFailedBatch(e *env) {
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(2, 2)) })
	b := &metastore.Batch{Index: e.idx + 1}
	b.PutInode(fileInode(3, 3)).DeleteInode(2).Link(dirA, "x", 3).AddRef("h", 1).AddUsage(3)
	b.Ops = append(b.Ops, metastore.Op{Kind: 200})
	b.PutLock(metastore.Lock{Token: "after"})
	if err := e.s.Commit(e.ctx, b); err == nil {
		e.t.Fatal("Commit of a batch with an unknown op kind succeeded")
	} else if errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit of a batch with an unknown op kind = %v, want an error other than ErrStaleBatch", err)
	}
	e.wantApplied(e.idx)
	e.wantUsed(0)
	e.wantNoInode(3)
	e.wantInode(2, fileInode(2, 2))
	e.wantNoEntry(dirA, "x")
	e.wantRef("h", 0)
	e.wantLocks()
	// The same index is still usable.
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(3, 3)) })
	e.wantInode(3, fileInode(3, 3))
}

// populate fills a store with one of everything and returns a check that
// it is all there.
func populate(e *env) (check func()) {
	e.t.Helper()
	display := metastore.PropName{Space: "DAV:", Local: "displayname"}
	lock := metastore.Lock{Token: "opaquelocktoken:1", Root: "/d", Infinite: true, Owner: "<o/>", Created: 7}
	root, d, f := dirInode(dirA), dirInode(dirB), fileInode(3, 33)
	e.commit(func(b *metastore.Batch) {
		b.PutInode(root).PutInode(d).PutInode(f)
		b.Link(dirA, "d", dirB).Link(dirB, "f 日本", 3)
		b.SetProp(3, display, "<b>x</b>").SetProp(dirB, display, "dir")
		b.PutLock(lock).AddRef(f.Hash, 2).AddUsage(33)
	})
	e.commit(func(b *metastore.Batch) { b.AddRef(f.Hash, -1) })
	idx := e.idx
	return func() {
		e.t.Helper()
		e.wantInode(dirA, root)
		e.wantLookup(dirA, "d", d)
		e.wantList(dirB, []metastore.Dirent{{Name: "f 日本", Inode: f}})
		e.wantProps(3, map[metastore.PropName]string{display: "<b>x</b>"})
		e.wantProps(dirB, map[metastore.PropName]string{display: "dir"})
		e.wantLocks(lock)
		e.wantRef(f.Hash, 1)
		e.wantUsed(33)
		e.wantApplied(idx)
	}
}

func testReset(e *env) {
	// Resetting an empty store is fine.
	if err := e.s.Reset(e.ctx); err != nil {
		e.t.Fatalf("Reset of an empty store: %v", err)
	}
	populate(e)
	e.commit(func(bt *metastore.Batch) {
		bt.PutMember(metastore.Member{ID: "n1", URL: "http://n1", RaftAddr: "n1:7000"})
	})
	// A large directory too, so a store that resets in pieces must loop.
	_, e.idx = fillDir(e.t, e.ctx, e.s, e.idx+1, dirC, 1000, 3000)
	if err := e.s.Reset(e.ctx); err != nil {
		e.t.Fatalf("Reset: %v", err)
	}
	e.wantNoInode(dirA)
	e.wantNoInode(3)
	e.wantNoEntry(dirA, "d")
	e.wantList(dirB, nil)
	e.wantList(dirC, nil)
	e.wantProps(3, map[metastore.PropName]string{})
	e.wantProps(dirB, map[metastore.PropName]string{})
	e.wantLocks()
	if ms, err := e.s.Members(e.ctx); err != nil || len(ms) != 0 {
		e.t.Fatalf("Members after Reset = %+v, %v; want none", ms, err)
	}
	e.wantRef(fileInode(3, 33).Hash, 0)
	e.wantUsed(0)
	e.wantApplied(0)

	// After a reset the store accepts the log from the start again.
	e.idx = 0
	check := populate(e)
	check()
}

func testReopen(e *env) {
	check := populate(e)
	e.s = e.f.Reopen(e.t, e.s)
	check()
	b := &metastore.Batch{Index: e.idx}
	b.PutInode(fileInode(50, 50))
	if err := e.s.Commit(e.ctx, b); !errors.Is(err, metastore.ErrStaleBatch) {
		e.t.Fatalf("Commit(index %d) after reopen at applied index %d = %v, want ErrStaleBatch", e.idx, e.idx, err)
	}
	e.commit(func(b *metastore.Batch) { b.PutInode(fileInode(50, 50)) })
	e.s = e.f.Reopen(e.t, e.s)
	e.wantInode(50, fileInode(50, 50))
	e.wantApplied(e.idx)
}

// callTimeout is how long one call may take with a cancelled context
// before the suite calls it a hang.
const callTimeout = 10 * time.Second

// A cancelled context makes every call fail promptly with an error that
// says so, and a cancelled Commit or Reset changes nothing.
func testCanceled(e *env) {
	check := populate(e)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := e.s.Get(ctx, dirA); return err }},
		{"Lookup", func() error { _, err := e.s.Lookup(ctx, dirA, "d"); return err }},
		{"List", func() error { _, err := e.s.List(ctx, dirB); return err }},
		{"Props", func() error { _, err := e.s.Props(ctx, 3); return err }},
		{"Locks", func() error { _, err := e.s.Locks(ctx); return err }},
		{"RefCount", func() error { _, err := e.s.RefCount(ctx, "h"); return err }},
		{"AppliedIndex", func() error { _, err := e.s.AppliedIndex(ctx); return err }},
		{"Commit", func() error {
			b := &metastore.Batch{Index: e.idx + 1}
			return e.s.Commit(ctx, b.PutInode(fileInode(77, 77)).Unlink(dirA, "d"))
		}},
		{"Reset", func() error { return e.s.Reset(ctx) }},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				e.t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, err)
			}
		case <-time.After(callTimeout):
			e.t.Fatalf("%s with a cancelled context did not return within %v", c.name, callTimeout)
		}
	}
	check()
	e.wantNoInode(77)
}

// Readers run alongside the writer without errors or torn reads; under
// -race this also checks the store's own synchronisation.
func testConcurrent(e *env) {
	e.commit(func(b *metastore.Batch) { b.PutInode(dirInode(dirA)) })
	const commits, readers = 100, 4
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ents, err := e.s.List(e.ctx, dirA)
				if err != nil {
					errs <- err
					return
				}
				// Each commit adds the next name in sort order, so any
				// consistent listing is a prefix of n0000, n0001, …
				for i, d := range ents {
					if want := fmt.Sprintf("n%04d", i); d.Name != want {
						errs <- fmt.Errorf("list entry %d is %q, want %q", i, d.Name, want)
						return
					}
				}
				if _, err := e.s.AppliedIndex(e.ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range commits {
		id := metastore.ID(100 + i)
		e.commit(func(b *metastore.Batch) {
			b.PutInode(fileInode(id, int64(i))).Link(dirA, fmt.Sprintf("n%04d", i), id)
		})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
	if got := len(e.list(dirA)); got != commits {
		e.t.Fatalf("List after %d commits: %d entries", commits, got)
	}
}

// BenchList measures List on a directory of n entries. s must be empty.
func BenchList(b *testing.B, s metastore.Store, n int) {
	ctx := b.Context()
	fillDir(b, ctx, s, 1, dirA, 100, n)
	b.ResetTimer()
	for b.Loop() {
		ents, err := s.List(ctx, dirA)
		if err != nil {
			b.Fatal(err)
		}
		if len(ents) != n {
			b.Fatalf("List returned %d entries, want %d", len(ents), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
}

// BenchCommitSmall measures committing the batch a typical PUT of a new file
// produces: the inode, its entry, the parent's new mtime and a reference.
// s must be empty.
func BenchCommitSmall(b *testing.B, s metastore.Store) {
	ctx := b.Context()
	if err := s.Commit(ctx, (&metastore.Batch{Index: 1}).PutInode(dirInode(dirA))); err != nil {
		b.Fatal(err)
	}
	idx := uint64(1)
	for b.Loop() {
		idx++
		id := metastore.ID(idx)
		f := fileInode(id, int64(idx))
		parent := dirInode(dirA)
		parent.Modified = int64(idx)
		batch := &metastore.Batch{Index: idx}
		batch.PutInode(f).Link(dirA, fmt.Sprintf("file-%d", idx), id).PutInode(parent).AddRef(f.Hash, 1)
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
