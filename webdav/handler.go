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
// with RFC 4918's full grammar. The same lock rules are checked again when
// the log entry applies (package fsm), so the log stays the authority even
// when two requests race.
//
// Limits (limits.go) are checked before a body is read wherever the
// request says enough: the quota and the data volume's low-water mark
// (507, through package quota), the upload size (413), the uploads in
// progress (503) and PROPFIND Depth: infinity (403). The RFC 4331 quota
// properties are served to PROPFINDs that name them.
package webdav

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// Blob is stored content opened for reading.
type Blob interface {
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
	Open(ctx context.Context, hash string, size int64) (Blob, error)
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
	return h
}

const allowAll = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"

// statusError is a failed request: the status, an optional RFC 4918
// precondition element for the error body, and a message for people.
type statusError struct {
	status int
	cond   string // e.g. "lock-token-submitted"; "" for a plain-text body
	href   string // href inside the condition element, if any
	msg    string
	err    error // cause, for the log
}

func (e *statusError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.err)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *statusError) Unwrap() error { return e.err }

func fail(status int, format string, args ...any) *statusError {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP dispatches one WebDAV request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	sw := &statusWriter{ResponseWriter: w}
	if h.observe != nil {
		// Deferred: a response that fails midway ends in a panic
		// (http.ErrAbortHandler) and still counts.
		defer func() { h.observe(r.Method, sw.sent(), sw.bytes, h.now().Sub(start)) }()
	}
	err := h.serve(sw, r)
	if err != nil {
		h.writeError(sw, r, err)
	}
	ev := h.log.Debug()
	if sw.status >= 500 {
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

func (h *Handler) writeError(w *statusWriter, r *http.Request, err error) {
	var se *statusError
	if !errors.As(err, &se) {
		se = h.classify(err)
	}
	if w.status != 0 {
		// Headers are out (a streaming response failed midway); all that is
		// left is to make sure the client cannot take a short body as whole.
		panic(http.ErrAbortHandler)
	}
	if se.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if se.cond != "" {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(se.status)
		var inner string
		if se.href != "" {
			inner = "<D:href>" + xmlEscape(se.href) + "</D:href>"
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+
			`<D:error xmlns:D="DAV:"><D:%s>%s</D:%s><D:responsedescription>%s</D:responsedescription></D:error>`+"\n",
			se.cond, inner, se.cond, xmlEscape(se.msg))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(se.status)
	if r.Method != http.MethodHead {
		fmt.Fprintln(w, se.msg)
	}
}

// classify maps an error that is not already a statusError.
func (h *Handler) classify(err error) *statusError {
	var fe *fsm.Error
	switch {
	case errors.As(err, &fe):
		return fsmStatus(fe)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		return &statusError{status: 499, msg: "request cancelled", err: err}
	case errors.Is(err, syscall.ENOSPC):
		return &statusError{status: http.StatusInsufficientStorage, cond: "sufficient-disk-space", msg: "no space left on the node's data volume", err: err}
	case errors.Is(err, ErrUnavailable):
		return &statusError{status: http.StatusServiceUnavailable, msg: "the cluster cannot commit writes right now; retry", err: err}
	}
	return &statusError{status: http.StatusInternalServerError, msg: "internal error", err: err}
}

// ErrUnavailable marks failures of the cluster rather than of the request:
// an entry that could not commit, content that no node can serve right now,
// an upload that did not reach a majority. Handlers answer 503 with
// Retry-After. Blobs implementations wrap their errors with it.
var ErrUnavailable = errors.New("cluster unavailable")

func fsmStatus(fe *fsm.Error) *statusError {
	se := &statusError{msg: fe.Error(), err: fe}
	switch fe.Code {
	case fsm.NotFound:
		se.status = http.StatusNotFound
	case fsm.Conflict:
		se.status = http.StatusConflict
	case fsm.Exists, fsm.PreconditionFailed:
		se.status = http.StatusPreconditionFailed
	case fsm.Locked:
		se.status, se.cond, se.href = http.StatusLocked, "lock-token-submitted", escapePath(fe.Path)
	case fsm.Forbidden:
		se.status = http.StatusForbidden
	case fsm.NotAllowed:
		se.status = http.StatusMethodNotAllowed
	case fsm.Invalid:
		se.status = http.StatusBadRequest
	case fsm.InsufficientStorage:
		se.status, se.cond = http.StatusInsufficientStorage, "quota-not-exceeded"
	default:
		se.status = http.StatusInternalServerError
	}
	return se
}

// propose commits one command; an error is either an *fsm.Error (the entry
// applied and said no) or ErrUnavailable-wrapped (it did not commit).
func (h *Handler) propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	res, err := h.node.Propose(ctx, cmd)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, cmd.Op, cmd.Path, err)
	}
	if err := res.Err(); err != nil {
		return res, err
	}
	return res, nil
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

// maxGetAttempts bounds how often a GET resolves its path again because the
// content it resolved to was released before it could be opened.
const maxGetAttempts = 5

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

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	// A GET opens the content before x/net answers: once the status line
	// is out, a failed read can only cut the body short, and the client
	// would get a truncated 200. Content is released as soon as the
	// overwrite or DELETE that unreferenced it commits, so a GET that
	// resolved the path just before may find it gone; it then resolves the
	// path again and serves what it holds now (or 404). Once open, the
	// content stays readable whatever happens to the path.
	failed := "" // the hash whose content could not be opened
	for attempt := 1; ; attempt++ {
		fs := h.newFS(nil)
		ino, ok, err := h.resolve(ctx, fs, p)
		if err != nil {
			return err
		}
		if !ok {
			return fail(http.StatusNotFound, "%s does not exist", p)
		}
		if ino.IsDir() {
			return h.serveCollection(w, r, p, ino)
		}
		if r.Method == http.MethodGet {
			blob, err := h.blobs.Open(ctx, ino.Hash, ino.Size)
			if err != nil {
				if ino.Hash != failed && attempt < maxGetAttempts {
					failed = ino.Hash
					continue
				}
				return fmt.Errorf("open content of %s: %w", p, err)
			}
			fs.preopened = &preopened{path: p, hash: ino.Hash, blob: blob}
			defer fs.closePreopened()
		}
		w.Header().Set("Content-Type", contentType(p, ino))
		h.xdav(fs).ServeHTTP(w, r)
		return nil
	}
}

