// Package webdav owns dfs's WebDAV protocol layer (RFC 4918 classes 1 and 2)
// on top of golang.org/x/net/webdav.
//
// x/net/webdav serves what it gets right: GET and HEAD of files (Range,
// If-None-Match and If-Modified-Since through http.ServeContent, with our
// strong ETags), PROPFIND and PROPPATCH, reading and writing through
// requestFS, dfs's webdav.FileSystem over the metadata store and the Raft
// log. dfs serves itself what x/net gets wrong for a replicated network
// drive: PUT (x/net answers failures with 405 and copies bodies through its
// FileSystem; dfs streams into the content store and commits one log
// entry), GET on collections (405 in x/net), DELETE, MKCOL, COPY and MOVE
// (one log entry each, COPY shares content by hash), LOCK and UNLOCK (x/net
// has no shared locks and keeps locks in process memory; dfs locks are log
// entries), and the If header, evaluated once for every mutating method
// with RFC 4918's full grammar. The locks, and PUT's If-Match and
// If-None-Match, are checked again when the log entry applies (package
// fsm) by the very functions the handler calls first (fsm.CheckLocks,
// fsm.IfMatch, fsm.IfNoneMatch): the two checks cannot disagree, and the
// log stays the authority even when two requests race. A lock belongs to
// the user the request was authenticated as (package auth), which every
// entry carries: another user's token is not a submitted token (RFC 4918
// §6.4).
//
// COPY and MOVE stay on this server: a Destination URL naming another
// server gets 502 (origin.go decides which origins are this server's).
//
// Limits (limits.go) are checked before a body is read wherever the
// request says enough: the quota and the data volume's low-water mark
// (507, through package quota), the upload size (413), the uploads in
// progress (503) and PROPFIND Depth: infinity (403). The RFC 4331 quota
// properties are served to PROPFINDs that name them.
//
// The files split the handler by method family, as x/net/webdav does:
// handler.go holds the Handler, its construction and the method dispatch;
// get.go, put.go, mkcol.go, delete.go, copymove.go, prop.go (PROPFIND and
// PROPPATCH) and lock.go (LOCK and UNLOCK) serve their methods;
// conditions.go evaluates the If header and the locks for every mutating
// method; origin.go tells this server's origins from others for
// Destinations; errors.go maps failures to statuses and RFC 4918 error bodies;
// fs.go is requestFS. ifheader.go, headers.go, lockxml.go and xmlcheck.go
// parse and check what clients send.
package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/rs/zerolog"
	xwebdav "golang.org/x/net/webdav"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// Node is the consensus side of a dfs node as the WebDAV layer needs it.
