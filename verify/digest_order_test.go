package verify

import (
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// TestCompareEntries pins the stream order the verifier's merge relies on:
// it must be the order walkState emits, or the merge would report an
// entry present on both nodes as missing on one and extra on the other.
func TestCompareEntries(t *testing.T) {
	path := func(p string) *DigestEntry { return &DigestEntry{Kind: EntryPath, Path: p} }
	lock := func(tok string) *DigestEntry { return &DigestEntry{Kind: EntryLock, Lock: &metastore.Lock{Token: tok}} }
	member := func(id string) *DigestEntry {
		return &DigestEntry{Kind: EntryMember, Member: &metastore.Member{ID: id}}
	}
	tests := []struct {
		name string
		a, b *DigestEntry
		want int
	}{
		{"same path", path("/a/b"), path("/a/b"), 0},
		{"root first", path("/"), path("/a"), -1},
		{"collection before its members", path("/a"), path("/a/b"), -1},
		{"members of /a before the sibling /a b", path("/a/z"), path("/a b"), -1},
		{"members of /a before the sibling /a.txt", path("/a/z"), path("/a.txt"), -1},
		{"names bytewise", path("/B"), path("/a"), -1},
		{"deep member before the next sibling", path("/a/b/c/d"), path("/a/c"), -1},
		{"sibling after a subtree", path("/b"), path("/a/z/z"), 1},
		{"paths before locks", path("/zzz"), lock("a"), -1},
		{"locks by token", lock("a"), lock("b"), -1},
		{"locks before members", lock("z"), member("a"), -1},
		{"members by id", member("n2"), member("n1"), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := compareEntries(tc.a, tc.b); sign(got) != tc.want {
				t.Errorf("compareEntries(%s, %s) = %d, want %d", tc.a.Key(), tc.b.Key(), got, tc.want)
			}
			if got := compareEntries(tc.b, tc.a); sign(got) != -tc.want {
				t.Errorf("compareEntries(%s, %s) = %d, want %d", tc.b.Key(), tc.a.Key(), got, -tc.want)
			}
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
