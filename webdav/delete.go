package webdav

import (
	"net/http"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
)

// handleDelete removes a resource (a collection with all its members) with
// one log entry, which checks the locks in the subtree again when it
// applies.
func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	if isRoot(ctx, p) {
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
	if ino.IsDir() {
		if err := h.checkTree(ctx, fs, p, access.Write, nil); err != nil {
			return err
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
