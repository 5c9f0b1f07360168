package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// EmptyHash is the SHA-256 of no bytes: the content of the empty file a
// LOCK on an unmapped URL creates.
const EmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// MaxNewInodes is how many inodes one log entry may create: new IDs are
// index<<20 | n, so n must stay below 2^20.
const MaxNewInodes = 1 << 20

// maxIndex keeps index<<20 inside 64 bits.
const maxIndex = 1<<44 - 1

// failure carries a deterministic non-OK outcome out of deep helpers (a
// COPY that would need too many inodes). It is never a store error.
type failure struct{ res *Result }

func (f *failure) Error() string { return f.res.Err().Error() }

func fail(code Code, format string, args ...any) *Result {
	return &Result{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// applier computes the Batch of one command against the current store
// state. It only reads the store; everything it decides comes from the
// command and that state, never from the local node.
type applier struct {
	ctx   context.Context
	r     metastore.Reader
	cmd   *Command
	index uint64
	b     *metastore.Batch

	newInodes uint64
	refs      map[string]int64
	sizes     map[string]int64 // content size of every hash in refs
	bumped    map[metastore.ID]bool
	usage     int64 // logical bytes this entry adds (negative: frees)
	tree      int64 // inodes removed or copied so far (see Command.MaxTree)
	areaSeq   int   // subtrees this entry put into a work area (areaName)
	areas     map[metastore.ID]bool

	locks       []metastore.Lock
	locksLoaded bool
}

func newApplier(ctx context.Context, r metastore.Reader, index uint64, cmd *Command) *applier {
	return &applier{
		ctx:    ctx,
		r:      r,
		cmd:    cmd,
		index:  index,
		b:      &metastore.Batch{Index: index},
		refs:   map[string]int64{},
		sizes:  map[string]int64{},
		bumped: map[metastore.ID]bool{},
	}
}

// build returns the command's result. The batch in a.b is only meaningful
// for an OK result; a non-nil error is a store failure, never an outcome.
func (a *applier) build() (*Result, error) {
	res, err := a.dispatch()
	var fl *failure
	if errors.As(err, &fl) {
		return fl.res, nil
	}
	if err != nil {
		return nil, err
	}
	if res.Code == OK {
		if r, err := a.checkQuota(); r != nil || err != nil {
			return r, err
		}
		a.flushRefs()
		if a.usage != 0 {
			a.b.AddUsage(a.usage)
		}
	}
	return res, nil
}

// checkQuota refuses an entry that would raise the usage above the quota
// the leader put in it. An entry that frees space or keeps usage as it is
// always passes, even over the quota (the quota may have been lowered):
// deleting and shrinking files is how a full cluster gets room again.
func (a *applier) checkQuota() (*Result, error) {
	if a.cmd.Quota <= 0 || a.usage <= 0 {
		return nil, nil
	}
	used, err := a.r.UsedBytes(a.ctx)
	if err != nil {
		return nil, fmt.Errorf("fsm: read used bytes: %w", err)
	}
	if used+a.usage > a.cmd.Quota {
		return fail(InsufficientStorage, "%s %s: quota %d bytes, used %d, this needs %d more",
			a.cmd.Op, a.cmd.Path, a.cmd.Quota, used, a.usage), nil
	}
	return nil, nil
}

func (a *applier) dispatch() (*Result, error) {
	c := a.cmd
	switch c.Op {
	case OpInit, OpExpire, OpRefresh, OpMember, OpRemoveMember, OpPurge, OpCopyStep:
	default:
		if !validPath(c.Path) {
			return fail(Invalid, "%s: bad path %q", c.Op, c.Path), nil
		}
	}
	switch c.Op {
	case OpInit:
		return a.init()
	case OpPut:
		return a.put()
	case OpMkcol:
		return a.mkcol()
	case OpDelete:
		return a.delete()
	case OpCopy, OpMove:
		return a.copyMove(c.Op == OpMove)
	case OpPropPatch:
		return a.propPatch()
	case OpLock:
		return a.lock()
	case OpRefresh:
		return a.refresh()
	case OpUnlock:
		return a.unlock()
	case OpExpire:
		return a.expire()
	case OpPurge:
		return a.purge()
	case OpCopyStep:
		return a.copyStep()
	case OpMember:
		if c.Member == nil || c.Member.ID == "" {
			return fail(Invalid, "member: no member"), nil
		}
		a.b.PutMember(*c.Member)
		return &Result{Code: OK}, nil
	case OpRemoveMember:
		if c.Member == nil || c.Member.ID == "" {
			return fail(Invalid, "remove member: no member"), nil
		}
		a.b.DeleteMember(c.Member.ID)
		return &Result{Code: OK}, nil
	}
	return fail(Invalid, "unknown op %q", c.Op), nil
}

// validPath is a cheap sanity check; commands carry paths that have been
// through fspath.Clean, this only stops an obviously broken entry from
// reaching the store.
func validPath(p string) bool {
	return p != "" && p[0] == '/' && (p == "/" || p[len(p)-1] != '/')
}

// newID allocates the n-th new inode of this entry: index<<20 | n. Every
// node applies the same entries in the same order, so every node assigns
// the same IDs, and IDs are never reused.
func (a *applier) newID() (metastore.ID, error) {
	if a.index > maxIndex {
		return 0, &failure{fail(Invalid, "log index %d too large for inode IDs", a.index)}
	}
	if a.newInodes >= MaxNewInodes {
		return 0, &failure{fail(Invalid, "entry would create more than %d inodes", MaxNewInodes)}
	}
	id := metastore.ID(a.index<<20 | a.newInodes)
	a.newInodes++
	return id, nil
}

// addRef records that delta more (or fewer) files reference hash, whose
// content is size bytes: the logical usage changes by delta*size.
func (a *applier) addRef(hash string, delta, size int64) {
	if hash != "" {
		a.refs[hash] += delta
		a.sizes[hash] = size
		a.usage += delta * size
	}
}

// flushRefs emits one AddRef per changed hash, in hash order, so the
// batch does not depend on map iteration order.
func (a *applier) flushRefs() {
	hashes := make([]string, 0, len(a.refs))
	for h, d := range a.refs {
		if d != 0 {
			hashes = append(hashes, h)
		}
	}
	slices.Sort(hashes)
	for _, h := range hashes {
		a.b.AddRef(h, a.refs[h])
	}
}

// released returns the hashes whose count this entry decreased, sorted.
func (a *applier) released() []string {
	var out []string
	for h, d := range a.refs {
		if d < 0 {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// contentRef is a hash an entry references more often than before.
type contentRef struct {
	hash  string
	delta int64
	size  int64
}

// referenced returns the hashes whose count this entry increased, sorted.
func (a *applier) referenced() []contentRef {
	var out []contentRef
	for h, d := range a.refs {
		if d > 0 {
			out = append(out, contentRef{hash: h, delta: d, size: a.sizes[h]})
		}
	}
	slices.SortFunc(out, func(x, y contentRef) int { return strings.Compare(x.hash, y.hash) })
	return out
}

// bump sets a collection's Modified to the entry's time: its membership
// changed. Each collection is written once per entry.
func (a *applier) bump(dir metastore.Inode) {
	if a.bumped[dir.ID] {
		return
	}
	a.bumped[dir.ID] = true
	dir.Modified = a.cmd.Time
	a.b.PutInode(dir)
}

func (a *applier) loadLocks() ([]metastore.Lock, error) {
	if !a.locksLoaded {
		ls, err := a.r.Locks(a.ctx)
		if err != nil {
			return nil, fmt.Errorf("fsm: read locks: %w", err)
		}
		a.locks, a.locksLoaded = ls, true
	}
	return a.locks, nil
}

// checkLocks returns a Locked result if the command's tokens do not unlock
// every path in need, nil otherwise.
func (a *applier) checkLocks(need ...Protect) (*Result, error) {
	locks, err := a.loadLocks()
	if err != nil {
		return nil, err
	}
	if lp, ok := CheckLocks(locks, a.cmd.Time, a.cmd.principal(), a.cmd.Tokens, need); !ok {
		r := fail(Locked, "%s is locked", lp)
		r.LockedPath = lp
		return r, nil
	}
	return nil, nil
}

// dropLocksUnder deletes every lock rooted at or below p, expired or not:
// locks protect URLs, and the URLs below p are going away.
func (a *applier) dropLocksUnder(p string) error {
	locks, err := a.loadLocks()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if fspath.IsAncestor(p, l.Root) {
			a.b.DeleteLock(l.Token)
		}
	}
	return nil
}

func dirOf(p string) string {
	d, _ := fspath.Split(p)
	return d
}

// target is a path located in the current state.
type target struct {
	path     string
	parentOK bool            // the parent exists and is a collection (false for "/")
	parent   metastore.Inode // valid if parentOK
	name     string
	exists   bool
	node     metastore.Inode // valid if exists
}

func (a *applier) locate(p string) (target, error) {
	t := target{path: p}
	if p == "/" {
		root, err := rootInode(a.ctx, a.r)
		if err != nil {
			return t, err
		}
		t.exists, t.node = true, root
		return t, nil
	}
	parent, name, err := ResolveParent(a.ctx, a.r, p)
	var pe *PathError
	if errors.As(err, &pe) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	t.parentOK, t.parent, t.name = true, parent, name
	child, err := a.r.Lookup(a.ctx, parent.ID, name)
	if errors.Is(err, metastore.ErrNotFound) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("fsm: lookup %s: %w", p, err)
	}
	t.exists, t.node = true, child
	return t, nil
}

// removeTree deletes node (at path) and everything below it: directory
// entries, inodes, dead properties, content references and the locks
// rooted in the subtree. The entry in the parent is removed only if unlink
// is set; an overwrite leaves it for the following Link to replace.
func (a *applier) removeTree(t target, unlink bool) error {
	if unlink {
		a.b.Unlink(t.parent.ID, t.name)
	}
	if err := a.drop(t.node); err != nil {
		return err
	}
	return a.dropLocksUnder(t.path)
}

// countTree counts one more inode removed or copied and fails the entry
// once Command.MaxTree is passed. Entries with steps check the limit up
// front instead (copyMove), and remove without one.
func (a *applier) countTree() error {
	if a.cmd.Step > 0 {
		return nil
	}
	a.tree++
	if m := a.cmd.MaxTree; m > 0 && a.tree > m {
		return &failure{fail(Forbidden, "%s %s: the subtree has more than %d entries, the most one request may remove or copy on this cluster (--max-tree-entries); delete or copy its subfolders one at a time",
			a.cmd.Op, a.cmd.Path, m)}
	}
	return nil
}

func (a *applier) drop(in metastore.Inode) error {
	if err := a.countTree(); err != nil {
		return err
	}
	if in.IsDir() {
		ents, err := a.r.List(a.ctx, in.ID)
		if err != nil {
			return fmt.Errorf("fsm: list inode %d: %w", in.ID, err)
		}
		for _, e := range ents {
			a.b.Unlink(in.ID, e.Name)
			if err := a.drop(e.Inode); err != nil {
				return err
			}
		}
	} else {
		a.addRef(in.Hash, -1, in.Size)
	}
	a.b.DeleteProps(in.ID)
	a.b.DeleteInode(in.ID)
	return nil
}

func (a *applier) init() (*Result, error) {
	root, err := a.r.Get(a.ctx, metastore.RootID)
	if err == nil {
		return &Result{Code: OK, Msg: "root exists", Inode: root}, nil
	}
	if !errors.Is(err, metastore.ErrNotFound) {
		return nil, fmt.Errorf("fsm: read root: %w", err)
	}
	root = metastore.Inode{ID: metastore.RootID, Kind: metastore.KindDir, Created: a.cmd.Time, Modified: a.cmd.Time}
	a.b.PutInode(root)
	return &Result{Code: OK, Created: true, Inode: root}, nil
}

func (a *applier) put() (*Result, error) {
	c := a.cmd
	if c.Hash == "" || c.Size < 0 {
		return fail(Invalid, "put %s: missing hash or negative size", c.Path), nil
	}
	if c.Path == "/" {
		return fail(NotAllowed, "put /: the root is a collection"), nil
	}
	t, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if !t.parentOK {
		return fail(Conflict, "put %s: parent collection missing", c.Path), nil
	}
	if t.exists && t.node.IsDir() {
		return fail(NotAllowed, "put %s: is a collection", c.Path), nil
	}
	var tag string
	if t.exists {
		tag = ETag(t.node)
	}
	if !IfNoneMatch(c.IfNoneMatch, tag, t.exists) {
		return fail(PreconditionFailed, "put %s: If-None-Match", c.Path), nil
	}
	if !IfMatch(c.IfMatch, tag, t.exists) {
		return fail(PreconditionFailed, "put %s: If-Match", c.Path), nil
	}
	need := []Protect{{Path: c.Path}}
	if !t.exists {
		need = append(need, Protect{Path: dirOf(c.Path)})
	}
	if r, err := a.checkLocks(need...); r != nil || err != nil {
		return r, err
	}
	if t.exists {
		in := t.node
		if in.Hash != c.Hash {
			a.addRef(c.Hash, 1, c.Size)
			a.addRef(in.Hash, -1, in.Size)
		}
		in.Hash, in.Size, in.ContentType, in.Modified = c.Hash, c.Size, c.ContentType, c.Time
		a.b.PutInode(in)
		return &Result{Code: OK, Inode: in}, nil
	}
	id, err := a.newID()
	if err != nil {
		return nil, err
	}
	in := metastore.Inode{ID: id, Kind: metastore.KindFile, Size: c.Size, Hash: c.Hash,
		ContentType: c.ContentType, Created: c.Time, Modified: c.Time}
	a.b.PutInode(in)
	a.b.Link(t.parent.ID, t.name, id)
	a.addRef(c.Hash, 1, c.Size)
	a.bump(t.parent)
	return &Result{Code: OK, Created: true, Inode: in}, nil
}

func (a *applier) mkcol() (*Result, error) {
	c := a.cmd
	t, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if t.exists {
		return fail(NotAllowed, "mkcol %s: exists", c.Path), nil
	}
	if !t.parentOK {
		return fail(Conflict, "mkcol %s: parent collection missing", c.Path), nil
	}
	if r, err := a.checkLocks(Protect{Path: dirOf(c.Path)}, Protect{Path: c.Path}); r != nil || err != nil {
		return r, err
	}
	id, err := a.newID()
	if err != nil {
		return nil, err
	}
	in := metastore.Inode{ID: id, Kind: metastore.KindDir, Created: c.Time, Modified: c.Time}
	a.b.PutInode(in)
	a.b.Link(t.parent.ID, t.name, id)
	a.bump(t.parent)
	return &Result{Code: OK, Created: true, Inode: in}, nil
}

func (a *applier) delete() (*Result, error) {
	c := a.cmd
	if c.Path == "/" {
		return fail(Forbidden, "delete /: the root cannot be deleted"), nil
	}
	t, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if !t.exists {
		return fail(NotFound, "delete %s: not found", c.Path), nil
	}
	if r, err := a.checkLocks(Protect{Path: c.Path, Subtree: true}, Protect{Path: dirOf(c.Path)}); r != nil || err != nil {
		return r, err
	}
	if err := a.remove(t, true); err != nil {
		return nil, err
	}
	a.bump(t.parent)
	return &Result{Code: OK, Inode: t.node}, nil
}

func (a *applier) propPatch() (*Result, error) {
	c := a.cmd
	t, err := a.locate(c.Path)
	if err != nil {
		return nil, err
	}
	if !t.exists {
		return fail(NotFound, "proppatch %s: not found", c.Path), nil
	}
	for _, p := range c.Patches {
		if p.Name.Local == "" {
			return fail(Invalid, "proppatch %s: empty property name", c.Path), nil
		}
		// Live properties are the handler's to refuse; this is defence in
		// depth so no entry can ever shadow one with a dead property.
		if p.Name.Space == "DAV:" {
			return fail(Forbidden, "proppatch %s: %s is protected", c.Path, p.Name.Key()), nil
		}
	}
	if r, err := a.checkLocks(Protect{Path: c.Path}); r != nil || err != nil {
		return r, err
	}
	// A root that was never initialised is written so its properties hang
	// off a stored inode.
	if c.Path == "/" && len(c.Patches) > 0 {
		_, err := a.r.Get(a.ctx, metastore.RootID)
		if errors.Is(err, metastore.ErrNotFound) {
			a.b.PutInode(t.node)
		} else if err != nil {
			return nil, fmt.Errorf("fsm: read root: %w", err)
		}
	}
	for _, p := range c.Patches {
		if p.Remove {
			a.b.DeleteProp(t.node.ID, p.Name)
		} else {
			a.b.SetProp(t.node.ID, p.Name, p.Value)
		}
	}
	return &Result{Code: OK, Inode: t.node}, nil
}
