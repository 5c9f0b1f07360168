// Package boltstore owns the embedded implementation of metastore.Store: the
// whole metadata of a node in one bbolt file, used when no Redis URL is
// configured.
//
// Why bbolt: it is pure Go and embedded (no server to run next to a small
// node), its read-write transactions are serializable and fsynced on
// commit, so a Batch and the Raft index it comes from land together or not
// at all, and its keys are kept sorted, so a directory listing is a prefix
// scan that already yields entries in name order.
//
// # Layout
//
// One bucket per kind of record; IDs are 8-byte big-endian so that all keys
// of one inode or one parent are contiguous:
//
//	inodes    id                    → Inode.Encode()
//	dentries  parent id + name      → child id
//	props     id + "{ns}local"      → value (inner XML)
//	locks     token                 → Lock as JSON
//	refs      content hash          → count (8-byte big-endian; absent at 0)
//	meta      "applied"             → applied Raft index (8-byte big-endian)
//	meta      "term"                → Raft term of that entry (8-byte big-endian; absent: 0)
//	meta      "used"                → usage counter in bytes (8-byte big-endian)
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dfs-project/dfs/metastore"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketInodes   = []byte("inodes")
	bucketDentries = []byte("dentries")
	bucketProps    = []byte("props")
	bucketLocks    = []byte("locks")
	bucketMembers  = []byte("members")
	bucketRefs     = []byte("refs")
	bucketMeta     = []byte("meta")

	allBuckets = [][]byte{bucketInodes, bucketDentries, bucketProps, bucketLocks, bucketRefs, bucketMeta, bucketMembers}

	keyApplied = []byte("applied")
	keyTerm    = []byte("term")
	keyUsed    = []byte("used")
)

// openTimeout bounds the wait for bbolt's file lock. Without it a second
// process opening the same file (a node started twice) would block forever
// instead of failing.
const openTimeout = 10 * time.Second

// Store is a metastore.Store on a bbolt file. It is safe for concurrent use;
// bbolt serialises writers and lets readers run alongside them.
type Store struct {
	db *bolt.DB
}

var _ metastore.Store = (*Store)(nil)

// Open opens (creating if needed) the store in the bbolt file at path.
//
// The whole file is checked first (bbolt's consistency check, a read of
// every page): a damaged file is refused with ErrCorrupt rather than
// served, so the node can set it aside and rebuild from its Raft state.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := check(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w: %w", path, ErrCorrupt, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return countUsage(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// ErrCorrupt is wrapped by Open when the file is damaged.
var ErrCorrupt = errors.New("boltstore: the database file is corrupt")

// check runs bbolt's consistency check over every page. bbolt may panic
// on pages it cannot decode at all; that is corruption too.
func check(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("consistency check: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			if len(errs) < 5 {
				errs = append(errs, e)
			}
		}
		return errors.Join(errs...)
	})
}

// countUsage sets the usage counter of a store written before it existed
// (no "used" key) to the sum of its files' sizes, so that the counter is
// exact from the first batch on. Every batch since keeps the key, even at
// 0, so this runs once.
func countUsage(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyUsed) != nil {
		return nil
	}
	var sum int64
	err := tx.Bucket(bucketInodes).ForEach(func(k, v []byte) error {
		in, err := metastore.DecodeInode(v)
		if err != nil {
			return fmt.Errorf("count usage: inode %x: %w", k, err)
		}
		if !in.IsDir() {
			sum += in.Size
		}
		return nil
	})
	if err != nil {
		return err
	}
	return meta.Put(keyUsed, binary.BigEndian.AppendUint64(nil, uint64(sum)))
}

// Close closes the bbolt file. Calling it again is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

func idKey(id metastore.ID) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(id))
}

// childKey is the dentries/props key: the owner's ID followed by a name.
func childKey(id metastore.ID, name string) []byte {
	k := make([]byte, 8, 8+len(name))
	binary.BigEndian.PutUint64(k, uint64(id))
	return append(k, name...)
}

func decodeUint64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt value: %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// view runs fn in a read transaction, refusing up front if ctx is done:
// bbolt takes no context, and a caller that gave up should get an error
// rather than a result.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func getInode(tx *bolt.Tx, id metastore.ID) (metastore.Inode, error) {
	v := tx.Bucket(bucketInodes).Get(idKey(id))
	if v == nil {
		return metastore.Inode{}, metastore.ErrNotFound
	}
	return metastore.DecodeInode(v)
}

// Get implements metastore.Reader.
func (s *Store) Get(ctx context.Context, id metastore.ID) (metastore.Inode, error) {
	var ino metastore.Inode
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ino, err = getInode(tx, id)
		return err
	})
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("boltstore: get inode %d: %w", id, err)
	}
	return ino, nil
}

