// Package access owns who may read and who may write which paths: per-path
// permission rules for authenticated WebDAV users, read from a YAML file
// (see Parse for its format) and re-read when the file changes (see File).
// Authentication, who a user is, stays in package auth; this package only
// answers what an already authenticated user may do at a path.
//
// The rules are node configuration, like the htpasswd file, not replicated
// state: they never pass through the Raft log, and each node reads its own
// copy. That keeps a permission change independent of the cluster's health
// (an administrator can lock a path down while there is no leader) and
// keeps the state machine free of policy. The price is that every node
// must get the same file, or a request's answer depends on the node that
// serves it; on Kubernetes the file comes from one ConfigMap mounted in
// every pod, which the kubelet updates on all of them.
//
// Semantics, for user U at a clean path P: the rule whose path is the
// longest component-wise prefix of P decides (/home covers /home and
// /home/x, not /homework); U gets Write if listed under its write key,
// else Read if listed under read, else None. When no rule covers P, the
// file's default level applies. A {user} segment in a rule path stands for
// U's name, so /home/{user} is U's own home; a name that is not one valid
// path segment ("", ".", "..", "a/b", control bytes, ...) matches no {user}
// segment, so no user name can steer a rule onto another path. Between
// rules of equal length that both cover P for U, such as /home/alice and
// /home/{user} for alice, the one with a literal segment where the other has
// {user}, leftmost difference first, wins: an explicit path is the more
// specific statement.
//
// The empty user name is nobody: it gets None everywhere, whatever "*" and
// the default say, because a request without an authenticated user must
// never reach this check, and if one does it must get nothing.
package access

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dfs-project/dfs/fspath"
)

// Level is what a user may do at a path. Levels are ordered: a higher level
// includes every lower one.
type Level int8

// The levels, lowest first.
const (
	None  Level = iota // neither read nor write
	Read               // GET, PROPFIND and the other methods that change nothing
	Write              // everything Read allows, and changes
)

// String returns the level's name as the rules file spells it.
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Level(%d)", int8(l))
}

// ParseLevel returns the level named s ("none", "read" or "write").
func ParseLevel(s string) (Level, error) {
	switch s {
	case "none":
		return None, nil
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	}
	return None, fmt.Errorf("unknown level %q (want none, read or write)", s)
}

// userSeg is how a rule path names the authenticated user.
const userSeg = "{user}"

// Rules is a parsed rules file. It is immutable, and so safe for concurrent
// use.
type Rules struct {
	def   Level
	rules []*rule // in file order
	root  node    // the rules by path segment, for Level
}

// rule is one entry of the rules list.
type rule struct {
	path    string   // as written, with {user} segments
	segs    []string // path's segments; {user} ones are userSeg
	hasUser bool     // some segment is {user}
	read    members
	write   members
}

// members is the set of users one list of a rule names, groups expanded.
type members struct {
	all   bool                // "*", or "{user}" in a rule whose path has {user}
	names map[string]struct{} // plain names and group members
}

func (m *members) has(user string) bool {
	if m.all {
		return true
	}
	_, ok := m.names[user]
	return ok
}

// level is user's level at a path this rule decides.
func (r *rule) level(user string) Level {
	switch {
	case r.write.has(user):
		return Write
	case r.read.has(user):
		return Read
	}
	return None
}

// node is a trie of rule paths by segment: Level walks it along the request
// path instead of comparing every rule, and looks segments up as substrings
// of the path, so it builds no string.
type node struct {
	rule *rule // the rule whose path ends here, if any
	kids map[string]*node
	user *node // the {user} child
}

func (n *node) insert(r *rule) {
	for _, s := range r.segs {
		if s == userSeg {
			if n.user == nil {
				n.user = &node{}
			}
			n = n.user
			continue
		}
		k := n.kids[s]
		if k == nil {
			if n.kids == nil {
				n.kids = map[string]*node{}
			}
			k = &node{}
			n.kids[s] = k
		}
		n = k
	}
	n.rule = r
}

