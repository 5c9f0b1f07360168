// Package server assembles one dfs node: the metadata store (Redis or the
// embedded bbolt store), the content store, the Raft node with its state
// machine, and the HTTP listener that serves WebDAV beside the node's own
// API (/healthz, /readyz, /metrics for Prometheus, and the cluster API of
// package cluster). It owns the node's lifecycle: opening everything in
// order, serving, and shutting down cleanly (a leader hands leadership over
// first).
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/contentrepl"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/tlsutil"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/metastore/redisstore"
	"github.com/dfs-project/dfs/replication"
	"github.com/dfs-project/dfs/webdav"
)

// Config configures a node.
type Config struct {
	ID            string
	DataDir       string
	HTTPAddr      string // listen address for WebDAV and the node API
	RaftAddr      string // listen address for Raft
	RaftAdvertise string // Raft address peers dial; the bound RaftAddr if empty
	Advertise     string // this node's WebDAV base URL as others reach it; derived from HTTPAddr if empty
	RedisURL      string // empty: embedded store under DataDir

	// How the node gets into a cluster when its data directory holds no
	// Raft state (see package cluster): Bootstrap starts a new one-node
	// cluster; Join lists HTTP base URLs of members to join through;
	// BootstrapExpect nodes listed in Peers form a new cluster together.
	// With state, the node rejoins its cluster whatever these say.
	Bootstrap       bool
	Join            []string
	BootstrapExpect int
	Peers           []string
	// ClusterSecret authenticates internal calls between nodes; required
	// with Join and BootstrapExpect. Several secrets separated by commas
	// rotate it: the first is sent, any is accepted (package clusterauth).
	ClusterSecret string
	// ReadConsistency is "leader" (default) or "local" (cluster.Consistency).
	ReadConsistency string
	// LeaderWait bounds how long a write on a follower waits for a known
	// leader before it gets 503 (default 3s).
	LeaderWait time.Duration
	// WriteAck is "majority" (default: content is fsynced on a majority of
	// nodes before a write is acknowledged) or "leader".
	WriteAck string
	// ContentBacklog reports content this node still has to fetch, shown
	// in /cluster/status (nil: zero). See also SetContentBacklog.
	ContentBacklog func() (files int, bytes int64)

	// Raft timeouts; zero takes replication's defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// Raft snapshots and log compaction; zero takes replication's
	// defaults. Small values make a joining node install a snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	WALSegmentSize    int // bytes per Raft log segment; only whole segments are ever deleted

	// Listen secures (TLS) and bounds (timeouts) the HTTP and Raft
	// listeners and the calls between nodes.
	Listen ListenConfig

	MaxXMLBytes int64
	// GCInterval is how often unreferenced content is swept; GCGrace is how
	// old unreferenced content must be before a sweep removes it.
	GCInterval time.Duration
	GCGrace    time.Duration
	// Limits: quota, low-water mark, request limits (server/limits.go).
	Limits Limits

	// Auth is who may use the WebDAV API (package auth); the zero value
	// leaves it open.
	Auth auth.Options
	// PublicURLs are the URLs clients reach the cluster at besides each
	// node's own (an Ingress host): a COPY or MOVE Destination may name
	// them; one naming any other server gets 502 (--public-url,
	// webdav.ParsePublicURLs).
	PublicURLs []string
	// TrustedProxies are the addresses or CIDR prefixes of proxies whose
	// X-Forwarded-Host and X-Forwarded-Proto are believed for that check
	// (--trusted-proxies, webdav.ParseTrustedProxies); none by default.
	TrustedProxies []string
	// Scrub configures the content scrubber; the zero value disables it.
	Scrub ScrubConfig

	Log zerolog.Logger
}

// reservedNames are the top-level names of the node API. WebDAV can never
// create them, so the API never shadows a file.
var reservedNames = map[string]bool{"healthz": true, "readyz": true, "cluster": true, "metrics": true}

// Reserved reports whether a top-level name belongs to the node API.
func Reserved(name string) bool { return reservedNames[name] }

