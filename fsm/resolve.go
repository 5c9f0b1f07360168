package fsm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// ErrParentMissing is wrapped, together with metastore.ErrNotFound, by the
// errors Resolve and ResolveParent return when a collection above the last
// segment is missing or is a file. WebDAV answers such requests with 409
// Conflict rather than 404.
var ErrParentMissing = errors.New("fsm: parent collection missing")

// ErrRoot is returned by ResolveParent for "/", which has no parent.
var ErrRoot = errors.New("fsm: the root has no parent")

// PathError says why a path did not resolve. It matches
// metastore.ErrNotFound with errors.Is, and also ErrParentMissing when
// Parent is set.
type PathError struct {
	Path   string // the path being resolved
	At     string // the first prefix of Path that is missing or is a file
	Parent bool   // something above the last segment is missing or is a file
}

func (e *PathError) Error() string {
	if e.Parent {
		return fmt.Sprintf("fsm: %s: %s is missing or not a collection", e.Path, e.At)
	}
	return fmt.Sprintf("fsm: %s: not found", e.Path)
}

// Unwrap lets errors.Is see metastore.ErrNotFound (always) and
// ErrParentMissing (when Parent is set).
func (e *PathError) Unwrap() []error {
	if e.Parent {
		return []error{metastore.ErrNotFound, ErrParentMissing}
	}
	return []error{metastore.ErrNotFound}
}

// rootInode returns the stored root, or the synthesized empty one: a
// namespace whose OpInit has not been applied yet still has a root.
func rootInode(ctx context.Context, r metastore.Reader) (metastore.Inode, error) {
	in, err := r.Get(ctx, metastore.RootID)
	if errors.Is(err, metastore.ErrNotFound) {
		return metastore.Inode{ID: metastore.RootID, Kind: metastore.KindDir}, nil
	}
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("fsm: read root: %w", err)
	}
	return in, nil
}

// Resolve walks a clean path from the root, one Lookup per segment. A
// missing path yields a *PathError; any other error comes from the store.
func Resolve(ctx context.Context, r metastore.Reader, path string) (metastore.Inode, error) {
	ino, _, _, err := ResolveSeen(ctx, r, path)
	return ino, err
}

// ResolveSeen is Resolve that also reports, when the store walked the path
// itself (metastore.PathResolver), the applied index it read at, with seen
// true: a read that depends on that inode alone can be confirmed with it
// (ReadGuard.CheckSeen). The index comes with a missing path too.
func ResolveSeen(ctx context.Context, r metastore.Reader, path string) (ino metastore.Inode, applied uint64, seen bool, err error) {
	if pr, ok := r.(metastore.PathResolver); ok {
		return resolveAtOnce(ctx, pr, path)
	}
	ino, err = resolveWalking(ctx, r, path)
	return ino, 0, false, err
}

// resolveWalking is Resolve one Lookup per segment.
func resolveWalking(ctx context.Context, r metastore.Reader, path string) (metastore.Inode, error) {
	cur, err := rootInode(ctx, r)
	if err != nil {
		return metastore.Inode{}, err
	}
	segs := fspath.Segments(path)
	at := "/"
	for i, name := range segs {
		if !cur.IsDir() {
			return metastore.Inode{}, &PathError{Path: path, At: at, Parent: true}
		}
		next := fspath.Join(at, name)
		child, err := r.Lookup(ctx, cur.ID, name)
		if errors.Is(err, metastore.ErrNotFound) {
			return metastore.Inode{}, &PathError{Path: path, At: next, Parent: i < len(segs)-1}
		}
		if err != nil {
			return metastore.Inode{}, fmt.Errorf("fsm: resolve %s: %w", next, err)
		}
		cur, at = child, next
	}
	return cur, nil
}

// ResolveParent returns the collection that holds path and the last segment
// of path. If that collection is missing or is a file the error is a
// *PathError wrapping ErrParentMissing; for "/" it is ErrRoot. Whether path
// itself exists is not checked.
func ResolveParent(ctx context.Context, r metastore.Reader, path string) (metastore.Inode, string, error) {
	if path == "/" {
		return metastore.Inode{}, "", ErrRoot
	}
	dir, name := fspath.Split(path)
	parent, err := Resolve(ctx, r, dir)
	var pe *PathError
	if errors.As(err, &pe) {
		return metastore.Inode{}, "", &PathError{Path: path, At: pe.At, Parent: true}
	}
	if err != nil {
		return metastore.Inode{}, "", err
	}
	if !parent.IsDir() {
		return metastore.Inode{}, "", &PathError{Path: path, At: dir, Parent: true}
	}
	return parent, name, nil
}

// ETagHexLen is how many hex digits of the content hash an ETag carries:
// 128 bits keep collisions out of reach while leaving If headers short
// enough for clients with fixed header buffers (neon, which litmus and
// cadaver use, cuts long ones off).
const ETagHexLen = 32

