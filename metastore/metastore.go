// Package metastore owns the metadata of a dfs node: the namespace (inodes
// and directory entries), dead properties, WebDAV locks, content reference
// counts and the Raft index of the last applied log entry.
//
// # Model
//
// The namespace follows an inode / directory-entry model (the one JuiceFS
// uses on Redis). Every file and collection is an Inode with a numeric ID;
// a directory entry maps (parent ID, name) to a child ID. Paths are never
// keys, so:
//
//   - listing a collection (PROPFIND Depth 1) reads the entries of one
//     parent: O(entries in that directory), never O(all files);
//   - moving a collection with any number of descendants rewrites one
//     directory entry in the old parent and one in the new parent: the
//     descendants are untouched because they hang off the moved inode's ID.
//
// Dead properties hang off the inode ID too, so they travel with MOVE for
// free. Locks are keyed by token and name a path, because RFC 4918 locks
// protect URLs, not inodes.
//
// # Atomicity and idempotence
//
// Every change arrives as one Batch that carries the Raft index it comes
// from. Store.Commit applies the whole batch and records that index in the
// same atomic step (a bbolt transaction, a Redis MULTI/EXEC), so after a
// crash the store is either before or after the entry, and the replayed log
// can skip what was already applied by comparing indexes.
//
// The batch also carries the Raft term of its entry, recorded in the same
// step. An index only says how far a store got; the index and term of its
// last entry (its Position) say which log it followed, so a node can tell
// its own store that merely lags from one that went back to another
// history or belongs to another node or cluster (see package fsm).
//
// Two implementations pass one conformance suite (package storetest): a
// Redis store (one Redis per node, the deployment default) and an embedded
// bbolt store used when no Redis URL is configured.
package metastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned when an inode, directory entry or lock does not exist.
var ErrNotFound = errors.New("metastore: not found")

// ID identifies an inode. IDs are assigned by the state machine from the Raft
// log index so that every node assigns the same IDs.
type ID uint64

// PathResolver is a Reader that resolves a whole path in one call: the
// inodes of the root and of each segment of segs found, in order, stopping
// at the first segment that is missing (or that follows a file), and the
// store's applied index, all read at one instant. A root not stored yet
// gives none. Redis implements it, so that resolving a path costs one
// round trip instead of two per segment (fsm.Resolve uses it), and a read
// that depends on nothing else needs no second round trip to confirm the
// store still held the node's state when it read (fsm.ReadGuard.CheckSeen).
type PathResolver interface {
	ResolvePath(ctx context.Context, segs []string) (inodes []Inode, applied uint64, err error)
}

// RootID is the inode of the namespace root "/".
const RootID ID = 1

// PurgeID and StagingID are collections no path leads to, for the subtree
// work one log entry must not do at once (see package fsm): PurgeID holds
// the subtrees a DELETE or an overwrite detached from the namespace until
// they are removed in bounded steps; StagingID holds copies being built in
// bounded steps until they are linked at their destination. The state
// machine's inode IDs start at 1<<20, so these never clash with one.
const (
	PurgeID   ID = 2
	StagingID ID = 3
)

// Kind says whether an inode is a file or a collection.
type Kind uint8

const (
	KindFile Kind = 1
	KindDir  Kind = 2
)

// Inode holds the attributes of one file or collection. Times are Unix
// nanoseconds fixed by the leader in the log entry that set them.
type Inode struct {
	ID          ID     `json:"id"`
	Kind        Kind   `json:"k"`
	Size        int64  `json:"s,omitempty"`
	Hash        string `json:"h,omitempty"` // lowercase hex SHA-256 of the content; files only
	ContentType string `json:"ct,omitempty"`
	Created     int64  `json:"c"`
	Modified    int64  `json:"m"`
}

// IsDir reports whether the inode is a collection.
func (i Inode) IsDir() bool { return i.Kind == KindDir }

// Encode returns the stored form of an inode.
func (i Inode) Encode() []byte {
	b, err := json.Marshal(i)
	if err != nil {
		// Inode has only plain fields; Marshal cannot fail on it.
		panic(fmt.Sprintf("metastore: encode inode: %v", err))
	}
	return b
}

// DecodeInode parses the stored form of an inode.
func DecodeInode(b []byte) (Inode, error) {
	var i Inode
	if err := json.Unmarshal(b, &i); err != nil {
		return Inode{}, fmt.Errorf("metastore: decode inode: %w", err)
	}
	return i, nil
}

// Dirent is one entry of a collection: its name and the child's attributes.
type Dirent struct {
	Name  string
	Inode Inode
}

// PropName names a dead property: an XML namespace and a local name.
type PropName struct {
	Space string `json:"ns"`
	Local string `json:"l"`
}

// Key returns the stored form of the name, "{space}local" (Clark notation).
func (n PropName) Key() string { return "{" + n.Space + "}" + n.Local }

