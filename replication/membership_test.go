package replication

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/fsm"
)

// TestBootstrapWithAndTransfer forms a cluster the way --bootstrap-expect
// does (three empty nodes, each bootstrapping with the same servers in a
// different order, concurrently), then hands leadership over.
func TestBootstrapWithAndTransfer(t *testing.T) {
	var nodes []*testNode
	var servers []Server
	for _, id := range []string{"n1", "n2", "n3"} {
		dir := t.TempDir()
		cfg := fastConfig(t, id, dir, freeAddr(t))
		cfg.Joining = true
		tn := start(t, cfg, openBolt(t, filepath.Join(dir, "meta.db")))
		if tn.HasState() {
			t.Fatalf("%s: HasState before bootstrap", id)
		}
		nodes = append(nodes, tn)
		servers = append(servers, Server{ID: id, Address: tn.Addr()})
	}
	orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, tn := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var list []Server
			for _, j := range orders[i] {
				list = append(list, servers[j])
			}
			errs[i] = tn.BootstrapWith(ctxT(t), list)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: BootstrapWith: %v", nodes[i].ID(), err)
		}
	}
	leader := waitOneLeader(t, nodes, "")
	for _, tn := range nodes {
		if !tn.HasState() {
			t.Fatalf("%s: no state after bootstrap", tn.ID())
		}
		st, err := tn.Status(ctxT(t))
		if err != nil || len(st.Servers) != 3 {
			t.Fatalf("%s: status %+v, %v", tn.ID(), st, err)
		}
	}
	if err := nodes[0].BootstrapWith(ctxT(t), servers); !errors.Is(err, ErrHasState) {
		t.Fatalf("second BootstrapWith: %v, want ErrHasState", err)
	}

	var follower *testNode
	for _, tn := range nodes {
		if tn.ID() != leader.ID() {
			follower = tn
		}
	}
	if err := follower.TransferLeadership(ctxT(t)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("TransferLeadership on a follower: %v", err)
	}
	// raft gives a transfer one election timeout (50 ms here) to finish;
	// on a loaded machine that can pass, and the leader stays. Retry then.
	for try := 1; ; try++ {
		err := leader.TransferLeadership(ctxT(t))
		if err == nil || !leader.IsLeader() {
			break // moved, even if the transfer reported a timeout
		}
		if try == 5 {
			t.Fatalf("TransferLeadership (try %d): %v", try, err)
		}
	}
	if next := waitOneLeader(t, nodes, leader.ID()); next.ID() == leader.ID() {
		t.Fatal("leadership did not move")
	}
}

// waitOneLeader waits until every node names the same leader, other than
// not, and returns it.
func waitOneLeader(t *testing.T, nodes []*testNode, not string) *testNode {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		id, _ := nodes[0].Leader()
		agree := id != "" && id != not
		for _, tn := range nodes[1:] {
			if l, _ := tn.Leader(); l != id {
				agree = false
			}
		}
		if agree {
			for _, tn := range nodes {
				if tn.ID() == id && tn.IsLeader() {
					return tn
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the nodes never agreed on a leader")
	return nil
}

func TestOpenWithoutStateWrapsErrNoState(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(t, "n1", dir, freeAddr(t))
	cfg.FSM = fsm.New(openBolt(t, filepath.Join(dir, "meta.db")), zerolog.Nop())
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrNoState) {
		t.Fatalf("Open without state, bootstrap or join: %v, want ErrNoState", err)
	}
}
