package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"syscall"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// handlePut streams the body into the content store and commits one log
// entry pointing the path at it. Everything the request states up front is
// checked before the body is read, so a PUT that will be refused costs no
// upload to a majority of nodes.
func (h *Handler) handlePut(w http.ResponseWriter, r *http.Request, p string) error {
	size, err := h.checkPutRequest(r, p)
	if err != nil {
		return err
	}
	release, err := h.uploadSlot()
	if err != nil {
		return err
	}
	defer release()
	target, err := h.checkPutTarget(w, r, p)
	if err != nil {
		return err
	}
	body, quotaBytes, releaseGrant, err := h.admitPutBody(w, r, p, size, target)
	if err != nil {
		return err
	}
	// Released once the entry has applied (or failed): by then its
	// bytes are in the usage the next admission reads.
	defer releaseGrant()
	hash, size, err := h.storePutBody(r.Context(), p, body)
	if err != nil {
		return err
	}
	return h.commitPut(w, r, p, target, hash, size, quotaBytes)
}

// checkPutRequest refuses what the request alone rules out and returns
// the size it announces (-1 when unknown).
func (h *Handler) checkPutRequest(r *http.Request, p string) (size int64, err error) {
	if isRoot(r.Context(), p) {
		return 0, fail(http.StatusMethodNotAllowed, "cannot PUT to the root collection")
	}
	if err := h.checkReserved(r.Context(), p); err != nil {
		return 0, err
	}
	if r.Header.Get("Content-Range") != "" {
		// RFC 9110 §14.5: a server that does not support partial PUT must
		// reject it rather than store the fragment as the whole resource.
		return 0, fail(http.StatusBadRequest, "partial PUT with Content-Range is not supported")
	}
	size = expectedSize(r)
	if lim := h.limits.MaxUploadBytes; lim > 0 && size > lim {
		return 0, fail(http.StatusRequestEntityTooLarge, "the upload of %d bytes exceeds this server's limit of %d bytes (--max-upload-bytes)", size, lim)
	}
	return size, nil
}

// putTarget is the resource a PUT replaces or creates, as found before the
// body is read. The lock tokens and ETag conditions travel in the log
// entry, so the state machine checks them again when it applies.
type putTarget struct {
	cur                  metastore.Inode
	exists               bool
	tokens               []string
	ifMatch, ifNoneMatch string
}

