package webdav

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dfs-project/dfs/fsm"
)

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

// handlePropfind checks the body and the Depth policy before x/net walks
// the tree, and asks requestFS for the quota properties only when the body
// names them.
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
	// A missing resource is answered here rather than by x/net/webdav, so
	// the 404 goes through confirmAbsence like every other.
	if _, err := h.existing(r.Context(), fs, p); err != nil {
		return err
	}
	fs.quota.want = h.limits.Space != nil && wantsQuota(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.xdav(fs).ServeHTTP(w, r)
	// The listing went out as x/net walked the store. If the store turned
	// out not to hold the node's whole state meanwhile (flushed, rolled
	// back, reloaded), what was sent may be false: cut the connection so
	// the client cannot take it for a complete answer.
	if err := confirmRead(r.Context()); err != nil {
		h.log.Warn().Err(err).Str("path", p).Msg("PROPFIND answer cut: the metadata store changed under it")
		panic(http.ErrAbortHandler)
	}
	return nil
}

// handleProppatch evaluates the If header and the locks itself, then lets
// x/net apply the patch through requestFS, which commits it as a log entry.
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
