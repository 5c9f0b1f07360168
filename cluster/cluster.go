// Package cluster owns how dfs nodes find, join and talk to each other over
// HTTP: forming a cluster (--bootstrap, --join, --bootstrap-expect with
// --peers), registering every node's URL in the replicated member table,
// removing nodes, forwarding writes from followers to the leader, making
// reads see every acknowledged write (read index, CatchUp), reporting the
// cluster's status, and handing leadership over on shutdown. Its Client
// makes the cluster API's calls, for this package, for tools, and for the
// packages that serve endpoints beside it (package verify compares
// replicas over GET /cluster/digest).
//
// Raft itself (package replication) talks over its own TCP transport; this
// package is everything nodes say to each other over the HTTP listener
// they already have for WebDAV. It drives this node's Raft member through
// the Raft interface (leadership, log, membership), which
// replication.Node implements and the server wires in. Every internal
// endpoint and call carries the cluster secret (package clusterauth); only
// the read-only status endpoints are public.
//
// # Internal API
//
// This package's endpoints, which package server mounts (its route table,
// server/routes.go, lists every /cluster/ route of a node with its method,
// access and purpose):
//
//	POST /cluster/join            {id, raft_addr, url}: add or update a member (any node; forwarded to the leader)
//	POST /cluster/remove          {id}: remove a member (any node; forwarded to the leader)
//	GET  /cluster/readindex       leader only: {"index": N}, every write committed before the call is at or below N
//	GET  /cluster/bootstrap-info  {id, raft_addr, url, has_state, leader}, for --bootstrap-expect
//	GET  /cluster/node            public: this node's own id, role, applied index, content backlog, scrub report
//	GET  /cluster/status          public: the whole cluster as this node sees it
//
// The Cluster serves them as handler methods (HandleJoin, HandleRemove,
// ...); the route table puts the cluster secret in front of all but the
// public two. Other packages serve the rest of /cluster/ on the same
// listener, all listed in that table: replica verification's
// /cluster/digest (package verify), content replication's
// /cluster/content (package contentrepl), the scrub's /cluster/scrub and
// the leader's metadata snapshot /cluster/snapshot, which a node whose own
// snapshot and log cannot rebuild its store restores (package server).
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
)

// Consistency is how a node serves reads (GET, HEAD, PROPFIND).
type Consistency string

const (
	// ReadLeader makes every read wait until the node has applied what the
	// leader had committed when the read arrived: linearizable reads,
	// read-your-writes from any node. The default.
	ReadLeader Consistency = "leader"
	// ReadLocal serves reads from whatever the node has applied: fastest,
	// possibly stale by the replication lag.
	ReadLocal Consistency = "local"
)

// ParseConsistency parses --read-consistency; empty means ReadLeader.
func ParseConsistency(s string) (Consistency, error) {
	switch Consistency(s) {
	case "", ReadLeader:
		return ReadLeader, nil
	case ReadLocal:
		return ReadLocal, nil
	}
	return "", fmt.Errorf("cluster: read consistency %q: want %q or %q", s, ReadLeader, ReadLocal)
}

// MemberReader reads the replicated member table (metastore.Reader has it).
type MemberReader interface {
	Members(ctx context.Context) ([]metastore.Member, error)
}

// BacklogFunc reports content this node still has to fetch: how many files
// and how many bytes. The content replication engine provides it.
type BacklogFunc func() (files int, bytes int64)

