package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

// handleHealthz answers GET /healthz: the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	cluster.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 only when the node can serve: its stores answer,
// it knows a leader, and it has applied what the leader had committed.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	problems := s.readiness(ctx)
	if len(problems) > 0 {
		cluster.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "problems": problems})
		return
	}
	cluster.WriteJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// readyCatchUpGrace is how long /readyz lets a follower take to apply the
// leader's read index before it counts as catching up.
const readyCatchUpGrace = time.Second

func (s *Server) readiness(ctx context.Context) []string {
	var problems []string
	if why := s.fsm.Rebuilding(); why != "" {
		problems = append(problems, why)
	}
	applied, err := s.meta.AppliedIndex(ctx)
	if err != nil {
		problems = append(problems, "metadata store: "+err.Error())
	}
	st, serr := s.node.Status(ctx)
	if serr != nil {
		problems = append(problems, "raft: "+serr.Error())
	}
	if st.LeaderID == "" {
		problems = append(problems, "no known leader")
	}
	// Compare Raft's applied index with its commit index, not the
	// metastore's: the metastore only counts commands, while the commit
	// index also counts the no-op every new leader appends and barriers,
	// which never reach the FSM. After any restart the log ends with such
	// entries, so applied (metastore) < commit would hold forever.
	// Entries committed a moment ago are normal under writes: allow the
	// same grace as below before calling the node behind.
	if serr == nil && st.RaftAppliedIndex < st.CommitIndex {
		wctx, wcancel := context.WithTimeout(ctx, readyCatchUpGrace)
		werr := s.node.WaitRaftApplied(wctx, st.CommitIndex)
		wcancel()
		if werr != nil {
			problems = append(problems, fmt.Sprintf("catching up: applied %d of %d (metastore at %d)",
				st.RaftAppliedIndex, st.CommitIndex, applied))
		}
	}
	// A follower's commit index only covers the entries it has received:
	// a node that joins or comes back far behind gets the log in batches,
	// and after each batch its applied index equals its commit index. Only
	// the leader knows what is committed, so a follower compares its
	// metastore with the leader's read index (the same index space).
	if err == nil && serr == nil && st.LeaderID != "" && !s.node.IsLeader() {
		idx, rerr := s.cluster.ReadIndex(ctx)
		switch {
		case rerr != nil:
			problems = append(problems, "cannot learn the leader's read index: "+rerr.Error())
		case applied < idx:
			// Under a steady stream of writes the read index is a few
			// entries ahead of what even a healthy follower has applied at
			// that instant: give it a moment to apply them, as a read
			// would, before calling it behind. Without this, the fault
			// suite saw followers of a busy cluster flap to not-ready
			// on most probes (and an orchestrator would take them out of
			// service) although each was milliseconds behind.
			wctx, wcancel := context.WithTimeout(ctx, readyCatchUpGrace)
			werr := s.node.WaitApplied(wctx, idx)
			wcancel()
			if werr != nil {
				if now, aerr := s.meta.AppliedIndex(ctx); aerr == nil {
					applied = now
				}
				problems = append(problems, fmt.Sprintf("catching up with the leader: metastore at %d of the leader's %d", applied, idx))
			}
		}
	}
	// Every voter must have registered its URL: without them this node can
	// neither forward writes to the leader nor push an upload to a
	// majority, so a write would get 503 right after the node said ready.
	if err == nil && serr == nil {
		if missing, merr := s.unregisteredVoters(ctx, st.Servers); merr != nil {
			problems = append(problems, "members: "+merr.Error())
		} else if len(missing) > 0 {
			problems = append(problems, "waiting for voters to register their URLs: "+strings.Join(missing, ", "))
		}
	}
	// A new cluster has no root until its first leader has proposed it;
	// until then every write would fail with 409.
	if err == nil {
		if _, rerr := s.meta.Get(ctx, metastore.RootID); rerr != nil {
			problems = append(problems, "no root collection yet: "+rerr.Error())
		}
	}
	// A stat, not a walk: /readyz is polled every few seconds and the
	// content store may hold millions of objects.
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "content", "objects")); err != nil {
		problems = append(problems, "content store: "+err.Error())
	}
	if !s.content.CaughtUp() {
		files, bytes := s.content.Backlog()
		problems = append(problems, fmt.Sprintf("fetching content from peers: %d files, %d bytes to go", files, bytes))
	}
	return problems
}

// unregisteredVoters lists the voters of the Raft configuration that have
// no URL in the member table yet.
func (s *Server) unregisteredVoters(ctx context.Context, servers []replication.Server) ([]string, error) {
	members, err := s.meta.Members(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(members))
	for _, m := range members {
		if m.URL != "" {
			known[m.ID] = true
		}
	}
	var missing []string
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter.String() && !known[srv.ID] {
			missing = append(missing, srv.ID)
		}
	}
	return missing, nil
}
