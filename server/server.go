// Package server assembles one dfs node: the metadata store (Redis or the
// embedded bbolt store), the content store, the Raft node with its state
// machine, content replication, and the HTTP listener that serves WebDAV
// beside the node's own API: /healthz, /readyz, /metrics for Prometheus,
// and every /cluster/ route, whichever package serves it, all listed in one
// route table (routes.go). It owns the node's lifecycle: opening everything
// in order (New and its steps), serving, and shutting down cleanly (a
// leader hands leadership over first). The adapters that connect the
// packages to each other are in adapters.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/access"
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
	"github.com/dfs-project/dfs/verify"
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
	// AccessRules is the per-path permission rules file (--access-rules,
	// package access); empty: every user may do what their role allows,
	// everywhere.
	AccessRules string
	// UserRoot maps each user's "/" to a folder of their own, such as
	// /home/{user} (--user-root, webdav.ParseUserRoot); empty: every user
	// sees the whole drive.
	UserRoot string
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
	// TreeStep is how many inodes one entry removes or copies before a
	// DELETE or COPY goes on in steps (0: fsm.TreeStep). Tests lower it to
	// exercise steps with small trees.
	TreeStep int64

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
	users      *auth.Users        // nil: the WebDAV API is open
	tokens     *auth.DeviceTokens // nil: no device passwords
	access     *access.File       // nil: no per-path rules
	metrics    *metrics
	scrub      *scrubber
	ln         net.Listener
	tls        *tlsutil.Config
	api        []route        // the node API's route table (routes.go)
	apiMux     *http.ServeMux // built from api
	httpSrv    *http.Server
	url        string

	closeOnce sync.Once
	closeErr  error
}

// New opens every part of a node and binds its listeners. Call Serve to
// start answering and Close to stop. The steps, in order:
//
//   - checkConfig: defaults and checks, nothing opened yet;
//   - TLS material and the authentication gate (listen.go, auth.go);
//   - openStores: the data directory, the metadata store (Redis or bbolt)
//     and the content store;
//   - bindHTTP: the HTTP listener and the URL the node advertises, bound
//     before Raft starts so that a taken port fails before any Raft state
//     is written (listen.go);
//   - startReplication: the limits, content replication, the state
//     machine, the Raft node and the cluster membership on top of it;
//   - buildHTTP: the WebDAV handler, the node API's route table and mux
//     (routes.go), and the HTTP server in front of both.
//
// A failing step leaves what the earlier ones opened for New to close.
func New(ctx context.Context, cfg Config) (s *Server, err error) {
	ccfg, err := checkConfig(&cfg)
	if err != nil {
		return nil, err
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
	if err := s.openAccess(); err != nil {
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
	if err := s.openStores(ctx); err != nil {
		return nil, err
	}
	if err := s.bindHTTP(); err != nil {
		return nil, err
	}
	davLimits, err := s.startReplication(ctx, ccfg)
	if err != nil {
		return nil, err
	}
	if err := s.buildHTTP(gate, davLimits); err != nil {
		return nil, err
	}
	return s, nil
}

// origins parses where a COPY or MOVE Destination may point besides the
// node itself (--public-url, --trusted-proxies).
func origins(cfg *Config) (public []webdav.Origin, proxies []netip.Prefix, err error) {
	public, err = webdav.ParsePublicURLs(cfg.PublicURLs)
	if err != nil {
		return nil, nil, fmt.Errorf("server: --public-url: %w", err)
	}
	proxies, err = webdav.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, nil, fmt.Errorf("server: --trusted-proxies: %w", err)
	}
	return public, proxies, nil
}

// checkConfig fills in cfg's defaults, checks what can be checked before
// anything is opened, and derives the cluster's configuration (completed
// by startReplication once the Raft node exists).
func checkConfig(cfg *Config) (cluster.Config, error) {
	if cfg.ID == "" {
		return cluster.Config{}, errors.New("server: a node ID is required (--id)")
	}
	if cfg.DataDir == "" {
		return cluster.Config{}, errors.New("server: a data directory is required (--data-dir)")
	}
	if _, _, err := origins(cfg); err != nil {
		return cluster.Config{}, err
	}
	if _, err := userRoot(cfg); err != nil {
		return cluster.Config{}, err
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
		return cluster.Config{}, fmt.Errorf("server: --read-consistency: %w", err)
	}
	if cfg.Bootstrap && (len(cfg.Join) > 0 || cfg.BootstrapExpect > 0) {
		return cluster.Config{}, errors.New("server: --bootstrap excludes --join and --bootstrap-expect: start a new cluster with this node alone, join one, or form one with peers")
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
		return cluster.Config{}, fmt.Errorf("server: %w", err)
	}
	return ccfg, nil
}

// openStores creates the data directory and opens the metadata store
// (Redis when a URL is given, the embedded bbolt store otherwise) and the
// content store on it.
func (s *Server) openStores(ctx context.Context) error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("server: create data directory: %w", err)
	}
	var err error
	if cfg.RedisURL != "" {
		s.meta, err = redisstore.Open(ctx, cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("server: open Redis metadata store: %w", err)
		}
		s.log.Info().Str("redis", redactURL(cfg.RedisURL)).Msg("metadata in Redis")
	} else {
		s.meta, err = openBolt(filepath.Join(cfg.DataDir, "meta.db"), s.log)
		if err != nil {
			return fmt.Errorf("server: open embedded metadata store: %w", err)
		}
		s.log.Info().Str("path", filepath.Join(cfg.DataDir, "meta.db")).Msg("metadata in the embedded store")
	}
	s.blobs, err = content.Open(filepath.Join(cfg.DataDir, "content"), s.log)
	if err != nil {
		return fmt.Errorf("server: open content store: %w", err)
	}
	s.blobs.KeepPinnedAcrossRestart(pushPinTTL)
	return nil
}