// Config configures a Cluster. Zero durations take the defaults shown.
type Config struct {
	// ID and URL identify this node: its Raft server ID and the HTTP base
	// URL peers and clients reach it at.
	ID  string
	URL string
	// Raft is this node's Raft member (a *replication.Node).
	Raft Raft
	// Members reads the replicated member table.
	Members MemberReader
	// Secret authenticates internal calls both ways. Empty: this node
	// refuses every internal call and cannot form a multi-node cluster.
	Secret string
	// TLS configures calls to other nodes (nil: Go's defaults): the
	// cluster CA when nodes talk TLS to each other.
	TLS *tls.Config

	// Join lists HTTP base URLs of existing members (--join).
	Join []string
	// BootstrapExpect and Peers form a new cluster of BootstrapExpect nodes
	// from the HTTP base URLs in Peers, which may include this node.
	BootstrapExpect int
	Peers           []string

	// ReadConsistency is ReadLeader (default) or ReadLocal.
	ReadConsistency Consistency
	// LeaderWait bounds how long a request waits for a leader (and its
	// URL) to be known before it gets 503. Default 3s.
	LeaderWait time.Duration
	// ReadTimeout bounds how long a read waits for the read index and for
	// this node to apply it before it gets 503. Default 5s.
	ReadTimeout time.Duration
	// CallTimeout bounds one internal call (join, status of a peer, ...).
	// Default 5s.
	CallTimeout time.Duration
	// ProxyHeaderTimeout bounds how long the leader may take to answer a
	// forwarded request once its body has been sent. There is no total
	// timeout: uploads may take as long as they take. Default 2m.
	ProxyHeaderTimeout time.Duration
	// TransferTimeout bounds the leadership transfer on shutdown. Default 5s.
	TransferTimeout time.Duration

	// Backlog reports the content backlog in status; nil reports zero.
	Backlog BacklogFunc
	// Scrub reports the node's content scrub in status; nil reports none.
	Scrub func() *ScrubStatus

	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LeaderWait, 3*time.Second)
	def(&c.ReadTimeout, 5*time.Second)
	def(&c.CallTimeout, 5*time.Second)
	def(&c.ProxyHeaderTimeout, 2*time.Minute)
	def(&c.TransferTimeout, 5*time.Second)
	if c.ReadConsistency == "" {
		c.ReadConsistency = ReadLeader
	}
}

// Validate checks a Config's cluster-forming options for contradictions
// (New also needs ID, URL, Raft and Members).
func (c *Config) Validate() error {
	if _, err := ParseConsistency(string(c.ReadConsistency)); err != nil {
		return err
	}
	for _, u := range append(slices.Clone(c.Join), c.Peers...) {
		if err := checkBaseURL(u); err != nil {
			return err
		}
	}
	switch {
	case c.BootstrapExpect < 0:
		return fmt.Errorf("cluster: --bootstrap-expect %d: want a positive number of nodes", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && len(c.Join) > 0:
		return errors.New("cluster: --join and --bootstrap-expect exclude each other: join an existing cluster, or form a new one")
	case c.BootstrapExpect > 0 && len(c.Peers) == 0:
		return errors.New("cluster: --bootstrap-expect needs --peers, the HTTP URLs of the nodes that form the cluster")
	case c.BootstrapExpect == 0 && len(c.Peers) > 0:
		return errors.New("cluster: --peers is only used with --bootstrap-expect")
	}
	if c.BootstrapExpect > 0 {
		if n := len(UniqueURLs(c.Peers)); n < c.BootstrapExpect-1 || n > c.BootstrapExpect {
			return fmt.Errorf("cluster: --peers lists %d distinct URLs but --bootstrap-expect is %d: list all %d nodes (this one may be included)",
				n, c.BootstrapExpect, c.BootstrapExpect)
		}
	}
	if err := clusterauth.Validate(c.Secret); err != nil {
		return fmt.Errorf("cluster: --cluster-secret: %w", err)
	}
	if (len(c.Join) > 0 || c.BootstrapExpect > 0) && c.Secret == "" {
		return errors.New("cluster: --join and --bootstrap-expect need --cluster-secret (DFS_CLUSTER_SECRET), the same on every node")
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("cluster: node URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cluster: node URL %q: want http://host:port or https://host:port", s)
	}
	return nil
}

// UniqueURLs drops repeated node URLs (and trailing slashes), keeping the
// first occurrence of each.
func UniqueURLs(list []string) []string {
	var out []string
	for _, s := range list {
		s = strings.TrimRight(s, "/")
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Cluster is this node's side of the cluster's HTTP conversation. Create
// it with New, mount its handlers (HandleJoin, ...; package server's route
// table) and wrap WebDAV in Forward and Consistent, Start it once the HTTP
// listener serves, and Close it on shutdown.
type Cluster struct {
	cfg     Config
	log     zerolog.Logger
	raft    Raft
	members MemberReader
	tr      *http.Transport
	client  *Client
	proxy   *httputil.ReverseProxy
	reads   *batcher
	backlog atomic.Pointer[BacklogFunc]

	// lastURLs holds every member's URL as LeaderURL last read it from
	// the member table, for when the table lacks the leader's entry.
	lastURLs sync.Map // member ID -> URL

	ctx       context.Context // ends on Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
}

// New returns a Cluster for one node. It starts nothing: see Start.
func New(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if cfg.ID == "" || cfg.URL == "" || cfg.Raft == nil || cfg.Members == nil {
		return nil, errors.New("cluster: Config needs ID, URL, Raft and Members")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	cfg.Join, cfg.Peers = UniqueURLs(cfg.Join), UniqueURLs(cfg.Peers)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg:     cfg,
		log:     cfg.Log.With().Str("component", "cluster").Logger(),
		raft:    cfg.Raft,
		members: cfg.Members,
		ctx:     ctx,
		cancel:  cancel,
	}
	c.tr = &http.Transport{
		// Internal calls go straight to the peer, never through an HTTP
		// proxy from the environment.
		Proxy:                 nil,
		TLSClientConfig:       cfg.TLS,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.ProxyHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	c.client = NewClient(cfg.Secret, c.tr)
	c.client.from = cfg.ID
	c.proxy = c.newProxy()
	c.reads = newBatcher(ctx, cfg.ReadTimeout, c.fetchReadIndex)
	if cfg.Backlog != nil {
		c.SetBacklog(cfg.Backlog)
	}
	if cfg.Secret == "" {
		c.log.Warn().Msg("no --cluster-secret: this node refuses every internal call (join, remove, read index), so no other node can join it")
	}
	return c, nil
}

// SetBacklog installs the content backlog reporter shown in status.
func (c *Cluster) SetBacklog(f BacklogFunc) { c.backlog.Store(&f) }

// ContentBacklog is the content this node still has to fetch, as status
// reports it.
func (c *Cluster) ContentBacklog() Backlog {
	f := c.backlog.Load()
	if f == nil || *f == nil {
		return Backlog{}
	}
	files, bytes := (*f)()
	return Backlog{Files: files, Bytes: bytes}
}

// Start runs the background work: forming or joining the cluster as
// configured, registering this node's URL in the member table, and, while
// this node leads, keeping its own member entry current. Call it once the
// HTTP listener serves (peers poll it while the cluster forms).
func (c *Cluster) Start() {
	c.startOnce.Do(func() {
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			c.form(c.ctx)
		}()
		go func() {
			defer c.wg.Done()
			c.leaderLoop(c.ctx)
		}()
	})
}

// Close stops the background work and drops idle connections. It does not
// transfer leadership: see TransferLeadership.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
		c.tr.CloseIdleConnections()
	})
}