// Lookup implements metastore.Reader. An entry whose inode is gone counts
// as missing.
func (s *Store) Lookup(ctx context.Context, parent metastore.ID, name string) (metastore.Inode, error) {
	var ino metastore.Inode
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDentries).Get(childKey(parent, name))
		if v == nil {
			return metastore.ErrNotFound
		}
		child, err := decodeUint64(v)
		if err != nil {
			return err
		}
		ino, err = getInode(tx, metastore.ID(child))
		return err
	})
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("boltstore: lookup %q in %d: %w", name, parent, err)
	}
	return ino, nil
}

// List implements metastore.Reader. Keys are sorted bytewise, which is Go's
// string order, so the prefix scan needs no sorting. Entries whose inode is
// gone are left out, consistently with Lookup.
func (s *Store) List(ctx context.Context, dir metastore.ID) ([]metastore.Dirent, error) {
	var out []metastore.Dirent
	err := s.view(ctx, func(tx *bolt.Tx) error {
		inodes := tx.Bucket(bucketInodes)
		prefix := idKey(dir)
		c := tx.Bucket(bucketDentries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			child, err := decodeUint64(v)
			if err != nil {
				return fmt.Errorf("entry %q: %w", k[8:], err)
			}
			raw := inodes.Get(idKey(metastore.ID(child)))
			if raw == nil {
				continue
			}
			ino, err := metastore.DecodeInode(raw)
			if err != nil {
				return fmt.Errorf("entry %q: %w", k[8:], err)
			}
			out = append(out, metastore.Dirent{Name: string(k[8:]), Inode: ino})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list %d: %w", dir, err)
	}
	return out, nil
}

// Props implements metastore.Reader.
func (s *Store) Props(ctx context.Context, id metastore.ID) (map[metastore.PropName]string, error) {
	out := make(map[metastore.PropName]string)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		prefix := idKey(id)
		c := tx.Bucket(bucketProps).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			name, err := metastore.ParsePropName(string(k[8:]))
			if err != nil {
				return err
			}
			out[name] = string(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: props of %d: %w", id, err)
	}
	return out, nil
}

// PropsOf implements metastore.Reader: one read transaction for all.
func (s *Store) PropsOf(ctx context.Context, ids []metastore.ID) (map[metastore.ID]map[metastore.PropName]string, error) {
	out := make(map[metastore.ID]map[metastore.PropName]string, len(ids))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketProps).Cursor()
		for _, id := range ids {
			props := make(map[metastore.PropName]string)
			prefix := idKey(id)
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				name, err := metastore.ParsePropName(string(k[8:]))
				if err != nil {
					return fmt.Errorf("inode %d: %w", id, err)
				}
				props[name] = string(v)
			}
			out[id] = props
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: props of %d inodes: %w", len(ids), err)
	}
	return out, nil
}

// Locks implements metastore.Reader; bbolt's key order is token order.
func (s *Store) Locks(ctx context.Context) ([]metastore.Lock, error) {
	var out []metastore.Lock
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLocks).ForEach(func(k, v []byte) error {
			var l metastore.Lock
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lock %q: %w", k, err)
			}
			out = append(out, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: locks: %w", err)
	}
	return out, nil
}

// Members implements metastore.Reader; bbolt's key order is ID order.
func (s *Store) Members(ctx context.Context) ([]metastore.Member, error) {
	var out []metastore.Member
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
			var m metastore.Member
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("member %q: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: members: %w", err)
	}
	return out, nil
}

// RefCount implements metastore.Reader.
func (s *Store) RefCount(ctx context.Context, hash string) (int64, error) {
	var n int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = refCount(tx.Bucket(bucketRefs), hash)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: refcount %s: %w", hash, err)
	}
	return n, nil
}

func refCount(b *bolt.Bucket, hash string) (int64, error) {
	v := b.Get([]byte(hash))
	if v == nil {
		return 0, nil
	}
	n, err := decodeUint64(v)
	return int64(n), err
}

// AppliedIndex implements metastore.Reader.
func (s *Store) AppliedIndex(ctx context.Context) (uint64, error) {
	var idx uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		idx, err = appliedIndex(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: applied index: %w", err)
	}
	return idx, nil
}

func appliedIndex(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(keyApplied)
	if v == nil {
		return 0, nil
	}
	return decodeUint64(v)
}

// AppliedPosition implements metastore.Reader: index and term come from
// one read transaction.
func (s *Store) AppliedPosition(ctx context.Context) (metastore.Position, error) {
	var pos metastore.Position
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		if pos.Index, err = appliedIndex(tx); err != nil {
			return err
		}
		if v := tx.Bucket(bucketMeta).Get(keyTerm); v != nil {
			pos.Term, err = decodeUint64(v)
		}
		return err
	})
	if err != nil {
		return metastore.Position{}, fmt.Errorf("boltstore: applied position: %w", err)
	}
	return pos, nil
}

// UsedBytes implements metastore.Reader.
func (s *Store) UsedBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = usedBytes(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: used bytes: %w", err)
	}
	return n, nil
}

