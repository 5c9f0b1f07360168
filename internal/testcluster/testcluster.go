// Package testcluster starts real dfs nodes in the test's process: each a
// complete server.Server with its own data directory, embedded store, HTTP
// listener on a free loopback port and Raft over loopback TCP, with Raft
// timeouts short enough for tests. It is for tests only.
package testcluster

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/testlog"
	"github.com/dfs-project/dfs/internal/testport"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/server"
)

// Secret is the cluster secret test nodes share.
const Secret = "test-cluster-secret"

// NoSecret as Config.ClusterSecret starts a node without any secret.
const NoSecret = "\x00no secret"

// Node is one running in-process dfs node.
type Node struct {
	*server.Server
	ID  string
	Cfg server.Config // as started; Restart reuses it

	t      testing.TB
	cancel context.CancelFunc
	served chan error
	once   sync.Once
}

// FreeAddr returns a loopback address with a port nobody listens on now
// and no other caller in this process was given (package testport).
func FreeAddr(t testing.TB) string { return testport.Addr(t) }

// Fast sets Raft timeouts for loopback tests.
func Fast(cfg *server.Config) {
	// Short, but not so short that a loaded test machine starts elections.
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	cfg.ElectionTimeout = 400 * time.Millisecond
	cfg.LeaderLeaseTimeout = 200 * time.Millisecond
}

// New opens a node (server.New) without serving it yet. Unset fields get
// test values: a fresh data directory, free loopback ports, Secret, fast
// Raft timeouts (see Fast; set ElectionTimeout to opt out).
func New(t testing.TB, cfg server.Config) *Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.RaftAddr == "" {
		cfg.RaftAddr = "127.0.0.1:0"
	}
	switch cfg.ClusterSecret {
	case "":
		cfg.ClusterSecret = Secret
	case NoSecret:
		cfg.ClusterSecret = ""
	}
	if cfg.ElectionTimeout == 0 {
		Fast(&cfg)
	}
	logs := &testlog.Buffer{}
	cfg.Log = zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	logs.ShowOnFailure(t, "node "+cfg.ID+" log")
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("server.New(%s): %v", cfg.ID, err)
	}
	// A restart keeps the node's addresses, as a pod keeps its own.
	cfg.HTTPAddr = srv.URL()[len("http://"):]
	cfg.RaftAddr = srv.Node().Addr()
	n := &Node{Server: srv, ID: cfg.ID, Cfg: cfg, t: t}
	t.Cleanup(n.Stop)
	return n
}

// Serve starts answering HTTP (and forming or joining the cluster).
func (n *Node) Serve() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.served = cancel, make(chan error, 1)
	go func() { n.served <- n.Server.Serve(ctx) }()
}

// Start opens and serves a node.
func Start(t testing.TB, cfg server.Config) *Node {
	t.Helper()
	n := New(t, cfg)
	n.Serve()
	return n
}

// Stop shuts the node down as SIGTERM would (leadership transfer
// included) and waits for it. Stopping twice is harmless.
func (n *Node) Stop() {
	n.once.Do(func() {
		if n.cancel == nil {
			_ = n.Server.Close(context.Background())
			return
		}
		n.cancel()
		select {
		case err := <-n.served:
			if err != nil {
				n.t.Errorf("node %s: Serve: %v", n.ID, err)
			}
		case <-time.After(60 * time.Second):
			n.t.Errorf("node %s did not stop", n.ID)
		}
	})
}

// Restart stops the node and starts it again on the same data directory
// and addresses, with cfg changed by edit (may be nil).
func (n *Node) Restart(t testing.TB, edit func(*server.Config)) *Node {
	t.Helper()
	n.Stop()
	cfg := n.Cfg
	if edit != nil {
		edit(&cfg)
	}
	return Start(t, cfg)
}

// Members reads this node's replicated member table.
func (n *Node) Members(t testing.TB) []metastore.Member {
	t.Helper()
	ms, err := n.Cluster().Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// Status is the node's view of the cluster (its own /cluster/status).
func (n *Node) Status(t testing.TB) cluster.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cluster.NewClient("", nil).Status(ctx, n.URL())
	if err != nil {
		t.Fatalf("status of %s: %v", n.ID, err)
	}
	return st
}

// Eventually polls cond every 20ms until it holds or timeout passes, then
// fails the test with what the last call said.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitConverged waits until every node names the same leader (one of
// them), Raft on every node has exactly the voters wantVoters (IDs), every
// node's member table lists exactly those nodes, and every node is ready.
// It returns the leader.
func WaitConverged(t testing.TB, nodes []*Node, wantVoters ...string) *Node {
	t.Helper()
	slices.Sort(wantVoters)
	var leader *Node
	Eventually(t, 30*time.Second, "cluster converged", func() (bool, string) {
		leader = nil
		var id string
		for i, n := range nodes {
			st, err := n.Node().Status(context.Background())
			if err != nil {
				return false, n.ID + ": " + err.Error()
			}
			if i == 0 {
				id = st.LeaderID
			}
			if st.LeaderID == "" || st.LeaderID != id {
				return false, n.ID + " names leader " + st.LeaderID + ", " + nodes[0].ID + " names " + id
			}
			var voters []string
			for _, s := range st.Servers {
				if s.Suffrage == "Voter" {
					voters = append(voters, s.ID)
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, wantVoters) {
				return false, n.ID + " has voters " + join(voters)
			}
			ms, err := n.Cluster().Members(context.Background())
			if err != nil {
				return false, err.Error()
			}
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, wantVoters) {
				return false, n.ID + "'s member table has URLs for " + join(ids)
			}
			if code := get(n.URL() + "/readyz"); code != http.StatusOK {
				return false, n.ID + " not ready"
			}
			if n.ID == id {
				leader = n
			}
		}
		return leader != nil, "the leader " + id + " is not among the nodes"
	})
	return leader
}

func join(s []string) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, x := range s {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(x)
	}
	b.WriteString("]")
	return b.String()
}

func get(u string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Followers returns the nodes other than leader.
func Followers(nodes []*Node, leader *Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}
