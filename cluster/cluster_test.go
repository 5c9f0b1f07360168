package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/server"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startJoined starts n1 with --bootstrap, n2 with --join n1 and n3 with
// --join n2 (a follower, which relays the join to the leader), and returns
// them and the leader.
func startJoined(t *testing.T) ([]*testcluster.Node, *testcluster.Node) {
	t.Helper()
	n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	n2 := testcluster.Start(t, server.Config{ID: "n2", Join: []string{n1.URL()}})
	testcluster.WaitConverged(t, []*testcluster.Node{n1, n2}, "n1", "n2")
	n3 := testcluster.Start(t, server.Config{ID: "n3", Join: []string{"http://127.0.0.1:1", n2.URL()}})
	nodes := []*testcluster.Node{n1, n2, n3}
	return nodes, testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
}

func wantMembers(nodes []*testcluster.Node) []metastore.Member {
	var ms []metastore.Member
	for _, n := range nodes {
		ms = append(ms, metastore.Member{ID: n.ID, URL: n.URL(), RaftAddr: n.Node().Addr()})
	}
	slices.SortFunc(ms, func(a, b metastore.Member) int { return strings.Compare(a.ID, b.ID) })
	return ms
}

func waitMembers(t *testing.T, nodes []*testcluster.Node, want []metastore.Member) {
	t.Helper()
	for _, n := range nodes {
		testcluster.Eventually(t, 10*time.Second, n.ID+"'s member table", func() (bool, string) {
			got := n.Members(t)
			return slices.Equal(got, want), "got " + fmtMembers(got) + ", want " + fmtMembers(want)
		})
	}
}

func fmtMembers(ms []metastore.Member) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.ID+"="+m.URL+"|"+m.RaftAddr)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestJoinFormsOneCluster(t *testing.T) {
	nodes, leader := startJoined(t)
	waitMembers(t, nodes, wantMembers(nodes))

	// Every node's status lists all three with their URLs, one leader,
	// and a lag for each.
	for _, n := range nodes {
		st := n.Status(t)
		if st.Leader != leader.ID || st.LeaderURL != leader.URL() || len(st.Nodes) != 3 {
			t.Fatalf("%s: status %+v", n.ID, st)
		}
		leaders := 0
		for i, ns := range st.Nodes {
			if ns.ID != nodes[i].ID || ns.URL != nodes[i].URL() || !ns.Voter || ns.Lag == nil || ns.Error != "" {
				t.Fatalf("%s: node %d in status: %+v", n.ID, i, ns)
			}
			if ns.Role == "leader" {
				leaders++
			} else if ns.Role != "follower" {
				t.Fatalf("%s: role of %s is %q", n.ID, ns.ID, ns.Role)
			}
		}
		if leaders != 1 {
			t.Fatalf("%s: %d leaders in status", n.ID, leaders)
		}
	}
}