// match returns the deepest rule at or below n that covers rest (the path
// left to walk, without its leading slash) and its depth. Literal children
// are tried before {user} and only a strictly deeper match replaces the best
// so far, which makes a literal segment win over {user} at equal length.
// Each trie node sits at one depth, so the walk visits every node at most
// once, however the branches overlap.
func (n *node) match(rest, user string, userOK bool, depth int) (*rule, int) {
	best, bestDepth := n.rule, depth
	if n.rule == nil {
		bestDepth = -1
	}
	if rest == "" {
		return best, bestDepth
	}
	seg, tail := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		seg, tail = rest[:i], rest[i+1:]
	}
	if k := n.kids[seg]; k != nil {
		if r, d := k.match(tail, user, userOK, depth+1); r != nil && d > bestDepth {
			best, bestDepth = r, d
		}
	}
	if n.user != nil && userOK && seg == user {
		if r, d := n.user.match(tail, user, userOK, depth+1); r != nil && d > bestDepth {
			best, bestDepth = r, d
		}
	}
	return best, bestDepth
}

// Level returns user's level at p, a path as fspath.Clean returns it.
// A path Clean would change gets None: callers clean first, and one that
// did not must not be granted anything on a path that may mean another.
func (r *Rules) Level(user, p string) Level {
	if user == "" || !isClean(p) {
		return None
	}
	ru, _ := r.root.match(p[1:], user, segmentOK(user), 0)
	if ru == nil {
		return r.def
	}
	return ru.level(user)
}

// Boundary is a rule path below some path, and a user's level there.
type Boundary struct {
	Path  string
	Level Level
}

// Below returns, for user, every rule path strictly below p (after {user}
// substitution; rules that apply to nobody for this user are left out)
// with the user's Level at that path, sorted by path. A caller checking a
// whole subtree (DELETE, COPY, MOVE of a collection) needs only these: the
// level inside p's subtree changes nowhere else. It returns nil for a path
// fspath.Clean would change and for the empty user.
func (r *Rules) Below(user, p string) []Boundary {
	if user == "" || !isClean(p) {
		return nil
	}
	userOK := segmentOK(user)
	depth := 0
	if p != "/" {
		depth = strings.Count(p, "/")
	}
	var out []Boundary
	for _, ru := range r.rules {
		if len(ru.segs) <= depth || (ru.hasUser && !userOK) || !ru.under(p, user) {
			continue
		}
		out = append(out, Boundary{Path: ru.expand(user)})
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b Boundary) int { return strings.Compare(a.Path, b.Path) })
	// /home/alice and /home/{user} are one path for alice: list it once.
	uniq := out[:1]
	for _, b := range out[1:] {
		if b.Path != uniq[len(uniq)-1].Path {
			uniq = append(uniq, b)
		}
	}
	// The level at a boundary is whatever rule wins there, which need not
	// be the rule that produced the path (the tie above).
	for i := range uniq {
		uniq[i].Level = r.Level(user, uniq[i].Path)
	}
	return uniq
}

// under reports whether the rule's first segments, with {user} read as
// user, are the segments of the clean path p.
func (r *rule) under(p, user string) bool {
	if p == "/" {
		return true
	}
	rest := p[1:]
	for _, s := range r.segs {
		seg, tail, more := strings.Cut(rest, "/")
		// A {user} segment matches the user's name only, never a path
		// segment that happens to read "{user}".
		if s == userSeg && seg != user || s != userSeg && s != seg {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
	return false
}

// expand is the rule's path with {user} replaced by user.
func (r *rule) expand(user string) string {
	if !r.hasUser {
		return r.path
	}
	var b strings.Builder
	b.Grow(len(r.path) + len(r.segs)*len(user)) // one allocation
	for _, s := range r.segs {
		b.WriteByte('/')
		if s == userSeg {
			s = user
		}
		b.WriteString(s)
	}
	return b.String()
}

// isClean reports whether fspath.Clean returns p unchanged, without the
// allocations Clean makes: Level runs for every member of a PROPFIND
// answer. The fuzz test holds it to Clean.
func isClean(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > fspath.MaxPathBytes {
		return false
	}
	if p == "/" {
		return true
	}
	rest := p[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if !segmentOK(seg) {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
}

// segmentOK reports whether s is one path segment that fspath.Clean keeps
// as it is: not empty, "." or "..", no slash, within fspath.MaxNameBytes,
// valid UTF-8 without control bytes or backslashes. Only such a user name
// may stand for {user}: any other could make a rule name another path.
func segmentOK(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > fspath.MaxNameBytes || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		// Bytes, not runes: every byte of a multi-byte UTF-8 sequence is
		// 0x80 or above, so this sees exactly the ASCII runes Clean rejects.
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '/' {
			return false
		}
	}
	return true
}
