package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
	// Named apart from the test's own verify (the command's arguments).
	replicas "github.com/dfs-project/dfs/verify"
)

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

// TestClusterVerify runs dfs cluster verify against a healthy cluster, one
// with a node that lost a content object, and one with a stopped node, and
// checks the output and the exit status of each.
func TestClusterVerify(t *testing.T) {
	n1 := testcluster.Start(t, server.Config{ID: "node1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "node1")
	n2 := testcluster.Start(t, server.Config{ID: "node2", Join: []string{n1.URL()}})
	nodes := []*testcluster.Node{n1, n2}
	leader := testcluster.WaitConverged(t, nodes, "node1", "node2")
	body := "verify me"
	req, _ := http.NewRequest(http.MethodPut, leader.URL()+"/f.txt", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	secret := []string{"--cluster-secret", testcluster.Secret}
	verify := func(args ...string) []string {
		return append(append([]string{"cluster", "verify", "--addr", n2.URL()}, secret...), args...)
	}

	tests := []struct {
		name   string
		args   []string
		before func()
		code   int
		want   []string // lines or fragments the output must hold
	}{
		{name: "consistent", args: verify(), code: exitConsistent,
			want: []string{"ID  ", "node1  " + n1.URL(), "node2  " + n2.URL(), "consistent: 2 nodes at applied index"}},
		{name: "deep shows progress", args: verify("--deep"), code: exitConsistent,
			want: []string{"digest at index", "consistent: 2 nodes", "deep (content re-hashed)"}},
		{name: "explicit nodes", args: []string{"cluster", "verify", "--cluster-secret", testcluster.Secret, "--node", n1.URL(), "--node", n2.URL()},
			code: exitConsistent, want: []string{"consistent: 2 nodes"}},
		{name: "no secret", args: []string{"cluster", "verify", "--addr", n1.URL()}, code: exitInconclusive,
			want: []string{"needs the cluster secret"}},
		{name: "wrong secret", args: []string{"cluster", "verify", "--addr", n1.URL(), "--cluster-secret", "nope"}, code: exitInconclusive,
			want: []string{"403", "not verified: no usable digest from node1, node2"}},
		{name: "bad attempts", args: verify("--attempts", "0"), code: exitInconclusive, want: []string{"--attempts 0"}},
		{name: "content lost on node2", args: verify(),
			before: func() {
				if err := os.Remove(filepath.Join(n2.Cfg.DataDir, "content", "objects", hash[:2], hash)); err != nil {
					t.Fatal(err)
				}
			},
			code: exitDifferences,
			want: []string{"DIFFERENT: 1 differences at applied index", "node2: content " + hash + " is missing (used by /f.txt)"}},
		{name: "node2 stopped", args: []string{"cluster", "verify", "--addr", n1.URL(), "--cluster-secret", testcluster.Secret},
			before: n2.Stop, code: exitInconclusive,
			want: []string{"node2  " + n2.URL() + "  -", "node2: unreachable:", "not verified: no usable digest from node2"}},
		{name: "node2 stopped, nodes by URL", args: verify("--node", n1.URL(), "--node", n2.URL()), code: exitInconclusive,
			want: []string{"-      " + n2.URL(), n2.URL() + ": unreachable:", "not verified: no usable digest from " + n2.URL()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			out, err := runApp(t, tc.args...)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit status %d (%v), want %d:\n%s", got, err, tc.code, out)
			}
			if err != nil {
				out += "\n" + err.Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	// --json prints the report; the exit status says the same.
	out, err := runApp(t, verify("--json", "--node", n1.URL(), "--attempts", "1")...)
	var rep replicas.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("--json: %v\n%s", jerr, out)
	}
	if exitCode(err) != exitConsistent || !rep.Consistent || len(rep.Nodes) != 1 || rep.Nodes[0].ID != "node1" {
		t.Errorf("--json on node1 alone: exit %d, report %+v", exitCode(err), rep)
	}
}
