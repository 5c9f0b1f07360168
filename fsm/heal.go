package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// History is what a node keeps of the Raft log: its newest snapshot and
// the entries after it. A state machine whose store lost entries it had
// applied, or holds another history, rebuilds the store from it (see
// CheckStore), and checks a store's position against it.
type History interface {
	// NewestSnapshot opens the node's newest snapshot; ok is false when
	// the node has none.
	NewestSnapshot() (rc io.ReadCloser, ok bool, err error)
	// Entry returns the log entry at index; an error wrapping ErrNotInLog
	// when the local log does not hold it (compacted after a snapshot,
	// or not appended yet).
	Entry(index uint64) (LogEntry, error)
}

// LogEntry is one entry of a node's Raft log.
type LogEntry struct {
	Term uint64
	Data []byte
	// Command is false for entries of other types, which never reach
	// the state machine.
	Command bool
}

// ErrNotInLog is wrapped by History.Entry for an entry the local log does
// not hold.
var ErrNotInLog = errors.New("fsm: the entry is not in the local log")

// SnapshotSource fetches a snapshot of the cluster's current state from
// another node, the leader: the last resort for a store that this node's
// own snapshot and log cannot rebuild (its log was compacted past what the
// store lost, and its snapshot is gone or unreadable).
type SnapshotSource interface {
	// FetchSnapshot returns a snapshot stream (the format of
	// WriteSnapshot), which the caller reads to the end and closes.
	FetchSnapshot(ctx context.Context) (io.ReadCloser, error)
	// Restored is told, without the state machine's lock held, that a
	// snapshot it gave has been restored at index. The node's own log may
	// not reach back to its first entry then, and it has no snapshot to
	// start from: it should take one of its own.
	Restored(index uint64)
}

// ErrStoreLost means the metadata store no longer holds entries this
// state machine applied to it, and it could not be rebuilt.
var ErrStoreLost = errors.New("fsm: the metadata store lost applied entries")

// ErrRebuilding is returned by RefCount while the store is being reset
// and reloaded: counts read then are not the namespace's.
var ErrRebuilding = errors.New("fsm: the metadata store is being rebuilt")

// SetHistory gives the state machine the log it may rebuild its store
// from. The Raft node sets it once it has opened its log.
func (f *FSM) SetHistory(h History) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = h
}

// SetSnapshotSource gives the state machine where to fetch a snapshot when
// its History cannot rebuild the store. The node sets it once it can
// reach the leader.
func (f *FSM) SetSnapshotSource(s SnapshotSource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.source = s
}

// Rebuilding says why the store is not serving the namespace right now
// (empty when it is): a snapshot restore or a rebuild is under way.
func (f *FSM) Rebuilding() string {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return f.rebuilding
}

func (f *FSM) setRebuilding(why string) {
	f.stateMu.Lock()
	if (f.rebuilding == "") != (why == "") {
		f.reloads.Add(1)
	}
	f.rebuilding = why
	f.stateMu.Unlock()
}

// ReadGuard is taken before a request reads the store and checked before
// its answer goes out (see ReadGuard.Check).
type ReadGuard struct {
	f       *FSM
	reloads uint64
	high    uint64 // the highest index the store had reached when the read began
}

// ReadGuard starts a guarded read.
func (f *FSM) ReadGuard() ReadGuard {
	return ReadGuard{f: f, reloads: f.reloads.Load(), high: f.highSeen.Load()}
}

// CheckSeen is Check for a read whose answer depends only on what one
// store call read together with the store's applied index (ResolveSeen):
// if that index was below what the store had reached when the read began,
// the store had lost data by then, and the read may come from the loss.
// No store read: the index the read came with is the evidence.
func (g ReadGuard) CheckSeen(applied uint64) error {
	if r := g.f.reloads.Load(); r != g.reloads || r%2 == 1 {
		return fmt.Errorf("%w: the store was reloaded while the request read it", ErrRebuilding)
	}
	if applied < g.high {
		select {
		case g.f.checkNow <- struct{}{}:
		default:
		}
		return fmt.Errorf("%w: the store was at index %d when the request read it, below the %d it had reached", ErrRebuilding, applied, g.high)
	}
	return nil
}

// Check fails with ErrRebuilding if a restore or rebuild was under way at
// any time since the guard was taken, when what the request read may come
// from a half-loaded store (an older version of a file, a folder whose
// members are not all back), and, through AppliedIndex, if the store now
// holds less than this node applied (flushed, rolled back, swapped), when
// the read may have come after the loss.
func (g ReadGuard) Check(ctx context.Context) error {
	if r := g.f.reloads.Load(); r != g.reloads || r%2 == 1 {
		return fmt.Errorf("%w: the store was reloaded while the request read it", ErrRebuilding)
	}
	_, err := g.f.AppliedIndex(ctx)
	return err
}

// RefCount reads a content reference count, or fails with ErrRebuilding
// while a restore or rebuild has the store half loaded: a count of 0 read
// then would let garbage collection delete content the namespace still
// references. A restore waits for reads already under way.
func (f *FSM) RefCount(ctx context.Context, hash string) (int64, error) {
	if !f.restoreMu.TryRLock() {
		return 0, ErrRebuilding
	}
	defer f.restoreMu.RUnlock()
	return f.store.RefCount(ctx, hash)
}

