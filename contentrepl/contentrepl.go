package contentrepl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/internal/unavailable"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/quota"
)

// WriteAck says when the leader considers an upload's content stored.
type WriteAck string

const (
	// WriteAckMajority (the default) acknowledges once the content is
	// fsynced on a majority of the voters, the leader's own copy included.
	// Losing the leader, its disk included, right after the acknowledgement
	// loses nothing.
	WriteAckMajority WriteAck = "majority"
	// WriteAckLeader acknowledges once the leader alone has fsynced the
	// content; followers fetch it after the entry applies. It saves the
	// push to the followers (the upload runs at the leader's own disk
	// speed, and a slow or partitioned follower never fails a write) and
	// risks exactly this: an acknowledged write whose content exists only
	// on the leader is lost if the leader's disk (its data volume) is lost
	// before a follower has fetched it. The metadata survives on the
	// followers, and reads of that file answer 503 on every node until the
	// content comes back. A kill -9 of the leader process, a reboot or a
	// power cut lose nothing once the disk comes back, because the leader
	// fsynced before acknowledging; reads wait for it (503 meanwhile).
	WriteAckLeader WriteAck = "leader"
)

// ParseWriteAck parses a --write-ack value ("" means the default).
func ParseWriteAck(s string) (WriteAck, error) {
	switch WriteAck(strings.ToLower(strings.TrimSpace(s))) {
	case "", WriteAckMajority:
		return WriteAckMajority, nil
	case WriteAckLeader:
		return WriteAckLeader, nil
	}
	return "", fmt.Errorf("replication: unknown write-ack mode %q (want %q or %q)", s, WriteAckMajority, WriteAckLeader)
}

var (
	// ErrNoQuorum is wrapped by Write when the content did not reach a
	// majority of the voters. Nothing references it; it is left to garbage
	// collection. It is unavailable.Err too: the HTTP layer answers 503,
	// the client may retry.
	ErrNoQuorum = unavailable.New("replication: content not stored on a majority of the nodes")
	// ErrUnavailable is wrapped by Open when the content is neither on this
	// node (or corrupt here) nor obtainable from any peer. It is
	// unavailable.Err too: the HTTP layer answers 503, never 404 (the file
	// exists) and never partial bytes.
	ErrUnavailable = unavailable.New("replication: content unavailable on this node and its peers")
)

// ReplicaSpace admits pushed content on a follower.
type ReplicaSpace interface {
	AdmitReplica() (*quota.Grant, error)
}

// Peer is another member of the cluster as content replication needs it.
type Peer struct {
	ID  string
	URL string // base URL of its HTTP API, e.g. http://10.0.0.2:8080
}

// ContentConfig configures a Content. Zero values take the defaults given
// on each field.
type ContentConfig struct {
	// Store is this node's content store.
	Store *content.Store
	// Meta is this node's metadata (the namespace the scan walks, the
	// reference counts that tell a failing fetch whether content is still
	// needed). Nil disables scanning.
	Meta metastore.Reader
	// SelfID is this node's ID; Peers may include it, it is skipped.
	SelfID string
	// Secret is the cluster secret every internal call carries and the
	// Handler requires.
	Secret string
	// Client makes the internal calls. Nil: a client with dial and
	// response-header timeouts and no total timeout (transfers of any size
	// are bounded by IdleTimeout instead).
	Client *http.Client
	// TLS configures the default Client's TLS (nil: Go's defaults): the
	// cluster CA when nodes talk TLS to each other.
	TLS *tls.Config
	// Peers returns the other members with their URLs, the leader first
	// (fetches try them in this order).
	Peers func(ctx context.Context) ([]Peer, error)
	// Quorum returns how many copies a write needs, the leader's own
	// included: Quorum of the Raft voters, 1 on a single node. Nil:
	// Quorum of the leader plus Peers.
	Quorum func() int
	// WriteAck is WriteAckMajority (default) or WriteAckLeader.
	WriteAck WriteAck
	// Log receives the replicator's logs.
	Log zerolog.Logger
	// Space, if set, keeps pushes from taking this node's data volume
	// below its low-water mark (*quota.Space): a push that would is
	// refused with 507, and a leader that cannot get a majority because
	// of it fails the write with an error wrapping quota.ErrNoSpace.
	Space ReplicaSpace

	// PushBuffer bounds the bytes of one upload buffered for one follower
	// (default 8 MiB). The upload is paced by the followers it needs for a
	// majority, who may fall at most PushBuffer/2 behind; any follower
	// that falls PushBuffer behind is dropped from that upload and fetches
	// the content later. Memory per upload is bounded by PushBuffer, not
	// by the file size.
	PushBuffer int64
	// PushStall is how long an upload waits for the followers it needs
	// without any of them making progress before it gives up on them
	// (default 10s).
	PushStall time.Duration
	// AckTimeout bounds the wait for the followers' replies once the
	// upload's body has ended (they fsync then), and the lifetime of
	// pushes still running after the write returned (default 60s).
	AckTimeout time.Duration
	// PinTTL is how long a follower protects pushed content from garbage
	// collection, so it survives until the entry referencing it applies
	// (default 5m).
	PinTTL time.Duration
	// FetchWorkers is how many background fetches run at once (default 2).
	FetchWorkers int
	// FetchRate caps background catch-up in bytes per second, so client
	// traffic is not starved (0: unlimited). Fetches a reader is waiting
	// for are not capped.
	FetchRate int64
	// IdleTimeout abandons a transfer that made no progress for this long
	// (default 30s); a fetch resumes later where it stopped.
	IdleTimeout time.Duration
	// MaxPending bounds the catch-up queue (default 10000 hashes); a scan
	// waits for room, and a reference that finds it full triggers another
	// scan later instead of growing it.
	MaxPending int
	// RetryMax caps the back-off between attempts to fetch a hash that no
	// peer could provide (default 1m).
	RetryMax time.Duration
}