// Propose commits one log entry and returns how it applied; its error means
// the entry could not be committed (no leader, timeout, shutdown).
type Node interface {
	Propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// ContentReader is stored content opened for reading by Blobs.Open. (A
// content.Blob, by contrast, only names stored content: its hash and size.)
type ContentReader interface {
	io.ReadSeekCloser
}

// Blobs is the content store as the WebDAV layer needs it.
type Blobs interface {
	// Write streams r into the store and returns its SHA-256 and size. The
	// content stays pinned (safe from garbage collection) until Unpin.
	Write(ctx context.Context, r io.Reader) (hash string, size int64, err error)
	// Unpin releases a pin taken by Write.
	Unpin(hash string)
	// Open opens content by hash; size is the size the metadata expects.
	Open(ctx context.Context, hash string, size int64) (ContentReader, error)
	// Discard releases a pin taken by Write for content whose entry was
	// refused, and deletes the content unless a file references it or
	// another upload pins it: a refused upload leaves nothing behind.
	Discard(ctx context.Context, hash string)
}

// DefaultMaxXMLBytes bounds PROPFIND, PROPPATCH and LOCK bodies.
const DefaultMaxXMLBytes = 1 << 20

// Config configures a Handler.
type Config struct {
	Meta  metastore.Reader
	Node  Node
	Blobs Blobs
	Log   zerolog.Logger
	// MaxXMLBytes bounds XML request bodies (DefaultMaxXMLBytes if 0).
	MaxXMLBytes int64
	// Reserved reports whether a top-level name belongs to the node's own
	// HTTP API; such names can never be created, so they never shadow a file.
	Reserved func(name string) bool
	// Now is the clock (time.Now if nil); tests pin it.
	Now func() time.Time
	// Observe, if set, is called once per request when it ends (also when
	// a response fails midway) with the request method as the client sent
	// it, the status sent, the response body bytes written and the time
	// taken. It is for metrics; it must be safe for concurrent use and
	// should not block.
	Observe func(method string, status int, bytes int64, d time.Duration)
	// Limits bounds uploads and PROPFIND, and brings the quota.
	Limits Limits
	// MaxTreeEntries is the most resources one COPY may copy (0: no
	// limit); the leader puts it in the entry (fsm.Command.MaxTree), so
	// every node decides alike.
	MaxTreeEntries int64
	// TreeStep is the entry's fsm.Command.Step for DELETE, COPY and MOVE
	// (0: fsm.TreeStep).
	TreeStep int64
	// PublicURLs are origins clients reach the cluster at besides each
	// node's own (an Ingress host, a load balancer): a COPY or MOVE
	// Destination may name them (ParsePublicURLs; --public-url).
	PublicURLs []Origin
	// StoreGuard is called before a request reads Meta; the Guard it
	// returns is checked before the answer goes out, and fails if what was
	// read may not be the node's state (fsm.FSM.ReadGuard): the store was
	// reloaded meanwhile, or lost what the node applied (a Redis flushed,
	// restarted without its data, rolled back). A GET or HEAD, a listing,
	// and every 404, 409 or 412 derived from Meta, is answered only after
	// it passes, else 503. nil: no check.
	StoreGuard func() Guard
	// UserRoot maps each user's "/" to their own folder (--user-root,
	// ParseUserRoot); zero: every user sees the whole drive.
	UserRoot UserRoot
	// Access is the per-path permission rules (--access-rules); nil: a
	// user may do everything their role allows, everywhere.
	Access Access
	// TrustedProxies are the peers whose X-Forwarded-Host and
	// X-Forwarded-Proto say which origin a client addressed
	// (ParseTrustedProxies; --trusted-proxies). Empty: none, the headers
	// are ignored.
	TrustedProxies []netip.Prefix
}

// Handler serves WebDAV. It is safe for concurrent use.
type Handler struct {
	meta     metastore.Reader
	node     Node
	blobs    Blobs
	log      zerolog.Logger
	maxXML   int64
	reserved func(string) bool
	now      func() time.Time
	observe  func(method string, status int, bytes int64, d time.Duration)
	limits   Limits
	uploads  chan struct{} // upload slots; nil: no limit
	maxTree  int64
	treeStep int64
	guard    func() Guard
	access   Access
	userRoot UserRoot
	homes    homeCache

	publicURLs     []Origin
	trustedProxies []netip.Prefix
}

// New returns a Handler.
func New(cfg Config) *Handler {
	h := &Handler{
		meta:     cfg.Meta,
		node:     cfg.Node,
		blobs:    cfg.Blobs,
		log:      cfg.Log,
		maxXML:   cfg.MaxXMLBytes,
		reserved: cfg.Reserved,
		now:      cfg.Now,
		observe:  cfg.Observe,
		limits:   cfg.Limits,
		maxTree:  cfg.MaxTreeEntries,
		treeStep: cfg.TreeStep,
		guard:    cfg.StoreGuard,
		access:   cfg.Access,
		userRoot: cfg.UserRoot,

		publicURLs:     cfg.PublicURLs,
		trustedProxies: cfg.TrustedProxies,
	}
	if n := cfg.Limits.MaxConcurrentUploads; n > 0 {
		h.uploads = make(chan struct{}, n)
	}
	if h.maxXML <= 0 {
		h.maxXML = DefaultMaxXMLBytes
	}
	if h.reserved == nil {
		h.reserved = func(string) bool { return false }
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.treeStep <= 0 {
		h.treeStep = fsm.TreeStep
	}
	return h
}

const allowAll = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"

// ServeHTTP dispatches one WebDAV request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	sw := &statusWriter{ResponseWriter: w}
	if h.guard != nil {
		r = r.WithContext(context.WithValue(r.Context(), guardKey{}, h.guard()))
	}
	if h.observe != nil {
		// Deferred: a response that fails midway ends in a panic
		// (http.ErrAbortHandler) and still counts.
		defer func() { h.observe(r.Method, sw.sent(), sw.bytes, h.now().Sub(start)) }()
	}
	r, err := h.withRoot(r)
	if err == nil {
		err = h.serve(sw, r)
	}
	if err != nil {
		h.writeError(sw, r, err)
	}
	ev := h.log.Debug()
	// A 502 for a Destination naming another server is the client's
	// doing, not a failure of the node.
	if sw.status >= 500 && !errors.Is(err, ErrForeignDestination) {
		ev = h.log.Warn().Err(err)
	}
	if user := auth.User(r.Context()); user != "" {
		ev = ev.Str("user", user)
	}
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
		Int64("bytes", sw.bytes).Dur("took", h.now().Sub(start)).Msg("webdav request")
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	p, err := fspath.Clean(r.URL.Path)
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad path", err: err}
	}
	p = inRoot(rootOf(r.Context()), p)
	if err := h.ensureRoot(r.Context()); err != nil {
		return err
	}
	if err := h.authorize(r.Context(), r.Method, p); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodOptions:
		return h.handleOptions(w)
	case http.MethodGet, http.MethodHead:
		return h.handleGet(w, r, p)
	case http.MethodPut:
		return h.handlePut(w, r, p)
	case http.MethodDelete:
		return h.handleDelete(w, r, p)
	case "MKCOL":
		return h.handleMkcol(w, r, p)
	case "COPY", "MOVE":
		return h.handleCopyMove(w, r, p)
	case "LOCK":
		return h.handleLock(w, r, p)
	case "UNLOCK":
		return h.handleUnlock(w, r, p)
	case "PROPFIND":
		return h.handlePropfind(w, r, p)
	case "PROPPATCH":
		return h.handleProppatch(w, r, p)
	case http.MethodPost, http.MethodPatch, http.MethodTrace, http.MethodConnect:
		w.Header().Set("Allow", allowAll)
		return fail(http.StatusMethodNotAllowed, "%s is not supported on WebDAV resources", r.Method)
	}
	return fail(http.StatusNotImplemented, "unknown method %q", r.Method)
}

