package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/dfs-project/dfs/metastore"
)

// add records a difference; false once MaxDifferences are recorded.
func (v *verifier) add(rep *Report, d Difference) bool {
	if len(rep.Differences) >= v.opt.MaxDifferences {
		rep.Truncated = true
		return false
	}
	rep.Differences = append(rep.Differences, d)
	return true
}

// diffNamespace merges the entry streams of ref and node (both at the
// same applied index) and records every difference.
func (v *verifier) diffNamespace(ctx context.Context, rep *Report, ref, node *Digest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := v.c.DigestEntries(ctx, ref.URL, ref.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer a.Close()
	b, err := v.c.DigestEntries(ctx, node.URL, node.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer b.Close()
	next := func(s *EntryStream) (*DigestEntry, error) {
		e, err := s.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	ea, err := next(a)
	if err != nil {
		return err
	}
	eb, err := next(b)
	if err != nil {
		return err
	}
	found := 0
	for ea != nil || eb != nil {
		var cmp int
		switch {
		case ea == nil:
			cmp = 1
		case eb == nil:
			cmp = -1
		default:
			cmp = compareEntries(ea, eb)
		}
		base := Difference{Node: node.ID, Reference: ref.ID}
		switch {
		case cmp < 0:
			base.Kind, base.Entry = DiffMissing, ea.Key()
			found++
			if !v.add(rep, base) {
				return nil
			}
		case cmp > 0:
			base.Kind, base.Entry = DiffExtra, eb.Key()
			found++
			if !v.add(rep, base) {
				return nil
			}
		default:
			for _, f := range diffFields(ea, eb) {
				d := base
				d.Kind, d.Entry, d.Field, d.ReferenceValue, d.NodeValue = DiffField, ea.Key(), f.name, f.ref, f.node
				found++
				if !v.add(rep, d) {
					return nil
				}
			}
		}
		if cmp <= 0 {
			if ea, err = next(a); err != nil {
				return err
			}
		}
		if cmp >= 0 {
			if eb, err = next(b); err != nil {
				return err
			}
		}
	}
	if found == 0 {
		v.add(rep, Difference{Kind: DiffDigest, Node: node.ID, Reference: ref.ID})
	}
	return nil
}

// diffContent names the missing and corrupt content of node d with the
// paths (on d) that reference it.
func (v *verifier) diffContent(ctx context.Context, rep *Report, d *Digest) error {
	paths := map[string][]string{}
	for _, h := range d.Missing {
		paths[h] = nil
	}
	for _, h := range d.Corrupt {
		paths[h] = nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := v.c.DigestEntries(ctx, d.URL, d.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer s.Close()
	for {
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if ps, ok := paths[e.Hash]; ok && e.Kind == EntryPath && len(ps) < v.opt.MaxPaths {
			paths[e.Hash] = append(ps, e.Path)
		}
	}
	for _, h := range d.Missing {
		if !v.add(rep, Difference{Kind: DiffContentMissing, Node: d.ID, Hash: h, Paths: paths[h]}) {
			return nil
		}
	}
	for _, h := range d.Corrupt {
		if !v.add(rep, Difference{Kind: DiffContentCorrupt, Node: d.ID, Hash: h, Paths: paths[h]}) {
			return nil
		}
	}
	return nil
}

// movedOr turns a node's 409 (it is past the index asked for) into errMoved.
func movedOr(err error) error {
	if statusCode(err) == http.StatusConflict {
		return fmt.Errorf("%w: %w", errMoved, err)
	}
	return err
}

type fieldDiff struct{ name, ref, node string }

// diffFields lists the fields in which two entries with the same key differ.
func diffFields(a, b *DigestEntry) []fieldDiff {
	var out []fieldDiff
	cmp := func(name, x, y string) {
		if x != y {
			out = append(out, fieldDiff{name, x, y})
		}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch a.Kind {
	case EntryPath:
		cmp("type", a.Type, b.Type)
		cmp("size", num(a.Size), num(b.Size))
		cmp("hash", a.Hash, b.Hash)
		cmp("etag", a.ETag, b.ETag)
		cmp("content_type", a.ContentType, b.ContentType)
		cmp("created", num(a.Created), num(b.Created))
		cmp("modified", num(a.Modified), num(b.Modified))
		pa, pb := map[string]string{}, map[string]string{}
		var names []string
		for _, p := range a.Props {
			pa[p.Name] = p.Value
			names = append(names, p.Name)
		}
		for _, p := range b.Props {
			pb[p.Name] = p.Value
			names = append(names, p.Name)
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			cmp("prop "+n, pa[n], pb[n])
		}
	case EntryLock:
		la, lb := lockFields(a.Lock), lockFields(b.Lock)
		for i := range la {
			cmp(la[i][0], la[i][1], lb[i][1])
		}
	case EntryMember:
		ma, mb := metastore.Member{}, metastore.Member{}
		if a.Member != nil {
			ma = *a.Member
		}
		if b.Member != nil {
			mb = *b.Member
		}
		cmp("url", ma.URL, mb.URL)
		cmp("raft_addr", ma.RaftAddr, mb.RaftAddr)
	}
	return out
}

func lockFields(l *metastore.Lock) [][2]string {
	if l == nil {
		l = &metastore.Lock{}
	}
	depth, scope := "0", "exclusive"
	if l.Infinite {
		depth = "infinity"
	}
	if l.Shared {
		scope = "shared"
	}
	return [][2]string{
		{"root", l.Root}, {"depth", depth}, {"scope", scope}, {"owner", l.Owner},
		{"timeout", strconv.FormatInt(l.Timeout, 10)}, {"created", strconv.FormatInt(l.Created, 10)},
		{"expires", strconv.FormatInt(l.Expires, 10)}, {"principal", l.Principal},
	}
}
