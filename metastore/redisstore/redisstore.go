// Package redisstore owns the Redis implementation of metastore.Store, the
// deployment default: each node keeps its metadata in its own Redis.
//
// # Schema
//
// The layout follows JuiceFS's Redis engine. Every key starts with a
// configurable prefix p (default "dfs:") so several stores can share one
// Redis database; IDs are decimal.
//
//	<p>i:<id>   string  Inode.Encode()
//	<p>d:<id>   hash    entry name → child id
//	<p>p:<id>   hash    "{ns}local" → value (inner XML)
//	<p>locks    hash    token → Lock as JSON
//	<p>refs     hash    content hash → count (field absent at 0)
//	<p>applied  string  index of the last committed batch
//	<p>term     string  Raft term of that batch's entry (absent: 0)
//	<p>used     string  usage counter in bytes
//
// A listing reads one directory hash and then the children's inode keys,
// so it costs O(entries in that directory) and two round trips for a
// directory of ordinary size.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dfs-project/dfs/metastore"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix used when WithPrefix is not given.
const DefaultPrefix = "dfs:"

// chunk bounds the number of fields or keys one HSCAN, MGET or UNLINK call
// handles, so a huge directory never turns into one giant command or reply
// that stalls Redis (which is single-threaded) for everyone else.
const chunk = 1000

// addRef changes a reference count and drops the field at zero, atomically:
// a separate HDEL after HINCRBY could delete a count that another op in the
// same MULTI has just raised again. A count never stays at or below zero; the
// bbolt store behaves the same.
var addRef = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then
	redis.call('HDEL', KEYS[1], ARGV[1])
end
return n
`)

// addUsage changes the usage counter and never lets it go below zero, in
// one step inside the batch's MULTI (the bbolt store clamps the same way).
var addUsage = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n < 0 then
	redis.call('SET', KEYS[1], 0)
	n = 0
end
return n
`)

// Option configures Open.
type Option func(*config)

type config struct {
	prefix string
}

// WithPrefix sets the prefix of every key the store uses. Reset deletes
// every key with this prefix, so an empty prefix hands the store the whole
// database.
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// Store is a metastore.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb    *redis.Client
	prefix string

	closeOnce sync.Once
	closeErr  error
}

var _ metastore.Store = (*Store)(nil)

// Open connects to the Redis at url, e.g. "redis://host:6379/0" or
// "unix:///run/redis.sock?db=0" (any form redis.ParseURL accepts), and
// checks that it answers.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{prefix: DefaultPrefix}
	for _, o := range opts {
		o(&cfg)
	}
	ropt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("redisstore: parse URL: %w", err)
	}
	// Without this go-redis ignores the caller's deadline and waits for its
	// own read timeout, so a stalled Redis would stall the WebDAV request
	// well past the point its client gave up.
	ropt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(ropt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: connect to %s %s: %w", ropt.Network, ropt.Addr, err)
	}
	s := &Store{rdb: rdb, prefix: cfg.prefix}
	if err := s.countUsage(ctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	return s, nil
}

// countUsage sets the usage counter of a store written before it existed
// (no used key) to the sum of its files' sizes, scanning the inodes in
// SCAN-sized batches, so that the counter is exact from the first batch
// on. Every batch since keeps the key, even at 0, so this runs once; an
// empty store costs one SCAN.
func (s *Store) countUsage(ctx context.Context) error {
	n, err := s.rdb.Exists(ctx, s.usedKey()).Result()
	if err != nil || n == 1 {
		return err
	}
	var (
		sum    int64
		cursor uint64
		match  = globEscape(s.prefix) + "i:*"
	)
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, match, chunk).Result()
		if err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		if len(keys) > 0 {
			vals, err := s.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return fmt.Errorf("count usage: %w", err)
			}
			for i, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue // deleted since the SCAN
				}
				in, err := metastore.DecodeInode([]byte(str))
				if err != nil {
					return fmt.Errorf("count usage: %s: %w", keys[i], err)
				}
				if !in.IsDir() {
					sum += in.Size
				}
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	// NX: nothing else writes the store while it opens, but a counter
	// that appeared meanwhile is the better one.
	return s.rdb.SetNX(ctx, s.usedKey(), sum, 0).Err()
}