func usedBytes(tx *bolt.Tx) (int64, error) {
	v := tx.Bucket(bucketMeta).Get(keyUsed)
	if v == nil {
		return 0, nil
	}
	n, err := decodeUint64(v)
	return int64(n), err
}

// Commit implements metastore.Store: the ops, the new applied index and its
// term are written in one bbolt transaction, so a failure anywhere leaves the file as
// it was.
//
// ctx is only checked before starting: abandoning a transaction halfway
// because the caller lost interest would make the state machine's fate
// depend on timing, and bbolt cannot be interrupted mid-commit anyway.
func (s *Store) Commit(ctx context.Context, b *metastore.Batch) error {
	if b == nil {
		return errors.New("boltstore: commit: nil batch")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: commit batch %d: %w", b.Index, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		applied, err := appliedIndex(tx)
		if err != nil {
			return err
		}
		if b.Index <= applied {
			return fmt.Errorf("%w (applied index %d)", metastore.ErrStaleBatch, applied)
		}
		if b.Prev != 0 && b.Prev != applied {
			return fmt.Errorf("%w: built on %d, store at %d", metastore.ErrIndexMismatch, b.Prev, applied)
		}
		for i := range b.Ops {
			if err := apply(tx, &b.Ops[i]); err != nil {
				return fmt.Errorf("op %d (kind %d): %w", i, b.Ops[i].Kind, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, b.Index)); err != nil {
			return err
		}
		// Written even at 0, so no term of an earlier entry is left
		// beside this one's index.
		return meta.Put(keyTerm, binary.BigEndian.AppendUint64(nil, b.Term))
	})
	if err != nil {
		return fmt.Errorf("boltstore: commit batch %d: %w", b.Index, err)
	}
	return nil
}

func apply(tx *bolt.Tx, op *metastore.Op) error {
	switch op.Kind {
	case metastore.OpPutInode:
		return tx.Bucket(bucketInodes).Put(idKey(op.Inode.ID), op.Inode.Encode())
	case metastore.OpDeleteInode:
		return tx.Bucket(bucketInodes).Delete(idKey(op.ID))
	case metastore.OpLink:
		return tx.Bucket(bucketDentries).Put(childKey(op.Parent, op.Name), idKey(op.ID))
	case metastore.OpUnlink:
		return tx.Bucket(bucketDentries).Delete(childKey(op.Parent, op.Name))
	case metastore.OpSetProp:
		return tx.Bucket(bucketProps).Put(childKey(op.ID, op.Prop.Key()), []byte(op.Value))
	case metastore.OpDeleteProp:
		return tx.Bucket(bucketProps).Delete(childKey(op.ID, op.Prop.Key()))
	case metastore.OpDeleteProps:
		return deletePrefix(tx.Bucket(bucketProps), idKey(op.ID))
	case metastore.OpPutLock:
		v, err := json.Marshal(op.Lock)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketLocks).Put([]byte(op.Lock.Token), v)
	case metastore.OpDeleteLock:
		return tx.Bucket(bucketLocks).Delete([]byte(op.Lock.Token))
	case metastore.OpPutMember:
		v, err := json.Marshal(op.Member)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMembers).Put([]byte(op.Member.ID), v)
	case metastore.OpDeleteMember:
		return tx.Bucket(bucketMembers).Delete([]byte(op.Member.ID))
	case metastore.OpAddRef:
		refs := tx.Bucket(bucketRefs)
		n, err := refCount(refs, op.Hash)
		if err != nil {
			return err
		}
		n += op.Delta
		// A count never goes below zero: at or under zero nothing refers to
		// the content, and keeping the key would leak it forever. The Redis
		// store does the same so both agree on a buggy negative delta.
		if n <= 0 {
			return refs.Delete([]byte(op.Hash))
		}
		return refs.Put([]byte(op.Hash), binary.BigEndian.AppendUint64(nil, uint64(n)))
	case metastore.OpAddUsage:
		n, err := usedBytes(tx)
		if err != nil {
			return err
		}
		// Like a reference count, the counter never goes below zero; the
		// Redis store clamps the same way, so both agree on any batch.
		n = max(n+op.Delta, 0)
		return tx.Bucket(bucketMeta).Put(keyUsed, binary.BigEndian.AppendUint64(nil, uint64(n)))
	default:
		return fmt.Errorf("unknown op kind %d", op.Kind)
	}
}

// deletePrefix removes every key starting with prefix. Keys are collected
// first because deleting under a bbolt cursor makes Next skip entries.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Reset implements metastore.Store. Dropping and recreating the buckets in
// one transaction makes the wipe atomic: a crash leaves the old state or an
// empty store, never a half-emptied one with a stale applied index.
func (s *Store) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: reset: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return fmt.Errorf("drop bucket %s: %w", name, err)
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return countUsage(tx) // 0: the store is empty
	})
	if err != nil {
		return fmt.Errorf("boltstore: reset: %w", err)
	}
	return nil
}
