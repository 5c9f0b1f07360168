package fsm

import (
	"slices"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// Protect names a path a mutation needs write access to. Subtree also
// requires access to every lock rooted strictly below Path (DELETE, MOVE
// and an overwritten COPY/MOVE destination remove the whole subtree).
type Protect struct {
	Path    string
	Subtree bool
}

// Covers reports whether lock l protects path p: l is rooted at p, or l has
// depth infinity and is rooted above p. Expiry is not considered.
func Covers(l metastore.Lock, p string) bool {
	return l.Root == p || (l.Infinite && fspath.IsAncestor(l.Root, p))
}

// LocksCovering returns the locks that are unexpired at now and cover p, in
// the order of locks (PROPFIND lockdiscovery, 423 bodies).
func LocksCovering(locks []metastore.Lock, now int64, p string) []metastore.Lock {
	var out []metastore.Lock
	for _, l := range locks {
		if !l.Expired(now) && Covers(l, p) {
			out = append(out, l)
		}
	}
	return out
}

// MayUse reports whether principal may submit l's token, refresh l or
// remove it (RFC 4918 §6.4: a lock token proves nothing by itself, anyone
// can read it in lockdiscovery; the lock belongs to the principal that
// created it). A lock without a principal (taken while the WebDAV API was
// open, or stored before dfs recorded principals) may be used by anyone
// who presents its token.
func MayUse(l metastore.Lock, principal string) bool {
	if isFreeze(l) {
		return false
	}
	return l.Principal == "" || l.Principal == principal || principal == anyPrincipal
}

// anyPrincipal is the principal of an entry without Command.User, from a
// leader that did not record principals: it may use every lock, as such
// a leader's nodes let it. It is no valid user name (auth.ValidUserName
// refuses control characters), so no request is ever checked as it.
const anyPrincipal = "\x00any"

// CheckLocks reports whether principal, presenting tokens, may modify
// every path in need at time now. A path protected by unexpired locks is
// writable if the client submits the token of at least one of them (one
// token of a set of shared locks suffices); a token counts as submitted
// only by a principal that may use its lock (MayUse): another user who
// presents it is refused as if it had not. For a Subtree protection the
// same holds for the root of every lock below the path. On failure it
// returns the root of a blocking lock, for the 423 response. The state
// machine applies the same function, with the principal the leader put in
// the entry, so a handler's pre-check never disagrees with the log.
func CheckLocks(locks []metastore.Lock, now int64, principal string, tokens []string, need []Protect) (lockedPath string, ok bool) {
	for _, n := range need {
		if lp, ok := writable(locks, now, principal, tokens, n.Path); !ok {
			return lp, false
		}
		if !n.Subtree {
			continue
		}
		for _, l := range locks {
			if l.Expired(now) || l.Root == n.Path || !fspath.IsAncestor(n.Path, l.Root) {
				continue
			}
			if lp, ok := writable(locks, now, principal, tokens, l.Root); !ok {
				return lp, false
			}
		}
	}
	return "", true
}

func writable(locks []metastore.Lock, now int64, principal string, tokens []string, p string) (string, bool) {
	// A tree frozen for a staged copy is not writable with any token.
	for _, l := range locks {
		if isFreeze(l) && Covers(l, p) {
			return l.Root, false
		}
	}
	blocking := ""
	for _, l := range locks {
		if l.Expired(now) || !Covers(l, p) {
			continue
		}
		if slices.Contains(tokens, l.Token) && MayUse(l, principal) {
			return "", true
		}
		if blocking == "" {
			blocking = l.Root
		}
	}
	return blocking, blocking == ""
}

// LockConflict returns an unexpired lock that prevents granting n: one whose
// scope overlaps n's (same root, or either one has depth infinity and is
// rooted above the other) unless both are shared.
func LockConflict(locks []metastore.Lock, now int64, n metastore.Lock) (metastore.Lock, bool) {
	for _, l := range locks {
		if l.Expired(now) || l.Token == n.Token {
			continue
		}
		overlap := l.Root == n.Root ||
			(l.Infinite && fspath.IsAncestor(l.Root, n.Root)) ||
			(n.Infinite && fspath.IsAncestor(n.Root, l.Root))
		if overlap && !(l.Shared && n.Shared) {
			return l, true
		}
	}
	return metastore.Lock{}, false
}