const (
	defaultPushBuffer   = 8 << 20
	defaultPushStall    = 10 * time.Second
	defaultAckTimeout   = 60 * time.Second
	defaultPinTTL       = 5 * time.Minute
	defaultFetchWorkers = 2
	defaultIdleTimeout  = 30 * time.Second
	defaultMaxPending   = 10000
	defaultRetryMax     = time.Minute

	// chunkSize is the unit an upload is read, written and queued in, and
	// the copy buffer of fetches.
	chunkSize = 256 << 10
)

func (c *ContentConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PushStall, defaultPushStall)
	def(&c.AckTimeout, defaultAckTimeout)
	def(&c.PinTTL, defaultPinTTL)
	def(&c.IdleTimeout, defaultIdleTimeout)
	def(&c.RetryMax, defaultRetryMax)
	if c.PushBuffer <= 0 {
		c.PushBuffer = defaultPushBuffer
	}
	// The pacing limit (half the buffer) must hold at least one chunk.
	c.PushBuffer = max(c.PushBuffer, 2*chunkSize)
	if c.FetchWorkers <= 0 {
		c.FetchWorkers = defaultFetchWorkers
	}
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.WriteAck == "" {
		c.WriteAck = WriteAckMajority
	}
	if c.Client == nil {
		c.Client = defaultClient(c.AckTimeout, c.TLS)
	}
}

// defaultClient has no total timeout: a push or fetch of a large file takes
// as long as it takes. Stalls are caught by the dial and header timeouts,
// the push's stall detection and the fetch's idle watchdog.
func defaultClient(headerTimeout time.Duration, tlsConf *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 5 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		// A push's reply comes after the follower's fsync of the whole
		// object, so this is generous.
		ResponseHeaderTimeout: headerTimeout,
		DisableCompression:    true, // content is opaque; Range needs raw bytes
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}}
}

// Content replicates file content between the nodes of a cluster: see the
// package documentation. It is safe for concurrent use.
type Content struct {
	cfg    ContentConfig
	store  *content.Store
	log    zerolog.Logger
	chunks sync.Pool // *[]byte of chunkSize: upload chunks and copy buffers

	// base outlives callers: a fetch shared by several readers must not
	// stop because the first of them went away. Run's end cancels it.
	base context.Context
	stop context.CancelFunc

	limiter *rateLimiter

	flightMu sync.Mutex
	flights  map[string]*fetchCall

	q pendingQueue

	readRepairCounters
}

// NewContent returns a replicator. It does no I/O; call Run to start the
// background catch-up and mount Handler on the node's HTTP server.
func NewContent(cfg ContentConfig) (*Content, error) {
	if cfg.Store == nil {
		return nil, errors.New("replication: ContentConfig needs a Store")
	}
	if cfg.Peers == nil {
		return nil, errors.New("replication: ContentConfig needs Peers")
	}
	if _, err := ParseWriteAck(string(cfg.WriteAck)); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	base, stop := context.WithCancel(context.Background())
	c := &Content{
		cfg:     cfg,
		store:   cfg.Store,
		log:     cfg.Log.With().Str("component", "content-replication").Logger(),
		base:    base,
		stop:    stop,
		limiter: newRateLimiter(cfg.FetchRate),
		flights: make(map[string]*fetchCall),
	}
	c.chunks.New = func() any { b := make([]byte, chunkSize); return &b }
	c.q.init()
	return c, nil
}

// Unpin releases the pin Write took on the content it stored.
func (c *Content) Unpin(hash string) { _ = c.store.Unpin(hash) }

// Discard releases the pin Write took on content whose entry was refused
// and deletes it at once unless a file references it or another upload
// pins it, instead of leaving it to the next sweep. Followers that
// received it keep their copy pinned for PinTTL; their sweep removes it.
func (c *Content) Discard(ctx context.Context, hash string) {
	_ = c.store.Unpin(hash)
	c.release(ctx, hash)
}

// release deletes unreferenced, unpinned content now.
func (c *Content) release(ctx context.Context, hash string) {
	if c.cfg.Meta == nil {
		return
	}
	if _, err := c.store.Release(ctx, c.cfg.Meta, hash); err != nil {
		c.log.Warn().Err(err).Str("hash", hash).Msg("cannot release discarded content; the sweep removes it")
	}
}

// peers returns the other members with a URL, in the configured order.
func (c *Content) peers(ctx context.Context) ([]Peer, error) {
	all, err := c.cfg.Peers(ctx)
	if err != nil {
		return nil, fmt.Errorf("replication: list peers: %w", err)
	}
	out := make([]Peer, 0, len(all))
	for _, p := range all {
		if p.ID == c.cfg.SelfID || p.URL == "" {
			continue
		}
		p.URL = strings.TrimRight(p.URL, "/")
		out = append(out, p)
	}
	return out, nil
}

// Quorum is how many of voters nodes must hold an upload's content before
// it is acknowledged, the leader's own copy included: a majority of them,
// so that any future leader's majority overlaps it. Fewer than one voter
// (a configuration that cannot be read) counts as one.
func Quorum(voters int) int {
	return max(voters, 1)/2 + 1
}

// quorum is how many copies a write needs, the leader's included.
func (c *Content) quorum(peers int) int {
	if c.cfg.Quorum != nil {
		return c.cfg.Quorum()
	}
	return Quorum(1 + peers)
}

// drainClose reads a little of a response body before closing it, so the
// connection can be reused, and never more: the rest may be huge.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

// snippet returns the start of an error response body for messages.
func snippet(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 256))
	return strings.TrimSpace(string(b))
}
