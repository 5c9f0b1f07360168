package fsm

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// A COPY too large for one entry, built in steps (see apply_tree.go).

// The tokens of a staged copy's freeze locks end in these.
const (
	freezeSrcSuffix  = ":source"
	freezeDestSuffix = ":destination"
)

// copyJob is the state of a staged copy, kept in the copyJobProp property
// of the staged root.
type copyJob struct {
	Src   string       `json:"src"`
	Dst   string       `json:"dst"`
	SrcID metastore.ID `json:"src_id"`
	// Last is the path, relative to Src, of the last member copied, in
	// the order of a preorder walk by name; empty: only the root so far.
	Last   []string `json:"last,omitempty"`
	Time   int64    `json:"time"` // the COPY's time: Created and Modified of every copy
	Tokens []string `json:"tokens"`
}

// stageCopy starts a staged copy of src to dst; every check of copyMove
// has passed. The result is the COPY's: the copy is certain to complete,
// since nothing can change source or destination until it has.
func (a *applier) stageCopy(src, dst target) (*Result, error) {
	c := a.cmd
	// A tree that another staged copy will replace, or that holds one,
	// changes between this copy's steps: the copy would mix old and new.
	locks, err := a.loadLocks()
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if isFreeze(l) && strings.HasSuffix(l.Token, freezeDestSuffix) &&
			(Covers(l, c.Path) || fspath.IsAncestor(c.Path, l.Root)) {
			r := fail(Locked, "copy %s: %s is being replaced by a copy in progress; copy it when that is done", c.Path, l.Root)
			r.LockedPath = l.Root
			return r, nil
		}
	}
	if err := a.ensureArea(metastore.StagingID); err != nil {
		return nil, err
	}
	root, err := a.copyInode(src.node)
	if err != nil {
		return nil, err
	}
	name := a.areaName()
	job := copyJob{Src: c.Path, Dst: c.Dest, SrcID: src.node.ID, Time: c.Time}
	for i, p := range []string{c.Path, c.Dest} {
		suffix := freezeSrcSuffix
		if i == 1 {
			suffix = freezeDestSuffix
		}
		l := metastore.Lock{
			Token:     "urn:dfs:copy:" + name + suffix,
			Root:      p,
			Infinite:  true,
			Owner:     "dfs: a copy from " + xmlEscape(c.Path) + " to " + xmlEscape(c.Dest) + " is being built",
			Created:   c.Time,
			Principal: freezePrincipal,
		}
		a.b.PutLock(l)
		a.locks = append(a.locks, l)
		job.Tokens = append(job.Tokens, l.Token)
	}
	if err := a.saveJob(root.ID, job); err != nil {
		return nil, err
	}
	a.b.Link(metastore.StagingID, name, root.ID)
	return &Result{Code: OK, Created: !dst.exists, Inode: root, Job: name}, nil
}

func (a *applier) saveJob(id metastore.ID, job copyJob) error {
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("fsm: encode copy job: %w", err)
	}
	a.b.SetProp(id, copyJobProp, string(b))
	return nil
}

