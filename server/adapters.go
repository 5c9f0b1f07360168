package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/contentrepl"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/webdav"
)

// The adapters that connect the node's packages to each other: each
// presents one package as an interface another one declares (webdav.Blobs,
// verify.ContentChecker), or answers a hook or question one package asks
// of the rest of the node (contentrepl's peers and quorum, fsm's release
// hook, replication's leadership changes). New wires them in.

// blobAdapter presents content replication as webdav.Blobs: writes on
// the leader reach a majority of nodes, reads fetch content this node lacks
// from a peer. Its failures of the cluster (contentrepl.ErrNoQuorum and
// ErrUnavailable) are unavailable.Err, which is webdav.ErrUnavailable
// (503), so they pass through as they are; an upload cut short because
// this node stopped leading is made one.
type blobAdapter struct {
	c    *contentrepl.Content
	term func() context.Context // ends when this node's leadership does
}

var errDeposed = errors.New("this node stopped leading during the upload")

func (a blobAdapter) Write(ctx context.Context, r io.Reader) (string, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(a.term(), func() { cancel(errDeposed) })
	defer stop()
	hash, size, err := a.c.Write(ctx, r)
	if err != nil && errors.Is(context.Cause(ctx), errDeposed) {
		return "", 0, fmt.Errorf("%w: %w", webdav.ErrUnavailable, errDeposed)
	}
	return hash, size, err
}

// leaderTerm returns a context that lives while this node leads (already
// done on a follower).
func (s *Server) leaderTerm() context.Context {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.termCtx == nil || s.termCtx.Err() != nil {
		s.termCtx, s.termCancel = context.WithCancel(context.Background())
		if !s.node.IsLeader() {
			s.termCancel()
		}
	}
	return s.termCtx
}

// onLeadership ends the current term's context when leadership is lost;
// the next upload on a new term makes a fresh one.
func (s *Server) onLeadership(leader bool) {
	if leader {
		return
	}
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.termCancel != nil {
		s.termCancel()
	}
}

func (a blobAdapter) Unpin(hash string) { a.c.Unpin(hash) }

func (a blobAdapter) Discard(ctx context.Context, hash string) { a.c.Discard(ctx, hash) }

func (a blobAdapter) Open(ctx context.Context, hash string, size int64) (webdav.ContentReader, error) {
	return a.c.Open(ctx, hash, size)
}

// contentPeers lists the other voters with a URL, the leader first: the
// nodes a push goes to and a fetch asks.
func (s *Server) contentPeers(ctx context.Context) ([]contentrepl.Peer, error) {
	members, err := s.meta.Members(ctx)
	if err != nil {
		return nil, err
	}
	voters, err := s.node.VoterIDs()
	if err != nil {
		return nil, err
	}
	leader, _ := s.node.Leader()
	return votingPeers(members, voters, s.cfg.ID, leader), nil
}

// votingPeers lists the nodes an upload is pushed to: the other current
// Raft voters that have a URL, each once, the leader first. A copy counts
// toward the majority only on a voter: the member table can still name a
// removed node, or a node that joined and is not a voter yet, and an
// acknowledgement from either proves nothing about surviving a failover.
func votingPeers(members []metastore.Member, voters []string, self, leader string) []contentrepl.Peer {
	var peers []contentrepl.Peer
	seen := map[string]bool{self: true}
	for _, m := range members {
		if seen[m.ID] || m.URL == "" || !slices.Contains(voters, m.ID) {
			continue
		}
		seen[m.ID] = true
		p := contentrepl.Peer{ID: m.ID, URL: m.URL}
		if m.ID == leader {
			peers = append([]contentrepl.Peer{p}, peers...)
		} else {
			peers = append(peers, p)
		}
	}
	return peers
}

// quorum is how many nodes must hold an upload's content before it is
// acknowledged: a majority of the Raft voters (contentrepl.Quorum).
func (s *Server) quorum() int {
	return contentrepl.Quorum(s.node.Voters())
}

// release is the state machine's hook for content whose last reference
// went away: delete it now unless an upload has it pinned.
func (s *Server) release(hash string) {
	if _, err := s.blobs.Release(context.Background(), s.fsm, hash); err != nil {
		s.log.Warn().Err(err).Str("hash", hash).Msg("releasing unreferenced content failed; the next sweep retries")
	}
}

// contentChecker presents the content store and its replication as
// verify.ContentChecker.
type contentChecker struct {
	s *content.Store
	r *contentrepl.Content
}

func (c contentChecker) Size(h string) (int64, error) {
	f, err := c.s.Open(h)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size(), nil
}

// Verify re-hashes the object. The store moves a corrupt one to its
// quarantine; the node then lacks referenced content, so it is queued for
// fetching from a peer at once rather than on the next read of the file.
func (c contentChecker) Verify(ctx context.Context, h string, size int64) error {
	err := c.s.Verify(ctx, h)
	if errors.Is(err, content.ErrCorrupt) {
		c.r.Notify(h, size)
	}
	return err
}

func (c contentChecker) Fetching(h string) bool { return c.r.Fetching(h) }
