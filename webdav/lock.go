package webdav

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	xwebdav "golang.org/x/net/webdav"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// handleLock creates a lock, or refreshes one when the body is empty. dfs
// serves LOCK itself because its locks are log entries, known to every
// node and kept across restarts, and may be shared; x/net keeps exclusive
// locks in process memory.
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
	if err := h.checkReserved(ctx, p); err != nil {
		return err
	}
	depth, err := ParseDepth(r.Header.Get("Depth"), fsm.DepthInfinity)
	if err != nil || depth == 1 {
		return fail(http.StatusBadRequest, "LOCK takes Depth 0 or infinity")
	}
	ino, exists, err := h.resolve(ctx, fs, p)
	if err != nil {
		return err
	}
	if exists && ino.IsDir() && depth == fsm.DepthInfinity {
		// A depth-infinity lock binds every member: the user must be
		// allowed to change each.
		if err := h.checkTree(ctx, fs, p, access.Write, nil); err != nil {
			return err
		}
	}
	dir, _ := fspath.Split(p)
	var protect []fsm.Protect
	if !exists {
		if isRoot(ctx, p) {
			return fail(http.StatusConflict, "no root collection")
		}
		protect = append(protect, fsm.Protect{Path: dir})
	}
	tokens, err := h.checkConditions(ctx, r, fs, p, protect)
	if err != nil {
		return err
	}
	// The lock belongs to the user the request was authenticated as
	// (RFC 4918 §6.4); the entry carries the principal, so every node
	// stores the same. With the API open there is no user: anyone who
	// presents the token may use the lock.
	lock := metastore.Lock{
		Token:     newLockToken(),
		Root:      p,
		Infinite:  depth == fsm.DepthInfinity,
		Shared:    info.Shared,
		Owner:     info.Owner,
		Timeout:   timeout,
		Created:   now.UnixNano(),
		Expires:   expires,
		Principal: auth.User(ctx),
	}
	cmd := &fsm.Command{Op: fsm.OpLock, Path: p, Lock: &lock, Tokens: tokens}
	res, err := h.propose(ctx, cmd)
	if err != nil {
		return err
	}
	if !describesLock(res.Lock, lock.Token) {
		return unknownOutcome(cmd, "the lock "+lock.Token, res)
	}
	w.Header().Set("Lock-Token", "<"+lock.Token+">")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	if res.Created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	return WriteLockResponse(w, toActiveLock(res.Lock, now, h.lockRootHref(ctx)))
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
	// Only the user who took a lock may refresh it (RFC 4918 §6.4): of the
	// locks the If header names, the first of the client's own is
	// refreshed; naming only other users' locks is forbidden.
	principal := auth.User(ctx)
	var token, others string
	for _, t := range ifh.Tokens() {
		for _, l := range fsm.LocksCovering(locks, h.now().UnixNano(), p) {
			if l.Token != t {
				continue
			}
			if !fsm.MayUse(l, principal) {
				others = t
			} else if token == "" {
				token = t
			}
		}
	}
	if token == "" && others != "" {
		return fail(http.StatusForbidden, "the lock %s belongs to another user: only the user who took a lock may refresh it", others)
	}
	if token == "" {
		return &statusError{status: http.StatusPreconditionFailed, cond: "lock-token-matches-request-uri",
			msg: "no lock named in the If header covers " + p}
	}
	cmd := &fsm.Command{Op: fsm.OpRefresh, Path: p, Token: token, Expires: expires, Timeout: timeout}
	res, err := h.propose(ctx, cmd)
	if err != nil {
		var fe *fsm.Error
		if errors.As(err, &fe) && fe.Code == fsm.NotFound {
			return fail(http.StatusPreconditionFailed, "the lock expired")
		}
		return err
	}
	if !describesLock(res.Lock, token) {
		return unknownOutcome(cmd, "the lock "+token, res)
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return WriteLockResponse(w, toActiveLock(res.Lock, h.now(), h.lockRootHref(r.Context())))
}

// handleUnlock removes the lock its Lock-Token header names with one log
// entry. Only the user who took the lock may remove it (RFC 4918 §6.4):
// anyone can read a token in lockdiscovery, so another user's UNLOCK gets
// 403, here and again when the entry applies.
func (h *Handler) handleUnlock(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	t := strings.TrimSpace(r.Header.Get("Lock-Token"))
	if len(t) < 3 || t[0] != '<' || t[len(t)-1] != '>' {
		return fail(http.StatusBadRequest, "UNLOCK needs a Lock-Token header: <token>")
	}
	token := t[1 : len(t)-1]
	locks, err := h.newFS(nil).allLocks(ctx)
	if err != nil {
		return err
	}
	principal := auth.User(ctx)
	for _, l := range fsm.LocksCovering(locks, h.now().UnixNano(), p) {
		if l.Token == token && !fsm.MayUse(l, principal) {
			return errOthersLock(token)
		}
	}
	_, err = h.propose(ctx, &fsm.Command{Op: fsm.OpUnlock, Path: p, Token: token})
	if err != nil {
		var fe *fsm.Error
		if errors.As(err, &fe) && (fe.Code == fsm.NotFound || fe.Code == fsm.Conflict) {
			return &statusError{status: http.StatusConflict, cond: "lock-token-matches-request-uri",
				msg: "the lock token does not name a lock on " + p}
		}
		if errors.As(err, &fe) && fe.Code == fsm.Forbidden {
			return errOthersLock(token)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func errOthersLock(token string) error {
	return fail(http.StatusForbidden, "the lock %s belongs to another user: only the user who took a lock may remove it", token)
}

// describesLock reports whether a lock from a state machine result is the
// one with token, with a root a response can name.
func describesLock(l metastore.Lock, token string) bool {
	if l.Token != token || l.Root == "" {
		return false
	}
	clean, err := fspath.Clean(l.Root)
	return err == nil && clean == l.Root
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