func TestRejoinAfterRestartIsHarmless(t *testing.T) {
	nodes, leader := startJoined(t)
	// What a join could change: the Raft configuration (its own log
	// entries) and the member table (FSM entries, counted by the applied
	// index). Barriers add no-op entries, so the log index may move.
	state := func() string {
		applied, err := leader.Node().AppliedIndex(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("configuration index %s, applied index %d",
			leader.Node().Stats()["latest_configuration_index"], applied)
	}
	before := state()

	// A follower restarted with its old data and the same --join: nothing
	// changes (the join finds the voter and the entry in place).
	i := slices.Index(nodes, testcluster.Followers(nodes, leader)[0])
	nodes[i] = nodes[i].Restart(t, nil)
	leader = testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
	waitMembers(t, nodes, wantMembers(nodes))
	resp, err := nodes[i].Cluster().Client().Join(ctxT(t), leader.URL(),
		cluster.JoinRequest{ID: nodes[i].ID, RaftAddr: nodes[i].Node().Addr(), URL: nodes[i].URL()})
	if err != nil || resp.AddedVoter || resp.UpdatedMember {
		t.Fatalf("join again: %+v, %v", resp, err)
	}
	if after := state(); after != before {
		t.Fatalf("rejoining changed the cluster: %s, was %s", after, before)
	}

	// Restarted at a new HTTP address without --join: its entry follows.
	i = slices.Index(nodes, testcluster.Followers(nodes, leader)[0])
	nodes[i] = nodes[i].Restart(t, func(cfg *server.Config) {
		cfg.HTTPAddr, cfg.Join = testcluster.FreeAddr(t), nil
	})
	testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
	waitMembers(t, nodes, wantMembers(nodes))
}

func TestBootstrapExpect(t *testing.T) {
	ids := []string{"b1", "b2", "b3"}
	addrs := make([]string, len(ids))
	peers := make([]string, len(ids))
	for i := range ids {
		addrs[i] = testcluster.FreeAddr(t)
		peers[i] = "http://" + addrs[i]
	}
	nodes := make([]*testcluster.Node, len(ids))
	for i, id := range ids {
		// The first node does not list itself; the others do.
		p := peers
		if i == 0 {
			p = peers[1:]
		}
		nodes[i] = testcluster.New(t, server.Config{ID: id, HTTPAddr: addrs[i], BootstrapExpect: 3, Peers: p})
	}
	// All three start forming at the same moment.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Serve() }()
	}
	wg.Wait()
	leader := testcluster.WaitConverged(t, nodes, ids...)
	waitMembers(t, nodes, wantMembers(nodes))
	for _, n := range nodes {
		st, err := n.Node().Status(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.LeaderID != leader.ID || len(st.Servers) != 3 {
			t.Fatalf("%s: %+v", n.ID, st)
		}
	}

	// A late node with the same flags finds a cluster and joins it.
	late := testcluster.Start(t, server.Config{ID: "b4", BootstrapExpect: 3, Peers: peers})
	all := append(slices.Clone(nodes), late)
	testcluster.WaitConverged(t, all, "b1", "b2", "b3", "b4")
	waitMembers(t, all, wantMembers(all))
}

func TestRemove(t *testing.T) {
	nodes, leader := startJoined(t)
	client := cluster.NewClient(testcluster.Secret, nil)
	followers := testcluster.Followers(nodes, leader)
	gone, via := followers[0], followers[1]

	// Through a follower, which relays to the leader.
	gone.Stop()
	resp, err := client.Remove(ctxT(t), via.URL(), gone.ID)
	if err != nil || resp.Removed != gone.ID || resp.Leader != leader.ID {
		t.Fatalf("remove %s: %+v, %v", gone.ID, resp, err)
	}
	rest := []*testcluster.Node{leader, via}
	slices.SortFunc(rest, func(a, b *testcluster.Node) int { return strings.Compare(a.ID, b.ID) })
	testcluster.WaitConverged(t, rest, rest[0].ID, rest[1].ID)
	waitMembers(t, rest, wantMembers(rest))

	tests := []struct {
		name string
		id   string
		want int
	}{
		{"unknown node", "nope", http.StatusNotFound},
		{"removed already", gone.ID, http.StatusNotFound},
		{"no id", "", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Remove(ctxT(t), via.URL(), tc.id)
			var ce *cluster.Error
			if !errors.As(err, &ce) || ce.StatusCode != tc.want {
				t.Fatalf("remove %q: %v, want %d", tc.id, err, tc.want)
			}
		})
	}

	// Down to one voter, which cannot be removed. (Two voters need both
	// to commit anything, so the second one goes while it still runs.)
	if _, err := client.Remove(ctxT(t), leader.URL(), via.ID); err != nil {
		t.Fatal(err)
	}
	via.Stop()
	testcluster.WaitConverged(t, []*testcluster.Node{leader}, leader.ID)
	_, err = client.Remove(ctxT(t), leader.URL(), leader.ID)
	var ce *cluster.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusConflict {
		t.Fatalf("removing the last voter: %v", err)
	}
}