// propose commits one command on behalf of the request's user (the
// principal every lock check at apply time uses, fixed here in the entry).
// An error is an *fsm.Error (the entry applied and said no),
// ErrUnavailable-wrapped (it did not commit) or, for an answer no state
// machine gives (no result at all), an internal error (500). On success
// the result is never nil; callers still check the fields they report
// (describesLock, the PUT's inode) and answer unknownOutcome without them,
// since an entry found already applied ("replayed") comes back OK but
// empty.
func (h *Handler) propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	switch cmd.Op {
	case fsm.OpDelete, fsm.OpCopy, fsm.OpMove:
		cmd.MaxTree, cmd.Step = h.maxTree, h.treeStep
	}
	cmd.User = fsm.UserOf(auth.User(ctx))
	res, err := h.node.Propose(ctx, cmd)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, cmd.Op, cmd.Path, err)
	}
	if res == nil {
		return nil, &statusError{status: http.StatusInternalServerError,
			msg: fmt.Sprintf("the %s entry for %s committed but the state machine returned no result; its outcome is unknown", cmd.Op, cmd.Path)}
	}
	if err := res.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// unknownOutcome is the answer to a committed entry whose OK result lacks
// what the response must report (the lock, the new ETag): the state
// machine found the entry applied already, or returned an impossible
// result. The change may or may not have happened, so no 2xx is given.
func unknownOutcome(cmd *fsm.Command, what string, res *fsm.Result) error {
	return &statusError{status: http.StatusInternalServerError,
		msg: fmt.Sprintf("the %s entry for %s committed, but its result does not describe %s; its outcome is unknown, check the resource before retrying", cmd.Op, cmd.Path, what),
		err: fmt.Errorf("fsm result %+v", *res)}
}

