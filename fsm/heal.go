package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dfs-project/dfs/metastore"
)

// History is what a node keeps of the Raft log: its newest snapshot and
// the entries after it. A state machine whose store lost entries it had
// applied rebuilds the store from it (see CheckStore).
type History interface {
	// NewestSnapshot opens the node's newest snapshot; ok is false when
	// the node has none.
	NewestSnapshot() (rc io.ReadCloser, ok bool, err error)
	// Entry returns the log entry at index, and whether it is a command
	// (entries of other types never reach the state machine).
	Entry(index uint64) (data []byte, command bool, err error)
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

// Rebuilding says why the store is not serving the namespace right now
// (empty when it is): a snapshot restore or a rebuild is under way.
func (f *FSM) Rebuilding() string {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return f.rebuilding
}

func (f *FSM) setRebuilding(why string) {
	f.stateMu.Lock()
	f.rebuilding = why
	f.stateMu.Unlock()
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

// CheckStore compares the store's applied index with the highest one this
// state machine has committed or seen. A store behind it lost data while
// the node ran (a Redis restarted without its append-only file, FLUSHALL,
// a volume rolled back): CheckStore rebuilds it from the newest local
// snapshot and the log before anything else is applied, and returns an
// error if that is not possible. The node calls it periodically; apply
// calls it whenever it re-reads the applied index.
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
	cur, err := f.store.AppliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("fsm: read applied index: %w", err)
	}
	if cur >= f.high {
		f.setHigh(cur)
		if !f.appliedOK || f.applied != cur {
			f.setApplied(cur)
		}
		return nil
	}
	return f.rebuildLocked(ctx, cur)
}

// rebuildLocked reloads the store to the highest index it was known at:
// the newest local snapshot, then every command entry of the log after it,
// applied without hooks (the restore hook, called at the end, rescans all
// content at once).
func (f *FSM) rebuildLocked(ctx context.Context, found uint64) (err error) {
	target := f.high
	log := f.log.With().Uint64("store_index", found).Uint64("expected_index", target).Logger()
	if f.history == nil {
		return fmt.Errorf("%w (at %d, expected %d) and there is no local log to rebuild it from", ErrStoreLost, found, target)
	}
	log.Error().Msg("the metadata store lost entries it had applied (restarted without its data, flushed, or rolled back); rebuilding it from the newest local snapshot and the log")
	f.setRebuilding(fmt.Sprintf("rebuilding the metadata store: it went back from index %d to %d", target, found))
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
	var from uint64
	rc, ok, err := f.history.NewestSnapshot()
	if err != nil {
		return fmt.Errorf("fsm: rebuild: open the newest snapshot: %w", err)
	}
	if ok {
		from, err = f.restoreLocked(ctx, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("fsm: rebuild: %w", err)
		}
	} else {
		if err := f.store.Reset(ctx); err != nil {
			return fmt.Errorf("fsm: rebuild: reset store: %w", err)
		}
		f.setApplied(0)
	}
	replayed := 0
	f.replaying = true
	defer func() { f.replaying = false }()
	for i := from + 1; i <= target; i++ {
		data, command, err := f.history.Entry(i)
		if err != nil {
			return fmt.Errorf("%w: rebuild: entry %d is not in the local log (%v); the node needs a snapshot from the leader", ErrStoreLost, i, err)
		}
		if !command {
			continue
		}
		cmd, decErr := DecodeCommand(data)
		if _, err := f.applyEntryLocked(ctx, i, cmd, decErr, false); err != nil {
			return fmt.Errorf("fsm: rebuild: %w", err)
		}
		replayed++
	}
	log.Info().Uint64("snapshot_index", from).Int("replayed", replayed).Dur("took", time.Since(start)).
		Msg("metadata store rebuilt")
	if f.restore != nil {
		f.restore()
	}
	return nil
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
	f.setApplied(0)
	return nil
}
