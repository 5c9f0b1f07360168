package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

// This file is the unit tests' stand-in for a node's Raft member: a
// cluster.Raft whose leader, applied index, read index and membership the
// test sets, and which records what the Cluster asked of it. With it the
// forwarding, read consistency and join tests run a Cluster behind an
// httptest server, without Raft or a dfs server.

const (
	unitSecret = "unit-test-secret"
	selfID     = "n1"
	selfAddr   = "127.0.0.1:7001"
)

// fakeRaft implements cluster.Raft for node selfID.
type fakeRaft struct {
	members *fakeMembers

	mu       sync.Mutex
	leader   string // the leader's ID; "" when none is known
	hasState bool
	servers  []replication.Server
	applied  uint64
	changed  chan struct{} // closed (and replaced) whenever applied moves
	// readIndex answers ReadIndex on the leader; nil answers the applied
	// index.
	readIndex func(ctx context.Context) (uint64, error)
	// checkPeer and addVoter are what CheckPeer and AddVoter return.
	checkPeer, addVoter error
	// behind makes LeaderReady fail: a leader still applying its
	// predecessor's entries.
	behind bool

	// What the Cluster asked.
	readIndexCalls int
	waited         []uint64 // WaitApplied's indexes
	checked        []string // CheckPeer's addresses
	added          []replication.Server
	proposed       []fsm.Command
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{
		members:  &fakeMembers{},
		hasState: true,
		servers:  []replication.Server{{ID: selfID, Address: selfAddr, Suffrage: "Voter"}},
		changed:  make(chan struct{}),
	}
}

func (f *fakeRaft) setLeader(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = id
}

func (f *fakeRaft) setReadIndex(ri func(context.Context) (uint64, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readIndex = ri
}

// apply moves the applied index to i.
func (f *fakeRaft) apply(i uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = i
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeRaft) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader == selfID
}

func (f *fakeRaft) LeaderReady(ctx context.Context) error {
	f.mu.Lock()
	leader, behind := f.leader, f.behind
	f.mu.Unlock()
	switch {
	case leader != selfID:
		return replication.ErrNotLeader
	case behind:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeRaft) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader == "" {
		return "", ""
	}
	return f.leader, f.leader + ".raft:7000"
}

func (f *fakeRaft) ReadIndex(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	f.readIndexCalls++
	ri, leads, applied := f.readIndex, f.leader == selfID, f.applied
	f.mu.Unlock()
	switch {
	case !leads:
		return 0, replication.ErrNotLeader
	case ri != nil:
		return ri(ctx)
	}
	return applied, nil
}

func (f *fakeRaft) WaitApplied(ctx context.Context, index uint64) error {
	f.mu.Lock()
	f.waited = append(f.waited, index)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		applied, changed := f.applied, f.changed
		f.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (f *fakeRaft) Propose(_ context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader != selfID {
		return nil, replication.ErrNotLeader
	}
	f.proposed = append(f.proposed, *cmd)
	switch cmd.Op {
	case fsm.OpMember:
		f.members.put(*cmd.Member)
	case fsm.OpRemoveMember:
		f.members.remove(cmd.Member.ID)
	}
	return &fsm.Result{}, nil
}

func (f *fakeRaft) Addr() string { return selfAddr }

func (f *fakeRaft) HasState() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hasState
}

func (f *fakeRaft) Status(context.Context) (replication.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := "Follower"
	if f.leader == selfID {
		role = "Leader"
	}
	return replication.Status{ID: selfID, Role: role, LeaderID: f.leader, Term: 3,
		AppliedIndex: f.applied, Servers: slices.Clone(f.servers)}, nil
}

func (f *fakeRaft) BootstrapWith(context.Context, []replication.Server) error {
	return replication.ErrHasState
}

func (f *fakeRaft) CheckPeer(_ context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, addr)
	return f.checkPeer
}

func (f *fakeRaft) AddVoter(_ context.Context, id, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addVoter != nil {
		return f.addVoter
	}
	s := replication.Server{ID: id, Address: addr, Suffrage: "Voter"}
	f.added = append(f.added, s)
	f.servers = slices.DeleteFunc(f.servers, func(o replication.Server) bool { return o.ID == id })
	f.servers = append(f.servers, s)
	return nil
}

func (f *fakeRaft) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = slices.DeleteFunc(f.servers, func(o replication.Server) bool { return o.ID == id })
	return nil
}

func (f *fakeRaft) TransferLeadership(context.Context) error { return errors.New("fake: no transfer") }

// asked returns copies of what the Cluster asked so far.
func (f *fakeRaft) asked() (readIndexCalls int, waited []uint64, checked []string, added []replication.Server, proposed []fsm.Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readIndexCalls, slices.Clone(f.waited), slices.Clone(f.checked), slices.Clone(f.added), slices.Clone(f.proposed)
}

var _ cluster.Raft = (*fakeRaft)(nil)

// fakeMembers is the member table.
type fakeMembers struct {
	mu sync.Mutex
	ms []metastore.Member
}

func (m *fakeMembers) Members(context.Context) ([]metastore.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ms), nil
}

func (m *fakeMembers) put(mb metastore.Member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ms = slices.DeleteFunc(m.ms, func(o metastore.Member) bool { return o.ID == mb.ID })
	m.ms = append(m.ms, mb)
	slices.SortFunc(m.ms, func(a, b metastore.Member) int { return strings.Compare(a.ID, b.ID) })
}

func (m *fakeMembers) remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ms = slices.DeleteFunc(m.ms, func(o metastore.Member) bool { return o.ID == id })
}

// Short waits: a test that waits for a leader or a read index that never
// comes is over quickly.
const (
	unitLeaderWait  = 200 * time.Millisecond
	unitReadTimeout = 400 * time.Millisecond
)

// newUnitCluster returns the Cluster of node selfID on f, not started
// (nothing in these tests needs the background loops), closed when the
// test ends. edit, if not nil, changes its configuration first.
func newUnitCluster(t *testing.T, f *fakeRaft, edit func(*cluster.Config)) *cluster.Cluster {
	t.Helper()
	cfg := cluster.Config{
		ID:          selfID,
		URL:         "http://" + selfID + ".invalid:8080",
		Raft:        f,
		Members:     f.members,
		Secret:      unitSecret,
		LeaderWait:  unitLeaderWait,
		ReadTimeout: unitReadTimeout,
		CallTimeout: 2 * time.Second,
		Log:         zerolog.Nop(),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// serve runs h behind an httptest server closed when the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// deadURL is the base URL of a server that has stopped: nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// answer is an HTTP answer as a test checks it.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request with the given headers and returns the answer.
func do(t *testing.T, method, u, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, u, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// withSecret is a header set carrying the cluster secret, plus kv pairs.
func withSecret(kv ...string) map[string]string {
	h := map[string]string{clusterauth.Header: unitSecret}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// errorOf decodes a cluster endpoint's JSON error body.
func errorOf(t *testing.T, a answer) (msg, leader, leaderURL string) {
	t.Helper()
	var eb struct {
		Error     string `json:"error"`
		Leader    string `json:"leader"`
		LeaderURL string `json:"leader_url"`
	}
	if err := json.Unmarshal([]byte(a.body), &eb); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return eb.Error, eb.Leader, eb.LeaderURL
}