// TestInternalAPIAuth sends every internal call without the secret and
// with a wrong one: 401 and 403, and the cluster is unchanged.
func TestInternalAPIAuth(t *testing.T) {
	nodes, leader := startJoined(t)
	outsider := testcluster.New(t, server.Config{ID: "x", Join: []string{"http://127.0.0.1:1"}})
	before := wantMembers(nodes)

	calls := []struct {
		name string
		call func(ctx context.Context, c *cluster.Client, base string) error
	}{
		{"join", func(ctx context.Context, c *cluster.Client, base string) error {
			_, err := c.Join(ctx, base, cluster.JoinRequest{ID: "x", RaftAddr: outsider.Node().Addr(), URL: outsider.URL()})
			return err
		}},
		{"join changing an address", func(ctx context.Context, c *cluster.Client, base string) error {
			_, err := c.Join(ctx, base, cluster.JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:1", URL: "http://127.0.0.1:1"})
			return err
		}},
		{"remove", func(ctx context.Context, c *cluster.Client, base string) error {
			_, err := c.Remove(ctx, base, "n3")
			return err
		}},
		{"readindex", func(ctx context.Context, c *cluster.Client, base string) error {
			_, err := c.ReadIndex(ctx, base)
			return err
		}},
		{"bootstrap-info", func(ctx context.Context, c *cluster.Client, base string) error {
			_, err := c.BootstrapInfo(ctx, base)
			return err
		}},
	}
	secrets := []struct {
		name   string
		secret string
		want   int
	}{
		{"no secret", "", http.StatusUnauthorized},
		{"wrong secret", "not-" + testcluster.Secret, http.StatusForbidden},
	}
	for _, sc := range secrets {
		for _, call := range calls {
			for _, n := range []*testcluster.Node{leader, testcluster.Followers(nodes, leader)[0]} {
				t.Run(sc.name+"/"+call.name+"/"+n.ID, func(t *testing.T) {
					err := call.call(ctxT(t), cluster.NewClient(sc.secret, nil), n.URL())
					var ce *cluster.Error
					if !errors.As(err, &ce) || ce.StatusCode != sc.want {
						t.Fatalf("got %v, want %d", err, sc.want)
					}
				})
			}
		}
	}
	testcluster.WaitConverged(t, nodes, "n1", "n2", "n3")
	waitMembers(t, nodes, before)

	// A forwarded write whose marker comes without the secret is an
	// ordinary request, and still forwarded: the marker proves nothing.
	req, _ := http.NewRequest("MKCOL", testcluster.Followers(nodes, leader)[0].URL()+"/fake-forward", nil)
	req.Header.Set(cluster.ForwardedByHeader, leader.ID)
	req.Header.Set(clusterauth.Header, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCOL with a forged forwarding marker: %d", resp.StatusCode)
	}
}

// TestNoSecretRefusesEverything: a --bootstrap node without a secret
// serves WebDAV alone and refuses every internal call, whatever secret the
// caller guesses.
func TestNoSecretRefusesEverything(t *testing.T) {
	n := testcluster.Start(t, server.Config{ID: "solo", Bootstrap: true, ClusterSecret: testcluster.NoSecret})
	testcluster.WaitConverged(t, []*testcluster.Node{n}, "solo")
	tests := []struct {
		secret string
		want   int
	}{
		{"", http.StatusUnauthorized},
		{"anything", http.StatusForbidden},
		{testcluster.Secret, http.StatusForbidden},
	}
	for _, tc := range tests {
		_, err := cluster.NewClient(tc.secret, nil).Join(ctxT(t), n.URL(),
			cluster.JoinRequest{ID: "x", RaftAddr: "127.0.0.1:1", URL: "http://127.0.0.1:1"})
		var ce *cluster.Error
		if !errors.As(err, &ce) || ce.StatusCode != tc.want {
			t.Fatalf("join with secret %q: %v, want %d", tc.secret, err, tc.want)
		}
	}
	req, _ := http.NewRequest("MKCOL", n.URL()+"/works", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCOL on a node without a secret: %d", resp.StatusCode)
	}
	if st := n.Status(t); len(st.Nodes) != 1 || st.Nodes[0].ID != "solo" {
		t.Fatalf("status: %+v", st)
	}
}

func TestReadIndexOnFollowerNamesLeader(t *testing.T) {
	nodes, leader := startJoined(t)
	follower := testcluster.Followers(nodes, leader)[0]
	client := cluster.NewClient(testcluster.Secret, nil)
	idx, err := client.ReadIndex(ctxT(t), leader.URL())
	if err != nil || idx == 0 {
		t.Fatalf("read index from the leader: %d, %v", idx, err)
	}
	_, err = client.ReadIndex(ctxT(t), follower.URL())
	var ce *cluster.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusMisdirectedRequest || ce.Leader != leader.ID || ce.LeaderURL != leader.URL() {
		t.Fatalf("read index from a follower: %v", err)
	}
	info, err := client.BootstrapInfo(ctxT(t), follower.URL())
	if err != nil || info.ID != follower.ID || !info.HasState || info.Leader != leader.ID || info.URL != follower.URL() {
		t.Fatalf("bootstrap info: %+v, %v", info, err)
	}
}

// TestStatusTermAndLeader: /cluster/status and /cluster/node carry the Raft
// term, the same on every node of a settled cluster, and exactly one node
// reports itself leader in it (the fault suite's split-brain check reads
// these). After a leadership transfer the term grows and the new leader
// reports it.
func TestStatusTermAndLeader(t *testing.T) {
	nodes, leader := startJoined(t)
	client := cluster.NewClient("", nil)
	check := func(leaderID string) uint64 {
		t.Helper()
		var term uint64
		testcluster.Eventually(t, 10*time.Second, "one leader, one term", func() (bool, string) {
			term = 0
			leaders := 0
			for _, n := range nodes {
				info, err := client.Node(ctxT(t), n.URL())
				if err != nil {
					return false, err.Error()
				}
				st := n.Status(t)
				if info.Term == 0 || st.Term != info.Term || (term != 0 && info.Term != term) || info.Leader != leaderID {
					return false, fmt.Sprintf("%s: node %+v, status term %d", n.ID, info, st.Term)
				}
				term = info.Term
				if info.Role == "leader" {
					leaders++
				}
			}
			return leaders == 1, fmt.Sprintf("%d leaders", leaders)
		})
		return term
	}
	before := check(leader.ID)
	if err := leader.Node().TransferLeadership(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var next string
	testcluster.Eventually(t, 10*time.Second, "a new leader", func() (bool, string) {
		next, _ = leader.Node().Leader()
		return next != "" && next != leader.ID, next
	})
	if after := check(next); after <= before {
		t.Fatalf("term %d after the transfer, %d before", after, before)
	}
}
