package webdav

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fspath"
)

// Access is the per-path permission rules as the WebDAV layer asks them
// (package access): what a user may do at a path, and where below a path
// that changes. The rules are node configuration: the handler that serves
// a request decides (for a forwarded write, the leader, with the user the
// follower vouches for), and the state machine checks nothing that
// depends on them.
type Access interface {
	Level(user, p string) access.Level
	Below(user, p string) []access.Boundary
}

// level is what the request's user may do at p; without rules, everything
// (the user's role, read-only or not, is the auth gate's concern).
func (h *Handler) level(ctx context.Context, p string) access.Level {
	if h.access == nil {
		return access.Write
	}
	return h.access.Level(auth.User(ctx), p)
}

// hidden reports whether the request's user may not see p: such a path
// answers as if it did not exist and is named in no answer.
func (h *Handler) hidden(ctx context.Context, p string) bool {
	if outsideRoot(ctx, p) {
		return true
	}
	return h.access != nil && h.access.Level(auth.User(ctx), p) < access.Read
}

// need is the right a method needs on the resource it names. COPY needs
// read on its source (its destination is checked with the tree, in
// handleCopyMove); OPTIONS needs nothing, it says what the server does.
func need(method string) access.Level {
	switch method {
	case http.MethodOptions:
		return access.None
	case http.MethodGet, http.MethodHead, "PROPFIND", "COPY":
		return access.Read
	}
	return access.Write
}

// authorize refuses a request whose user lacks the right its method needs
// on p: 404 where they may not read (as if p did not exist, so that the
// answer tells nothing about it), 403 where they may read but not write.
func (h *Handler) authorize(ctx context.Context, method, p string) error {
	if h.access == nil {
		return nil
	}
	return h.require(ctx, p, need(method))
}

func (h *Handler) require(ctx context.Context, p string, want access.Level) error {
	switch got := h.level(ctx, p); {
	case got >= want:
		return nil
	case got < access.Read:
		return fail(http.StatusNotFound, "%s does not exist", p)
	default:
		return fail(http.StatusForbidden, "%s may read %s but not change it", auth.User(ctx), p)
	}
}

// deniedError refuses an operation on a whole tree that would touch
// members the user lacks the right for: RFC 4918 answers 207 with each
// such member's status (§9.6.1, §9.8.8). Only members the user may read
// are named; when every one is hidden the answer is a plain 403 on the
// request's resource. Nothing was changed.
type deniedError struct {
	members []string // readable members refused, for the 207 body
	msg     string
}

func (e *deniedError) Error() string { return e.msg }

// checkTree checks want on every existing member of the tree at root
// that the rules treat differently from root itself (access.Boundary);
// root's own level the caller has checked. mapped, if set, names further
// paths whose existence also counts for a boundary below root: a COPY or
// MOVE creates at the destination what exists at the source.
func (h *Handler) checkTree(ctx context.Context, fs *requestFS, root string, want access.Level, mapped func(string) string) error {
	if h.access == nil {
		return nil
	}
	user := auth.User(ctx)
	var denied []string
	hiddenOnes := 0
	for _, b := range h.access.Below(user, root) {
		if b.Level >= want {
			continue
		}
		// A boundary that does not exist has nothing below it either: a
		// member cannot exist without its parent.
		exists, err := h.present(ctx, fs, b.Path)
		if err != nil {
			return err
		}
		if !exists && mapped != nil {
			if exists, err = h.present(ctx, fs, mapped(b.Path)); err != nil {
				return err
			}
		}
		if !exists {
			continue
		}
		if b.Level < access.Read {
			hiddenOnes++
			continue
		}
		denied = append(denied, b.Path)
	}
	if len(denied) == 0 && hiddenOnes == 0 {
		return nil
	}
	return &deniedError{members: denied,
		msg: fmt.Sprintf("%s holds members %s may not change; nothing was changed", root, user)}
}

// present reports whether p exists, whoever may see it.
func (h *Handler) present(ctx context.Context, fs *requestFS, p string) (bool, error) {
	_, ok, err := h.resolve(ctx, fs, p)
	return ok, err
}

// rebase maps a path under from to the same place under to.
func rebase(p, from, to string) string {
	if p == from {
		return to
	}
	return fspath.Join(to, strings.TrimPrefix(p, from+"/"))
}

// writeDenied answers a deniedError.
func writeDenied(w http.ResponseWriter, r *http.Request, e *deniedError) {
	if len(e.members) == 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			fmt.Fprintln(w, e.msg)
		}
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:">`)
	for _, m := range e.members {
		b.WriteString("<D:response><D:href>" + xmlEscape(hrefOf(r.Context(), m)) + "</D:href>" +
			"<D:status>HTTP/1.1 403 Forbidden</D:status>" +
			"<D:responsedescription>" + xmlEscape(e.msg) + "</D:responsedescription></D:response>")
	}
	b.WriteString("</D:multistatus>\n")
	_, _ = w.Write([]byte(b.String()))
}

// lockRootHref returns what lockdiscovery shows of each lock's root: its
// href in the client's namespace, or nothing ("") when the user may not
// see it. A depth-infinity lock taken on a collection the user cannot see
// still shows, and still binds, on the members they can.
func (h *Handler) lockRootHref(ctx context.Context) func(root string) string {
	return func(root string) string {
		if h.hidden(ctx, root) {
			return ""
		}
		return hrefOf(ctx, root)
	}
}
