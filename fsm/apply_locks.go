package fsm

import (
	"fmt"

	"github.com/dfs-project/dfs/metastore"
)

// LOCK, refresh, UNLOCK and lock expiry: the entries that change the lock
// table rather than the namespace.
func (a *applier) lock() (*Result, error) {
	c := a.cmd
	if c.Lock == nil || c.Lock.Token == "" {
		return fail(Invalid, "lock %s: no lock in the entry", c.Path), nil
	}
	l := *c.Lock
	if l.Root == "" {
		l.Root = c.Path
	}
	if l.Root != c.Path {
		return fail(Invalid, "lock %s: lock root %s differs", c.Path, l.Root), nil
	}
	// The lock belongs to the entry's user; an entry without one (an
	// older leader's) takes a lock without a principal.
	user := ""
	if c.User != nil {
		user = *c.User
	}
	if l.Principal != user {
		return fail(Invalid, "lock %s: lock principal %q differs from the entry's user %q", c.Path, l.Principal, user), nil
	}
	locks, err := a.loadLocks()
	if err != nil {
		return nil, err
	}
	live := locks[:0:0]
	for _, old := range locks {
		if old.Expired(c.Time) {
			a.b.DeleteLock(old.Token)
			continue
		}
		if old.Token == l.Token {
			return fail(Invalid, "lock %s: token %s already in use", c.Path, l.Token), nil
		}
		live = append(live, old)
	}
	a.locks = live
	t, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if !t.exists && !t.parentOK {
		return fail(Conflict, "lock %s: parent collection missing", c.Path), nil
	}
	if other, ok := LockConflict(live, c.Time, l); ok {
		r := fail(Locked, "lock %s: conflicts with the lock on %s", c.Path, other.Root)
		r.LockedPath = other.Root
		return r, nil
	}
	res := &Result{Code: OK, Lock: l}
	if t.exists {
		res.Inode = t.node
	} else {
		// RFC 4918 §7.3: a LOCK on an unmapped URL creates an empty
		// resource. Creating it changes the parent's membership.
		if r, err := a.checkLocks(Protect{Path: dirOf(c.Path)}); r != nil || err != nil {
			return r, err
		}
		id, err := a.newID()
		if err != nil {
			return nil, err
		}
		in := metastore.Inode{ID: id, Kind: metastore.KindFile, Hash: EmptyHash, Created: c.Time, Modified: c.Time}
		a.b.PutInode(in)
		a.b.Link(t.parent.ID, t.name, id)
		a.addRef(EmptyHash, 1, 0)
		a.bump(t.parent)
		res.Inode, res.Created = in, true
	}
	a.b.PutLock(l)
	return res, nil
}

func (a *applier) findLock(token string) (metastore.Lock, bool, error) {
	locks, err := a.loadLocks()
	if err != nil {
		return metastore.Lock{}, false, err
	}
	for _, l := range locks {
		if l.Token == token && !l.Expired(a.cmd.Time) {
			return l, true, nil
		}
	}
	return metastore.Lock{}, false, nil
}

func (a *applier) refresh() (*Result, error) {
	c := a.cmd
	if c.Token == "" {
		return fail(Invalid, "refresh: no token"), nil
	}
	l, ok, err := a.findLock(c.Token)
	if err != nil {
		return nil, err
	}
	if !ok {
		return fail(NotFound, "refresh: no lock %s", c.Token), nil
	}
	if !MayUse(l, c.principal()) {
		return fail(Forbidden, "refresh: lock %s belongs to another user", c.Token), nil
	}
	l.Expires, l.Timeout = c.Expires, c.Timeout
	a.b.PutLock(l)
	return &Result{Code: OK, Lock: l}, nil
}

func (a *applier) unlock() (*Result, error) {
	c := a.cmd
	l, ok, err := a.findLock(c.Token)
	if err != nil {
		return nil, err
	}
	if !ok {
		return fail(NotFound, "unlock %s: no lock %s", c.Path, c.Token), nil
	}
	if !Covers(l, c.Path) {
		return fail(Conflict, "unlock %s: lock %s does not cover it", c.Path, c.Token), nil
	}
	if !MayUse(l, c.principal()) {
		return fail(Forbidden, "unlock %s: lock %s belongs to another user", c.Path, c.Token), nil
	}
	a.b.DeleteLock(l.Token)
	return &Result{Code: OK, Lock: l}, nil
}

func (a *applier) expire() (*Result, error) {
	locks, err := a.loadLocks()
	if err != nil {
		return nil, err
	}
	n := 0
	for _, l := range locks {
		if l.Expired(a.cmd.Time) {
			a.b.DeleteLock(l.Token)
			n++
		}
	}
	return &Result{Code: OK, Msg: fmt.Sprintf("%d locks expired", n)}, nil
}