// ParsePropName parses Clark notation produced by Key.
func ParsePropName(key string) (PropName, error) {
	if len(key) < 2 || key[0] != '{' {
		return PropName{}, fmt.Errorf("metastore: bad property key %q", key)
	}
	// Split at the last brace: a namespace URI may contain '}', a local
	// name (an XML NCName) cannot.
	i := strings.LastIndexByte(key, '}')
	if i < 1 {
		return PropName{}, fmt.Errorf("metastore: bad property key %q", key)
	}
	return PropName{Space: key[1:i], Local: key[i+1:]}, nil
}

// Lock is one WebDAV lock. Locks protect a path (and, with depth infinity,
// everything below it). Expires is fixed by the leader; 0 means never.
type Lock struct {
	Token    string `json:"token"`
	Root     string `json:"root"` // clean absolute path, see package fspath
	Infinite bool   `json:"inf,omitempty"`
	Shared   bool   `json:"shared,omitempty"`
	Owner    string `json:"owner,omitempty"`   // the owner element's inner XML, verbatim
	Timeout  int64  `json:"timeout,omitempty"` // seconds requested; 0 means infinite
	Created  int64  `json:"created"`
	Expires  int64  `json:"expires,omitempty"` // Unix nanoseconds; 0 means never
	// Principal is the authenticated user who took the lock (RFC 4918
	// §6.4: only they may submit its token, refresh it or remove it).
	// Empty: anyone who presents the token, as for every lock taken while
	// the WebDAV API was open and every lock stored before dfs recorded
	// principals.
	Principal string `json:"principal,omitempty"`
}

// Expired reports whether the lock has expired at time now (Unix nanoseconds).
func (l Lock) Expired(now int64) bool { return l.Expires != 0 && now >= l.Expires }

// Member is one node of the cluster as the replicated state knows it: the
// addresses peers and clients use to reach it. Raft's own configuration
// holds only Raft addresses; the WebDAV URL lives here so that every node
// can forward writes to the leader and fetch content from any peer.
type Member struct {
	ID       string `json:"id"`
	URL      string `json:"url"`       // WebDAV / node API base URL
	RaftAddr string `json:"raft_addr"` // Raft transport address
}

// Reader is the read side of a store.
type Reader interface {
	// Get returns the inode with the given ID, or ErrNotFound.
	Get(ctx context.Context, id ID) (Inode, error)
	// Lookup returns the child called name in collection parent, or ErrNotFound.
	Lookup(ctx context.Context, parent ID, name string) (Inode, error)
	// List returns the entries of collection dir sorted by name. A missing
	// or empty collection yields no entries and no error.
	List(ctx context.Context, dir ID) ([]Dirent, error)
	// Props returns the dead properties of an inode (values are inner XML).
	Props(ctx context.Context, id ID) (map[PropName]string, error)
	// PropsOf returns the dead properties of several inodes at once, one
	// round trip on Redis: listing a collection needs every member's.
	// Every requested ID is in the result; one without properties maps to
	// an empty map.
	PropsOf(ctx context.Context, ids []ID) (map[ID]map[PropName]string, error)
	// Locks returns every lock, expired ones included, in token order.
	Locks(ctx context.Context) ([]Lock, error)
	// Members returns the cluster members in ID order.
	Members(ctx context.Context) ([]Member, error)
	// RefCount returns how many inodes reference the content hash.
	RefCount(ctx context.Context, hash string) (int64, error)
	// AppliedIndex returns the index of the last committed batch (0 if none).
	AppliedIndex(ctx context.Context) (uint64, error)
	// AppliedPosition returns the index and the term of the last committed
	// batch, read together ({0, 0} if none; Term 0 if the batch carried
	// none).
	AppliedPosition(ctx context.Context) (Position, error)
	// UsedBytes returns the cluster's logical usage: the sum of the sizes
	// of all files (a COPY counts twice even though content is shared),
	// as the AddUsage ops of every committed batch left it. 0 if none. A
	// store written before the counter existed is counted when opened.
	UsedBytes(ctx context.Context) (int64, error)
}