// CheckStore checks that the store holds this node's history up to where
// this state machine left it, and rebuilds it before anything else is
// applied when it does not. Two ways it may not:
//
//   - it lost data: its applied index is below the highest one this state
//     machine has committed or seen (a Redis restarted without its
//     append-only file, FLUSHALL, a volume rolled back);
//   - it holds another history: the term recorded with its applied index
//     is not the term this node's log has at that index, or its root
//     collection is not this cluster's (another node's or cluster's store
//     swapped in, a copy from before a leader change replaced entries).
//
// It rebuilds from the newest local snapshot and the log, or, when those
// cannot (see SetSnapshotSource), from the leader's snapshot and the local
// log after it, and returns an error if neither is possible. The node
// calls it at start and periodically; apply calls it whenever it re-reads
// the applied index.
//
// A store of this cluster that is merely behind, with the terms of this
// node's log (another node's store swapped in at a lower index, say), is
// indistinguishable from a lagging store and is not rebuilt: Raft's Log
// Matching property makes it a prefix of this node's history, and the
// entries after it simply apply on top.
func (f *FSM) CheckStore(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verifyStoreLocked(ctx)
}

// WatchStore runs CheckStore every interval until ctx ends, so a store
// that lost data is noticed within seconds even when no entry arrives.
func (f *FSM) WatchStore(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.checkNow:
		}
		cctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
		if err := f.CheckStore(cctx); err != nil && ctx.Err() == nil {
			f.log.Error().Err(err).Msg("metadata store check failed")
		}
		cancel()
	}
}

func (f *FSM) verifyStoreLocked(ctx context.Context) error {
	pos, err := f.store.AppliedPosition(ctx)
	if err != nil {
		return fmt.Errorf("fsm: read applied index: %w", err)
	}
	if pos.Index < f.high {
		return f.rebuildLocked(ctx, pos, true, fmt.Sprintf("it went back from index %d to %d", f.high, pos.Index))
	}
	why, err := f.foreignLocked(ctx, pos)
	if err != nil {
		return err
	}
	if why != "" {
		return f.rebuildLocked(ctx, pos, false, why)
	}
	f.setHigh(pos.Index)
	if !f.appliedOK || f.applied != pos.Index || f.appliedTerm != pos.Term {
		f.setApplied(pos.Index, pos.Term)
	}
	return nil
}

// rebuildLocked reloads the store to the highest index it was known at:
// the newest local snapshot (or the leader's, see reloadLocked), then
// every command entry of the log after it, applied without hooks (the
// restore hook, called at the end, rescans all content at once). lost
// says whether the store lost entries (rather than holding another
// history); why is what the check found.
func (f *FSM) rebuildLocked(ctx context.Context, found metastore.Position, lost bool, why string) (err error) {
	target := f.high
	log := f.log.With().Uint64("store_index", found.Index).Uint64("store_term", found.Term).
		Uint64("expected_index", target).Str("why", why).Logger()
	if f.history == nil {
		return fmt.Errorf("%w (%s) and there is no local log to rebuild it from", ErrStoreLost, why)
	}
	if lost {
		log.Error().Msg("the metadata store lost entries it had applied (restarted without its data, flushed, or rolled back); rebuilding it from the newest local snapshot and the log")
	} else {
		log.Error().Msg("the metadata store holds another history than this node's log (another node's or cluster's store, or an older copy from another leader); emptying it and rebuilding it from the newest local snapshot and the log")
	}
	f.setRebuilding("rebuilding the metadata store: " + why)
	defer f.setRebuilding("")
	f.restoreMu.Lock()
	defer f.restoreMu.Unlock()
	start := time.Now()
	f.appliedOK, f.unconfirmed = false, nil
	defer func() {
		if err != nil {
			// Half rebuilt: nothing is applied until a rebuild succeeds.
			f.setHigh(max(f.high, target))
			f.appliedOK = false
		}
	}()
	from, source, err := f.reloadLocked(ctx, target, log)
	if err != nil {
		return err
	}
	replayed := 0
	f.replaying = true
	defer func() { f.replaying = false }()
	for i := from + 1; i <= target; i++ {
		e, err := f.history.Entry(i)
		if err != nil {
			return fmt.Errorf("%w: rebuild: entry %d is not in the local log (%v); the node needs a snapshot from the leader", ErrStoreLost, i, err)
		}
		if !e.Command {
			continue
		}
		cmd, decErr := DecodeCommand(e.Data)
		if _, err := f.applyEntryLocked(ctx, i, e.Term, cmd, decErr, false); err != nil {
			return fmt.Errorf("fsm: rebuild: %w", err)
		}
		replayed++
	}
	log.Info().Str("from", source).Uint64("snapshot_index", from).Int("replayed", replayed).Dur("took", time.Since(start)).
		Msg("metadata store rebuilt")
	if f.restore != nil {
		f.restore()
	}
	return nil
}

