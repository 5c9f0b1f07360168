package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// Entry kinds, in the order a stream carries them.
const (
	EntryPath   = "path"
	EntryLock   = "lock"
	EntryMember = "member"
	entryEnd    = "end" // the trailer of GET /cluster/digest/entries
)

// DigestEntry is one canonical entry of a node's replicated state: a path
// of the namespace, a lock or a cluster member. Its JSON line is exactly
// what the namespace digest hashes.
type DigestEntry struct {
	Kind string `json:"kind"`
	// Path entries.
	Path        string `json:"path,omitempty"`
	Type        string `json:"type,omitempty"` // "file" or "collection"
	Size        int64  `json:"size,omitempty"`
	Hash        string `json:"hash,omitempty"`
	ETag        string `json:"etag,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Created     int64  `json:"created,omitempty"`  // Unix nanoseconds
	Modified    int64  `json:"modified,omitempty"` // Unix nanoseconds
	// Props are the dead properties, sorted by name (Clark notation).
	Props []Prop `json:"props,omitempty"`

	Lock   *metastore.Lock   `json:"lock,omitempty"`
	Member *metastore.Member `json:"member,omitempty"`

	// End is set on the trailer of an entries stream only.
	End *StreamEnd `json:"end,omitempty"`
}

// Prop is one dead property: its Clark name and its inner XML.
type Prop struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// StreamEnd is the last line of GET /cluster/digest/entries.
type StreamEnd struct {
	AppliedIndex uint64 `json:"applied_index"`
	// Settled is false when the node applied another entry while the
	// stream was read: the lines then mix two states.
	Settled         bool   `json:"settled"`
	Entries         int64  `json:"entries"`
	NamespaceDigest string `json:"namespace_digest"`
	// Error is set when the node failed part way; the stream is incomplete.
	Error string `json:"error,omitempty"`
}

// Key names an entry for comparisons across nodes: the path, the lock
// token or the member ID, prefixed by the kind for locks and members.
func (e *DigestEntry) Key() string {
	switch e.Kind {
	case EntryLock:
		if e.Lock != nil {
			return "lock " + e.Lock.Token
		}
	case EntryMember:
		if e.Member != nil {
			return "member " + e.Member.ID
		}
	}
	return e.Path
}

// compareEntries orders entries as a stream carries them: paths depth
// first with members in name order, then locks by token, then cluster
// members by ID.
func compareEntries(a, b *DigestEntry) int {
	rank := func(k string) int {
		switch k {
		case EntryPath:
			return 0
		case EntryLock:
			return 1
		case EntryMember:
			return 2
		}
		return 3
	}
	if c := rank(a.Kind) - rank(b.Kind); c != 0 {
		return c
	}
	switch a.Kind {
	case EntryPath:
		return comparePaths(a.Path, b.Path)
	case EntryLock, EntryMember:
		return strings.Compare(a.Key(), b.Key())
	}
	return 0
}

// comparePaths orders paths as a depth-first walk visits them: a
// collection before its members, members by name (bytewise, as the stores
// list them). Plain string order differs: "/a b" < "/a/x" but the walk
// visits /a/x (inside /a) first.
func comparePaths(a, b string) int {
	as, bs := strings.TrimPrefix(a, "/"), strings.TrimPrefix(b, "/")
	for {
		switch {
		case as == "" && bs == "":
			return 0
		case as == "":
			return -1
		case bs == "":
			return 1
		}
		ah, at, _ := strings.Cut(as, "/")
		bh, bt, _ := strings.Cut(bs, "/")
		if c := strings.Compare(ah, bh); c != 0 {
			return c
		}
		as, bs = at, bt
	}
}

// pathEntry is the canonical entry of one inode at path.
func pathEntry(path string, in metastore.Inode, props map[metastore.PropName]string) DigestEntry {
	e := DigestEntry{
		Kind:        EntryPath,
		Path:        path,
		Type:        "collection",
		ContentType: in.ContentType,
		Created:     in.Created,
		Modified:    in.Modified,
	}
	if !in.IsDir() {
		e.Type, e.Size, e.Hash, e.ETag = "file", in.Size, in.Hash, fsm.ETag(in)
	}
	if len(props) > 0 {
		e.Props = make([]Prop, 0, len(props))
		for n, v := range props {
			e.Props = append(e.Props, Prop{Name: n.Key(), Value: v})
		}
		slices.SortFunc(e.Props, func(x, y Prop) int { return strings.Compare(x.Name, y.Name) })
	}
	return e
}

// propsBatch bounds how many inodes' properties one PropsOf call reads.
const propsBatch = 512

// walkState calls fn for every entry of r's state in stream order: the
// namespace depth first from the root, then the locks, then the members.
// It holds one directory listing per level of depth, never the whole
// namespace.
func walkState(ctx context.Context, r metastore.Reader, fn func(*DigestEntry) error) error {
	root, err := r.Get(ctx, metastore.RootID)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		// A cluster whose first leader has not created the root yet.
	case err != nil:
		return fmt.Errorf("read the root: %w", err)
	default:
		props, err := r.Props(ctx, metastore.RootID)
		if err != nil {
			return fmt.Errorf("read properties of /: %w", err)
		}
		e := pathEntry("/", root, props)
		if err := fn(&e); err != nil {
			return err
		}
		if err := walkDir(ctx, r, "", metastore.RootID, fn); err != nil {
			return err
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return fmt.Errorf("read locks: %w", err)
	}
	slices.SortFunc(locks, func(a, b metastore.Lock) int { return strings.Compare(a.Token, b.Token) })
	for i := range locks {
		if err := fn(&DigestEntry{Kind: EntryLock, Lock: &locks[i]}); err != nil {
			return err
		}
	}
	members, err := r.Members(ctx)
	if err != nil {
		return fmt.Errorf("read the member table: %w", err)
	}
	slices.SortFunc(members, func(a, b metastore.Member) int { return strings.Compare(a.ID, b.ID) })
	for i := range members {
		if err := fn(&DigestEntry{Kind: EntryMember, Member: &members[i]}); err != nil {
			return err
		}
	}
	return nil
}

// walkDir emits the members of the collection dir (at path prefix) and,
// depth first, everything below them.
func walkDir(ctx context.Context, r metastore.Reader, prefix string, dir metastore.ID, fn func(*DigestEntry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := r.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s/: %w", prefix, err)
	}
	for lo := 0; lo < len(ents); lo += propsBatch {
		part := ents[lo:min(lo+propsBatch, len(ents))]
		ids := make([]metastore.ID, len(part))
		for i, e := range part {
			ids[i] = e.Inode.ID
		}
		props, err := r.PropsOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("read properties in %s/: %w", prefix, err)
		}
		for _, de := range part {
			p := prefix + "/" + de.Name
			e := pathEntry(p, de.Inode, props[de.Inode.ID])
			if err := fn(&e); err != nil {
				return err
			}
			if de.Inode.IsDir() {
				if err := walkDir(ctx, r, p, de.Inode.ID, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// appendEntry appends e's canonical JSON line to b.
func appendEntry(b []byte, e *DigestEntry) ([]byte, error) {
	j, err := json.Marshal(e)
	if err != nil {
		return b, fmt.Errorf("encode entry %s: %w", e.Key(), err)
	}
	b = append(b, j...)
	return append(b, '\n'), nil
}