// Store is a node's metadata store.
type Store interface {
	Reader
	// Commit applies every operation of b, in order, and records b.Index as
	// the applied index and b.Term as its term, all in one atomic step. A batch whose index is not
	// greater than the applied index is an error (ErrStaleBatch); callers
	// skip such entries before building a batch. A batch with a non-zero
	// Prev commits only if the applied index is exactly Prev at the moment
	// of the commit, atomically with it (ErrIndexMismatch otherwise).
	Commit(ctx context.Context, b *Batch) error
	// Reset removes everything, the applied index included. It is used
	// before a snapshot is restored.
	Reset(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// ErrStaleBatch is returned by Commit for a batch at or below the applied index.
var ErrStaleBatch = errors.New("metastore: batch index not above applied index")

// ErrIndexMismatch is returned by Commit for a batch whose Prev is not the
// store's applied index: the store is not where its writer left it (it lost
// data, went back to an older copy, or is another store).
var ErrIndexMismatch = errors.New("metastore: applied index is not the one the batch builds on")

// OpKind is the kind of one primitive change in a Batch.
type OpKind uint8

const (
	OpPutInode     OpKind = iota + 1 // Inode
	OpDeleteInode                    // ID
	OpLink                           // Parent, Name, ID
	OpUnlink                         // Parent, Name
	OpSetProp                        // ID, Prop, Value
	OpDeleteProp                     // ID, Prop
	OpDeleteProps                    // ID: all dead properties of the inode
	OpPutLock                        // Lock
	OpDeleteLock                     // Lock.Token
	OpAddRef                         // Hash, Delta: the count is removed when it reaches 0
	OpPutMember                      // Member
	OpDeleteMember                   // Member.ID
	OpAddUsage                       // Delta: bytes added to (or, negative, removed from) the usage counter
)

// Op is one primitive change. Which fields matter depends on Kind.
type Op struct {
	Kind   OpKind
	Inode  Inode
	ID     ID
	Parent ID
	Name   string
	Prop   PropName
	Value  string
	Lock   Lock
	Hash   string
	Delta  int64
	Member Member
}

// Position identifies an entry of a Raft log: its index and the term of
// the leader that appended it. By Raft's Log Matching property two logs
// holding an entry with the same index and term hold the same entries up
// to it, so a store's Position names the history it holds, not only how
// far it got in it.
type Position struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// Batch is an ordered list of primitive changes produced by applying one
// Raft log entry.
type Batch struct {
	Index uint64
	// Term is the Raft term of the entry at Index, recorded with it (see
	// Position). 0 means unknown: a batch that restores a snapshot taken
	// before terms were recorded, or a test's.
	Term uint64
	// Prev, when non-zero, is the applied index the batch was built on:
	// the changes of Ops are only right on top of that state, so a store
	// at any other index refuses the batch (ErrIndexMismatch) instead of
	// applying it to a state it was not computed from.
	Prev uint64
	Ops  []Op
}

func (b *Batch) add(op Op) *Batch { b.Ops = append(b.Ops, op); return b }

// PutInode creates or replaces an inode.
func (b *Batch) PutInode(i Inode) *Batch { return b.add(Op{Kind: OpPutInode, Inode: i}) }

// DeleteInode removes an inode (not its directory entries or properties).
func (b *Batch) DeleteInode(id ID) *Batch { return b.add(Op{Kind: OpDeleteInode, ID: id}) }

// Link sets the directory entry name in parent to child, replacing any entry.
func (b *Batch) Link(parent ID, name string, child ID) *Batch {
	return b.add(Op{Kind: OpLink, Parent: parent, Name: name, ID: child})
}

// Unlink removes the directory entry name from parent.
func (b *Batch) Unlink(parent ID, name string) *Batch {
	return b.add(Op{Kind: OpUnlink, Parent: parent, Name: name})
}

// SetProp sets a dead property.
func (b *Batch) SetProp(id ID, p PropName, value string) *Batch {
	return b.add(Op{Kind: OpSetProp, ID: id, Prop: p, Value: value})
}

// DeleteProp removes a dead property.
func (b *Batch) DeleteProp(id ID, p PropName) *Batch {
	return b.add(Op{Kind: OpDeleteProp, ID: id, Prop: p})
}

// DeleteProps removes every dead property of an inode.
func (b *Batch) DeleteProps(id ID) *Batch { return b.add(Op{Kind: OpDeleteProps, ID: id}) }

// PutLock creates or replaces a lock.
func (b *Batch) PutLock(l Lock) *Batch { return b.add(Op{Kind: OpPutLock, Lock: l}) }

// DeleteLock removes a lock by token.
func (b *Batch) DeleteLock(token string) *Batch {
	return b.add(Op{Kind: OpDeleteLock, Lock: Lock{Token: token}})
}

// AddRef changes the reference count of a content hash by delta.
func (b *Batch) AddRef(hash string, delta int64) *Batch {
	return b.add(Op{Kind: OpAddRef, Hash: hash, Delta: delta})
}

// AddUsage changes the usage counter (UsedBytes) by delta bytes. The
// counter is stored beside the applied index, so it is exact after a crash
// and a replay: a batch and its usage change land together or not at all.
func (b *Batch) AddUsage(delta int64) *Batch { return b.add(Op{Kind: OpAddUsage, Delta: delta}) }

// PutMember creates or replaces a cluster member.
func (b *Batch) PutMember(mb Member) *Batch { return b.add(Op{Kind: OpPutMember, Member: mb}) }

// DeleteMember removes a cluster member by ID.
func (b *Batch) DeleteMember(id string) *Batch {
	return b.add(Op{Kind: OpDeleteMember, Member: Member{ID: id}})
}
