package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

// opTimeout bounds the leader's side of a join or remove: a membership
// change and a log entry.
func (c *Cluster) opTimeout() time.Duration { return 2 * c.cfg.CallTimeout }

// forwardTimeout bounds a join or remove a follower relays to the leader.
func (c *Cluster) forwardTimeout() time.Duration { return c.opTimeout() + c.cfg.CallTimeout }

// apiError is a failure with the HTTP status to answer it with.
type apiError struct {
	status int
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// isForwarded reports whether r was forwarded by another node of this
// cluster (the marker only counts with the right secret).
func (c *Cluster) isForwarded(r *http.Request) bool {
	return r.Header.Get(ForwardedByHeader) != "" && c.cfg.Secret != "" && clusterauth.Check(r, c.cfg.Secret) == 0
}

// HandleJoin answers POST /cluster/join (JoinRequest): add or update a
// member, on the leader or relayed to it. It needs the cluster secret:
// mount it behind clusterauth.Require (the node's route table, in package
// server, does).
func (c *Cluster) HandleJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := decodeJSON(r, &req); err != nil {
		c.writeError(w, &apiError{status: http.StatusBadRequest, msg: "bad join request", err: err})
		return
	}
	resp, err := c.join(r.Context(), req, c.isForwarded(r))
	if err != nil {
		c.writeError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

// HandleRemove answers POST /cluster/remove (RemoveRequest): remove a
// member, on the leader or relayed to it. It needs the cluster secret
// (clusterauth.Require).
func (c *Cluster) HandleRemove(w http.ResponseWriter, r *http.Request) {
	var req RemoveRequest
	if err := decodeJSON(r, &req); err != nil {
		c.writeError(w, &apiError{status: http.StatusBadRequest, msg: "bad remove request", err: err})
		return
	}
	resp, err := c.remove(r.Context(), req.ID, c.isForwarded(r))
	if err != nil {
		c.writeError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

// HandleReadIndex answers GET /cluster/readindex on the leader: every
// write committed before the call is at or below the index (421 with the
// leader's URL on a follower). It needs the cluster secret
// (clusterauth.Require).
func (c *Cluster) HandleReadIndex(w http.ResponseWriter, r *http.Request) {
	if !c.raft.IsLeader() {
		id, _ := c.raft.Leader()
		body := errorBody{Error: "not the leader: ask the leader for the read index", Leader: id}
		if id != "" {
			if u, ok := c.memberURL(r.Context(), id); ok {
				body.LeaderURL = u
			}
		}
		WriteJSON(w, http.StatusMisdirectedRequest, body)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.ReadTimeout)
	defer cancel()
	idx, err := c.reads.wait(ctx)
	if err != nil {
		c.writeError(w, &apiError{status: http.StatusServiceUnavailable, msg: "read index", err: err})
		return
	}
	WriteJSON(w, http.StatusOK, ReadIndexResponse{Index: idx})
}

// HandleBootstrapInfo answers GET /cluster/bootstrap-info, which
// --bootstrap-expect polls. It needs the cluster secret
// (clusterauth.Require).
func (c *Cluster) HandleBootstrapInfo(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, c.bootstrapInfo())
}

func (c *Cluster) bootstrapInfo() BootstrapInfo {
	id, _ := c.raft.Leader()
	return BootstrapInfo{ID: c.cfg.ID, RaftAddr: c.raft.Addr(), URL: c.cfg.URL, HasState: c.raft.HasState(), Leader: id}
}

// HandleNode answers GET /cluster/node: this node's report on itself.
// Public.
func (c *Cluster) HandleNode(w http.ResponseWriter, r *http.Request) {
	info, err := c.nodeInfo(r.Context())
	if err != nil {
		c.writeError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, info)
}

// HandleStatus answers GET /cluster/status: the whole cluster as this
// node sees it. Public.
func (c *Cluster) HandleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.CallTimeout+time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		c.writeError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

// join adds or updates a member on the leader, or relays the request to it.
func (c *Cluster) join(ctx context.Context, req JoinRequest, forwarded bool) (JoinResponse, error) {
	req.URL = strings.TrimRight(req.URL, "/")
	if err := validateJoin(req); err != nil {
		return JoinResponse{}, &apiError{status: http.StatusBadRequest, msg: "bad join request", err: err}
	}
	if !c.raft.IsLeader() {
		var out JoinResponse
		err := c.relay(ctx, "/cluster/join", req, &out, forwarded)
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout())
	defer cancel()
	st, err := c.raft.Status(ctx)
	if err != nil {
		return JoinResponse{}, fmt.Errorf("cluster: join %s: %w", req.ID, err)
	}
	out := JoinResponse{Leader: c.cfg.ID}
	current := false
	for _, s := range st.Servers {
		current = current || (s.ID == req.ID && s.Address == req.RaftAddr && s.Suffrage == "Voter")
	}
	if !current {
		// With TLS between nodes, a node whose certificate the cluster CA
		// did not sign would become a voter no one can replicate to.
		if err := c.raft.CheckPeer(ctx, req.RaftAddr); errors.Is(err, replication.ErrPeerTLS) {
			c.log.Error().Err(err).Str("member", req.ID).Str("raft_addr", req.RaftAddr).
				Msg("join refused: the node's Raft transport failed mutual TLS with the cluster CA")
			return out, &apiError{status: http.StatusForbidden,
				msg: "join refused: the Raft transport at " + req.RaftAddr + " failed mutual TLS with the cluster CA (is its certificate signed by the cluster CA, and does it trust that CA?)", err: err}
		} else if err != nil {
			return out, &apiError{status: http.StatusServiceUnavailable,
				msg: "join: the leader cannot reach the Raft transport at " + req.RaftAddr + " yet", err: err}
		}
		// A new voter, or a known one at a new address: raft updates it.
		if err := c.raft.AddVoter(ctx, req.ID, req.RaftAddr); err != nil {
			return out, fmt.Errorf("cluster: join %s: %w", req.ID, err)
		}
		out.AddedVoter = true
	}
	out.UpdatedMember, err = c.putMember(ctx, metastore.Member{ID: req.ID, URL: req.URL, RaftAddr: req.RaftAddr})
	if err != nil {
		return out, fmt.Errorf("cluster: join %s: %w", req.ID, err)
	}
	if out.AddedVoter || out.UpdatedMember {
		c.log.Info().Str("member", req.ID).Str("url", req.URL).Str("raft_addr", req.RaftAddr).
			Bool("added_voter", out.AddedVoter).Msg("member joined")
	}
	return out, nil
}

func validateJoin(req JoinRequest) error {
	if req.ID == "" {
		return errors.New("no id")
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return fmt.Errorf("raft_addr %q: %w", req.RaftAddr, err)
	}
	return checkBaseURL(req.URL)
}

// putMember makes the member table hold m, proposing an entry only if it
// does not already. Leader only.
func (c *Cluster) putMember(ctx context.Context, m metastore.Member) (bool, error) {
	// After the read index (a barrier) the table holds every committed entry.
	if _, err := c.raft.ReadIndex(ctx); err != nil {
		return false, err
	}
	ms, err := c.members.Members(ctx)
	if err != nil {
		return false, fmt.Errorf("read member table: %w", err)
	}
	for _, have := range ms {
		if have == m {
			return false, nil
		}
	}
	return true, c.propose(ctx, &fsm.Command{Op: fsm.OpMember, Member: &m})
}

func (c *Cluster) propose(ctx context.Context, cmd *fsm.Command) error {
	res, err := c.raft.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	return res.Err()
}

// remove takes a member out of Raft and the member table on the leader, or
// relays the request to it.
func (c *Cluster) remove(ctx context.Context, id string, forwarded bool) (RemoveResponse, error) {
	if id == "" {
		return RemoveResponse{}, &apiError{status: http.StatusBadRequest, msg: "bad remove request: no id"}
	}
	if !c.raft.IsLeader() {
		var out RemoveResponse
		err := c.relay(ctx, "/cluster/remove", RemoveRequest{ID: id}, &out, forwarded)
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout())
	defer cancel()
	if _, err := c.raft.ReadIndex(ctx); err != nil {
		return RemoveResponse{}, fmt.Errorf("cluster: remove %s: %w", id, err)
	}
	st, err := c.raft.Status(ctx)
	if err != nil {
		return RemoveResponse{}, fmt.Errorf("cluster: remove %s: %w", id, err)
	}
	ms, err := c.members.Members(ctx)
	if err != nil {
		return RemoveResponse{}, fmt.Errorf("cluster: remove %s: read member table: %w", id, err)
	}
	inRaft, voters, isVoter := false, 0, false
	for _, s := range st.Servers {
		if s.Suffrage == "Voter" {
			voters++
		}
		if s.ID == id {
			inRaft, isVoter = true, s.Suffrage == "Voter"
		}
	}
	inTable := false
	for _, m := range ms {
		inTable = inTable || m.ID == id
	}
	if !inRaft && !inTable {
		return RemoveResponse{}, &apiError{status: http.StatusNotFound, msg: "no member " + id}
	}
	if isVoter && voters == 1 {
		return RemoveResponse{}, &apiError{status: http.StatusConflict, msg: id + " is the only voter; removing it would end the cluster"}
	}
	dropEntry := func() error {
		if !inTable {
			return nil
		}
		return c.propose(ctx, &fsm.Command{Op: fsm.OpRemoveMember, Member: &metastore.Member{ID: id}})
	}
	dropServer := func() error {
		if !inRaft {
			return nil
		}
		return c.raft.RemoveServer(ctx, id)
	}
	// The leader removing itself steps down once the change commits, so
	// it drops its member entry first, while it can still propose.
	steps := []func() error{dropServer, dropEntry}
	if id == c.cfg.ID {
		steps = []func() error{dropEntry, dropServer}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return RemoveResponse{}, fmt.Errorf("cluster: remove %s: %w", id, err)
		}
	}
	c.log.Info().Str("member", id).Msg("member removed")
	return RemoveResponse{Leader: c.cfg.ID, Removed: id}, nil
}

// Remove takes the member id out of Raft and the member table, through the
// leader (relayed there from a follower): what POST /cluster/remove does.
func (c *Cluster) Remove(ctx context.Context, id string) (RemoveResponse, error) {
	return c.remove(ctx, id, false)
}

// relay sends a join or remove on to the leader. A request that was itself
// forwarded is never forwarded again.
func (c *Cluster) relay(ctx context.Context, path string, in, out any, forwarded bool) error {
	if forwarded {
		return &apiError{status: http.StatusServiceUnavailable, msg: "this node was forwarded the request as leader but no longer leads; retry"}
	}
	if !c.raft.HasState() {
		return &apiError{status: http.StatusServiceUnavailable, msg: "this node is not a member of a cluster yet; ask another node"}
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.LeaderWait)
	id, u, err := c.LeaderURL(wctx)
	cancel()
	if err != nil {
		return err
	}
	if id == c.cfg.ID {
		return &apiError{status: http.StatusServiceUnavailable, msg: "leadership is changing; retry"}
	}
	cctx, cancel := context.WithTimeout(ctx, c.forwardTimeout())
	defer cancel()
	if err := c.client.call(cctx, http.MethodPost, u, path, in, out, true); err != nil {
		if statusCode(err) == 0 {
			return &apiError{status: http.StatusServiceUnavailable, msg: "the leader " + id + " at " + u + " is unreachable", err: err}
		}
		return err
	}
	return nil
}

// memberURL looks a member's URL up in the member table.
func (c *Cluster) memberURL(ctx context.Context, id string) (string, bool) {
	ms, err := c.members.Members(ctx)
	if err != nil {
		return "", false
	}
	for _, m := range ms {
		if m.ID == id && m.URL != "" {
			return strings.TrimRight(m.URL, "/"), true
		}
	}
	return "", false
}

// nodeInfo is this node's report on itself.
func (c *Cluster) nodeInfo(ctx context.Context) (NodeInfo, error) {
	st, err := c.raft.Status(ctx)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: node status: %w", err)
	}
	return NodeInfo{
		ID:             c.cfg.ID,
		URL:            c.cfg.URL,
		Role:           strings.ToLower(st.Role),
		Leader:         st.LeaderID,
		Term:           st.Term,
		CommitIndex:    st.CommitIndex,
		AppliedIndex:   st.AppliedIndex,
		ContentBacklog: c.ContentBacklog(),
		Rebuilding:     st.Rebuilding,
		Scrub:          c.scrubStatus(),
	}, nil
}

// writeError answers err with its status and a JSON body; 503s carry
// Retry-After.
func (c *Cluster) writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	body := errorBody{Error: err.Error()}
	var ae *apiError
	var ce *Error
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case errors.As(err, &ce):
		// The leader's answer, relayed.
		status, body.Error, body.Leader, body.LeaderURL = ce.StatusCode, ce.Message, ce.Leader, ce.LeaderURL
	case errors.Is(err, errNoLeader), errors.Is(err, replication.ErrNotLeader),
		errors.Is(err, replication.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 {
		c.log.Warn().Err(err).Int("status", status).Msg("cluster request failed")
	}
	WriteJSON(w, status, body)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode JSON body: %w", err)
	}
	return nil
}

// WriteJSON answers with v as indented JSON, never cached: the node API's
// answers describe the moment they were asked.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
