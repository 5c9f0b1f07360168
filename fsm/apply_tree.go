package fsm

import (
	"errors"
	"fmt"

	"github.com/dfs-project/dfs/metastore"
)

// Subtree work in bounded steps.
//
// One entry is one store transaction, built in memory on every node and
// replayed whole if it fails. A DELETE of a folder of 300 000 files done in
// one entry would need all of that at once on every node, and a node that
// could not finish it would fail the same way on every restart. So an entry
// removes or copies at most Command.Step inodes itself:
//
//   - A larger subtree that a DELETE (or a COPY or MOVE onto it) removes is
//     detached: its link moves from the namespace into the purge area
//     (metastore.PurgeID) in O(1), so the path is gone when the entry
//     applies. OpPurge entries then remove up to Step inodes each, files
//     and emptied collections bottom-up, dropping content references as
//     they go: the usage falls, and garbage collection frees the content,
//     as the purge proceeds.
//   - A larger COPY is staged: its entry checks everything a COPY checks,
//     copies the root into the staging area (metastore.StagingID) and
//     freezes source and destination with locks no token opens (freeze
//     locks, see CheckLocks), so neither changes while the copy is built.
//     OpCopyStep entries copy up to Step inodes each, in the order of a
//     preorder walk by name, remembering the last copied member; the last
//     step replaces the destination, links the copy there and lifts the
//     freeze. The copy appears whole or not at all.
//
// The leader proposes the step entries until no work is left (see package
// replication), and a new leader resumes whatever its predecessor left.
// Both areas are part of the state: snapshots carry them, and reference
// counts and usage include what they hold.

// TreeStep is the Step a leader puts in the entries it proposes.
const TreeStep = 10_000

// copyJobProp is the dead property of a staged copy's root that holds the
// job. It lives in a namespace no client can write (PROPPATCH refuses
// nothing here, but the staged root is unreachable until the last step
// removes the property).
var copyJobProp = metastore.PropName{Space: "urn:dfs:internal", Local: "copy-job"}

// freezePrincipal is the principal of freeze locks. It is no valid user
// name (control character), and MayUse never lets anyone use such a lock.
const freezePrincipal = "\x00dfs-copy"

// isFreeze reports whether l freezes the tree of a staged copy.
func isFreeze(l metastore.Lock) bool { return l.Principal == freezePrincipal }

// measure counts in and every member below it, and the bytes of the files
// among them, stopping as soon as the count passes limit (then n > limit).
func (a *applier) measure(in metastore.Inode, limit int64) (n, bytes int64, err error) {
	n = 1
	if !in.IsDir() {
		return n, in.Size, nil
	}
	ents, err := a.r.List(a.ctx, in.ID)
	if err != nil {
		return 0, 0, fmt.Errorf("fsm: list inode %d: %w", in.ID, err)
	}
	for _, e := range ents {
		if n > limit {
			break
		}
		cn, cb, err := a.measure(e.Inode, limit-n)
		if err != nil {
			return 0, 0, err
		}
		n, bytes = n+cn, bytes+cb
	}
	return n, bytes, nil
}

// remove takes the subtree at t out of the namespace: at once if it has at
// most Step inodes (or the entry predates steps), else by detaching it into
// the purge area. The entry in the parent goes only if unlink is set; an
// overwrite leaves it for the following Link to replace.
func (a *applier) remove(t target, unlink bool) error {
	if a.cmd.Step <= 0 || !t.node.IsDir() {
		return a.removeTree(t, unlink)
	}
	n, _, err := a.measure(t.node, a.cmd.Step)
	if err != nil {
		return err
	}
	if n <= a.cmd.Step {
		return a.removeTree(t, unlink)
	}
	if unlink {
		a.b.Unlink(t.parent.ID, t.name)
	}
	if err := a.ensureArea(metastore.PurgeID); err != nil {
		return err
	}
	a.b.Link(metastore.PurgeID, a.areaName(), t.node.ID)
	return a.dropLocksUnder(t.path)
}

// areaName names the next subtree this entry puts into an area: unique,
// and in log order when names are sorted.
func (a *applier) areaName() string {
	a.areaSeq++
	return fmt.Sprintf("%020d-%d", a.index, a.areaSeq)
}

// ensureArea stores the collection inode of a work area the first time
// something is put there, so snapshots find it.
func (a *applier) ensureArea(id metastore.ID) error {
	if a.areas[id] {
		return nil
	}
	_, err := a.r.Get(a.ctx, id)
	if errors.Is(err, metastore.ErrNotFound) {
		a.b.PutInode(metastore.Inode{ID: id, Kind: metastore.KindDir, Created: a.cmd.Time, Modified: a.cmd.Time})
	} else if err != nil {
		return fmt.Errorf("fsm: read work area %d: %w", id, err)
	}
	if a.areas == nil {
		a.areas = map[metastore.ID]bool{}
	}
	a.areas[id] = true
	return nil
}

// purge removes up to Step inodes of the detached subtrees, oldest first.
func (a *applier) purge() (*Result, error) {
	if a.cmd.Step <= 0 {
		return fail(Invalid, "purge: no step size"), nil
	}
	ents, err := a.r.List(a.ctx, metastore.PurgeID)
	if err != nil {
		return nil, fmt.Errorf("fsm: list the purge area: %w", err)
	}
	budget := a.cmd.Step
	left := 0
	for i, e := range ents {
		done, err := a.purgeTree(e.Inode, &budget)
		if err != nil {
			return nil, err
		}
		if !done {
			left = len(ents) - i
			break
		}
		a.b.Unlink(metastore.PurgeID, e.Name)
	}
	removed := a.cmd.Step - budget
	return &Result{Code: OK, More: left > 0, Msg: fmt.Sprintf("removed %d inodes, %d detached subtrees left", removed, left)}, nil
}

// purgeTree removes in's members and then in, bottom-up, while budget
// lasts, and reports whether in itself went.
func (a *applier) purgeTree(in metastore.Inode, budget *int64) (bool, error) {
	if in.IsDir() {
		ents, err := a.r.List(a.ctx, in.ID)
		if err != nil {
			return false, fmt.Errorf("fsm: list inode %d: %w", in.ID, err)
		}
		for _, e := range ents {
			done, err := a.purgeTree(e.Inode, budget)
			if err != nil || !done {
				return false, err
			}
			a.b.Unlink(in.ID, e.Name)
		}
	} else if *budget > 0 {
		a.addRef(in.Hash, -1, in.Size)
	}
	if *budget <= 0 {
		return false, nil
	}
	*budget--
	a.b.DeleteProps(in.ID)
	a.b.DeleteInode(in.ID)
	return true, nil
}
