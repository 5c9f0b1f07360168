// Package fsm owns the deterministic state machine of dfs: how one Raft log
// entry (a Command) changes the metadata in a metastore.Store, and the
// read-side rules the WebDAV handler must share with it (path resolution,
// ETags, lock coverage and precondition evaluation).
//
// # Determinism
//
// Every node applies the same entries in the same order to the same state,
// so every decision in apply depends only on the entry and the store:
// times come from Command.Time, new inode IDs from the log index
// (index<<20 | n for the n-th new inode of the entry), maps are never
// iterated where order leaks into a batch, and nothing node-local (clock,
// randomness, configuration) is consulted. A command that fails (a 409, a
// 423, ...) is still a deterministic outcome: it commits an empty batch so
// the applied index advances.
//
// # Exactly once
//
// A batch records its log index atomically with its changes, so after a
// crash the store says which entries it already has and the replayed log
// skips them. A store failure (Redis unreachable) is not an outcome: apply
// retries until the entry is committed, because skipping it would make this
// node diverge from the others. A failed Commit may still have happened
// (Redis ran the EXEC and its reply was lost): the outcome computed before
// it is kept, and if the retry finds the entry applied, that outcome is the
// answer, never a recomputation against the changed store.
//
// # Snapshots
//
// See Snapshot and RestoreFrom for the portable snapshot format.
package fsm

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// FSM applies log entries to a metastore.Store. It implements raft.FSM
// (see raft.go); the core, ApplyEntry, knows nothing about Raft.
type FSM struct {
	store   metastore.Store
	log     zerolog.Logger
	release func(hash string)
	refer   func(hash string, size int64)
	restore func()
	tmpDir  string
	onBatch func(*metastore.Batch) // test hook: sees every batch before Commit

	// ctx bounds the retries of entries applied through the raft.FSM
	// methods, which take no context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex // serialises ApplyEntry, Snapshot and Restore
	// applied and appliedTerm are the store's position as this state
	// machine last committed it or checked it against its own log; they
	// cache the store's while appliedOK holds.
	applied     uint64
	appliedTerm uint64
	appliedOK   bool
	// unconfirmed are the outcomes of the entries of the last Commit that
	// returned an error (one entry, or the entries ApplyBatch applied
	// together): the batch may have been committed all the same (Redis ran
	// the EXEC and the reply was lost). If the retry finds an entry
	// applied, this is its outcome; recomputing it from the changed store
	// would answer differently (a refused entry reported as a success).
	unconfirmed []*outcome
	// high is the highest applied index the store has been seen at or
	// given: a store found below it lost data (see CheckStore).
	high     uint64
	highSeen atomic.Uint64 // high, for readers that do not hold mu
	// appliedNow is applied, for readers that do not hold mu (Applied).
	appliedNow atomic.Uint64
	checkNow   chan struct{} // asks WatchStore for a check at once
	history    History       // where a store that lost data is rebuilt from
	// source fetches the leader's snapshot when history cannot rebuild
	// the store; fetchTimeout bounds that fetch and its restore.
	source       SnapshotSource
	fetchTimeout time.Duration
	// root is the creation time of this cluster's root collection, the
	// cluster's identity (see clusterRootLocked), once rootKnown.
	root      int64
	rootKnown bool
	// replaying is set while a rebuild replays the log: the store is
	// behind high on purpose.
	replaying bool

	// restoreMu is held for writing while the store is reset and
	// reloaded, so that RefCount never reads a half-loaded store.
	restoreMu  sync.RWMutex
	stateMu    sync.Mutex
	rebuilding string // why the store is being reloaded; "" if it is not
	// reloads counts the starts and ends of reloads (odd: one is under
	// way), so a ReadGuard sees one that began and ended during a read.
	reloads atomic.Uint64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every commit
}

// Option configures an FSM.
type Option func(*FSM)

// WithReleaseHook sets a function called, after an entry is committed, for
// every content hash whose reference count that entry decreased to zero:
// the content may be garbage collected. It runs on the apply path, so it
// must not block for long (queue the work).
func WithReleaseHook(fn func(hash string)) Option {
	return func(f *FSM) { f.release = fn }
}

// WithReferenceHook sets a function called, after an entry is committed,
// for every content hash that entry made referenced again: its reference
// count went from 0 to above 0 (a PUT of new content, a COPY of content
// that was otherwise unreferenced). A node that lacks that content must
// fetch it; the content replicator queues it. When the count cannot be
// read the hook is called anyway: a spurious call costs the receiver a
// local lookup, a missed one leaves content unfetched until a rescan. It
// runs on the apply path, so it must not block for long (queue the work),
// and it is not called for replayed entries or by snapshot restores (see
// WithRestoreHook).
func WithReferenceHook(fn func(hash string, size int64)) Option {
	return func(f *FSM) { f.refer = fn }
}