// Members returns this node's copy of the replicated member table.
func (c *Cluster) Members(ctx context.Context) ([]metastore.Member, error) {
	ms, err := c.members.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: read member table: %w", err)
	}
	return ms, nil
}

// Client returns the client this node uses for internal calls.
func (c *Cluster) Client() *Client { return c.client }

// errNoLeader is wrapped when no leader, or no URL for it, is known in time.
var errNoLeader = errors.New("cluster: no leader known")

// LeaderURL waits (until ctx ends) for a leader whose URL the member table
// knows, and returns its ID and URL. When this node leads, that is its own.
// A member table that lacks the leader's entry (this node's metadata store
// lost its data and is being rebuilt, from the leader's snapshot if need
// be) falls back to the URL last read for that leader.
func (c *Cluster) LeaderURL(ctx context.Context) (id, u string, err error) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var why string
	for {
		id, _ = c.raft.Leader()
		switch {
		case id == "":
			why = "no leader elected"
		case id == c.cfg.ID:
			return id, c.cfg.URL, nil
		default:
			ms, err := c.members.Members(ctx)
			if err != nil && ctx.Err() == nil {
				return "", "", fmt.Errorf("cluster: read member table: %w", err)
			}
			for _, m := range ms {
				if m.URL != "" {
					c.lastURLs.Store(m.ID, strings.TrimRight(m.URL, "/"))
				}
			}
			if u, ok := c.lastURLs.Load(id); ok {
				return id, u.(string), nil
			}
			why = "leader " + id + " has no URL in the member table yet"
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("%w: %s", errNoLeader, why)
		case <-t.C:
		}
	}
}

// TransferLeadership hands leadership to another voter if this node leads
// and has one, waiting at most TransferTimeout. Call it before shutting a
// leader down, so the cluster does not wait an election timeout for the
// next leader. A follower or a single node returns nil at once.
func (c *Cluster) TransferLeadership(ctx context.Context) error {
	if !c.raft.IsLeader() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.TransferTimeout)
	defer cancel()
	st, err := c.raft.Status(ctx)
	if err != nil {
		return fmt.Errorf("cluster: leadership transfer: %w", err)
	}
	others := 0
	for _, s := range st.Servers {
		if s.ID != c.cfg.ID && s.Suffrage == "Voter" {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	start := time.Now()
	if err := c.raft.TransferLeadership(ctx); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	id, _ := c.raft.Leader()
	c.log.Info().Str("new_leader", id).Dur("took", time.Since(start)).Msg("handed leadership over")
	return nil
}
