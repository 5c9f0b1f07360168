package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// ErrNotLeader is wrapped by errors from operations only the leader can
// perform. errors.As with *NotLeaderError tells who the leader is.
var ErrNotLeader = errors.New("replication: not the leader")

// ErrOutcomeUnknown is wrapped when an entry was handed to Raft but the
// caller stopped waiting (ctx ended) or leadership was lost before it
// committed: it may or may not be applied, so blindly retrying a
// non-idempotent mutation is unsafe.
var ErrOutcomeUnknown = errors.New("replication: outcome unknown")

// NotLeaderError is the ErrNotLeader error with the current leader, if the
// node knows one (empty fields otherwise).
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string // the leader's Raft address
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

func (n *Node) notLeader() *NotLeaderError {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// timeout is how long Raft may take for an operation started under ctx:
// ApplyTimeout, or less if ctx's deadline comes sooner.
func (n *Node) timeout(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl))
	}
	return max(t, time.Millisecond)
}

// await waits for a Raft future or for ctx. Raft futures cannot be
// cancelled; one abandoned here still resolves within its timeout, and the
// goroutine waiting for it then exits.
func await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Propose replicates cmd through the log and returns the outcome of
// applying it on this node, the leader. If cmd.Time is zero it is set to
// the leader's clock first. A non-leader returns an error wrapping
// ErrNotLeader without proposing. An error wrapping ErrOutcomeUnknown
// means the entry may still be applied.
func (n *Node) Propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	what := string(cmd.Op) + " " + cmd.Path
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("replication: propose %s: %w", what, err)
	}
	if n.raft.State() != raft.Leader {
		return nil, fmt.Errorf("replication: propose %s: %w", what, n.notLeader())
	}
	if cmd.Time == 0 {
		cmd.Time = time.Now().UnixNano()
	}
	data, err := cmd.Encode()
	if err != nil {
		return nil, fmt.Errorf("replication: propose %s: %w", what, err)
	}
	// Raft's timeout bounds only the enqueueing of the entry; the wait
	// for it to apply needs its own bound. A state machine that cannot
	// apply (its store on a full or failing volume retries the entry
	// until it succeeds) would otherwise hold the request for as long as
	// the fault lasts, where the client must get 503 and retry.
	wait := n.timeout(ctx)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	f := n.raft.Apply(data, wait)
	if err := await(wctx, f); err != nil {
		return nil, n.raftErr("propose "+what, err)
	}
	switch r := f.Response().(type) {
	case *fsm.Result:
		return r, nil
	case error:
		return nil, fmt.Errorf("replication: propose %s: committed but not applied here: %w", what, r)
	default:
		return nil, fmt.Errorf("replication: propose %s: unexpected FSM response %T", what, r)
	}
}

