package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dfs-project/dfs/contentrepl"
	"github.com/dfs-project/dfs/internal/clusterauth"
)

// ForwardedByHeader marks a request one node forwarded to the node it took
// for the leader; its value is the forwarding node's ID. It only counts
// together with the right cluster secret: a node that receives such a
// request and does not lead answers 503 instead of forwarding it again, so
// two nodes that disagree about the leader never bounce a request.
const ForwardedByHeader = "X-Dfs-Forwarded-By"

// JoinRequest is the body of POST /cluster/join.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	URL      string `json:"url"`
}

// JoinResponse is the answer to a join.
type JoinResponse struct {
	Leader string `json:"leader"`
	// AddedVoter is false when the node already was a voter at that address.
	AddedVoter bool `json:"added_voter"`
	// UpdatedMember is false when the member table already held the entry.
	UpdatedMember bool `json:"updated_member"`
}

// RemoveRequest is the body of POST /cluster/remove.
type RemoveRequest struct {
	ID string `json:"id"`
}

// RemoveResponse is the answer to a remove.
type RemoveResponse struct {
	Leader  string `json:"leader"`
	Removed string `json:"removed"`
}

// ReadIndexResponse is the answer of GET /cluster/readindex.
type ReadIndexResponse struct {
	Index uint64 `json:"index"`
}

// BootstrapInfo is the answer of GET /cluster/bootstrap-info.
type BootstrapInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	URL      string `json:"url"`
	HasState bool   `json:"has_state"`
	Leader   string `json:"leader"`
}

// Backlog is content a node still has to fetch.
type Backlog struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// NodeInfo is one node's report on itself (GET /cluster/node).
type NodeInfo struct {
	ID             string  `json:"id"`
	URL            string  `json:"url"`
	Role           string  `json:"role"` // leader, follower, candidate, shutdown
	Leader         string  `json:"leader"`
	Term           uint64  `json:"term"`
	CommitIndex    uint64  `json:"commit_index"`
	AppliedIndex   uint64  `json:"applied_index"`
	ContentBacklog Backlog `json:"content_backlog"`
	// Rebuilding says why the node's metadata store is being reloaded
	// (it lost data, or a snapshot is restored); the node is not ready
	// meanwhile.
	Rebuilding string `json:"rebuilding,omitempty"`
	// Scrub is the node's content scrub report; absent from nodes that
	// predate it.
	Scrub *ScrubStatus `json:"scrub,omitempty"`
}

// ScrubStatus is a node's content scrub report (see docs/scrub.md).
type ScrubStatus struct {
	// Enabled is false when the node runs no scrub passes (--scrub-rate 0).
	Enabled bool `json:"enabled"`
	// Rate is the scrub's cap in bytes per second.
	Rate int64 `json:"rate"`
	// Running is whether a pass is running now.
	Running bool `json:"running"`
	// Passes counts the passes completed since the node started.
	Passes int64 `json:"passes"`
	// LastStart and LastEnd bound the last completed pass.
	LastStart time.Time `json:"last_start,omitzero"`
	LastEnd   time.Time `json:"last_end,omitzero"`
	// LastError is why the last pass stopped early, if it did.
	LastError string `json:"last_error,omitempty"`
	// Last is what the last completed pass found and did.
	Last contentrepl.ScrubStats `json:"last"`
	// Current is the running pass so far.
	Current *contentrepl.ScrubStats `json:"current,omitempty"`
	// Total adds up every pass since the node started, the running one
	// included.
	Total contentrepl.ScrubStats `json:"total"`
	// ReadRepaired and ReadUnrepaired count corrupt content that reads
	// met since start: fetched again from a peer, or not.
	ReadRepaired   int64 `json:"read_repaired"`
	ReadUnrepaired int64 `json:"read_unrepaired"`
}

// ScrubResponse is the answer to POST /cluster/scrub.
type ScrubResponse struct {
	// UntilPass is the pass that covers the request: it is done once the
	// node's Scrub.Passes reaches it.
	UntilPass int64 `json:"until_pass"`
}

// NodeStatus is one node in GET /cluster/status.
type NodeStatus struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Role is leader, follower, candidate or shutdown as the node reports
	// it, or unreachable when it did not answer.
	Role         string `json:"role"`
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is the leader's applied index minus this node's; null when
	// either is unknown.
	Lag            *uint64      `json:"lag"`
	ContentBacklog Backlog      `json:"content_backlog"`
	Rebuilding     string       `json:"rebuilding,omitempty"`
	Scrub          *ScrubStatus `json:"scrub,omitempty"`
	RaftAddr       string       `json:"raft_addr"`
	// Voter is whether the node votes in Raft; false for an entry only
	// the member table holds.
	Voter bool   `json:"voter"`
	Error string `json:"error,omitempty"`
}