var listingTmpl = template.Must(template.New("listing").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Index of {{.Path}}</title></head>
<body><h1>Index of {{.Path}}</h1><table>
<tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{{if .Parent}}<tr><td><a href="{{.Parent}}">../</a></td><td></td><td></td></tr>
{{end}}{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td>{{.Size}}</td><td>{{.Modified}}</td></tr>
{{end}}</table></body></html>
`))

type listingEntry struct {
	Name, Href, Size, Modified string
}

// serveCollection answers GET on a collection with an HTML index, which is
// what a person who opens the drive's URL in a browser expects.
func (h *Handler) serveCollection(w http.ResponseWriter, r *http.Request, p string, ino metastore.Inode) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Last-Modified", time.Unix(0, ino.Modified).UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ents, err := h.meta.List(r.Context(), ino.ID)
	if err != nil {
		return fmt.Errorf("list %s: %w", p, err)
	}
	data := struct {
		Path    string
		Parent  string
		Entries []listingEntry
	}{Path: p}
	if p != "/" {
		dir, _ := fspath.Split(p)
		data.Parent = escapePath(dir)
		if data.Parent != "/" {
			data.Parent += "/"
		}
	}
	for _, e := range ents {
		le := listingEntry{
			Name:     e.Name,
			Href:     escapePath(fspath.Join(p, e.Name)),
			Modified: time.Unix(0, e.Inode.Modified).UTC().Format(time.RFC3339),
		}
		if e.Inode.IsDir() {
			le.Name += "/"
			le.Href += "/"
		} else {
			le.Size = strconv.FormatInt(e.Inode.Size, 10)
		}
		data.Entries = append(data.Entries, le)
	}
	w.WriteHeader(http.StatusOK)
	if err := listingTmpl.Execute(w, data); err != nil {
		return fmt.Errorf("write listing of %s: %w", p, err)
	}
	return nil
}

func (h *Handler) checkReserved(p string) error {
	if segs := fspath.Segments(p); len(segs) > 0 && h.reserved(segs[0]) {
		return fail(http.StatusForbidden, "/%s is reserved for the dfs node API", segs[0])
	}
	return nil
}

func (h *Handler) handlePut(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	if p == "/" {
		return fail(http.StatusMethodNotAllowed, "cannot PUT to the root collection")
	}
	if err := h.checkReserved(p); err != nil {
		return err
	}
	if r.Header.Get("Content-Range") != "" {
		// RFC 9110 §14.5: a server that does not support partial PUT must
		// reject it rather than store the fragment as the whole resource.
		return fail(http.StatusBadRequest, "partial PUT with Content-Range is not supported")
	}
	size := expectedSize(r)
	if lim := h.limits.MaxUploadBytes; lim > 0 && size > lim {
		return fail(http.StatusRequestEntityTooLarge, "the upload of %d bytes exceeds this server's limit of %d bytes (--max-upload-bytes)", size, lim)
	}
	release, err := h.uploadSlot()
	if err != nil {
		return err
	}
	defer release()
	fs := h.newFS(nil)
	dir, _ := fspath.Split(p)
	parent, ok, err := h.resolve(ctx, fs, dir)
	if err != nil {
		return err
	}
	if !ok || !parent.IsDir() {
		return fail(http.StatusConflict, "parent collection %s does not exist", dir)
	}
	cur, exists, err := h.resolve(ctx, fs, p)
	if err != nil {
		return err
	}
	if exists && cur.IsDir() {
		w.Header().Set("Allow", "OPTIONS, GET, HEAD, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK")
		return fail(http.StatusMethodNotAllowed, "%s is a collection", p)
	}
	protect := []fsm.Protect{{Path: p}}
	if !exists {
		protect = append(protect, fsm.Protect{Path: dir})
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, protect)
	if err != nil {
		return err
	}
	ifMatch, ifNoneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if !etagPrecondition(cur, exists, ifMatch, ifNoneMatch) {
		return fail(http.StatusPreconditionFailed, "If-Match / If-None-Match precondition failed for %s", p)
	}

	var body io.Reader = r.Body
	if lim := h.limits.MaxUploadBytes; lim > 0 {
		body = http.MaxBytesReader(w, r.Body, lim)
	}
	var quotaBytes int64
	if sp := h.limits.Space; sp != nil {
		var replaced int64
		if exists {
			replaced = cur.Size
		}
		grant, err := sp.Admit(ctx, size, replaced)
		if err != nil {
			if se, ok := noSpaceStatus(err); ok {
				return se
			}
			return fmt.Errorf("admit upload to %s: %w", p, err)
		}
		// Released once the entry has applied (or failed): by then its
		// bytes are in the usage the next admission reads.
		defer grant.Release()
		body = grant.Reader(ctx, body)
		quotaBytes = sp.Quota()
	}

	hash, size, err := h.blobs.Write(ctx, body)
	if err != nil {
		if se, ok := noSpaceStatus(err); ok {
			return se
		}
		if errors.Is(err, syscall.ENOSPC) {
			return &statusError{status: http.StatusInsufficientStorage, cond: "sufficient-disk-space", msg: "no space left on the node's data volume", err: err}
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &statusError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("the upload exceeds this server's limit of %d bytes (--max-upload-bytes)", mbe.Limit), err: err}
		}
		if errors.Is(err, ErrUnavailable) {
			return &statusError{status: http.StatusServiceUnavailable, msg: "the upload could not be stored on a majority of nodes; retry", err: err}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The listener's I/O timeout ended a body that stopped coming.
			return &statusError{status: http.StatusRequestTimeout,
				msg: "the request body stopped arriving for longer than the server's I/O timeout", err: err}
		}
		if ctx.Err() != nil || isBodyError(err) {
			return &statusError{status: http.StatusBadRequest, msg: "reading the request body failed", err: err}
		}
		return fmt.Errorf("store content of %s: %w", p, err)
	}
	refused := false
	defer func() {
		if refused {
			h.blobs.Discard(context.WithoutCancel(ctx), hash)
		} else {
			h.blobs.Unpin(hash)
		}
	}()

	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			ct = ""
		}
	}
	res, err := h.propose(ctx, &fsm.Command{
		Op: fsm.OpPut, Path: p, Hash: hash, Size: size, ContentType: ct,
		Tokens: tokens, IfMatch: ifMatch, IfNoneMatch: ifNoneMatch, Quota: quotaBytes,
	})
	if err != nil {
		// Only an entry that applied and said no is final; one whose
		// outcome is unknown may still apply and needs its content.
		var fe *fsm.Error
		refused = errors.As(err, &fe)
		return err
	}
	w.Header().Set("ETag", fsm.ETag(res.Inode))
	if res.Created {
		w.Header().Set("Location", escapePath(p))
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isBodyError reports whether err came from reading a client's body rather
// than from dfs's own disk.
func isBodyError(err error) bool {
	var pe *os.PathError
	return !errors.As(err, &pe)
}

// etagPrecondition evaluates If-Match and If-None-Match for a PUT before
// its body is read. It calls the functions the state machine calls when
// the entry applies, so the two cannot disagree: a PUT the entry would
// refuse is refused before its body is uploaded to a majority.
func etagPrecondition(cur metastore.Inode, exists bool, ifMatch, ifNoneMatch string) bool {
	etag := ""
	if exists {
		etag = fsm.ETag(cur)
	}
	return fsm.IfNoneMatch(ifNoneMatch, etag, exists) && fsm.IfMatch(ifMatch, etag, exists)
}

func (h *Handler) handleMkcol(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		// RFC 4918 §9.3: dfs defines no MKCOL body.
		return fail(http.StatusUnsupportedMediaType, "MKCOL with a request body is not supported")
	}
	if p == "/" {
		return fail(http.StatusMethodNotAllowed, "the root collection exists")
	}
	if err := h.checkReserved(p); err != nil {
		return err
	}
	fs := h.newFS(nil)
	if _, ok, err := h.resolve(ctx, fs, p); err != nil {
		return err
	} else if ok {
		w.Header().Set("Allow", "OPTIONS, GET, HEAD, PUT, DELETE, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK")
		return fail(http.StatusMethodNotAllowed, "%s already exists", p)
	}
	dir, _ := fspath.Split(p)
	if parent, ok, err := h.resolve(ctx, fs, dir); err != nil {
		return err
	} else if !ok || !parent.IsDir() {
		return fail(http.StatusConflict, "parent collection %s does not exist", dir)
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, []fsm.Protect{{Path: dir}})
	if err != nil {
		return err
	}
	if _, err := h.propose(ctx, &fsm.Command{Op: fsm.OpMkcol, Path: p, Tokens: tokens}); err != nil {
		return err
	}
	w.Header().Set("Location", escapePath(p)+"/")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	if p == "/" {
		return fail(http.StatusForbidden, "the root collection cannot be deleted")
	}
	fs := h.newFS(nil)
	ino, err := h.existing(ctx, fs, p)
	if err != nil {
		return err
	}
	if d := r.Header.Get("Depth"); d != "" && ino.IsDir() {
		if depth, err := ParseDepth(d, fsm.DepthInfinity); err != nil || depth != fsm.DepthInfinity {
			// RFC 4918 §9.6.1: DELETE on a collection acts as Depth: infinity
			// and the client must not ask for anything else.
			return fail(http.StatusBadRequest, "DELETE of a collection requires Depth: infinity")
		}
	}
	dir, _ := fspath.Split(p)
	tokens, err := h.checkConditions(ctx, r, fs, p, []fsm.Protect{{Path: p, Subtree: true}, {Path: dir}})
	if err != nil {
		return err
	}
	if _, err := h.propose(ctx, &fsm.Command{Op: fsm.OpDelete, Path: p, Tokens: tokens}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleCopyMove(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	move := r.Method == "MOVE"
	// A Destination naming another host is accepted: behind an ingress it
	// carries the ingress's host, and the path is all dfs needs.
	rawDst, _, err := ParseDestination(r.Header.Get("Destination"), r.Host)
	if err != nil && !errors.Is(err, ErrForeignDestination) {
		return &statusError{status: http.StatusBadRequest, msg: "bad Destination header", err: err}
	}
	dst, err := fspath.Clean(rawDst)
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Destination path", err: err}
	}
	if err := h.checkReserved(dst); err != nil {
		return err
	}
	overwrite, err := ParseOverwrite(r.Header.Get("Overwrite"))
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Overwrite header", err: err}
	}
	depth, err := ParseDepth(r.Header.Get("Depth"), fsm.DepthInfinity)
	if err != nil || depth == 1 || (move && depth != fsm.DepthInfinity) {
		// RFC 4918 §9.8.3 and §9.9.2: COPY takes 0 or infinity, MOVE only infinity.
		return fail(http.StatusBadRequest, "bad Depth for %s", r.Method)
	}
	if p == "/" || dst == "/" {
		return fail(http.StatusForbidden, "the root collection cannot be copied, moved or replaced")
	}
	if p == dst {
		return fail(http.StatusForbidden, "source and destination are the same resource")
	}
	fs := h.newFS(nil)
	src, err := h.existing(ctx, fs, p)
	if err != nil {
		return err
	}
	if src.IsDir() && fspath.IsAncestor(p, dst) {
		return fail(http.StatusForbidden, "cannot %s a collection into itself", strings.ToLower(r.Method))
	}
	_, dstExists, err := h.resolve(ctx, fs, dst)
	if err != nil {
		return err
	}
	if dstExists && !overwrite {
		return fail(http.StatusPreconditionFailed, "%s exists and Overwrite is F", dst)
	}
	dstDir, _ := fspath.Split(dst)
	if parent, ok, err := h.resolve(ctx, fs, dstDir); err != nil {
		return err
	} else if !ok || !parent.IsDir() {
		return fail(http.StatusConflict, "destination collection %s does not exist", dstDir)
	}
	protect := []fsm.Protect{{Path: dst, Subtree: true}, {Path: dstDir}}
	if move {
		srcDir, _ := fspath.Split(p)
		protect = append(protect, fsm.Protect{Path: p, Subtree: true}, fsm.Protect{Path: srcDir})
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, protect)
	if err != nil {
		return err
	}
	op := fsm.OpCopy
	if move {
		op = fsm.OpMove
	}
	cmd := &fsm.Command{Op: op, Path: p, Dest: dst, Depth: depth, Overwrite: overwrite, Tokens: tokens}
	if sp := h.limits.Space; sp != nil && !move {
		// A copy adds the logical size of everything it copies: the
		// entry refuses it (507) when that exceeds the quota.
		cmd.Quota = sp.Quota()
	}
	res, err := h.propose(ctx, cmd)
	if err != nil {
		return err
	}
	if res.Created {
		w.Header().Set("Location", escapePath(dst))
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readXMLBody reads and checks a bounded XML request body.
func (h *Handler) readXMLBody(r *http.Request) ([]byte, error) {
	body, err := CheckXMLBody(r.Body, h.maxXML)
	if err != nil {
		if errors.Is(err, ErrBodyTooLarge) {
			return nil, &statusError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the XML body is larger than this server's limit of %d bytes (--max-xml-bytes)", h.maxXML), err: err}
		}
		return nil, &statusError{status: http.StatusBadRequest, msg: "malformed XML body: " + err.Error(), err: err}
	}
	return body, nil
}

func (h *Handler) handlePropfind(w http.ResponseWriter, r *http.Request, p string) error {
	body, err := h.readXMLBody(r)
	if err != nil {
		return err
	}
	depth, err := ParseDepth(r.Header.Get("Depth"), fsm.DepthInfinity)
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Depth header", err: err}
	}
	fs := h.newFS(nil)
	if err := h.checkPropfindDepth(r.Context(), fs, p, depth); err != nil {
		return err
	}
	fs.quota.want = h.limits.Space != nil && wantsQuota(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.xdav(fs).ServeHTTP(w, r)
	return nil
}

func (h *Handler) handleProppatch(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	body, err := h.readXMLBody(r)
	if err != nil {
		return err
	}
	fs := h.newFS(nil)
	if _, err := h.existing(ctx, fs, p); err != nil {
		return err
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, []fsm.Protect{{Path: p}})
	if err != nil {
		return err
	}
	fs.tokens = tokens
	// The If header has been evaluated (checkConditions) and its tokens
	// travel in the log entry. x/net must not evaluate it again: it skips
	// every tagged list whose host differs from the request's and then
	// answers 412, so behind an ingress, where tags carry the ingress's
	// host (as Destination does), a lock holder could not PROPPATCH the
	// resource it had locked while its PUT to the same resource succeeded.
	r.Header.Del("If")
	r.Body = io.NopCloser(bytes.NewReader(body))
	// x/net answers 500 to any error from file.Patch. Patch records the
	// errors that have a better answer (the resource was deleted after it
	// was resolved: 404; the entry did not commit: 503) and this writer
	// drops x/net's 500 so writeError can give that answer instead.
	h.xdav(fs).ServeHTTP(&patchErrorWriter{ResponseWriter: w, fs: fs}, r)
	if fs.patchErr != nil {
		return fs.patchErr
	}
	return nil
}

// patchErrorWriter passes a PROPPATCH response through unless file.Patch
// recorded an error, in which case it discards what x/net writes.
type patchErrorWriter struct {
	http.ResponseWriter
	fs *requestFS
}

func (w *patchErrorWriter) WriteHeader(code int) {
	if w.fs.patchErr == nil {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *patchErrorWriter) Write(b []byte) (int, error) {
	if w.fs.patchErr != nil {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// checkConditions evaluates the If header (RFC 4918 §10.4) and the locks
// protecting the paths the request will change. It returns the lock tokens
// the client submitted, which travel in the log entry so the state machine
// can re-check the locks when the entry applies.
func (h *Handler) checkConditions(ctx context.Context, r *http.Request, fs *requestFS, p string, protect []fsm.Protect) ([]string, error) {
	locks, err := fs.allLocks(ctx)
	if err != nil {
		return nil, err
	}
	now := h.now()
	var tokens []string
	if hdr := r.Header.Get("If"); hdr != "" {
		ifh, err := ParseIf(hdr)
		if err != nil {
			return nil, &statusError{status: http.StatusBadRequest, msg: "malformed If header", err: err}
		}
		var stateErr error
		state := func(q string) (etag string, tokens []string, exists bool) {
			ino, ok, err := h.resolve(ctx, fs, q)
			if err != nil {
				stateErr = err
				return "", nil, false
			}
			for _, l := range activeLocks(locks, q, now) {
				tokens = append(tokens, l.Token)
			}
			if ok {
				etag = fsm.ETag(ino)
			}
			return etag, tokens, ok
		}
		ok := ifh.Eval(p, resolveTag, state)
		if stateErr != nil {
			return nil, stateErr
		}
		if !ok {
			return nil, fail(http.StatusPreconditionFailed, "the If header's conditions do not hold")
		}
		tokens = ifh.Tokens()
	}
	if lockedPath, ok := fsm.CheckLocks(locks, now.UnixNano(), tokens, protect); !ok {
		return nil, &statusError{
			status: http.StatusLocked, cond: "lock-token-submitted", href: escapePath(lockedPath),
			msg: fmt.Sprintf("%s is locked and the request did not submit its lock token", lockedPath),
		}
	}
	return tokens, nil
}

// resolveTag maps an If header resource tag to a clean path. Any host is
// accepted: behind an ingress the tag carries the ingress's host.
func resolveTag(resource string) (string, bool) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", false
	}
	p, err := fspath.Clean(u.Path)
	if err != nil {
		return "", false
	}
	return p, true
}

func (h *Handler) handleLock(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	// ParseTimeout caps every timeout, Infinite included, at a week: an
	// abandoned infinite lock would otherwise block a path forever.
	timeout, _, err := ParseTimeout(r.Header.Get("Timeout"))
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Timeout header", err: err}
	}
	info, err := ParseLockInfo(r.Body, h.maxXML)
	if err != nil {
		if errors.Is(err, ErrBodyTooLarge) {
			return &statusError{status: http.StatusRequestEntityTooLarge, msg: "lockinfo body too large", err: err}
		}
		if errors.Is(err, ErrUnsupportedLock) {
			return &statusError{status: http.StatusUnprocessableEntity, msg: "only write locks are supported", err: err}
		}
		return &statusError{status: http.StatusBadRequest, msg: "malformed lockinfo: " + err.Error(), err: err}
	}
	now := h.now()
	expires := now.Add(time.Duration(timeout) * time.Second).UnixNano()
	fs := h.newFS(nil)
	if info.Empty {
		return h.refreshLock(w, r, fs, p, timeout, expires)
	}
	if err := h.checkReserved(p); err != nil {
		return err
	}
	depth, err := ParseDepth(r.Header.Get("Depth"), fsm.DepthInfinity)
	if err != nil || depth == 1 {
		return fail(http.StatusBadRequest, "LOCK takes Depth 0 or infinity")
	}
	_, exists, err := h.resolve(ctx, fs, p)
	if err != nil {
		return err
	}
	dir, _ := fspath.Split(p)
	var protect []fsm.Protect
	if !exists {
		if p == "/" {
			return fail(http.StatusConflict, "no root collection")
		}
		protect = append(protect, fsm.Protect{Path: dir})
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, protect)
	if err != nil {
		return err
	}
	lock := metastore.Lock{
		Token:    newLockToken(),
		Root:     p,
		Infinite: depth == fsm.DepthInfinity,
		Shared:   info.Shared,
		Owner:    info.Owner,
		Timeout:  timeout,
		Created:  now.UnixNano(),
		Expires:  expires,
	}
	res, err := h.propose(ctx, &fsm.Command{Op: fsm.OpLock, Path: p, Lock: &lock, Tokens: tokens})
	if err != nil {
		return err
	}
	w.Header().Set("Lock-Token", "<"+lock.Token+">")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	if res.Created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	return WriteLockResponse(w, toActiveLock(res.Lock, now))
}

func (h *Handler) refreshLock(w http.ResponseWriter, r *http.Request, fs *requestFS, p string, timeout, expires int64) error {
	ctx := r.Context()
	hdr := r.Header.Get("If")
	if hdr == "" {
		return fail(http.StatusBadRequest, "a lock refresh needs an If header naming the lock token")
	}
	ifh, err := ParseIf(hdr)
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "malformed If header", err: err}
	}
	locks, err := fs.allLocks(ctx)
	if err != nil {
		return err
	}
	var token string
	for _, t := range ifh.Tokens() {
		for _, l := range activeLocks(locks, p, h.now()) {
			if l.Token == t {
				token = t
			}
		}
	}
	if token == "" {
		return &statusError{status: http.StatusPreconditionFailed, cond: "lock-token-matches-request-uri",
			msg: "no lock named in the If header covers " + p}
	}
	res, err := h.propose(ctx, &fsm.Command{Op: fsm.OpRefresh, Path: p, Token: token, Expires: expires, Timeout: timeout})
	if err != nil {
		var fe *fsm.Error
		if errors.As(err, &fe) && fe.Code == fsm.NotFound {
			return fail(http.StatusPreconditionFailed, "the lock expired")
		}
		return err
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return WriteLockResponse(w, toActiveLock(res.Lock, h.now()))
}

func (h *Handler) handleUnlock(w http.ResponseWriter, r *http.Request, p string) error {
	t := strings.TrimSpace(r.Header.Get("Lock-Token"))
	if len(t) < 3 || t[0] != '<' || t[len(t)-1] != '>' {
		return fail(http.StatusBadRequest, "UNLOCK needs a Lock-Token header: <token>")
	}
	_, err := h.propose(r.Context(), &fsm.Command{Op: fsm.OpUnlock, Path: p, Token: t[1 : len(t)-1]})
	if err != nil {
		var fe *fsm.Error
		if errors.As(err, &fe) && (fe.Code == fsm.NotFound || fe.Code == fsm.Conflict) {
			return &statusError{status: http.StatusConflict, cond: "lock-token-matches-request-uri",
				msg: "the lock token does not name a lock on " + p}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newLockToken returns a fresh opaquelocktoken URI (RFC 4918 Appendix C):
// a random (version 4) UUID. The leader draws it; the log entry carries it.
func newLockToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read does not fail on supported platforms (Go 1.24+).
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return "opaquelocktoken:" + s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// confirmedLocks is the LockSystem handed to x/net/webdav for the methods
// it serves. dfs has already evaluated the If header and the locks
// (checkConditions) before x/net runs, and the state machine checks them
// again at apply time, so x/net's own confirmation must simply agree.
type confirmedLocks struct{}

func (confirmedLocks) Confirm(time.Time, string, string, ...xwebdav.Condition) (func(), error) {
	return func() {}, nil
}
func (confirmedLocks) Create(time.Time, xwebdav.LockDetails) (string, error) {
	return "dfs-request-guard", nil
}
func (confirmedLocks) Refresh(time.Time, string, time.Duration) (xwebdav.LockDetails, error) {
	return xwebdav.LockDetails{}, xwebdav.ErrNoSuchLock
}
func (confirmedLocks) Unlock(time.Time, string) error { return nil }

func xmlEscape(s string) string {
	var b strings.Builder
	// Writing to a strings.Builder cannot fail.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
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