// Close closes the connection pool. Calling it again is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.rdb.Close(); err != nil {
			s.closeErr = fmt.Errorf("redisstore: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) inodeKey(id metastore.ID) string {
	return s.prefix + "i:" + strconv.FormatUint(uint64(id), 10)
}

func (s *Store) dirKey(id metastore.ID) string {
	return s.prefix + "d:" + strconv.FormatUint(uint64(id), 10)
}

func (s *Store) propsKey(id metastore.ID) string {
	return s.prefix + "p:" + strconv.FormatUint(uint64(id), 10)
}

func (s *Store) locksKey() string   { return s.prefix + "locks" }
func (s *Store) membersKey() string { return s.prefix + "members" }
func (s *Store) refsKey() string    { return s.prefix + "refs" }
func (s *Store) appliedKey() string { return s.prefix + "applied" }
func (s *Store) termKey() string    { return s.prefix + "term" }
func (s *Store) usedKey() string    { return s.prefix + "used" }

func parseID(v string) (metastore.ID, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("corrupt inode id %q: %w", v, err)
	}
	return metastore.ID(n), nil
}

// Get implements metastore.Reader.
func (s *Store) Get(ctx context.Context, id metastore.ID) (metastore.Inode, error) {
	ino, err := s.get(ctx, id)
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("redisstore: get inode %d: %w", id, err)
	}
	return ino, nil
}

func (s *Store) get(ctx context.Context, id metastore.ID) (metastore.Inode, error) {
	b, err := s.rdb.Get(ctx, s.inodeKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return metastore.Inode{}, metastore.ErrNotFound
	}
	if err != nil {
		return metastore.Inode{}, err
	}
	return metastore.DecodeInode(b)
}

// Lookup implements metastore.Reader. An entry whose inode is gone counts
// as missing.
func (s *Store) Lookup(ctx context.Context, parent metastore.ID, name string) (metastore.Inode, error) {
	ino, err := s.lookup(ctx, parent, name)
	if err != nil {
		return metastore.Inode{}, fmt.Errorf("redisstore: lookup %q in %d: %w", name, parent, err)
	}
	return ino, nil
}

func (s *Store) lookup(ctx context.Context, parent metastore.ID, name string) (metastore.Inode, error) {
	v, err := s.rdb.HGet(ctx, s.dirKey(parent), name).Result()
	if errors.Is(err, redis.Nil) {
		return metastore.Inode{}, metastore.ErrNotFound
	}
	if err != nil {
		return metastore.Inode{}, err
	}
	child, err := parseID(v)
	if err != nil {
		return metastore.Inode{}, err
	}
	return s.get(ctx, child)
}

// List implements metastore.Reader. Entries whose inode is gone are left
// out, consistently with Lookup.
func (s *Store) List(ctx context.Context, dir metastore.ID) ([]metastore.Dirent, error) {
	out, err := s.list(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("redisstore: list %d: %w", dir, err)
	}
	return out, nil
}