// reloadLocked loads the store to an index from which the local log
// reaches target, and returns that index and where the state came from:
// the newest local snapshot, or an empty store when the log still holds
// every entry up to target; failing both (the log was compacted past
// them, the snapshot is gone or unreadable), the leader's snapshot.
// Whether the local history can do it is checked before the store is
// touched.
func (f *FSM) reloadLocked(ctx context.Context, target uint64, log zerolog.Logger) (uint64, string, error) {
	snap, gap := f.localBaseLocked(target)
	if gap == "" {
		if !snap {
			if err := f.store.Reset(ctx); err != nil {
				return 0, "", fmt.Errorf("fsm: rebuild: reset store: %w", err)
			}
			f.setApplied(0, 0)
			return 0, "the local log", nil
		}
		from, err := f.restoreNewestLocked(ctx)
		if err == nil {
			return from, "the newest local snapshot", nil
		}
		if ctx.Err() != nil {
			return 0, "", err
		}
		gap = err.Error()
	}
	if f.source == nil {
		return 0, "", fmt.Errorf("%w: rebuild: %s; the node needs a snapshot from the leader", ErrStoreLost, gap)
	}
	log.Warn().Str("gap", gap).Dur("timeout", f.fetchTimeout).
		Msg("the local snapshot and log cannot rebuild the metadata store; fetching a snapshot from the leader")
	// Bounded by its own timeout rather than the caller's: a periodic
	// check allows seconds, a large namespace takes longer to copy. Close
	// still ends it (f.ctx).
	fctx, cancel := context.WithTimeout(f.ctx, f.fetchTimeout)
	defer cancel()
	rc, err := f.source.FetchSnapshot(fctx)
	if err != nil {
		return 0, "", fmt.Errorf("%w: rebuild: %s, and fetching the leader's snapshot failed: %w", ErrStoreLost, gap, err)
	}
	defer rc.Close()
	from, err := f.restoreLocked(fctx, rc)
	if err != nil {
		return 0, "", fmt.Errorf("%w: rebuild: %s, and restoring the leader's snapshot failed: %w", ErrStoreLost, gap, err)
	}
	// Asynchronously: taking a snapshot needs the lock held here.
	go f.source.Restored(from)
	return from, "the leader's snapshot", nil
}

// localBaseLocked says whether the local history can rebuild the store
// to target: snap is whether it starts from the newest snapshot; gap,
// when not empty, is why it cannot.
func (f *FSM) localBaseLocked(target uint64) (snap bool, gap string) {
	rc, ok, err := f.history.NewestSnapshot()
	if err != nil {
		return false, fmt.Sprintf("the newest local snapshot cannot be opened (%v)", err)
	}
	var from uint64
	if ok {
		info, err := ReadSnapshotInfo(rc)
		rc.Close()
		if err != nil {
			return false, fmt.Sprintf("the newest local snapshot is unreadable (%v)", err)
		}
		from = info.Index
	}
	if from >= target {
		return ok, ""
	}
	// The log holds a contiguous range: its ends are enough.
	for _, i := range []uint64{from + 1, target} {
		if _, err := f.history.Entry(i); err != nil {
			if !ok {
				return false, fmt.Sprintf("there is no local snapshot and entry %d is not in the local log (%v)", i, err)
			}
			return false, fmt.Sprintf("entry %d, after the newest local snapshot's index %d, is not in the local log (%v)", i, from, err)
		}
	}
	return ok, ""
}

func (f *FSM) restoreNewestLocked(ctx context.Context) (uint64, error) {
	rc, ok, err := f.history.NewestSnapshot()
	if err != nil {
		return 0, fmt.Errorf("the newest local snapshot cannot be opened (%w)", err)
	}
	if !ok {
		return 0, errors.New("the newest local snapshot is gone")
	}
	defer rc.Close()
	from, err := f.restoreLocked(ctx, rc)
	if err != nil {
		return 0, fmt.Errorf("the newest local snapshot cannot be restored (%w)", err)
	}
	return from, nil
}

// commitBuilt commits a batch computed on the cached applied index, with
// that index as its Prev: a store that moved under the state machine
// refuses the batch instead of taking changes computed for another state.
func (f *FSM) commitBuilt(ctx context.Context, b *metastore.Batch) error {
	b.Prev = f.applied
	err := f.store.Commit(ctx, b)
	if errors.Is(err, metastore.ErrIndexMismatch) {
		f.log.Error().Err(err).Uint64("index", b.Index).Msg("the metadata store is not where this node left it; checking it before the entry is applied")
	}
	return err
}

// ResetStore empties the store and forgets every index it was seen at:
// the node found it belongs to another history (see replication's
// dropForeignStore) and rebuilds it from its own snapshot and log.
func (f *FSM) ResetStore(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restoreMu.Lock()
	defer f.restoreMu.Unlock()
	if err := f.store.Reset(ctx); err != nil {
		return fmt.Errorf("fsm: reset store: %w", err)
	}
	f.setHigh(0)
	f.unconfirmed = nil
	f.setApplied(0, 0)
	return nil
}