// copyStep copies up to Step more members of a staged copy and, once the
// whole source is copied, puts the copy in place.
func (a *applier) copyStep() (*Result, error) {
	c := a.cmd
	if c.Step <= 0 || c.Job == "" {
		return fail(Invalid, "copy step: no job or step size"), nil
	}
	root, err := a.r.Lookup(a.ctx, metastore.StagingID, c.Job)
	if errors.Is(err, metastore.ErrNotFound) {
		// Done by an earlier step: a leader may propose a step twice.
		return &Result{Code: OK, Msg: "no such copy job"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fsm: read copy job %s: %w", c.Job, err)
	}
	props, err := a.r.Props(a.ctx, root.ID)
	if err != nil {
		return nil, fmt.Errorf("fsm: read copy job %s: %w", c.Job, err)
	}
	var job copyJob
	if err := json.Unmarshal([]byte(props[copyJobProp]), &job); err != nil {
		return nil, fmt.Errorf("fsm: decode copy job %s: %w", c.Job, err)
	}
	// Copies carry the COPY's time, whichever step makes them.
	stepTime := c.Time
	c.Time = job.Time
	defer func() { c.Time = stepTime }()
	w := stagedWalk{a: a, budget: c.Step, last: job.Last}
	done, err := w.walk(job.SrcID, root.ID, nil)
	if err != nil {
		return nil, err
	}
	if !done {
		job.Last = w.last
		if err := a.saveJob(root.ID, job); err != nil {
			return nil, err
		}
		return &Result{Code: OK, More: true, Job: c.Job, Msg: "copied " + strings.Join(w.last, "/")}, nil
	}
	return a.finishCopy(root, job)
}

// finishCopy replaces the destination with the staged copy and lifts the
// freeze.
func (a *applier) finishCopy(root metastore.Inode, job copyJob) (*Result, error) {
	dst, err := a.locate(job.Dst)
	if err != nil {
		return nil, err
	}
	if !dst.parentOK {
		// The freeze keeps the parent; a store that lost it is not the
		// state this job began in.
		return nil, fmt.Errorf("fsm: copy job %s: the parent of %s is gone", a.cmd.Job, job.Dst)
	}
	if dst.exists {
		if err := a.remove(dst, false); err != nil {
			return nil, err
		}
	}
	a.b.DeleteProp(root.ID, copyJobProp)
	a.b.Unlink(metastore.StagingID, a.cmd.Job)
	a.b.Link(dst.parent.ID, dst.name, root.ID)
	for _, tok := range job.Tokens {
		a.b.DeleteLock(tok)
	}
	a.bump(dst.parent)
	return &Result{Code: OK, Created: !dst.exists, Inode: root, Job: a.cmd.Job, Msg: "copy in place"}, nil
}

// stagedWalk copies the members of a source tree in preorder by name,
// resuming after last, until budget runs out.
type stagedWalk struct {
	a      *applier
	budget int64
	last   []string // resume point, then the last member copied
}

// walk copies the members of srcDir below dstDir (rel is srcDir's path
// relative to the copy's root) and reports whether it got to the end.
func (w *stagedWalk) walk(srcDir, dstDir metastore.ID, rel []string) (bool, error) {
	a := w.a
	ents, err := a.r.List(a.ctx, srcDir)
	if err != nil {
		return false, fmt.Errorf("fsm: list inode %d: %w", srcDir, err)
	}
	// resume is the part of the resume point below this directory.
	var resume []string
	if len(w.last) > len(rel) && slices.Equal(w.last[:len(rel)], rel) {
		resume = w.last[len(rel):]
	}
	for _, e := range ents {
		path := append(slices.Clip(rel), e.Name)
		if len(resume) > 0 {
			if e.Name < resume[0] {
				continue
			}
			if e.Name == resume[0] {
				resume = nil
				if !e.Inode.IsDir() {
					continue
				}
				// Copied in an earlier step; its members may not all be.
				staged, err := a.r.Lookup(a.ctx, dstDir, e.Name)
				if err != nil {
					return false, fmt.Errorf("fsm: read staged copy of %s: %w", strings.Join(path, "/"), err)
				}
				if done, err := w.walk(e.Inode.ID, staged.ID, path); !done || err != nil {
					return false, err
				}
				continue
			}
			resume = nil
		}
		if w.budget <= 0 {
			return false, nil
		}
		n, err := a.copyInode(e.Inode)
		if err != nil {
			return false, err
		}
		a.b.Link(dstDir, e.Name, n.ID)
		w.budget--
		w.last = path
		if e.Inode.IsDir() {
			if done, err := w.walk(e.Inode.ID, n.ID, path); !done || err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// copyInode copies one inode (not its members) to a new ID, with its dead
// properties and a reference to its content.
func (a *applier) copyInode(in metastore.Inode) (metastore.Inode, error) {
	id, err := a.newID()
	if err != nil {
		return metastore.Inode{}, err
	}
	n := in
	n.ID, n.Created, n.Modified = id, a.cmd.Time, a.cmd.Time
	a.b.PutInode(n)
	if !n.IsDir() {
		a.addRef(n.Hash, 1, n.Size)
	}
	if err := a.copyProps(in.ID, id); err != nil {
		return metastore.Inode{}, err
	}
	return n, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}
