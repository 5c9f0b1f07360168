package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).Run(append([]string{"dfs"}, args...))
	return out.String() + errOut.String(), err
}

func TestClusterStatusAndRemove(t *testing.T) {
	n1 := testcluster.Start(t, server.Config{ID: "node1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "node1")
	n2 := testcluster.Start(t, server.Config{ID: "node2", Join: []string{n1.URL()}})
	nodes := []*testcluster.Node{n1, n2}
	leader := testcluster.WaitConverged(t, nodes, "node1", "node2")
	n2.SetContentBacklog(func() (int, int64) { return 2, 3 << 20 })

	out, err := runApp(t, "cluster", "status", "--addr", n2.URL())
	if err != nil {
		t.Fatalf("dfs cluster status: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 {
		t.Fatalf("want a summary, a blank line, a header and two rows, then a blank line, the scrub header and two rows:\n%s", out)
	}
	if f := strings.Fields(lines[6]); len(f) < 2 || f[1] != "SCRUB" {
		t.Errorf("scrub header: %q", lines[6])
	}
	for i, n := range nodes {
		// testcluster nodes run no scrubber.
		if f := strings.Fields(lines[7+i]); len(f) < 3 || f[0] != n.ID || f[1] != "disabled" || f[2] != "never" {
			t.Errorf("scrub row for %s: %q", n.ID, lines[7+i])
		}
	}
	if !strings.HasPrefix(lines[0], "leader: "+leader.ID+" ("+leader.URL()+")") {
		t.Errorf("summary line: %q", lines[0])
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "ID URL ROLE APPLIED LAG CONTENT BACKLOG" {
		t.Errorf("header: %q", lines[2])
	}
	for i, n := range nodes {
		f := strings.Fields(lines[3+i])
		role := "follower"
		if n == leader {
			role = "leader"
		}
		if len(f) < 6 || f[0] != n.ID || f[1] != n.URL() || f[2] != role || f[4] != "0" {
			t.Errorf("row for %s: %q", n.ID, lines[3+i])
		}
		wantBacklog := "0"
		if n == n2 {
			wantBacklog = "2 files, 3.0 MiB"
		}
		if got := strings.Join(f[5:], " "); got != wantBacklog {
			t.Errorf("%s: backlog %q, want %q", n.ID, got, wantBacklog)
		}
	}

	out, err = runApp(t, "cluster", "status", "--json", "--addr", n1.URL())
	var st cluster.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Nodes) != 2 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}

	follower := testcluster.Followers(nodes, leader)[0]
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"no secret", []string{"cluster", "remove", "--addr", n1.URL(), follower.ID}, "cluster secret", ""},
		{"wrong secret", []string{"cluster", "remove", "--cluster-secret", "nope", "--addr", n1.URL(), follower.ID}, "403", ""},
		{"no id", []string{"cluster", "remove", "--cluster-secret", testcluster.Secret, "--addr", n1.URL()}, "usage", ""},
		{"removed", []string{"cluster", "remove", "--cluster-secret", testcluster.Secret, "--addr", follower.URL(), follower.ID},
			"", "removed " + follower.ID + " (by leader " + leader.ID + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runApp(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q\n%s", err, tc.wantErr, out)
				}
				return
			}
			if err != nil || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
	follower.Stop()
	testcluster.WaitConverged(t, []*testcluster.Node{leader}, leader.ID)
}

func TestClusterHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"cluster", "--help"}, []string{"status", "remove", "--join"}},
		{[]string{"cluster", "status", "--help"}, []string{"DFS_ADDR", "LAG", "CONTENT BACKLOG"}},
		{[]string{"cluster", "remove", "--help"}, []string{"DFS_CLUSTER_SECRET", "Flags go before the ID"}},
		{[]string{"server", "--help"}, []string{"DFS_JOIN", "DFS_BOOTSTRAP_EXPECT", "DFS_PEERS", "DFS_CLUSTER_SECRET", "DFS_READ_CONSISTENCY"}},
	}
	for _, tc := range tests {
		out, err := runApp(t, tc.args...)
		for _, w := range tc.want {
			if err != nil || !strings.Contains(out, w) {
				t.Errorf("%v: %v: no %q in\n%s", tc.args, err, w, out)
			}
		}
	}
}