func (s *Store) list(ctx context.Context, dir metastore.ID) ([]metastore.Dirent, error) {
	// HSCAN rather than HGETALL: a small hash comes back whole in one call
	// anyway, a large one comes back in bounded pieces.
	children := make(map[string]string)
	var cursor uint64
	for {
		fields, next, err := s.rdb.HScan(ctx, s.dirKey(dir), cursor, "", chunk).Result()
		if err != nil {
			return nil, err
		}
		// HSCAN may repeat a field while the hash is rehashed; the map
		// drops the duplicates.
		for i := 0; i+1 < len(fields); i += 2 {
			children[fields[i]] = fields[i+1]
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	if len(children) == 0 {
		return nil, nil
	}

	names := make([]string, 0, len(children))
	for name := range children {
		names = append(names, name)
	}
	slices.Sort(names)
	keys := make([]string, len(names))
	for i, name := range names {
		id, err := parseID(children[name])
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		keys[i] = s.inodeKey(id)
	}

	// All MGETs go in one pipeline: one round trip, bounded commands.
	cmds := make([]*redis.SliceCmd, 0, (len(keys)+chunk-1)/chunk)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for lo := 0; lo < len(keys); lo += chunk {
			cmds = append(cmds, p.MGet(ctx, keys[lo:min(lo+chunk, len(keys))]...))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	out := make([]metastore.Dirent, 0, len(names))
	i := 0
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			name := names[i]
			i++
			str, ok := v.(string)
			if !ok { // nil: the inode is gone
				continue
			}
			ino, err := metastore.DecodeInode([]byte(str))
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", name, err)
			}
			out = append(out, metastore.Dirent{Name: name, Inode: ino})
		}
	}
	return out, nil
}

// Props implements metastore.Reader.
func (s *Store) Props(ctx context.Context, id metastore.ID) (map[metastore.PropName]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.propsKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: props of %d: %w", id, err)
	}
	out := make(map[metastore.PropName]string, len(m))
	for k, v := range m {
		name, err := metastore.ParsePropName(k)
		if err != nil {
			return nil, fmt.Errorf("redisstore: props of %d: %w", id, err)
		}
		out[name] = v
	}
	return out, nil
}

// propsChunk bounds how many HGETALLs one pipeline carries, so a huge
// directory never builds one unbounded request or reply.
const propsChunk = 1000

// PropsOf implements metastore.Reader with pipelined HGETALLs: one round
// trip per propsChunk inodes instead of one per inode.
func (s *Store) PropsOf(ctx context.Context, ids []metastore.ID) (map[metastore.ID]map[metastore.PropName]string, error) {
	out := make(map[metastore.ID]map[metastore.PropName]string, len(ids))
	for start := 0; start < len(ids); start += propsChunk {
		chunk := ids[start:min(start+propsChunk, len(ids))]
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = p.HGetAll(ctx, s.propsKey(id))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redisstore: props of %d inodes: %w", len(chunk), err)
		}
		for i, id := range chunk {
			props := make(map[metastore.PropName]string, len(cmds[i].Val()))
			for k, v := range cmds[i].Val() {
				name, err := metastore.ParsePropName(k)
				if err != nil {
					return nil, fmt.Errorf("redisstore: props of %d: %w", id, err)
				}
				props[name] = v
			}
			out[id] = props
		}
	}
	return out, nil
}

// Locks implements metastore.Reader.
func (s *Store) Locks(ctx context.Context) ([]metastore.Lock, error) {
	m, err := s.rdb.HGetAll(ctx, s.locksKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: locks: %w", err)
	}
	out := make([]metastore.Lock, 0, len(m))
	for token, v := range m {
		var l metastore.Lock
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return nil, fmt.Errorf("redisstore: lock %q: %w", token, err)
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b metastore.Lock) int { return strings.Compare(a.Token, b.Token) })
	return out, nil
}

// Members implements metastore.Reader.
func (s *Store) Members(ctx context.Context) ([]metastore.Member, error) {
	m, err := s.rdb.HGetAll(ctx, s.membersKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: members: %w", err)
	}
	out := make([]metastore.Member, 0, len(m))
	for id, v := range m {
		var mb metastore.Member
		if err := json.Unmarshal([]byte(v), &mb); err != nil {
			return nil, fmt.Errorf("redisstore: member %q: %w", id, err)
		}
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b metastore.Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RefCount implements metastore.Reader.
func (s *Store) RefCount(ctx context.Context, hash string) (int64, error) {
	n, err := s.rdb.HGet(ctx, s.refsKey(), hash).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: refcount %s: %w", hash, err)
	}
	return n, nil
}

// AppliedIndex implements metastore.Reader.
func (s *Store) AppliedIndex(ctx context.Context) (uint64, error) {
	n, err := s.appliedIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("redisstore: applied index: %w", err)
	}
	return n, nil
}