// checkPutTarget refuses a PUT that the state of the path rules out: no
// parent collection, a collection in the way, the If header or a lock, or
// If-Match / If-None-Match.
func (h *Handler) checkPutTarget(w http.ResponseWriter, r *http.Request, p string) (putTarget, error) {
	ctx := r.Context()
	fs := h.newFS(nil)
	dir, _ := fspath.Split(p)
	parent, ok, err := h.resolve(ctx, fs, dir)
	if err != nil {
		return putTarget{}, err
	}
	if !ok || !parent.IsDir() {
		return putTarget{}, fail(http.StatusConflict, "parent collection %s does not exist", dir)
	}
	cur, exists, err := h.resolve(ctx, fs, p)
	if err != nil {
		return putTarget{}, err
	}
	if exists && cur.IsDir() {
		w.Header().Set("Allow", "OPTIONS, GET, HEAD, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK")
		return putTarget{}, fail(http.StatusMethodNotAllowed, "%s is a collection", p)
	}
	protect := []fsm.Protect{{Path: p}}
	if !exists {
		protect = append(protect, fsm.Protect{Path: dir})
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, protect)
	if err != nil {
		return putTarget{}, err
	}
	ifMatch, ifNoneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if !etagPrecondition(cur, exists, ifMatch, ifNoneMatch) {
		return putTarget{}, fail(http.StatusPreconditionFailed, "If-Match / If-None-Match precondition failed for %s", p)
	}
	return putTarget{cur: cur, exists: exists, tokens: tokens, ifMatch: ifMatch, ifNoneMatch: ifNoneMatch}, nil
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

// admitPutBody bounds the body by the upload size limit and, with space
// accounting (Limits.Space), admits it against the quota and the free space
// before it is read and meters it as it streams. It returns the quota the
// entry enforces and a release for the admission.
func (h *Handler) admitPutBody(w http.ResponseWriter, r *http.Request, p string, size int64, t putTarget) (body io.Reader, quotaBytes int64, release func(), err error) {
	ctx := r.Context()
	body = r.Body
	if lim := h.limits.MaxUploadBytes; lim > 0 {
		body = http.MaxBytesReader(w, r.Body, lim)
	}
	sp := h.limits.Space
	if sp == nil {
		return body, 0, func() {}, nil
	}
	var replaced int64
	if t.exists {
		replaced = t.cur.Size
	}
	grant, err := sp.Admit(ctx, size, replaced)
	if err != nil {
		if se, ok := noSpaceStatus(err); ok {
			return nil, 0, nil, se
		}
		return nil, 0, nil, fmt.Errorf("admit upload to %s: %w", p, err)
	}
	return grant.Reader(ctx, body), sp.Quota(), grant.Release, nil
}

// storePutBody streams the body into the content store, pinned until
// commitPut settles it, and maps a failure to what went wrong: the
// space, the size limit, the cluster, the client or the node itself.
func (h *Handler) storePutBody(ctx context.Context, p string, body io.Reader) (hash string, size int64, err error) {
	hash, size, err = h.blobs.Write(ctx, body)
	if err == nil {
		return hash, size, nil
	}
	if se, ok := noSpaceStatus(err); ok {
		return "", 0, se
	}
	if errors.Is(err, syscall.ENOSPC) {
		return "", 0, &statusError{status: http.StatusInsufficientStorage, cond: "sufficient-disk-space", msg: "no space left on the node's data volume", err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "", 0, &statusError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("the upload exceeds this server's limit of %d bytes (--max-upload-bytes)", mbe.Limit), err: err}
	}
	if errors.Is(err, ErrUnavailable) {
		return "", 0, &statusError{status: http.StatusServiceUnavailable, msg: "the upload could not be stored on a majority of nodes; retry", err: err}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The listener's I/O timeout ended a body that stopped coming.
		return "", 0, &statusError{status: http.StatusRequestTimeout,
			msg: "the request body stopped arriving for longer than the server's I/O timeout", err: err}
	}
	if ctx.Err() != nil || isBodyError(err) {
		return "", 0, &statusError{status: http.StatusBadRequest, msg: "reading the request body failed", err: err}
	}
	return "", 0, fmt.Errorf("store content of %s: %w", p, err)
}

// isBodyError reports whether err came from reading a client's body rather
// than from dfs's own disk.
func isBodyError(err error) bool {
	var pe *os.PathError
	return !errors.As(err, &pe)
}

// commitPut proposes the entry that points p at the stored content and
// answers with the new ETag. It releases the content's pin: content whose
// entry was refused is discarded, so a refused upload leaves nothing behind.
func (h *Handler) commitPut(w http.ResponseWriter, r *http.Request, p string, t putTarget, hash string, size, quotaBytes int64) error {
	ctx := r.Context()
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
	cmd := &fsm.Command{
		Op: fsm.OpPut, Path: p, Hash: hash, Size: size, ContentType: ct,
		Tokens: t.tokens, IfMatch: t.ifMatch, IfNoneMatch: t.ifNoneMatch, Quota: quotaBytes,
	}
	res, err := h.propose(ctx, cmd)
	if err != nil {
		// Only an entry that applied and said no is final; one whose
		// outcome is unknown may still apply and needs its content.
		var fe *fsm.Error
		refused = errors.As(err, &fe)
		return err
	}
	if res.Inode.Hash != hash || res.Inode.IsDir() {
		// The content stays (unpinned, not discarded): the entry may
		// have applied.
		return unknownOutcome(cmd, "the stored file", res)
	}
	w.Header().Set("ETag", fsm.ETag(res.Inode))
	if res.Created {
		w.Header().Set("Location", hrefOf(r.Context(), p))
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
