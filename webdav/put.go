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
