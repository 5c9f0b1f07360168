package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dfs-project/dfs/metastore"
)

// overlay is a store as it will be once batches not yet committed are:
// entries applied together (ApplyBatch) are built one after the other, and
// each must see what the ones before it changed, though all commit at once.
// It reads through to the store for everything the batches do not touch and
// follows the stores' semantics op for op (a name whose inode is gone is
// not listed, counts never go below zero).
type overlay struct {
	r       metastore.Reader
	inodes  map[metastore.ID]inodeEdit
	dirents map[metastore.ID]map[string]direntEdit
	props   map[metastore.ID]*propsEdit
	locks   map[string]*metastore.Lock // nil: deleted
	members map[string]*metastore.Member
	refs    map[string]int64 // counts after the pending ops
	used    *int64
}

type inodeEdit struct {
	in      metastore.Inode
	deleted bool
}

type direntEdit struct {
	id      metastore.ID
	removed bool
}

type propsEdit struct {
	cleared bool // every property of the inode went (OpDeleteProps)
	set     map[metastore.PropName]string
	removed map[metastore.PropName]bool
}

var _ metastore.Reader = (*overlay)(nil)

func newOverlay(r metastore.Reader) *overlay {
	return &overlay{
		r:       r,
		inodes:  map[metastore.ID]inodeEdit{},
		dirents: map[metastore.ID]map[string]direntEdit{},
		props:   map[metastore.ID]*propsEdit{},
		locks:   map[string]*metastore.Lock{},
		members: map[string]*metastore.Member{},
		refs:    map[string]int64{},
	}
}

// add records the ops of a batch built on the overlay.
func (o *overlay) add(ctx context.Context, b *metastore.Batch) error {
	for _, op := range b.Ops {
		switch op.Kind {
		case metastore.OpPutInode:
			o.inodes[op.Inode.ID] = inodeEdit{in: op.Inode}
		case metastore.OpDeleteInode:
			o.inodes[op.ID] = inodeEdit{deleted: true}
		case metastore.OpLink:
			o.dir(op.Parent)[op.Name] = direntEdit{id: op.ID}
		case metastore.OpUnlink:
			o.dir(op.Parent)[op.Name] = direntEdit{removed: true}
		case metastore.OpSetProp:
			p := o.propEdit(op.ID)
			p.set[op.Prop] = op.Value
			delete(p.removed, op.Prop)
		case metastore.OpDeleteProp:
			p := o.propEdit(op.ID)
			delete(p.set, op.Prop)
			p.removed[op.Prop] = true
		case metastore.OpDeleteProps:
			o.props[op.ID] = &propsEdit{cleared: true, set: map[metastore.PropName]string{}, removed: map[metastore.PropName]bool{}}
		case metastore.OpPutLock:
			l := op.Lock
			o.locks[l.Token] = &l
		case metastore.OpDeleteLock:
			o.locks[op.Lock.Token] = nil
		case metastore.OpPutMember:
			m := op.Member
			o.members[m.ID] = &m
		case metastore.OpDeleteMember:
			o.members[op.Member.ID] = nil
		case metastore.OpAddRef:
			n, err := o.RefCount(ctx, op.Hash)
			if err != nil {
				return err
			}
			o.refs[op.Hash] = max(n+op.Delta, 0)
		case metastore.OpAddUsage:
			n, err := o.UsedBytes(ctx)
			if err != nil {
				return err
			}
			n = max(n+op.Delta, 0)
			o.used = &n
		default:
			return fmt.Errorf("fsm: overlay: unknown op kind %d", op.Kind)
		}
	}
	return nil
}

func (o *overlay) dir(id metastore.ID) map[string]direntEdit {
	d := o.dirents[id]
	if d == nil {
		d = map[string]direntEdit{}
		o.dirents[id] = d
	}
	return d
}

func (o *overlay) propEdit(id metastore.ID) *propsEdit {
	p := o.props[id]
	if p == nil {
		p = &propsEdit{set: map[metastore.PropName]string{}, removed: map[metastore.PropName]bool{}}
		o.props[id] = p
	}
	return p
}

func notFound(what string) error {
	return fmt.Errorf("fsm: overlay: %s: %w", what, metastore.ErrNotFound)
}

func (o *overlay) Get(ctx context.Context, id metastore.ID) (metastore.Inode, error) {
	if e, ok := o.inodes[id]; ok {
		if e.deleted {
			return metastore.Inode{}, notFound(fmt.Sprintf("inode %d", id))
		}
		return e.in, nil
	}
	return o.r.Get(ctx, id)
}