// Server is a running dfs node.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	meta    metastore.Store
	blobs   *content.Store
	content *contentrepl.Content

	// term is cancelled when this node stops leading: uploads in flight on
	// a deposed leader end at once (503) instead of waiting for followers
	// that now follow someone else.
	termMu     sync.Mutex
	termCtx    context.Context
	termCancel context.CancelFunc
	fsm        *fsm.FSM
	node       *replication.Node
	cluster    *cluster.Cluster
	users      *auth.Users // nil: the WebDAV API is open
	metrics    *metrics
	scrub      *scrubber
	ln         net.Listener
	tls        *tlsutil.Config
	httpSrv    *http.Server
	url        string

	closeOnce sync.Once
	closeErr  error
}

// New opens every part of a node and binds its listeners. Call Serve to
// start answering and Close to stop.
func New(ctx context.Context, cfg Config) (s *Server, err error) {
	if cfg.ID == "" {
		return nil, errors.New("server: a node ID is required (--id)")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("server: a data directory is required (--data-dir)")
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = 10 * time.Minute
	}
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = time.Hour
	}
	cfg.Listen.setDefaults()
	consistency, err := cluster.ParseConsistency(cfg.ReadConsistency)
	if err != nil {
		return nil, fmt.Errorf("server: --read-consistency: %w", err)
	}
	publicURLs, err := webdav.ParsePublicURLs(cfg.PublicURLs)
	if err != nil {
		return nil, fmt.Errorf("server: --public-url: %w", err)
	}
	trustedProxies, err := webdav.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server: --trusted-proxies: %w", err)
	}
	if cfg.Bootstrap && (len(cfg.Join) > 0 || cfg.BootstrapExpect > 0) {
		return nil, errors.New("server: --bootstrap excludes --join and --bootstrap-expect: start a new cluster with this node alone, join one, or form one with peers")
	}
	ccfg := cluster.Config{
		ID:              cfg.ID,
		Secret:          cfg.ClusterSecret,
		Join:            cfg.Join,
		BootstrapExpect: cfg.BootstrapExpect,
		Peers:           cfg.Peers,
		ReadConsistency: consistency,
		LeaderWait:      cfg.LeaderWait,
		Backlog:         cfg.ContentBacklog,
	}
	if err := ccfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s = &Server{cfg: cfg, log: cfg.Log.With().Str("node", cfg.ID).Logger()}
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	ccfg.TLS = s.internalTLS()
	gate, err := s.newAuth()
	if err != nil {
		return nil, err
	}
	// Every failure below returns a nil *Server: close what was opened
	// through a copy of the pointer.
	opened := s
	defer func() {
		if err != nil {
			_ = opened.closeParts(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("server: create data directory: %w", err)
	}
	if cfg.RedisURL != "" {
		s.meta, err = redisstore.Open(ctx, cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("server: open Redis metadata store: %w", err)
		}
		s.log.Info().Str("redis", redactURL(cfg.RedisURL)).Msg("metadata in Redis")
	} else {
		s.meta, err = boltstore.Open(filepath.Join(cfg.DataDir, "meta.db"))
		if err != nil {
			return nil, fmt.Errorf("server: open embedded metadata store: %w", err)
		}
		s.log.Info().Str("path", filepath.Join(cfg.DataDir, "meta.db")).Msg("metadata in the embedded store")
	}
	s.blobs, err = content.Open(filepath.Join(cfg.DataDir, "content"), s.log)
	if err != nil {
		return nil, fmt.Errorf("server: open content store: %w", err)
	}
	s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.HTTPAddr, err)
	}
	s.url = cfg.Advertise
	if s.url == "" {
		s.url = s.scheme() + "://" + advertisable(s.ln.Addr().String())
	}
	writeAck, err := contentrepl.ParseWriteAck(cfg.WriteAck)
	if err != nil {
		return nil, fmt.Errorf("server: --write-ack: %w", err)
	}
	space, davLimits, err := newLimits(cfg.Limits, cfg.DataDir, s.meta)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.logLimits(space)
	s.content, err = contentrepl.NewContent(contentrepl.ContentConfig{
		Store:    s.blobs,
		Meta:     s.meta,
		SelfID:   cfg.ID,
		Secret:   cfg.ClusterSecret,
		Peers:    s.contentPeers,
		Quorum:   s.quorum,
		WriteAck: writeAck,
		TLS:      s.internalTLS(),
		Log:      s.log,
		Space:    space,
	})
	if err != nil {
		return nil, fmt.Errorf("server: content replication: %w", err)
	}
	s.fsm = fsm.New(s.meta, s.log,
		fsm.WithReleaseHook(s.release),
		fsm.WithTempDir(cfg.DataDir),
		fsm.WithReferenceHook(s.content.Notify),
		fsm.WithRestoreHook(s.content.Rescan))
	s.node, err = replication.Open(ctx, replication.Config{
		ID:                 cfg.ID,
		RaftAddr:           cfg.RaftAddr,
		RaftAdvertise:      cfg.RaftAdvertise,
		DataDir:            cfg.DataDir,
		Bootstrap:          cfg.Bootstrap,
		Joining:            len(cfg.Join) > 0 || cfg.BootstrapExpect > 0,
		FSM:                s.fsm,
		Logger:             s.log,
		HeartbeatTimeout:   cfg.HeartbeatTimeout,
		ElectionTimeout:    cfg.ElectionTimeout,
		LeaderLeaseTimeout: cfg.LeaderLeaseTimeout,
		SnapshotThreshold:  cfg.SnapshotThreshold,
		SnapshotInterval:   cfg.SnapshotInterval,
		TrailingLogs:       cfg.TrailingLogs,
		WALSegmentSize:     cfg.WALSegmentSize,
		Transport:          s.raftTransport(),
	})
	if errors.Is(err, replication.ErrNoState) {
		return nil, fmt.Errorf("server: the data directory %s holds no cluster state, and nothing says how to get some: "+
			"pass --bootstrap to start a new cluster with this node, --join URL[,URL...] to join an existing cluster through any member, "+
			"or --bootstrap-expect N --peers URL,URL,... to form a new cluster of N nodes started together", cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("server: start raft: %w", err)
	}
	s.node.OnLeadership(s.onLeadership)
	ccfg.URL, ccfg.Raft, ccfg.Members, ccfg.Log = s.url, s.node, s.meta, s.log
	if ccfg.Backlog == nil {
		ccfg.Backlog = s.content.Backlog
	}
	s.scrub = newScrubber(s, cfg.Scrub)
	ccfg.Scrub = s.scrub.status
	s.cluster, err = cluster.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	digests, err := s.newDigester()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if (len(cfg.Join) > 0 || cfg.BootstrapExpect > 0) && cfg.Advertise == "" && isLoopbackURL(s.url) {
		s.log.Warn().Str("url", s.url).Msg("no --advertise-url: other nodes reach this one at a loopback URL, which only works when every node runs on this machine")
	}
	s.metrics = newMetrics(s)
	dav := webdav.New(webdav.Config{
		Meta:        s.meta,
		Node:        s.node,
		Blobs:       blobAdapter{c: s.content, term: s.leaderTerm},
		Log:         s.log,
		MaxXMLBytes: cfg.MaxXMLBytes,
		Reserved:    Reserved,
		Observe:     s.metrics.observe,
		Limits:      davLimits,

		PublicURLs:     publicURLs,
		TrustedProxies: trustedProxies,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler(s))
	s.cluster.Routes(mux)
	digests.Routes(mux)
	s.scrub.routes(mux)
	contentAPI := s.content.Handler()
	mux.Handle("/cluster/content", contentAPI)
	mux.Handle("/cluster/content/", contentAPI)
	// Authentication first: a follower forwards only what it has
	// authenticated, with the user for the leader to believe.
	s.httpSrv = s.newHTTPServer(s.routes(mux, gate.Wrap(s.cluster.Forward(s.cluster.Consistent(dav)))))
	return s, nil
}

// routes sends requests the node API has a route for (method and path) to
// the mux and everything else to WebDAV, so a WebDAV method on /healthz
// gets WebDAV's answer (403: reserved).
func (s *Server) routes(mux *http.ServeMux, dav http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		dav.ServeHTTP(w, r)
	})
}