func (s *Store) appliedIndex(ctx context.Context) (uint64, error) {
	n, err := s.rdb.Get(ctx, s.appliedKey()).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// AppliedPosition implements metastore.Reader. One MGET reads index and
// term together: a batch's MULTI/EXEC sets both, and Redis runs no command
// in between.
func (s *Store) AppliedPosition(ctx context.Context) (metastore.Position, error) {
	vals, err := s.rdb.MGet(ctx, s.appliedKey(), s.termKey()).Result()
	if err != nil {
		return metastore.Position{}, fmt.Errorf("redisstore: applied position: %w", err)
	}
	var pos metastore.Position
	for i, dst := range []*uint64{&pos.Index, &pos.Term} {
		str, ok := vals[i].(string)
		if !ok {
			continue // absent: 0
		}
		if *dst, err = strconv.ParseUint(str, 10, 64); err != nil {
			return metastore.Position{}, fmt.Errorf("redisstore: applied position: corrupt value %q: %w", str, err)
		}
	}
	return pos, nil
}

// UsedBytes implements metastore.Reader.
func (s *Store) UsedBytes(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.usedKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: used bytes: %w", err)
	}
	return n, nil
}

// Commit implements metastore.Store: every op, the new applied index and
// its term go in one MULTI/EXEC, so Redis runs them with no other command in between
// and a crash of this process cannot leave half a batch.
//
// The applied index is checked before the MULTI, not inside it. That is
// race-free only because each node's store has a single writer, the Raft
// state machine, which commits batches one at a time; nothing else can move
// the index between the check and the EXEC.
//
// Redis has no rollback: a command that fails while EXEC runs (say, a key
// of the wrong type after someone wrote to our prefix by hand) does not
// undo the others. Commands built here cannot fail that way on a store only
// this package writes.
func (s *Store) Commit(ctx context.Context, b *metastore.Batch) error {
	if b == nil {
		return errors.New("redisstore: commit: nil batch")
	}
	if err := s.commit(ctx, b); err != nil {
		return fmt.Errorf("redisstore: commit batch %d: %w", b.Index, err)
	}
	return nil
}

func (s *Store) commit(ctx context.Context, b *metastore.Batch) error {
	if b.Prev == 0 {
		applied, err := s.appliedIndex(ctx)
		if err != nil {
			return fmt.Errorf("read applied index: %w", err)
		}
		if err := checkIndex(b, applied); err != nil {
			return err
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error { return s.queueBatch(ctx, p, b) })
		return err
	}
	// A batch built on a known index commits only if nothing touched the
	// applied index between the check and EXEC: WATCH makes EXEC fail if
	// the key changed, and FLUSHALL or FLUSHDB count as a change.
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		applied, err := tx.Get(ctx, s.appliedKey()).Uint64()
		if errors.Is(err, redis.Nil) {
			applied, err = 0, nil
		}
		if err != nil {
			return fmt.Errorf("read applied index: %w", err)
		}
		if err := checkIndex(b, applied); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return s.queueBatch(ctx, p, b) })
		return err
	}, s.appliedKey())
	if errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("%w: the applied index changed during the commit", metastore.ErrIndexMismatch)
	}
	return err
}

func checkIndex(b *metastore.Batch, applied uint64) error {
	if b.Index <= applied {
		return fmt.Errorf("%w (applied index %d)", metastore.ErrStaleBatch, applied)
	}
	if b.Prev != 0 && b.Prev != applied {
		return fmt.Errorf("%w: built on %d, store at %d", metastore.ErrIndexMismatch, b.Prev, applied)
	}
	return nil
}