// WithRestoreHook sets a function called after a snapshot has been
// restored into the store: the whole namespace changed at once, and the
// content it references must be checked from scratch (a rescan). It runs
// on the restore path, so it must not block for long.
func WithRestoreHook(fn func()) Option {
	return func(f *FSM) { f.restore = fn }
}

// WithTempDir sets where Snapshot writes its temporary dump (default
// os.TempDir()). Put it on the same volume as the data, not on a tmpfs.
func WithTempDir(dir string) Option {
	return func(f *FSM) { f.tmpDir = dir }
}

// WithFetchTimeout bounds how long fetching and restoring the leader's
// snapshot may take when the node's own snapshot and log cannot rebuild
// its store (default 10 minutes).
func WithFetchTimeout(d time.Duration) Option {
	return func(f *FSM) { f.fetchTimeout = d }
}

// withBatchHook lets tests inspect every batch before it is committed.
func withBatchHook(fn func(*metastore.Batch)) Option {
	return func(f *FSM) { f.onBatch = fn }
}

// New returns a state machine over store. It does no I/O.
func New(store metastore.Store, log zerolog.Logger, opts ...Option) *FSM {
	ctx, cancel := context.WithCancel(context.Background())
	f := &FSM{
		store:  store,
		log:    log.With().Str("component", "fsm").Logger(),
		tmpDir: os.TempDir(),
		ctx:    ctx,
		cancel: cancel,
		notify: make(chan struct{}),

		checkNow:     make(chan struct{}, 1),
		fetchTimeout: 10 * time.Minute,
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Close stops the retries of an entry that cannot be committed (a store
// that stays unreachable); such an entry is left unapplied and will be
// replayed on restart. It does not close the store.
func (f *FSM) Close() error {
	f.cancel()
	return nil
}

// Store returns the read side of the store the FSM applies to.
func (f *FSM) Store() metastore.Reader { return f.store }

// AppliedIndex returns the index of the last entry committed to the store.
// Only entries that reach the FSM (commands) count, so it can be lower
// than Raft's applied index; compare it with other nodes' AppliedIndex.
//
// A store found below the highest index the state machine reached lost
// data (see CheckStore): AppliedIndex then fails with ErrRebuilding and
// asks for a check at once, so that no read is served from the lost
// state in the second before the periodic check would notice.
func (f *FSM) AppliedIndex(ctx context.Context) (uint64, error) {
	// high only moves after the store committed that index, so read it
	// first: a commit between the two reads then cannot look like a loss.
	h := f.highSeen.Load()
	i, err := f.store.AppliedIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("fsm: read applied index: %w", err)
	}
	if i < h {
		select {
		case f.checkNow <- struct{}{}:
		default:
		}
		return 0, fmt.Errorf("%w: the store is at index %d, below the %d it had reached", ErrRebuilding, i, h)
	}
	return i, nil
}

func (f *FSM) setHigh(i uint64) {
	f.high = i
	f.highSeen.Store(i)
}

// Applied returns the index of the last entry this state machine applied
// (or restored), from memory: no store read, and no check that the store
// still holds it (AppliedIndex does both).
func (f *FSM) Applied() uint64 { return f.appliedNow.Load() }

// WaitApplied blocks until this state machine has applied index to its
// store (read-your-writes on a follower: wait for the index the leader
// reported), or ctx is done. When memory does not already say so, it reads
// the store, and fails if the store lost what it had.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		f.notifyMu.Lock()
		ch := f.notify
		f.notifyMu.Unlock()
		if f.appliedNow.Load() >= index {
			// This state machine committed index to the store: no store
			// read (one round trip to Redis on every read request). Had
			// the store lost it since, the reader's ReadGuard, checked
			// after its reads, and the periodic store check (WatchStore)
			// notice.
			return nil
		}
		cur, err := f.AppliedIndex(ctx)
		if err != nil {
			return err
		}
		if cur >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fsm: wait for index %d (at %d): %w", index, cur, ctx.Err())
		}
	}
}

