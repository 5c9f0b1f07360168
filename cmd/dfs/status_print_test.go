package main

import (
	"strings"
	"testing"

	"github.com/dfs-project/dfs/cluster"
)

// TestPrintStatusHealing checks that `dfs cluster status` says which node
// is healing its metadata store and why, and what subtree work is left.
func TestPrintStatusHealing(t *testing.T) {
	st := cluster.Status{
		Leader: "n1", Term: 3, CommitIndex: 90, PurgingTrees: 2, BuildingCopies: 1,
		Nodes: []cluster.NodeStatus{
			{ID: "n1", URL: "http://n1:8080", Role: "leader", AppliedIndex: 90, Voter: true},
			{ID: "n2", URL: "http://n2:8080", Role: "follower", AppliedIndex: 41, Voter: true,
				Rebuilding: "rebuilding the metadata store: it went back from index 41 to 0"},
		},
	}
	var b strings.Builder
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"follower (healing)",
		"n2: rebuilding the metadata store: it went back from index 41 to 0",
		"2 deleted trees being purged",
		"1 copies being built",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "n1 (healing)") || strings.Count(out, "(healing)") != 1 {
		t.Errorf("only n2 heals:\n%s", out)
	}
}