// startReplication builds the node's storage limits, content replication
// (contentrepl) and the state machine (fsm), opens the Raft node
// (replication) and puts the cluster's membership, forwarding and read
// index (cluster) and the content scrubber on top. It returns the WebDAV
// limits, which share the storage accounting with content replication.
func (s *Server) startReplication(ctx context.Context, ccfg cluster.Config) (webdav.Limits, error) {
	cfg := s.cfg
	writeAck, err := contentrepl.ParseWriteAck(cfg.WriteAck)
	if err != nil {
		return webdav.Limits{}, fmt.Errorf("server: --write-ack: %w", err)
	}
	space, davLimits, err := newLimits(cfg.Limits, cfg.DataDir, s.meta)
	if err != nil {
		return webdav.Limits{}, fmt.Errorf("server: %w", err)
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
		PinTTL:   pushPinTTL,
	})
	if err != nil {
		return webdav.Limits{}, fmt.Errorf("server: content replication: %w", err)
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
		TreeStep:           cfg.TreeStep,
		Transport:          s.raftTransport(),
	})
	if errors.Is(err, replication.ErrNoState) {
		return webdav.Limits{}, fmt.Errorf("server: the data directory %s holds no cluster state, and nothing says how to get some: "+
			"pass --bootstrap to start a new cluster with this node, --join URL[,URL...] to join an existing cluster through any member, "+
			"or --bootstrap-expect N --peers URL,URL,... to form a new cluster of N nodes started together", cfg.DataDir)
	}
	if err != nil {
		return webdav.Limits{}, fmt.Errorf("server: start raft: %w", err)
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
		return webdav.Limits{}, fmt.Errorf("server: %w", err)
	}
	// Only now can the state machine reach the leader, for a store its
	// own snapshot and log cannot rebuild (snapshot.go).
	s.fsm.SetSnapshotSource(leaderSnapshots{s})
	return davLimits, nil
}

// buildHTTP assembles what the HTTP listener serves: replica
// verification's digester, the metrics, the WebDAV handler behind
// authentication, forwarding and read consistency, and the node API's
// mux, built from the route table (routes.go), in front of it.
func (s *Server) buildHTTP(gate *auth.Authenticator, davLimits webdav.Limits) error {
	cfg := s.cfg
	digests, err := s.newDigester()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if (len(cfg.Join) > 0 || cfg.BootstrapExpect > 0) && cfg.Advertise == "" && isLoopbackURL(s.url) {
		s.log.Warn().Str("url", s.url).Msg("no --advertise-url: other nodes reach this one at a loopback URL, which only works when every node runs on this machine")
	}
	s.metrics = newMetrics(s)
	publicURLs, trustedProxies, err := origins(&cfg)
	if err != nil {
		return err
	}
	userRoot, err := userRoot(&cfg)
	if err != nil {
		return err
	}
	dav := webdav.New(webdav.Config{
		Meta:        s.meta,
		Node:        s.node,
		Blobs:       blobAdapter{c: s.content, term: s.leaderTerm},
		Log:         s.log,
		MaxXMLBytes: cfg.MaxXMLBytes,
		Reserved:    Reserved,
		Observe:     s.metrics.observe,
		Limits:      davLimits,

		MaxTreeEntries: cfg.Limits.MaxTreeEntries,
		TreeStep:       cfg.TreeStep,
		StoreGuard:     func() webdav.Guard { return s.fsm.ReadGuard() },
		PublicURLs:     publicURLs,
		TrustedProxies: trustedProxies,
		Access:         s.davAccess(),
		UserRoot:       userRoot,
	})
	s.api = s.routeTable(digests)
	s.apiMux = s.newMux(s.api)
	// Authentication first: a follower forwards only what it has
	// authenticated, with the user for the leader to believe.
	s.httpSrv = s.newHTTPServer(s.routes(s.apiMux, gate.Wrap(s.cluster.Forward(s.cluster.Consistent(dav), dav.NeedsLeader))))
	return nil
}

// newDigester gives replica verification (dfs cluster verify, package
// verify) this node's metadata and content store; its endpoints are in the
// route table beside the cluster's.
func (s *Server) newDigester() (*verify.Digester, error) {
	return verify.NewDigester(verify.Config{
		ID:      s.cfg.ID,
		URL:     s.url,
		Raft:    s.node,
		Meta:    s.meta,
		Content: contentChecker{s.blobs, s.content},
		Backlog: s.cluster.ContentBacklog,
		Log:     s.log,
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
	go s.watchAccess(gcCtx)
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

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// pushPinTTL is how long a follower protects content pushed to it until
// the entry referencing it applies; after a restart the content store
// keeps such content for as long, since its pins died with the process.
const pushPinTTL = 5 * time.Minute

// openBolt opens the embedded metadata store. A damaged file is set aside
// (meta.db.corrupt-<unix time>, for inspection) and replaced by an empty
// store: the metadata is a function of the Raft log, and the node rebuilds
// it from its newest snapshot and its log before it turns ready.
func openBolt(path string, log zerolog.Logger) (*boltstore.Store, error) {
	st, err := boltstore.Open(path)
	if !errors.Is(err, boltstore.ErrCorrupt) {
		return st, err
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
	log.Error().Err(err).Str("moved_to", aside).
		Msg("the embedded metadata store is corrupt; setting it aside and rebuilding it from the Raft snapshot and log")
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("%w (and setting it aside failed: %w)", err, rerr)
	}
	return boltstore.Open(path)
}
