package server

import (
	"slices"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// TestVotingPeers checks that an upload's majority is counted over the
// current voters only, each once: the member table may still name a
// removed node or a node that is not a voter yet.
func TestVotingPeers(t *testing.T) {
	m := func(id, url string) metastore.Member { return metastore.Member{ID: id, URL: url} }
	for _, tc := range []struct {
		name    string
		members []metastore.Member
		voters  []string
		leader  string
		want    []string
	}{
		{"all voters, leader first", []metastore.Member{m("n1", "u1"), m("n2", "u2"), m("n3", "u3")},
			[]string{"n1", "n2", "n3"}, "n3", []string{"n3", "n2"}},
		{"a removed node left in the member table", []metastore.Member{m("n1", "u1"), m("n2", "u2"), m("old", "uo")},
			[]string{"n1", "n2"}, "n1", []string{"n2"}},
		{"a joining node not yet a voter", []metastore.Member{m("n1", "u1"), m("n2", "u2"), m("n4", "u4")},
			[]string{"n1", "n2", "n3"}, "n1", []string{"n2"}},
		{"a voter without a URL", []metastore.Member{m("n1", "u1"), m("n2", "")},
			[]string{"n1", "n2"}, "n1", nil},
		{"a member listed twice counts once", []metastore.Member{m("n2", "u2"), m("n2", "u2b")},
			[]string{"n1", "n2"}, "n1", []string{"n2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := votingPeers(tc.members, tc.voters, "n1", tc.leader)
			ids := make([]string, 0, len(got))
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if !slices.Equal(ids, tc.want) && !(len(ids) == 0 && len(tc.want) == 0) {
				t.Fatalf("peers %v, want %v", ids, tc.want)
			}
		})
	}
}
