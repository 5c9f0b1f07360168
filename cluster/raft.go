package cluster

import (
	"context"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/replication"
)

// Raft is what a Cluster needs of this node's Raft member: who leads, the
// log (read index, waiting to apply it, proposals) and the membership.
// replication.Node implements it and package server wires it in; the
// package's unit tests use their own.
type Raft interface {
	Leadership
	Log
	Membership
}

// Leadership tells who leads. Forwarding needs nothing else.
type Leadership interface {
	// IsLeader reports whether this node leads right now.
	IsLeader() bool
	// Leader returns the leader's ID and Raft address, empty if none is
	// known.
	Leader() (id, addr string)
	// LeaderReady returns once this node leads and has applied every
	// entry committed before its term: only then may it check a write
	// against its local state.
	LeaderReady(ctx context.Context) error
}

// Log is the replicated log as read consistency and the member table use
// it.
type Log interface {
	// ReadIndex returns, on the leader, an applied index that covers every
	// entry committed before the call. It fails on a follower.
	ReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied returns once this node has applied index, or when ctx
	// ends.
	WaitApplied(ctx context.Context, index uint64) error
	// Propose commits cmd through the leader's log and applies it.
	// Leader only.
	Propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// Membership is the Raft configuration: forming and joining a cluster,
// adding and removing voters, handing leadership over, and this node's
// own view of it.
type Membership interface {
	// Addr is this node's Raft address, as peers reach it.
	Addr() string
	// HasState reports whether this node holds any Raft state (it has
	// bootstrapped or been reached by a leader).
	HasState() bool
	// Status is this node's view of the cluster: role, term, indexes and
	// the Raft configuration.
	Status(ctx context.Context) (replication.Status, error)
	// BootstrapWith starts a new cluster of servers on a node without
	// state; one with state gets an error wrapping replication.ErrHasState.
	BootstrapWith(ctx context.Context, servers []replication.Server) error
	// CheckPeer checks that the Raft transport at addr completes the
	// cluster's mutual TLS (an error wrapping replication.ErrPeerTLS if
	// not); without TLS it checks nothing.
	CheckPeer(ctx context.Context, addr string) error
	// AddVoter adds or updates a voter. Leader only.
	AddVoter(ctx context.Context, id, addr string) error
	// RemoveServer takes a member out of the configuration. Leader only.
	RemoveServer(ctx context.Context, id string) error
	// TransferLeadership hands leadership to another voter. Leader only.
	TransferLeadership(ctx context.Context) error
}
