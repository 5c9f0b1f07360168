package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/dfs-project/dfs/metastore"
)

// Op names a kind of log entry.
type Op string

// The log entry kinds. Every mutation of a dfs namespace is exactly one of these.
const (
	OpInit      Op = "init"      // create the root collection (first entry of a cluster)
	OpPut       Op = "put"       // Path gets content Hash/Size/ContentType
	OpMkcol     Op = "mkcol"     // Path becomes a new empty collection
	OpDelete    Op = "delete"    // Path and everything below it go away
	OpCopy      Op = "copy"      // Path is copied to Dest (Depth, Overwrite)
	OpMove      Op = "move"      // Path is moved to Dest (Overwrite)
	OpPropPatch Op = "proppatch" // Patches are applied to Path's dead properties, all or nothing
	OpLock      Op = "lock"      // Lock is created (on an unmapped Path: an empty file is created)
	OpRefresh   Op = "refresh"   // the lock Token gets a new Expires
	OpUnlock    Op = "unlock"    // the lock Token goes away
	OpExpire    Op = "expire"    // every lock expired at Time goes away
	OpPurge     Op = "purge"     // up to Step inodes of the detached subtrees go away
	OpCopyStep  Op = "copy-step" // up to Step more inodes of the staged copy Job are copied; the last step links it

	OpMember       Op = "member"        // Member joins the cluster or changes its addresses
	OpRemoveMember Op = "remove-member" // Member.ID leaves the cluster
)

// DepthInfinity is Command.Depth for "Depth: infinity".
const DepthInfinity = -1

// PropPatch is one set or remove of a dead property.
type PropPatch struct {
	Name   metastore.PropName `json:"n"`
	Value  string             `json:"v,omitempty"` // inner XML, verbatim
	Remove bool               `json:"r,omitempty"`
}

// Command is one Raft log entry. Everything that could differ between nodes
// (the time, lock tokens, expiry) is fixed here by the leader, so applying
// the same command to the same state gives the same result on every node.
// Conditions (lock tokens, If-Match) are re-checked at apply time against
// the state the entry applies to, which makes the log, not the request
// handler, the authority on whether a mutation happens.
type Command struct {
	Op   Op     `json:"op"`
	Time int64  `json:"t"` // leader's clock, Unix nanoseconds
	Path string `json:"p,omitempty"`
	Dest string `json:"d,omitempty"`

	// OpPut
	Hash        string `json:"h,omitempty"`
	Size        int64  `json:"s,omitempty"`
	ContentType string `json:"ct,omitempty"`

	// Quota is the cluster-wide quota in bytes in force when the leader
	// proposed the entry (OpPut, OpCopy; 0: none). Apply refuses an entry
	// that would raise the usage above it (InsufficientStorage): the
	// quota travels in the entry because a node's own configuration must
	// never decide an outcome, and because of two uploads that each passed
	// the handler's early check, the log must admit exactly those that fit.
	Quota int64 `json:"q,omitempty"`

	// MaxTree is the most inodes the entry may remove or create (OpDelete,
	// OpCopy, and OpMove over an existing destination), set by the leader
	// from its --max-tree-entries; 0: no limit (entries from before the
	// limit existed). One entry is one store transaction: a subtree beyond
	// it would be built in memory on every node at once and, if it failed,
	// replayed on every restart. Apply refuses it (Forbidden) as soon as
	// the count passes the limit, so the work done is bounded too.
	MaxTree int64 `json:"mt,omitempty"`

	// Step is the most inodes the entry removes or copies itself, set by
	// the leader (TreeStep). A larger subtree is not built into one store
	// transaction: a DELETE or an overwrite detaches it into the purge
	// area and OpPurge entries remove it, a COPY stages it and OpCopyStep
	// entries build it; the leader proposes those until the work is done,
	// and the next leader resumes it. 0: an entry from before steps
	// existed, which does all its work at once, as it did when applied.
	Step int64 `json:"st,omitempty"`
	// Job names the staged copy an OpCopyStep continues.
	Job string `json:"job,omitempty"`

	// OpCopy / OpMove
	Depth     int  `json:"dp,omitempty"` // 0 or DepthInfinity (OpCopy)
	Overwrite bool `json:"ow,omitempty"`

	// User is the principal the request was authenticated as, fixed by
	// the leader: "" when the WebDAV API is open. A lock token counts as
	// submitted only by the principal that took the lock (CheckLocks,
	// MayUse); OpRefresh and OpUnlock of another principal's lock are
	// Forbidden. nil: the entry comes from a leader that did not record
	// principals (an older dfs, during a rolling upgrade, or its log
	// replayed): it applies without principal checks, as it did on the
	// nodes that applied it then.
	User *string `json:"u,omitempty"`

	// Preconditions checked at apply time.
	Tokens      []string `json:"tk,omitempty"`  // lock tokens the client submitted (If header)
	IfMatch     string   `json:"im,omitempty"`  // OpPut: current ETag must equal this; "*": must exist
	IfNoneMatch string   `json:"inm,omitempty"` // OpPut: "*": must not exist; else current ETag must differ

	// OpPropPatch
	Patches []PropPatch `json:"pp,omitempty"`

	// OpLock: the complete lock, token, expiry and principal (User)
	// chosen by the leader.
	Lock *metastore.Lock `json:"l,omitempty"`

	// OpMember / OpRemoveMember
	Member *metastore.Member `json:"mb,omitempty"`

	// OpRefresh / OpUnlock
	Token   string `json:"tok,omitempty"`
	Expires int64  `json:"exp,omitempty"` // OpRefresh: new expiry (0 = never)
	Timeout int64  `json:"to,omitempty"`  // OpRefresh: seconds requested (0 = infinite)
}

