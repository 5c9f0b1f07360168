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

// CheckLocks reports whether a client presenting tokens may modify every
// path in need at time now. A path protected by unexpired locks is writable
// if the client presents the token of at least one of them (one token of a
// set of shared locks suffices). For a Subtree protection the same holds
// for the root of every lock below the path. On failure it returns the root
// of a blocking lock, for the 423 response. The state machine applies the
// same function, so a handler's pre-check never disagrees with the log.
func CheckLocks(locks []metastore.Lock, now int64, tokens []string, need []Protect) (lockedPath string, ok bool) {
	for _, n := range need {
		if lp, ok := writable(locks, now, tokens, n.Path); !ok {
			return lp, false
		}
		if !n.Subtree {
			continue
		}
		for _, l := range locks {
			if l.Expired(now) || l.Root == n.Path || !fspath.IsAncestor(n.Path, l.Root) {
				continue
			}
			if lp, ok := writable(locks, now, tokens, l.Root); !ok {
				return lp, false
			}
		}
	}
	return "", true
}

func writable(locks []metastore.Lock, now int64, tokens []string, p string) (string, bool) {
	blocking := ""
	for _, l := range locks {
		if l.Expired(now) || !Covers(l, p) {
			continue
		}
		if slices.Contains(tokens, l.Token) {
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
