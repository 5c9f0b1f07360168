package webdav

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
)

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