// Cluster returns the node's side of the cluster API.
func (s *Server) Cluster() *cluster.Cluster { return s.cluster }

// SetContentBacklog installs the reporter of content this node still has
// to fetch, shown in /cluster/status.
func (s *Server) SetContentBacklog(f func() (files int, bytes int64)) { s.cluster.SetBacklog(f) }

// URL is this node's WebDAV base URL.
func (s *Server) URL() string { return s.url }

// Node returns the Raft node.
func (s *Server) Node() *replication.Node { return s.node }

// Serve answers HTTP until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info().Str("http", s.ln.Addr().String()).Str("url", s.url).Str("raft", s.cfg.RaftAddr).Msg("dfs node serving")
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	go s.gcLoop(gcCtx)
	go s.watchUsers(gcCtx)
	go s.content.Run(gcCtx)
	go s.scrub.run(gcCtx)
	go s.tls.Watch(gcCtx)
	errc := make(chan error, 1)
	go func() { errc <- s.serveHTTP() }()
	// Forming a cluster needs the listener serving: peers poll each other.
	s.cluster.Start()
	select {
	case err := <-errc:
		return fmt.Errorf("server: http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Close(shutdownCtx)
}

// Close hands leadership to another voter if this node leads (so writes
// move to the next leader at once rather than after an election timeout),
// stops the HTTP listener (letting requests in flight finish), and closes
// Raft and the stores.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.cluster != nil {
			if err := s.cluster.TransferLeadership(ctx); err != nil {
				s.log.Warn().Err(err).Msg("leadership transfer failed; the other nodes elect a leader after the election timeout")
			}
		}
		if s.httpSrv != nil {
			if err := s.httpSrv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		errs = append(errs, s.closeParts(ctx))
		s.closeErr = errors.Join(errs...)
		s.log.Info().Err(s.closeErr).Msg("dfs node stopped")
	})
	return s.closeErr
}

