package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// ErrNoState is wrapped by Open's error when the data directory holds no
// Raft state and the Config neither bootstraps nor joins.
var ErrNoState = errors.New("replication: no raft state")

// ErrHasState is wrapped by BootstrapWith's error when the node already has
// Raft state (it bootstrapped before, or a leader reached it first).
var ErrHasState = errors.New("replication: the node already has raft state")

// HasState reports whether the node holds any Raft state: a bootstrapped
// configuration, log entries or a snapshot. A node opened with Joining and
// not yet reached by a leader has none.
func (n *Node) HasState() bool { return n.raft.LastIndex() > 0 }

// BootstrapWith makes a node without Raft state (opened with Joining) start
// a new cluster whose voters are servers, which must include this node.
// The configuration is sorted by ID, so every node given the same servers
// writes the identical configuration: hashicorp/raft then forms one
// cluster from them, never two (--bootstrap-expect). A node that already
// has state returns an error wrapping ErrHasState and changes nothing.
func (n *Node) BootstrapWith(ctx context.Context, servers []Server) error {
	conf := raft.Configuration{}
	for _, s := range servers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address),
		})
	}
	slices.SortFunc(conf.Servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if err := await(ctx, n.raft.BootstrapCluster(conf)); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("replication: bootstrap: %w: %w", ErrHasState, err)
		}
		return fmt.Errorf("replication: bootstrap: %w", err)
	}
	n.log.Info().Int("voters", len(conf.Servers)).Msg("bootstrapped a new cluster")
	return nil
}

// TransferLeadership hands leadership to another voter (raft picks the
// most up-to-date one) and waits until it has one or ctx ends. Leader only;
// a leader without other voters gets an error.
func (n *Node) TransferLeadership(ctx context.Context) error {
	if !n.IsLeader() {
		return fmt.Errorf("replication: leadership transfer: %w", n.notLeader())
	}
	if err := await(ctx, n.raft.LeadershipTransfer()); err != nil {
		return fmt.Errorf("replication: leadership transfer: %w", err)
	}
	return nil
}

// VoterIDs returns the IDs of the voters in the latest Raft configuration.
func (n *Node) VoterIDs() ([]string, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, fmt.Errorf("replication: configuration: %w", err)
	}
	var ids []string
	for _, srv := range cf.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			ids = append(ids, string(srv.ID))
		}
	}
	return ids, nil
}

// Voters returns how many voters the latest Raft configuration has (0 if
// it cannot be read, e.g. during shutdown). Content replication derives the
// size of a majority from it (contentrepl.Quorum, wired in package server).
func (n *Node) Voters() int {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0
	}
	c := 0
	for _, srv := range cf.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}
