package webdav

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
)

// UserRoot maps each user's "/" to a folder of their own (--user-root),
// such as /home/{user}: a user who mounts the drive sees only that
// folder. The handler serves every request in the namespace of the whole
// drive; the mapping is applied where client paths come in (the request
// path, Destination, the If header's tagged resources) and undone where
// paths go out (hrefs, Location, lock roots), and a resource outside the
// user's folder is one they cannot see.
type UserRoot struct {
	segs []string // the pattern's segments; "{user}" is replaced
}

// userPlaceholder is the segment of a UserRoot pattern replaced by the
// user's name.
const userPlaceholder = "{user}"

// ParseUserRoot checks a --user-root pattern: an absolute path whose
// segments are names or {user}, at least one of them {user} (one folder
// for everyone is not a home). "" is no mapping.
func ParseUserRoot(pattern string) (UserRoot, error) {
	if pattern == "" {
		return UserRoot{}, nil
	}
	if !strings.HasPrefix(pattern, "/") {
		return UserRoot{}, fmt.Errorf("user root %q: not an absolute path", pattern)
	}
	clean, err := fspath.Clean(pattern)
	if err != nil || clean != strings.TrimSuffix(pattern, "/") || clean == "/" {
		return UserRoot{}, fmt.Errorf("user root %q: not a clean path below /", pattern)
	}
	segs := fspath.Segments(clean)
	found := false
	for _, s := range segs {
		if s == userPlaceholder {
			found = true
		} else if strings.ContainsAny(s, "{}") {
			return UserRoot{}, fmt.Errorf("user root %q: %q: only {user} may be a placeholder, as a whole segment", pattern, s)
		}
	}
	if !found {
		return UserRoot{}, fmt.Errorf("user root %q: no {user} segment: every user would share one folder", pattern)
	}
	return UserRoot{segs: segs}, nil
}

// IsZero reports whether u maps nothing.
func (u UserRoot) IsZero() bool { return len(u.segs) == 0 }

// For is user's folder. A name that cannot be one path segment has none:
// it must never reach another path.
func (u UserRoot) For(user string) (string, error) {
	if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\x00") {
		return "", fmt.Errorf("user %q has no folder: the name cannot be a path segment", user)
	}
	if p, err := fspath.Clean("/" + user); err != nil || p != "/"+user {
		return "", fmt.Errorf("user %q has no folder: the name cannot be a path segment", user)
	}
	var b strings.Builder
	for _, s := range u.segs {
		b.WriteByte('/')
		if s == userPlaceholder {
			s = user
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

type rootKey struct{}

// rootOf is the request's user folder ("" when the drive is not mapped).
func rootOf(ctx context.Context) string {
	r, _ := ctx.Value(rootKey{}).(string)
	return r
}

// withRoot puts the request's user folder in its context, for every
// path that comes in or goes out.
func (h *Handler) withRoot(r *http.Request) (*http.Request, error) {
	if h.userRoot.IsZero() {
		return r, nil
	}
	root, err := h.userRoot.For(auth.User(r.Context()))
	if err != nil {
		return r, &statusError{status: http.StatusForbidden, msg: err.Error(), err: err}
	}
	return r.WithContext(context.WithValue(r.Context(), rootKey{}, root)), nil
}

// inRoot is the drive path of a client path under root.
func inRoot(root, clientPath string) string {
	if root == "" {
		return clientPath
	}
	if clientPath == "/" {
		return root
	}
	return root + clientPath
}

// outsideRoot reports whether p lies outside the request's user folder.
func outsideRoot(ctx context.Context, p string) bool {
	root := rootOf(ctx)
	return root != "" && p != root && !fspath.IsAncestor(root, p)
}

// clientPath is the path the client knows p by (p inside its folder).
func clientPath(ctx context.Context, p string) string {
	root := rootOf(ctx)
	if root == "" {
		return p
	}
	if p == root {
		return "/"
	}
	return strings.TrimPrefix(p, root)
}

// hrefOf is p's href for the client: escaped, in its namespace.
func hrefOf(ctx context.Context, p string) string {
	return escapePath(clientPath(ctx, p))
}

// isRoot reports whether p is the client's root collection, which cannot
// be deleted, copied, moved or replaced.
func isRoot(ctx context.Context, p string) bool {
	return p == "/" || p == rootOf(ctx)
}

// NeedsLeader reports whether r's user folder does not exist yet: it is
// created through the log on the first request, so a node that does not
// lead sends such a request to the leader (cluster.Config.ForwardIf).
func (h *Handler) NeedsLeader(r *http.Request) bool {
	if h.userRoot.IsZero() {
		return false
	}
	root, err := h.userRoot.For(auth.User(r.Context()))
	if err != nil {
		return false // refused wherever it is served
	}
	if h.homes.known(root, h.now()) {
		return false
	}
	_, ok, err := h.resolve(r.Context(), h.newFS(nil), root)
	return err == nil && !ok
}

// ensureRoot creates the request's user folder, and the folders above it,
// when they do not exist: one MKCOL entry each, as the user.
func (h *Handler) ensureRoot(ctx context.Context) error {
	root := rootOf(ctx)
	if root == "" || h.homes.known(root, h.now()) {
		return nil
	}
	fs := h.newFS(nil)
	if ino, ok, err := h.resolve(ctx, fs, root); err != nil {
		return err
	} else if ok {
		if !ino.IsDir() {
			return fail(http.StatusConflict, "your folder %s is a file; ask an administrator", root)
		}
		h.homes.add(root, h.now())
		return nil
	}
	p := ""
	for _, seg := range fspath.Segments(root) {
		p += "/" + seg
		if _, ok, err := h.resolve(ctx, fs, p); err != nil {
			return err
		} else if ok {
			continue
		}
		_, err := h.propose(ctx, &fsm.Command{Op: fsm.OpMkcol, Path: p})
		var fe *fsm.Error
		if err != nil && !(errors.As(err, &fe) && fe.Code == fsm.NotAllowed) {
			return fmt.Errorf("create the user folder %s: %w", p, err)
		}
	}
	h.log.Info().Str("user", auth.User(ctx)).Str("folder", root).Msg("user folder created")
	return nil
}

// homeTTL is how long a user folder seen to exist is taken to exist
// without looking: a folder an administrator deletes is created again on
// a request at most this much later (until then the user's requests get
// 404 or 409, as for any missing collection).
const homeTTL = 10 * time.Second

// maxHomes bounds the folders remembered; past it, the memory starts
// over (one lookup per user again).
const maxHomes = 10000

// homeCache remembers user folders seen to exist, so that requests do not
// look their folder up every time.
type homeCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (c *homeCache) known(root string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[root]
	return ok && now.Sub(at) < homeTTL
}

func (c *homeCache) add(root string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil || len(c.seen) >= maxHomes {
		c.seen = make(map[string]time.Time)
	}
	c.seen[root] = now
}