// ETag returns the strong entity tag of a file, derived from the content
// hash only, so equal content has equal ETags on every node. Collections
// have none ("").
func ETag(in metastore.Inode) string {
	if in.IsDir() || len(in.Hash) < ETagHexLen {
		return ""
	}
	return `"` + in.Hash[:ETagHexLen] + `"`
}

// WalkFunc is called by Walk for every visited resource. Returning
// fs.SkipDir from a collection skips its members; any other error stops the
// walk and is returned by Walk.
type WalkFunc func(path string, in metastore.Inode) error

// Walk visits in (found at path) and its members depth-first, members in
// name order, down to depth levels below in: 0 visits in only, 1 adds its
// members, DepthInfinity visits the whole subtree (PROPFIND Depth).
func Walk(ctx context.Context, r metastore.Reader, path string, in metastore.Inode, depth int, fn WalkFunc) error {
	err := fn(path, in)
	if errors.Is(err, fs.SkipDir) {
		return nil
	}
	if err != nil {
		return err
	}
	if !in.IsDir() || depth == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := r.List(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("fsm: list %s: %w", path, err)
	}
	next := DepthInfinity
	if depth > 0 {
		next = depth - 1
	}
	for _, e := range ents {
		if err := Walk(ctx, r, fspath.Join(path, e.Name), e.Inode, next, fn); err != nil {
			return err
		}
	}
	return nil
}

// IfMatch evaluates an If-Match header value (RFC 9110 §13.1.1) against the
// current strong ETag ("" for a collection) of a resource that exists or
// not. It uses strong comparison, so a weak tag (W/"...") never matches.
// An empty header passes.
func IfMatch(header, etag string, exists bool) bool {
	if header == "" {
		return true
	}
	if isStar(header) {
		return exists
	}
	if !exists || etag == "" {
		return false
	}
	for _, t := range parseETags(header) {
		if !t.weak && t.tag == etag {
			return true
		}
	}
	return false
}

// IfNoneMatch evaluates an If-None-Match header value (RFC 9110 §13.1.2)
// the same way. It uses weak comparison, as the RFC requires, so W/"x"
// matches "x". An empty header passes.
func IfNoneMatch(header, etag string, exists bool) bool {
	if header == "" {
		return true
	}
	if isStar(header) {
		return !exists
	}
	if !exists || etag == "" {
		return true
	}
	for _, t := range parseETags(header) {
		if t.tag == etag {
			return false
		}
	}
	return true
}

func isStar(h string) bool {
	for len(h) > 0 && (h[0] == ' ' || h[0] == '\t') {
		h = h[1:]
	}
	for len(h) > 0 && (h[len(h)-1] == ' ' || h[len(h)-1] == '\t') {
		h = h[:len(h)-1]
	}
	return h == "*"
}

type etag struct {
	tag  string // quoted, without W/
	weak bool
}

// parseETags parses a comma-separated entity-tag list. Commas may appear
// inside quoted tags, so it scans rather than splits; it stops at the first
// malformed element, which then simply matches nothing.
func parseETags(h string) []etag {
	var out []etag
	i := 0
	for i < len(h) {
		switch h[i] {
		case ' ', '\t', ',':
			i++
			continue
		}
		weak := false
		if len(h)-i >= 2 && h[i] == 'W' && h[i+1] == '/' {
			weak = true
			i += 2
		}
		if i >= len(h) || h[i] != '"' {
			return out
		}
		j := i + 1
		for j < len(h) && h[j] != '"' {
			j++
		}
		if j >= len(h) {
			return out
		}
		out = append(out, etag{tag: h[i : j+1], weak: weak})
		i = j + 1
	}
	return out
}

// resolveAtOnce is Resolve on a store that walks the path itself
// (metastore.PathResolver), with the same answers.
func resolveAtOnce(ctx context.Context, r metastore.PathResolver, path string) (metastore.Inode, uint64, bool, error) {
	segs := fspath.Segments(path)
	inos, applied, err := r.ResolvePath(ctx, segs)
	if err != nil {
		return metastore.Inode{}, 0, false, fmt.Errorf("fsm: resolve %s: %w", path, err)
	}
	cur := metastore.Inode{ID: metastore.RootID, Kind: metastore.KindDir}
	if len(inos) > 0 {
		cur = inos[0]
	}
	at := "/"
	for i, name := range segs {
		if !cur.IsDir() {
			return metastore.Inode{}, applied, true, &PathError{Path: path, At: at, Parent: true}
		}
		next := fspath.Join(at, name)
		if i+1 >= len(inos) {
			return metastore.Inode{}, applied, true, &PathError{Path: path, At: next, Parent: i < len(segs)-1}
		}
		cur, at = inos[i+1], next
	}
	return cur, applied, true, nil
}