func (h *Handler) handleOptions(w http.ResponseWriter) error {
	w.Header().Set("DAV", "1, 2")
	w.Header().Set("MS-Author-Via", "DAV")
	w.Header().Set("Allow", allowAll)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// xdav returns an x/net/webdav handler bound to this request's view.
func (h *Handler) xdav(fs *requestFS) *xwebdav.Handler {
	return &xwebdav.Handler{FileSystem: fs, LockSystem: confirmedLocks{}}
}

func (h *Handler) resolve(ctx context.Context, fs *requestFS, p string) (metastore.Inode, bool, error) {
	ino, err := fs.resolve(ctx, p)
	if err != nil {
		if os.IsNotExist(err) {
			return metastore.Inode{}, false, nil
		}
		return metastore.Inode{}, false, err
	}
	return ino, true, nil
}

// existing resolves p and answers 404 when nothing is there.
func (h *Handler) existing(ctx context.Context, fs *requestFS, p string) (metastore.Inode, error) {
	ino, ok, err := h.resolve(ctx, fs, p)
	if err != nil {
		return metastore.Inode{}, err
	}
	if !ok {
		return metastore.Inode{}, fail(http.StatusNotFound, "%s does not exist", p)
	}
	return ino, nil
}

// checkReserved refuses a name the node API owns at the top of the
// client's namespace: a request for it never reaches WebDAV.
func (h *Handler) checkReserved(ctx context.Context, p string) error {
	if segs := fspath.Segments(clientPath(ctx, p)); len(segs) > 0 && h.reserved(segs[0]) {
		return fail(http.StatusForbidden, "/%s is reserved for the dfs node API", segs[0])
	}
	return nil
}

// statusWriter records the status and size of a response for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// sent is the status the client got: 200 when the handler wrote nothing
// (net/http's default).
func (w *statusWriter) sent() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// guardKey holds the request's store guard (Config.StoreGuard) in its
// context.
type guardKey struct{}

// Guard is a guarded read of Meta (fsm.ReadGuard): Check confirms, with a
// store read, that everything the request read was the node's state;
// CheckSeen confirms a read that depended only on what one store call
// returned together with the store's applied index (fsm.ResolveSeen).
type Guard interface {
	Check(ctx context.Context) error
	CheckSeen(applied uint64) error
}

// confirmRead fails if what the request read from Meta may not be this
// node's state (Config.StoreGuard).
func confirmRead(ctx context.Context) error {
	g, _ := ctx.Value(guardKey{}).(Guard)
	if g == nil {
		return nil
	}
	if err := g.Check(ctx); err != nil {
		return fmt.Errorf("%w: the local metadata store changed under this request: %w", ErrUnavailable, err)
	}
	return nil
}

// confirmResolved is confirmRead for an answer that depends only on the
// resolution of p by fs: when the store read the path together with its
// applied index (one Redis round trip), that index confirms it without
// another read.
func confirmResolved(ctx context.Context, fs *requestFS, p string) error {
	g, _ := ctx.Value(guardKey{}).(Guard)
	if g == nil {
		return nil
	}
	applied, seen := fs.seen[p]
	if !seen {
		return confirmRead(ctx)
	}
	if err := g.CheckSeen(applied); err != nil {
		return fmt.Errorf("%w: the local metadata store changed under this request: %w", ErrUnavailable, err)
	}
	return nil
}
