package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/fsm"
)

// The leader's snapshot for a node that cannot rebuild its own store: the
// state machine (fsm.CheckStore) rebuilds a metadata store that lost data
// or holds another history from the node's newest snapshot and log; when
// those cannot (the log was compacted past what the store lost, the
// snapshot is gone or unreadable) it asks its fsm.SnapshotSource, which is
// leaderSnapshots: GET /cluster/snapshot on the leader, served by
// handleSnapshot.

// handleSnapshot answers GET /cluster/snapshot on the leader: a snapshot
// of its metadata in the state machine's portable format (gzip), streamed
// as it is written, never held in memory. A follower answers 421, as for
// the read index: its state may lag the leader's. It needs the cluster
// secret (the route table).
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	if !s.node.IsLeader() {
		id, _ := s.node.Leader()
		cluster.WriteJSON(w, http.StatusMisdirectedRequest, map[string]string{
			"error": "not the leader: ask the leader for its snapshot", "leader": id})
		return
	}
	cw := &countingWriter{w: w}
	w.Header().Set("Content-Type", "application/gzip")
	info, err := s.fsm.WriteSnapshot(r.Context(), cw)
	switch {
	case err == nil:
		s.log.Info().Str("remote", r.RemoteAddr).Uint64("index", info.Index).Int64("inodes", info.Inodes).
			Int64("bytes", cw.n).Msg("served a snapshot of the metadata to a node rebuilding its store")
	case cw.n == 0:
		s.log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("cannot take a snapshot of the metadata for a node rebuilding its store")
		w.Header().Del("Content-Type")
		w.Header().Set("Retry-After", "1")
		cluster.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "snapshot: " + err.Error()})
	default:
		// Part of the stream is out: cut the connection, so the reader
		// gets an error rather than a clean end (its restore would refuse
		// the truncated stream anyway: no end record, no gzip trailer).
		s.log.Warn().Err(err).Str("remote", r.RemoteAddr).Int64("bytes", cw.n).Msg("snapshot stream to a node rebuilding its store cut short")
		panic(http.ErrAbortHandler)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// leaderSnapshots is the node's fsm.SnapshotSource: the leader's snapshot
// over GET /cluster/snapshot.
type leaderSnapshots struct{ s *Server }

var _ fsm.SnapshotSource = leaderSnapshots{}

// Restored implements fsm.SnapshotSource: the node snapshots the state it
// restored, so that a restart finds a snapshot to start from rather than a
// log whose first entries it never had.
func (l leaderSnapshots) Restored(index uint64) {
	s := l.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.node.Snapshot(ctx); err != nil {
		s.log.Warn().Err(err).Uint64("index", index).Msg("cannot snapshot the state restored from the leader; a restart drops the log and asks the leader again")
		return
	}
	s.log.Info().Uint64("index", index).Msg("snapshotted the state restored from the leader")
}

// errLeadsItself: a leader whose own history cannot rebuild its store has
// no one to ask; it stays not ready (see docs/operations.md).
var errLeadsItself = errors.New("this node leads: there is no leader to fetch a snapshot from")

// FetchSnapshot implements fsm.SnapshotSource. The state machine bounds
// it with its fetch timeout; finding the leader takes at most LeaderWait
// of that.
func (l leaderSnapshots) FetchSnapshot(ctx context.Context) (io.ReadCloser, error) {
	s := l.s
	wait := s.cfg.LeaderWait
	if wait <= 0 {
		wait = 3 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	id, u, err := s.cluster.LeaderURL(wctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("server: fetch the leader's snapshot: %w", err)
	}
	if id == s.cfg.ID {
		return nil, fmt.Errorf("server: fetch the leader's snapshot: %w", errLeadsItself)
	}
	s.log.Info().Str("leader", id).Str("url", u).Msg("fetching a snapshot of the metadata from the leader")
	rc, err := s.cluster.Client().Stream(ctx, u, "/cluster/snapshot")
	if err != nil {
		return nil, fmt.Errorf("server: fetch the leader's snapshot: %w", err)
	}
	return rc, nil
}