func (n *Node) raftErr(what string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("replication: %s: %w", what, n.notLeader())
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("replication: %s: %w: %w", what, ErrOutcomeUnknown, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("replication: %s: stopped waiting: %w: %w", what, ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("replication: %s: %w", what, err)
}

// Barrier returns once every entry committed before it has been applied to
// this node's FSM. Leader only.
func (n *Node) Barrier(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replication: barrier: %w", err)
	}
	if err := await(ctx, n.raft.Barrier(n.timeout(ctx))); err != nil {
		return n.raftErr("barrier", err)
	}
	return nil
}

// LeaderReady returns once this node leads and has applied every entry
// committed before its term. raft reports a new leader before its state
// machine has applied its predecessor's last entries, so a write checked
// against local state right after an election (does the parent exist? does
// the ETag match?) could be refused against a state already overwritten.
// The first call of a term costs one barrier; later calls return at once.
func (n *Node) LeaderReady(ctx context.Context) error {
	role, term := n.roleAndTerm()
	if role != raft.Leader.String() {
		return n.notLeader()
	}
	// Every write: a store that lost data since the last check must not
	// answer the write's pre-checks (ErrRebuilding until it is rebuilt).
	if _, err := n.fsm.AppliedIndex(ctx); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	return n.termReady(ctx, term)
}

// termReady makes sure this leader has applied every entry committed
// before term: one barrier the first time in a term.
func (n *Node) termReady(ctx context.Context, term uint64) error {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if n.readyTerm == term {
		return nil
	}
	if err := n.Barrier(ctx); err != nil {
		return err
	}
	if _, now := n.roleAndTerm(); now == term {
		n.readyTerm = term
	}
	return nil
}

// ReadIndex returns, on the leader, an applied index that covers every
// mutation committed before the call: a follower that has applied it
// (WaitApplied) serves reads that include the caller's own writes.
//
// It is the read index of the Raft thesis (§6.4) and writes nothing to the
// log: the leader, once it has applied an entry of its own term
// (LeaderReady, so its commit index covers everything any earlier leader
// acknowledged), notes its commit index, confirms with a heartbeat round
// to a majority that it still leads (raft.VerifyLeader: no other leader
// can have committed anything meanwhile), and waits until its state
// machine has applied the last command at or below that index. The cost
// is one round of heartbeats, shared by concurrent callers, instead of a
// log entry fsynced on a majority.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	// Unlike a write's LeaderReady, no check of the store here: the wait
	// below reads its applied index, and whoever reads the state checks
	// it (the WebDAV handler's read guard).
	role, term := n.roleAndTerm()
	if role != raft.Leader.String() {
		return 0, n.notLeader()
	}
	if err := n.termReady(ctx, term); err != nil {
		return 0, err
	}
	commit := n.raft.CommitIndex()
	if err := await(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, n.raftErr("read index", err)
	}
	target, err := n.lastCommand(commit)
	if err != nil {
		return 0, err
	}
	if err := n.fsm.WaitApplied(ctx, target); err != nil {
		return 0, fmt.Errorf("replication: read index: %w", err)
	}
	// target covers every command committed before the call; a reader
	// that has applied it has applied all of them.
	return target, nil
}

// lastCommand returns the index of the last command entry at or below
// index that the state machine has still to apply, or its applied index
// when there is none. Entries of other kinds (a new leader's no-op,
// membership changes, barriers) never reach the state machine, so its
// applied index alone never reaches them; usually index itself is a
// command and this reads one entry.
func (n *Node) lastCommand(index uint64) (uint64, error) {
	applied := n.fsm.Applied()
	for i := index; i > applied; i-- {
		var l raft.Log
		if err := n.wal.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				// Compacted into a snapshot, which the state machine
				// has restored: nothing above applied is missing there.
				return applied, nil
			}
			return 0, fmt.Errorf("replication: read index: log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return applied, nil
}

// WaitApplied blocks until this node's FSM has applied index (from the
// leader's ReadIndex) or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if err := n.fsm.WaitApplied(ctx, index); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	return nil
}

// WaitRaftApplied blocks until Raft has applied index (compare it with
// Raft's commit index, Status.CommitIndex) or ctx ends. It polls: it serves
// readiness probes, not requests.
func (n *Node) WaitRaftApplied(ctx context.Context, index uint64) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.raft.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication: raft applied %d of %d: %w", n.raft.AppliedIndex(), index, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// AppliedIndex returns the index of the last entry applied to this node's
// metastore. It counts only entries that reach the FSM, so compare it with
// ReadIndex or other nodes' AppliedIndex, not with Raft's commit index.
func (n *Node) AppliedIndex(ctx context.Context) (uint64, error) {
	i, err := n.fsm.AppliedIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("replication: %w", err)
	}
	return i, nil
}

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and Raft address, empty if none is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// State returns the node's role: "Leader", "Follower", "Candidate" or
// "Shutdown".
func (n *Node) State() string { return n.raft.State().String() }

// Stats returns hashicorp/raft's diagnostic counters.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// WaitForLeader blocks until the cluster has a leader this node knows of,
// and returns it.
func (n *Node) WaitForLeader(ctx context.Context) (id, addr string, err error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if id, addr := n.Leader(); id != "" {
			return id, addr, nil
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("replication: wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Snapshot takes a Raft snapshot now (tests, operator tooling). It wraps
// raft.ErrNothingNewToSnapshot when nothing was applied since the last one.
func (n *Node) Snapshot(ctx context.Context) error {
	if err := await(ctx, n.raft.Snapshot()); err != nil {
		return fmt.Errorf("replication: snapshot: %w", err)
	}
	return nil
}

// AddVoter adds (or updates) a voting member. Leader only.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx))
	if err := await(ctx, f); err != nil {
		return n.raftErr("add voter "+id, err)
	}
	return nil
}

// RemoveServer removes a member. Leader only.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := await(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx))); err != nil {
		return n.raftErr("remove server "+id, err)
	}
	return nil
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // Voter, Nonvoter, Staging
}