// Status is the body of GET /cluster/status.
type Status struct {
	Leader      string `json:"leader"`
	LeaderURL   string `json:"leader_url"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	// PurgingTrees and BuildingCopies are the subtree work the leader has
	// still to do, as the answering node's state has it: deleted trees
	// whose files are not all removed yet (their space is not free yet),
	// and large copies not in place yet.
	PurgingTrees   int          `json:"purging_trees"`
	BuildingCopies int          `json:"building_copies"`
	Nodes          []NodeStatus `json:"nodes"`
}

// errorBody is how cluster endpoints answer failures.
type errorBody struct {
	Error     string `json:"error"`
	Leader    string `json:"leader,omitempty"`
	LeaderURL string `json:"leader_url,omitempty"`
}

// Error is a node's non-2xx answer to a cluster call.
type Error struct {
	StatusCode int
	Message    string
	Leader     string // the leader's ID, when the node named it
	LeaderURL  string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.LeaderURL != "" {
		msg += " (leader " + e.Leader + " at " + e.LeaderURL + ")"
	}
	return msg
}

// Client calls the cluster API of dfs nodes. It sets no timeout of its
// own: bound every call with its context.
type Client struct {
	secret string
	from   string // this node's ID on forwarded calls; empty for tools
	http   *http.Client
}

// NewClient returns a Client that authenticates with secret (empty: only
// the public endpoints work) over rt (nil: http.DefaultTransport).
func NewClient(secret string, rt http.RoundTripper) *Client {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &Client{secret: secret, http: &http.Client{
		Transport: rt,
		// A redirect would drop the secret on another host; never follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Join asks the node at base to add (or update) a member.
func (c *Client) Join(ctx context.Context, base string, req JoinRequest) (JoinResponse, error) {
	var out JoinResponse
	err := c.call(ctx, http.MethodPost, base, "/cluster/join", req, &out, false)
	return out, err
}

// Remove asks the node at base to remove member id from the cluster.
func (c *Client) Remove(ctx context.Context, base, id string) (RemoveResponse, error) {
	var out RemoveResponse
	err := c.call(ctx, http.MethodPost, base, "/cluster/remove", RemoveRequest{ID: id}, &out, false)
	return out, err
}

// ReadIndex asks the leader at base for its read index.
func (c *Client) ReadIndex(ctx context.Context, base string) (uint64, error) {
	var out ReadIndexResponse
	err := c.call(ctx, http.MethodGet, base, "/cluster/readindex", nil, &out, false)
	return out.Index, err
}

// BootstrapInfo asks the node at base who it is and whether it belongs to
// a cluster already.
func (c *Client) BootstrapInfo(ctx context.Context, base string) (BootstrapInfo, error) {
	var out BootstrapInfo
	err := c.call(ctx, http.MethodGet, base, "/cluster/bootstrap-info", nil, &out, false)
	return out, err
}

// Node returns the node at base's report on itself.
func (c *Client) Node(ctx context.Context, base string) (NodeInfo, error) {
	var out NodeInfo
	err := c.call(ctx, http.MethodGet, base, "/cluster/node", nil, &out, false)
	return out, err
}

// Status returns the cluster's status as the node at base sees it.
func (c *Client) Status(ctx context.Context, base string) (Status, error) {
	var out Status
	err := c.call(ctx, http.MethodGet, base, "/cluster/status", nil, &out, false)
	return out, err
}

// Scrub asks the node at base to start a content scrub pass now (it
// needs the cluster secret).
func (c *Client) Scrub(ctx context.Context, base string) (ScrubResponse, error) {
	var out ScrubResponse
	err := c.call(ctx, http.MethodPost, base, "/cluster/scrub", nil, &out, false)
	return out, err
}

// Call sends in (JSON, if not nil) with method to base+path and decodes a
// 2xx answer into out (if not nil), or returns an error wrapping *Error:
// for the endpoints other packages serve beside the cluster API (package
// verify's digests).
func (c *Client) Call(ctx context.Context, method, base, path string, in, out any) error {
	return c.call(ctx, method, base, path, in, out, false)
}

// Stream sends GET base+path and returns the body of a 200 answer, which
// the caller reads and closes; any other answer is an error wrapping
// *Error. For streamed answers (package verify's entry streams).
func (c *Client) Stream(ctx context.Context, base, path string) (io.ReadCloser, error) {
	target := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: GET %s: %w", target, err)
	}
	if c.secret != "" {
		clusterauth.Set(req, c.secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: GET %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, fmt.Errorf("cluster: GET %s: %w", target, readError(resp))
	}
	return resp.Body, nil
}

// call sends in (JSON, if not nil) and decodes a 2xx answer into out, or
// returns *Error. forwarded marks the call as forwarded by this node.
func (c *Client) call(ctx context.Context, method, base, path string, in, out any, forwarded bool) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("cluster: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("cluster: %s %s: %w", method, target, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.secret != "" {
		clusterauth.Set(req, c.secret)
	}
	if forwarded && c.from != "" {
		req.Header.Set(ForwardedByHeader, c.from)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cluster: %s %s: %w", method, target, readError(resp))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("cluster: %s %s: read answer: %w", method, target, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("cluster: %s %s: decode answer: %w", method, target, err)
		}
	}
	return nil
}

// readError turns a non-2xx answer into *Error.
func readError(resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{StatusCode: resp.StatusCode}
	var eb errorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		e.Message, e.Leader, e.LeaderURL = eb.Error, eb.Leader, eb.LeaderURL
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	return e
}

// statusCode returns the HTTP status of a call's error, 0 if it has none
// (the node was not reached).
func statusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}