func (s *Store) queueBatch(ctx context.Context, p redis.Pipeliner, b *metastore.Batch) error {
	for i := range b.Ops {
		if err := s.queue(ctx, p, &b.Ops[i]); err != nil {
			return fmt.Errorf("op %d (kind %d): %w", i, b.Ops[i].Kind, err)
		}
	}
	p.Set(ctx, s.appliedKey(), b.Index, 0)
	// Written even at 0, so no term of an earlier entry is left beside
	// this one's index.
	p.Set(ctx, s.termKey(), b.Term, 0)
	return nil
}

func (s *Store) queue(ctx context.Context, p redis.Pipeliner, op *metastore.Op) error {
	switch op.Kind {
	case metastore.OpPutInode:
		p.Set(ctx, s.inodeKey(op.Inode.ID), op.Inode.Encode(), 0)
	case metastore.OpDeleteInode:
		p.Del(ctx, s.inodeKey(op.ID))
	case metastore.OpLink:
		p.HSet(ctx, s.dirKey(op.Parent), op.Name, strconv.FormatUint(uint64(op.ID), 10))
	case metastore.OpUnlink:
		p.HDel(ctx, s.dirKey(op.Parent), op.Name)
	case metastore.OpSetProp:
		p.HSet(ctx, s.propsKey(op.ID), op.Prop.Key(), op.Value)
	case metastore.OpDeleteProp:
		p.HDel(ctx, s.propsKey(op.ID), op.Prop.Key())
	case metastore.OpDeleteProps:
		p.Del(ctx, s.propsKey(op.ID))
	case metastore.OpPutLock:
		v, err := json.Marshal(op.Lock)
		if err != nil {
			return err
		}
		p.HSet(ctx, s.locksKey(), op.Lock.Token, v)
	case metastore.OpDeleteLock:
		p.HDel(ctx, s.locksKey(), op.Lock.Token)
	case metastore.OpPutMember:
		v, err := json.Marshal(op.Member)
		if err != nil {
			return err
		}
		p.HSet(ctx, s.membersKey(), op.Member.ID, v)
	case metastore.OpDeleteMember:
		p.HDel(ctx, s.membersKey(), op.Member.ID)
	case metastore.OpAddRef:
		// EVAL, not EVALSHA: inside MULTI a NOSCRIPT error (script cache
		// flushed by a Redis restart) would only surface at EXEC, after
		// the rest of the batch had been applied.
		addRef.Eval(ctx, p, []string{s.refsKey()}, op.Hash, op.Delta)
	case metastore.OpAddUsage:
		addUsage.Eval(ctx, p, []string{s.usedKey()}, op.Delta)
	default:
		return fmt.Errorf("unknown op kind %d", op.Kind)
	}
	return nil
}

// Reset implements metastore.Store by deleting every key with the prefix,
// in SCAN-sized batches so a big store does not block Redis.
//
// Unlike the bbolt store this is not atomic. The applied index (with its
// term) goes first so that a crash halfway leaves a store that claims
// nothing was applied; the snapshot restore that follows a Reset then simply runs again, instead
// of the node trusting a half-deleted store.
func (s *Store) Reset(ctx context.Context) error {
	if err := s.reset(ctx); err != nil {
		return fmt.Errorf("redisstore: reset: %w", err)
	}
	return nil
}

func (s *Store) reset(ctx context.Context) error {
	if err := s.rdb.Unlink(ctx, s.appliedKey(), s.termKey()).Err(); err != nil {
		return err
	}
	match := globEscape(s.prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, match, chunk).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := s.rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			// An empty store's counter is 0, and present: absent would
			// mean a store from before the counter (see countUsage).
			return s.rdb.Set(ctx, s.usedKey(), 0, 0).Err()
		}
		cursor = next
	}
}

// globEscape quotes the characters SCAN MATCH treats as wildcards, so a
// prefix like "a*" cannot match (and Reset delete) another store's keys.
func globEscape(s string) string {
	// Byte-wise, so a prefix that is not valid UTF-8 passes through intact.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
