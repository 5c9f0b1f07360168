package webdav

import (
	"net/http"
	"strings"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
)

// handleMkcol creates a collection with one log entry, which checks the
// locks again when it applies.
func (h *Handler) handleMkcol(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		// RFC 4918 §9.3: dfs defines no MKCOL body.
		return fail(http.StatusUnsupportedMediaType, "MKCOL with a request body is not supported")
	}
	if isRoot(ctx, p) {
		return fail(http.StatusMethodNotAllowed, "the root collection exists")
	}
	if err := h.checkReserved(ctx, p); err != nil {
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
	w.Header().Set("Location", strings.TrimSuffix(hrefOf(ctx, p), "/")+"/")
	w.WriteHeader(http.StatusCreated)
	return nil
}