func (s *Server) closeParts(ctx context.Context) error {
	var errs []error
	if s.cluster != nil {
		s.cluster.Close()
	}
	if s.node != nil {
		if err := s.node.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("raft: %w", err))
		}
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.blobs != nil {
		if err := s.blobs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("content store: %w", err))
		}
	}
	if s.meta != nil {
		if err := s.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("metadata store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// release is the state machine's hook for content whose last reference
// went away: delete it now unless an upload has it pinned.
func (s *Server) release(hash string) {
	if _, err := s.blobs.Release(context.Background(), s.fsm, hash); err != nil {
		s.log.Warn().Err(err).Str("hash", hash).Msg("releasing unreferenced content failed; the next sweep retries")
	}
}

func (s *Server) gcLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Pins live in memory only: after a restart, content whose entry
			// is in the log but not yet replayed looks unreferenced. Sweep
			// only once the node has caught up.
			if problems := s.readiness(ctx); len(problems) > 0 {
				s.log.Debug().Strs("problems", problems).Msg("content sweep skipped: node not ready")
				continue
			}
			// The state machine's counts, not the store's: they refuse to
			// answer while a restore has the store half loaded, which
			// aborts the sweep instead of deleting referenced content.
			st, err := s.blobs.Collect(ctx, s.fsm, s.cfg.GCGrace)
			if err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("content sweep failed")
				continue
			}
			s.log.Debug().Interface("stats", st).Msg("content sweep done")
		}
	}
}

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

// advertisable turns a bound address into one peers and clients can use:
// an unspecified host becomes loopback.
func advertisable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func isLoopbackURL(u string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if h, _, err := net.SplitHostPort(strings.TrimRight(host, "/")); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// blobAdapter presents content replication as webdav.Blobs: writes on
// the leader reach a majority of nodes, reads fetch content this node lacks
// from a peer. Cluster-side failures become webdav.ErrUnavailable (503).
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
	if errors.Is(err, contentrepl.ErrNoQuorum) || errors.Is(err, contentrepl.ErrUnavailable) {
		return "", 0, fmt.Errorf("%w: %w", webdav.ErrUnavailable, err)
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
	b, err := a.c.Open(ctx, hash, size)
	if errors.Is(err, contentrepl.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", webdav.ErrUnavailable, err)
	}
	return b, err
}

// contentPeers lists the other members with a URL, the leader first: the
// nodes a push goes to and a fetch asks.
func (s *Server) contentPeers(ctx context.Context) ([]contentrepl.Peer, error) {
	members, err := s.meta.Members(ctx)
	if err != nil {
		return nil, err
	}
	leader, _ := s.node.Leader()
	var peers []contentrepl.Peer
	for _, m := range members {
		if m.ID == s.cfg.ID || m.URL == "" {
			continue
		}
		p := contentrepl.Peer{ID: m.ID, URL: m.URL}
		if m.ID == leader {
			peers = append([]contentrepl.Peer{p}, peers...)
		} else {
			peers = append(peers, p)
		}
	}
	return peers, nil
}

// quorum is how many nodes must hold an upload's content before it is
// acknowledged: a majority of the Raft voters (contentrepl.Quorum).
func (s *Server) quorum() int {
	return contentrepl.Quorum(s.node.Voters())
}
