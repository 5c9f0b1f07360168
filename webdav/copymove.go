package webdav

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// handleCopyMove serves COPY and MOVE with one log entry each. A copy
// shares the files' content by hash rather than copying bytes.
func (h *Handler) handleCopyMove(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	move := r.Method == "MOVE"
	rawDst, dstOrigin, err := ParseDestination(r.Header.Get("Destination"))
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Destination header", err: err}
	}
	dst, err := fspath.Clean(rawDst)
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "bad Destination path", err: err}
	}
	dst = inRoot(rootOf(ctx), dst)
	// A Destination naming another server gets 502 before the namespace
	// is looked at: carried out here, it would change this server's
	// resource at that path, which the client did not name. Behind an
	// ingress the Destination carries the public host, which isHere
	// knows from --public-url or a trusted proxy's X-Forwarded-Host.
	if dstOrigin != (Origin{}) {
		here, err := h.isHere(ctx, r, dstOrigin)
		if err != nil {
			return err
		}
		if !here {
			return errForeignDestination(r, dstOrigin)
		}
	}
	if err := h.checkReserved(ctx, dst); err != nil {
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
	if isRoot(ctx, p) || isRoot(ctx, dst) {
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
	// The destination's own right comes before anything that reads it, so
	// that no answer tells about a destination the user may not see.
	if err := h.require(ctx, dst, access.Write); err != nil {
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
	if err := h.checkCopyMoveAccess(ctx, fs, p, dst, src.IsDir() && depth == fsm.DepthInfinity, move); err != nil {
		return err
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
	if res.Job != "" {
		if err := h.awaitCopy(ctx, res.Job); err != nil {
			return err
		}
	}
	if res.Created {
		w.Header().Set("Location", hrefOf(ctx, dst))
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkCopyMoveAccess checks the rights a COPY or MOVE needs beyond those
// on its source and destination resources (authorize, and the handler's
// require): read (COPY) or write (MOVE) on every member it takes from the
// source tree, and write on every member it would replace or create at
// the destination.
func (h *Handler) checkCopyMoveAccess(ctx context.Context, fs *requestFS, src, dst string, tree, move bool) error {
	if h.access == nil {
		return nil
	}
	if tree {
		want := access.Read
		if move {
			want = access.Write
		}
		if err := h.checkTree(ctx, fs, src, want, nil); err != nil {
			return err
		}
	}
	var fromSrc func(string) string
	if tree {
		fromSrc = func(q string) string { return rebase(q, dst, src) }
	}
	return h.checkTree(ctx, fs, dst, access.Write, fromSrc)
}

// awaitCopy waits until the staged copy job is in place in this node's
// store: a COPY too large for one entry is built by the leader's later
// entries (fsm.OpCopyStep), and its answer must not come before the copy
// is there to read. The job cannot fail once staged; if the client gives
// up first, the copy still completes.
func (h *Handler) awaitCopy(ctx context.Context, job string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		_, err := h.meta.Lookup(ctx, metastore.StagingID, job)
		if errors.Is(err, metastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: waiting for the copy to be built: %w", ErrUnavailable, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