// current is the overlay's version of an inode the store returned.
func (o *overlay) current(in metastore.Inode) (metastore.Inode, bool) {
	if e, ok := o.inodes[in.ID]; ok {
		return e.in, !e.deleted
	}
	return in, true
}

func (o *overlay) Lookup(ctx context.Context, parent metastore.ID, name string) (metastore.Inode, error) {
	if e, ok := o.dirents[parent][name]; ok {
		if e.removed {
			return metastore.Inode{}, notFound(fmt.Sprintf("%q in %d", name, parent))
		}
		return o.Get(ctx, e.id)
	}
	in, err := o.r.Lookup(ctx, parent, name)
	if err != nil {
		return in, err
	}
	if in, ok := o.current(in); ok {
		return in, nil
	}
	return metastore.Inode{}, notFound(fmt.Sprintf("%q in %d", name, parent))
}

func (o *overlay) List(ctx context.Context, dir metastore.ID) ([]metastore.Dirent, error) {
	base, err := o.r.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	edits := o.dirents[dir]
	out := make([]metastore.Dirent, 0, len(base)+len(edits))
	for _, d := range base {
		if _, ok := edits[d.Name]; ok {
			continue
		}
		if in, ok := o.current(d.Inode); ok {
			out = append(out, metastore.Dirent{Name: d.Name, Inode: in})
		}
	}
	for name, e := range edits {
		if e.removed {
			continue
		}
		in, err := o.Get(ctx, e.id)
		if err != nil {
			if errors.Is(err, metastore.ErrNotFound) {
				continue // as the stores do: a name whose inode is gone
			}
			return nil, err
		}
		out = append(out, metastore.Dirent{Name: name, Inode: in})
	}
	slices.SortFunc(out, func(x, y metastore.Dirent) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

func (o *overlay) Props(ctx context.Context, id metastore.ID) (map[metastore.PropName]string, error) {
	e := o.props[id]
	out := map[metastore.PropName]string{}
	if e == nil || !e.cleared {
		base, err := o.r.Props(ctx, id)
		if err != nil {
			return nil, err
		}
		out = base
	}
	if e != nil {
		for n := range e.removed {
			delete(out, n)
		}
		for n, v := range e.set {
			out[n] = v
		}
	}
	return out, nil
}

func (o *overlay) PropsOf(ctx context.Context, ids []metastore.ID) (map[metastore.ID]map[metastore.PropName]string, error) {
	out := make(map[metastore.ID]map[metastore.PropName]string, len(ids))
	for _, id := range ids {
		p, err := o.Props(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

func (o *overlay) Locks(ctx context.Context) ([]metastore.Lock, error) {
	base, err := o.r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	if len(o.locks) == 0 {
		return base, nil
	}
	out := make([]metastore.Lock, 0, len(base)+len(o.locks))
	for _, l := range base {
		if _, ok := o.locks[l.Token]; !ok {
			out = append(out, l)
		}
	}
	for _, l := range o.locks {
		if l != nil {
			out = append(out, *l)
		}
	}
	slices.SortFunc(out, func(x, y metastore.Lock) int { return strings.Compare(x.Token, y.Token) })
	return out, nil
}

func (o *overlay) Members(ctx context.Context) ([]metastore.Member, error) {
	base, err := o.r.Members(ctx)
	if err != nil {
		return nil, err
	}
	if len(o.members) == 0 {
		return base, nil
	}
	out := make([]metastore.Member, 0, len(base)+len(o.members))
	for _, m := range base {
		if _, ok := o.members[m.ID]; !ok {
			out = append(out, m)
		}
	}
	for _, m := range o.members {
		if m != nil {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(x, y metastore.Member) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

func (o *overlay) RefCount(ctx context.Context, hash string) (int64, error) {
	if n, ok := o.refs[hash]; ok {
		return n, nil
	}
	return o.r.RefCount(ctx, hash)
}

func (o *overlay) UsedBytes(ctx context.Context) (int64, error) {
	if o.used != nil {
		return *o.used, nil
	}
	return o.r.UsedBytes(ctx)
}

func (o *overlay) AppliedIndex(ctx context.Context) (uint64, error) { return o.r.AppliedIndex(ctx) }

func (o *overlay) AppliedPosition(ctx context.Context) (metastore.Position, error) {
	return o.r.AppliedPosition(ctx)
}