// Status is a node's view of the cluster, for health endpoints and tests.
type Status struct {
	ID         string `json:"id"`
	Role       string `json:"role"` // Leader, Follower, Candidate, Shutdown
	LeaderID   string `json:"leader_id"`
	LeaderAddr string `json:"leader_addr"`
	Term       uint64 `json:"term"`
	// CommitIndex, LastLogIndex and RaftAppliedIndex are Raft log indexes;
	// AppliedIndex is the metastore's (see Node.AppliedIndex).
	CommitIndex      uint64   `json:"commit_index"`
	LastLogIndex     uint64   `json:"last_log_index"`
	RaftAppliedIndex uint64   `json:"raft_applied_index"`
	AppliedIndex     uint64   `json:"applied_index"`
	Servers          []Server `json:"servers"`
	// PurgingTrees and BuildingCopies count the subtree work the leader
	// has still to finish (see package fsm): deleted trees not yet purged
	// and large copies not yet in place.
	PurgingTrees   int `json:"purging_trees"`
	BuildingCopies int `json:"building_copies"`
	// Rebuilding says why the node's metadata store is being reloaded
	// (a snapshot restore, a rebuild after it lost data); empty if not.
	Rebuilding string `json:"rebuilding,omitempty"`
}

// roleAndTerm reads the node's role and current term as one pair. raft
// keeps them in separate atomics and a leader that learns of a higher term
// sets its state to follower before it stores the new term, so two plain
// reads can pair "Leader" with the next term, a term the node never led:
// to anyone checking that a term has at most one leader (the fault suite
// polls every node's role and term), that looks like split brain. The term
// is read before and after the role until both reads agree.
func (n *Node) roleAndTerm() (string, uint64) {
	for {
		before := n.raft.CurrentTerm()
		role := n.State()
		if after := n.raft.CurrentTerm(); after == before {
			return role, after
		}
	}
}

// Status reports the node's role, indexes and the cluster configuration.
func (n *Node) Status(ctx context.Context) (Status, error) {
	role, term := n.roleAndTerm()
	leaderID, leaderAddr := n.Leader()
	s := Status{
		ID:               n.cfg.ID,
		Role:             role,
		LeaderID:         leaderID,
		LeaderAddr:       leaderAddr,
		Term:             term,
		CommitIndex:      n.raft.CommitIndex(),
		LastLogIndex:     n.raft.LastIndex(),
		RaftAppliedIndex: n.raft.AppliedIndex(),
		Rebuilding:       n.fsm.Rebuilding(),
	}
	applied, err := n.AppliedIndex(ctx)
	switch {
	case errors.Is(err, fsm.ErrRebuilding) || errors.Is(err, fsm.ErrStoreLost):
		// A node that heals its store still reports: what it applied
		// before, and why it is not serving.
		if s.Rebuilding == "" {
			s.Rebuilding = err.Error()
		}
		applied = n.fsm.Applied()
	case err != nil:
		return s, err
	}
	s.AppliedIndex = applied
	if s.Rebuilding != "" {
		// The work areas are not readable while the store reloads.
		return s, n.configuration(ctx, &s)
	}
	for _, a := range []struct {
		id  metastore.ID
		out *int
	}{{metastore.PurgeID, &s.PurgingTrees}, {metastore.StagingID, &s.BuildingCopies}} {
		ents, err := n.fsm.Store().List(ctx, a.id)
		if err != nil {
			return s, fmt.Errorf("replication: list work area %d: %w", a.id, err)
		}
		*a.out = len(ents)
	}
	return s, n.configuration(ctx, &s)
}

// configuration adds the Raft configuration's servers to s.
func (n *Node) configuration(ctx context.Context, s *Status) error {
	cf := n.raft.GetConfiguration()
	if err := await(ctx, cf); err != nil {
		return fmt.Errorf("replication: read configuration: %w", err)
	}
	for _, srv := range cf.Configuration().Servers {
		s.Servers = append(s.Servers, Server{ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String()})
	}
	return nil
}
