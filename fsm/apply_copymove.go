package fsm

import (
	"fmt"
	"math"
	"slices"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// COPY and MOVE, and the copying of subtrees and dead properties they share.
// copyMove implements COPY and MOVE. They share every check (Apache
// mod_dav's order: existence, overlap, destination parent, Overwrite,
// locks) and differ in what happens to the source: COPY creates new inodes
// that share content, MOVE relinks the source inode, which is O(1) however
// large the subtree is.
func (a *applier) copyMove(move bool) (*Result, error) {
	c := a.cmd
	op := "copy"
	if move {
		op = "move"
	}
	if !validPath(c.Dest) {
		return fail(Invalid, "%s: bad destination %q", op, c.Dest), nil
	}
	depth := DepthInfinity
	if !move {
		if c.Depth != 0 && c.Depth != DepthInfinity {
			return fail(Invalid, "copy: depth must be 0 or infinity, not %d", c.Depth), nil
		}
		depth = c.Depth
	}
	if c.Path == "/" || c.Dest == "/" {
		return fail(Forbidden, "%s %s to %s: the root cannot be copied, moved or replaced", op, c.Path, c.Dest), nil
	}
	src, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if !src.exists {
		return fail(NotFound, "%s %s: not found", op, c.Path), nil
	}
	if c.Dest == c.Path {
		return fail(Forbidden, "%s %s: source and destination are the same", op, c.Path), nil
	}
	if src.node.IsDir() && depth == DepthInfinity && fspath.IsAncestor(c.Path, c.Dest) {
		return fail(Forbidden, "%s %s to %s: the source collection contains the destination", op, c.Path, c.Dest), nil
	}
	dst, err := a.locate(c.Dest)
	if err != nil {
		return nil, err
	}
	if !dst.parentOK {
		return fail(Conflict, "%s to %s: destination parent collection missing", op, c.Dest), nil
	}
	if dst.exists && !c.Overwrite {
		return fail(PreconditionFailed, "%s to %s: destination exists and Overwrite is F", op, c.Dest), nil
	}
	if dst.exists && fspath.IsAncestor(c.Dest, c.Path) {
		return fail(Forbidden, "%s %s to %s: the destination contains the source", op, c.Path, c.Dest), nil
	}
	// The destination's parent is protected even when an existing member is
	// replaced, as mod_dav does (DAV_VALIDATE_PARENT on the destination).
	var need []Protect
	if move {
		need = append(need, Protect{Path: c.Path, Subtree: true}, Protect{Path: dirOf(c.Path)})
	}
	need = append(need, Protect{Path: c.Dest, Subtree: dst.exists}, Protect{Path: dirOf(c.Dest)})
	if r, err := a.checkLocks(need...); r != nil || err != nil {
		return r, err
	}
	if !move && depth == DepthInfinity && src.node.IsDir() && c.Step > 0 {
		staged, res, err := a.checkTree(src)
		if res != nil || err != nil {
			return res, err
		}
		if staged {
			return a.stageCopy(src, dst)
		}
	}
	if dst.exists {
		if err := a.remove(dst, false); err != nil {
			return nil, err
		}
	}
	var node metastore.Inode
	if move {
		node = src.node
		a.b.Unlink(src.parent.ID, src.name)
		a.b.Link(dst.parent.ID, dst.name, node.ID)
		if err := a.dropLocksUnder(c.Path); err != nil {
			return nil, err
		}
		a.bump(src.parent)
	} else {
		node, err = a.copyTree(src.node, depth)
		if err != nil {
			return nil, err
		}
		a.b.Link(dst.parent.ID, dst.name, node.ID)
	}
	a.bump(dst.parent)
	return &Result{Code: OK, Created: !dst.exists, Inode: node}, nil
}

// copyTree copies in (and, for DepthInfinity, its members) to new inodes
// and returns the new root, not yet linked anywhere. Copies are new
// resources: Created and Modified are the entry's time, as a copied file
// on Apache's filesystem backend gets the time of the copy. Files share
// content: the copy references the same hash.
func (a *applier) copyTree(in metastore.Inode, depth int) (metastore.Inode, error) {
	if err := a.countTree(); err != nil {
		return metastore.Inode{}, err
	}
	n, err := a.copyInode(in)
	if err != nil {
		return metastore.Inode{}, err
	}
	if !in.IsDir() || depth == 0 {
		return n, nil
	}
	ents, err := a.r.List(a.ctx, in.ID)
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("fsm: list inode %d: %w", in.ID, err)
	}
	for _, e := range ents {
		child, err := a.copyTree(e.Inode, depth)
		if err != nil {
			return metastore.Inode{}, err
		}
		a.b.Link(n.ID, e.Name, child.ID)
	}
	return n, nil
}

// checkTree measures the source tree of a COPY with steps: it refuses a
// tree above MaxTree (Forbidden) and one whose bytes the quota cannot take
// (InsufficientStorage), up front, and says whether the copy is too large
// for this entry and must be staged. The steps of a staged copy are not
// checked against the quota again: what was admitted here completes.
func (a *applier) checkTree(src target) (staged bool, res *Result, err error) {
	c := a.cmd
	limit := c.Step
	switch {
	case c.MaxTree > 0:
		limit = max(limit, c.MaxTree)
	case c.Quota > 0:
		limit = math.MaxInt64 - 1 // the bytes of the whole tree are needed
	}
	n, bytes, err := a.measure(src.node, limit)
	if err != nil {
		return false, nil, err
	}
	if c.MaxTree > 0 && n > c.MaxTree {
		return false, fail(Forbidden, "copy %s: the subtree has more than %d entries, the most one COPY may copy on this cluster (--max-tree-entries); copy its subfolders one at a time",
			c.Path, c.MaxTree), nil
	}
	if c.Quota > 0 && bytes > 0 {
		used, err := a.r.UsedBytes(a.ctx)
		if err != nil {
			return false, nil, fmt.Errorf("fsm: read used bytes: %w", err)
		}
		if used+bytes > c.Quota {
			return false, fail(InsufficientStorage, "copy %s: quota %d bytes, used %d, the copy needs %d more",
				c.Path, c.Quota, used, bytes), nil
		}
	}
	return n > c.Step, nil, nil
}

func (a *applier) copyProps(from, to metastore.ID) error {
	props, err := a.r.Props(a.ctx, from)
	if err != nil {
		return fmt.Errorf("fsm: read properties of inode %d: %w", from, err)
	}
	names := make([]metastore.PropName, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	slices.SortFunc(names, comparePropNames)
	for _, n := range names {
		a.b.SetProp(to, n, props[n])
	}
	return nil
}

func comparePropNames(x, y metastore.PropName) int {
	if x.Space != y.Space {
		if x.Space < y.Space {
			return -1
		}
		return 1
	}
	switch {
	case x.Local < y.Local:
		return -1
	case x.Local > y.Local:
		return 1
	}
	return 0
}
