package webdav

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// checkConditions evaluates the If header (RFC 4918 §10.4) and the locks
// protecting the paths the request will change. It returns the lock tokens
// the client submitted, which travel in the log entry so the state machine
// can re-check the locks when the entry applies.
//
// A token counts as submitted only by the principal that took its lock
// (RFC 4918 §6.4; fsm.CheckLocks): the If header may well be true, since
// the token does name a lock of the resource, but the lock is not
// satisfied and the request gets 423, as if the token had not been sent.
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
			if h.hidden(ctx, q) {
				// A tagged list naming a path the user may not see must
				// not tell whether it exists, or its ETag.
				return "", nil, false
			}
			ino, ok, err := h.resolve(ctx, fs, q)
			if err != nil {
				stateErr = err
				return "", nil, false
			}
			for _, l := range activeLocks(locks, q, now, nil) {
				tokens = append(tokens, l.Token)
			}
			if ok {
				etag = fsm.ETag(ino)
			}
			return etag, tokens, ok
		}
		root := rootOf(ctx)
		tag := func(resource string) (string, bool) {
			q, ok := resolveTag(resource)
			return inRoot(root, q), ok
		}
		ok := ifh.Eval(p, tag, state)
		if stateErr != nil {
			return nil, stateErr
		}
		if !ok {
			return nil, fail(http.StatusPreconditionFailed, "the If header's conditions do not hold")
		}
		tokens = ifh.Tokens()
	}
	principal := auth.User(ctx)
	if lockedPath, ok := fsm.CheckLocks(locks, now.UnixNano(), principal, tokens, protect); !ok {
		msg := fmt.Sprintf("%s is locked and the request did not submit its lock token", lockedPath)
		if othersToken(locks, now.UnixNano(), principal, tokens) {
			msg = fmt.Sprintf("%s is locked and the request did not submit a lock token of its own: "+
				"a lock token counts only when the user who took the lock submits it", lockedPath)
		}
		return nil, &statusError{status: http.StatusLocked, cond: "lock-token-submitted", path: lockedPath, msg: msg}
	}
	return tokens, nil
}

// othersToken reports whether tokens name an unexpired lock that
// principal may not use: the 423 then says why the token did not count.
func othersToken(locks []metastore.Lock, now int64, principal string, tokens []string) bool {
	for _, l := range locks {
		if !l.Expired(now) && slices.Contains(tokens, l.Token) && !fsm.MayUse(l, principal) {
			return true
		}
	}
	return false
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