func (f *FSM) setApplied(index, term uint64) {
	f.applied, f.appliedTerm, f.appliedOK = index, term, true
	f.appliedNow.Store(index)
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// appliedIndex returns the store's applied index, from the cache while it
// is valid; a fresh read also checks that the store did not lose data.
func (f *FSM) appliedIndex(ctx context.Context) (uint64, error) {
	if !f.appliedOK || (f.applied < f.high && !f.replaying) {
		if err := f.verifyStoreLocked(ctx); err != nil {
			return 0, err
		}
	}
	return f.applied, nil
}

// ApplyEntry applies the log entry data at index, of an unknown term
// (recorded as 0, which no identity check can contradict); see
// ApplyLogEntry.
func (f *FSM) ApplyEntry(ctx context.Context, index uint64, data []byte) (*Result, error) {
	return f.ApplyLogEntry(ctx, index, 0, data)
}

// ApplyLogEntry applies the log entry data at index, appended in term,
// and returns its outcome. The store records the term with the index, so
// that a store holding another history is recognised (see CheckStore).
// An entry at or below the store's applied index was applied before a
// restart and is skipped (Code OK, Msg "replayed"). The error is non-nil
// only when ctx ended while the store kept failing: the entry is then not
// applied, and the node must not continue applying later entries.
func (f *FSM) ApplyLogEntry(ctx context.Context, index, term uint64, data []byte) (*Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd, decErr := DecodeCommand(data)
	// The clock here only paces retries; it never reaches the state.
	backoff := 10 * time.Millisecond
	for {
		res, err := f.applyEntryLocked(ctx, index, term, cmd, decErr, true)
		if err == nil {
			return res, nil
		}
		f.log.Error().Err(err).Uint64("index", index).Dur("retry_in", backoff).
			Msg("cannot apply log entry; retrying, an entry is never skipped")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("fsm: entry %d not applied: %w (last error: %v)", index, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// outcome is what applying one entry decided, kept apart from the store
// so that it can be reported once the commit is known to have happened.
type outcome struct {
	index      uint64
	res        *Result
	released   []string
	referenced []contentRef
}

// applyEntryLocked makes one attempt at applying an entry. hooks is false
// while a rebuild replays the log: its content is rescanned at the end.
func (f *FSM) applyEntryLocked(ctx context.Context, index, term uint64, cmd *Command, decErr error, hooks bool) (*Result, error) {
	applied, err := f.appliedIndex(ctx)
	if err != nil {
		return nil, err
	}
	if index <= applied {
		if i := slices.IndexFunc(f.unconfirmed, func(o *outcome) bool { return o.index == index }); i >= 0 {
			// The earlier Commit went through although it reported an
			// error: answer what that attempt decided.
			o := f.unconfirmed[i]
			f.unconfirmed = slices.Delete(f.unconfirmed, i, i+1)
			return f.finish(ctx, cmd, o), nil
		}
		return &Result{Code: OK, Msg: "replayed"}, nil
	}
	o := &outcome{index: index}
	b := &metastore.Batch{Index: index}
	if decErr != nil {
		o.res = fail(Invalid, "%v", decErr)
	} else {
		a := newApplier(ctx, f.store, index, cmd)
		o.res, err = a.build()
		if err != nil {
			return nil, err
		}
		if o.res.Code == OK {
			b, o.released, o.referenced = a.b, a.released(), a.referenced()
		}
	}
	b.Term = term
	if f.onBatch != nil {
		f.onBatch(b)
	}
	if err := f.commitBuilt(ctx, b); err != nil {
		// The commit may have happened (a lost reply); re-read the
		// applied index before the retry rather than trust the cache,
		// and keep this attempt's outcome for it.
		f.appliedOK = false
		f.unconfirmed = []*outcome{o}
		return nil, fmt.Errorf("fsm: commit entry %d: %w", index, err)
	}
	f.unconfirmed = nil
	f.setHigh(max(f.high, index))
	f.setApplied(index, term)
	if !hooks {
		return o.res, nil
	}
	return f.finish(ctx, cmd, o), nil
}

// finish runs the hooks of a committed entry and returns its result.
func (f *FSM) finish(ctx context.Context, cmd *Command, o *outcome) *Result {
	if o.res.Code != OK && cmd != nil {
		f.log.Debug().Uint64("index", o.index).Str("op", string(cmd.Op)).Str("path", cmd.Path).
			Stringer("code", o.res.Code).Str("msg", o.res.Msg).Msg("entry refused")
	}
	f.releaseUnreferenced(ctx, o.released)
	f.announceReferenced(ctx, o.referenced)
	return o.res
}

// announceReferenced calls the reference hook for every hash whose count
// this entry raised from 0: after the commit the count equals the entry's
// own increase.
func (f *FSM) announceReferenced(ctx context.Context, refs []contentRef) {
	if f.refer == nil {
		return
	}
	for _, r := range refs {
		n, err := f.store.RefCount(ctx, r.hash)
		if err != nil {
			f.log.Warn().Err(err).Str("hash", r.hash).Msg("cannot read reference count; announcing the content anyway")
		} else if n != r.delta {
			continue
		}
		f.refer(r.hash, r.size)
	}
}

func (f *FSM) releaseUnreferenced(ctx context.Context, hashes []string) {
	if f.release == nil {
		return
	}
	for _, h := range hashes {
		n, err := f.store.RefCount(ctx, h)
		if err != nil {
			f.log.Warn().Err(err).Str("hash", h).Msg("cannot read reference count; content not released")
			continue
		}
		if n == 0 {
			f.release(h)
		}
	}
}