// UserOf returns a Command.User naming user.
func UserOf(user string) *string { return &user }

// principal is the principal an entry is checked as: its User, or
// anyPrincipal for an entry without one.
func (c *Command) principal() string {
	if c.User == nil {
		return anyPrincipal
	}
	return *c.User
}

// Encode returns the log entry bytes.
func (c *Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %s command: %w", c.Op, err)
	}
	return b, nil
}

// DecodeCommand parses log entry bytes.
func DecodeCommand(b []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("fsm: decode command: %w", err)
	}
	return &c, nil
}

// Code classifies the outcome of applying a command. Handlers map codes to
// HTTP statuses; the codes exist so the state machine never needs to know
// about HTTP.
type Code int

const (
	OK                  Code = iota
	NotFound                 // the path (or lock token) does not exist
	Conflict                 // a parent collection is missing, or a file is where a collection must be
	Exists                   // the target exists and Overwrite/If-None-Match forbids replacing it
	Locked                   // a lock the client did not present protects a path
	PreconditionFailed       // If-Match / If-None-Match / Overwrite: F failed
	Forbidden                // source and destination overlap, the root is targeted, or another principal's lock is refreshed or removed
	NotAllowed               // the operation is not allowed on this kind of resource (e.g. MKCOL on an existing path)
	Invalid                  // the command itself is malformed
	InsufficientStorage      // the entry would raise the usage above its Quota
)

func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Exists:
		return "exists"
	case Locked:
		return "locked"
	case PreconditionFailed:
		return "precondition failed"
	case Forbidden:
		return "forbidden"
	case NotAllowed:
		return "not allowed"
	case Invalid:
		return "invalid"
	case InsufficientStorage:
		return "insufficient storage"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Result is what applying a command returned.
type Result struct {
	Code    Code
	Msg     string          // human-readable detail for errors
	Created bool            // a new resource was created (201 rather than 204)
	Inode   metastore.Inode // the resulting inode (OpPut, OpMkcol, OpLock, OpCopy, OpMove)
	// Job is set when an OpCopy was staged: the copy appears at its
	// destination once the OpCopyStep entries for Job have built it.
	Job string
	// More is set by OpPurge and OpCopyStep when work remains.
	More bool
	Lock metastore.Lock // OpLock / OpRefresh: the lock as stored
	// LockedPath is the path whose lock blocked the command (Code == Locked).
	LockedPath string
}

// Err returns nil for OK and an *Error otherwise.
func (r *Result) Err() error {
	if r.Code == OK {
		return nil
	}
	return &Error{Code: r.Code, Msg: r.Msg, Path: r.LockedPath}
}

// Error is a non-OK Result as an error value.
type Error struct {
	Code Code
	Msg  string
	Path string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "fsm: " + e.Code.String()
	}
	return "fsm: " + e.Code.String() + ": " + e.Msg
}
