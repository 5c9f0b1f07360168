package fsm

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dfs-project/dfs/metastore"
)

// A store's identity
//
// A store records, with every batch, the index and the Raft term of its
// entry (metastore.Position). An index alone cannot tell this node's store
// that lags from one that followed another log to the same place: by Raft's
// Log Matching property, the term can. The term does not tell clusters
// apart, though: every new cluster counts terms from 1, so two small
// clusters often hold entries with the same index and term. The cluster's
// identity is the creation time of its root collection: the leader fixes
// it in the cluster's first OpInit entry, every node's store gets it
// through the log or a snapshot (whose first record it is), it never
// changes afterwards, and stores written before terms were recorded have
// it too. Two clusters created in the same nanosecond are not told apart.

// foreignLocked says why the store at pos does not hold this node's
// history, or "" when nothing shows that it does not. A term of 0 (a store
// or an entry from before terms were recorded, or a restore in progress)
// contradicts nothing.
func (f *FSM) foreignLocked(ctx context.Context, pos metastore.Position) (string, error) {
	if pos.Index == 0 {
		return "", nil // empty: it holds no history at all
	}
	if pos.Term != 0 && (pos.Index != f.applied || pos.Term != f.appliedTerm) {
		want, ok := f.appliedTerm, pos.Index == f.applied && f.appliedTerm != 0
		if !ok {
			want, ok = f.historyTermLocked(pos.Index)
		}
		if ok && want != pos.Term {
			return fmt.Sprintf("its entry %d is of term %d, this node's log has that entry at term %d: another history", pos.Index, pos.Term, want), nil
		}
	}
	created, ok := f.clusterRootLocked()
	if !ok {
		return "", nil
	}
	root, err := f.store.Get(ctx, metastore.RootID)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		// Entries before the cluster's OpInit leave no root; a store
		// without one is judged by its term alone.
		return "", nil
	case err != nil:
		return "", fmt.Errorf("fsm: read the root collection: %w", err)
	case root.Created != created:
		return fmt.Sprintf("its root collection was created at %d, this cluster's at %d: another cluster's store", root.Created, created), nil
	}
	return "", nil
}

// historyTermLocked returns the term of the entry at index in this node's
// history: from the local log, or from the newest snapshot's header when
// the snapshot ends at that index. ok is false when neither knows it.
func (f *FSM) historyTermLocked(index uint64) (term uint64, ok bool) {
	if f.history == nil {
		return 0, false
	}
	e, err := f.history.Entry(index)
	if err == nil {
		return e.Term, e.Term != 0
	}
	info, _, err := f.newestSnapshotHeadLocked()
	if err != nil {
		f.log.Warn().Err(err).Uint64("index", index).Msg("cannot read the newest snapshot's header to check the store's term")
		return 0, false
	}
	if info.Index != index || info.Term == 0 {
		return 0, false
	}
	return info.Term, true
}

// rootScanLimit bounds how many log entries from the start clusterRootLocked
// reads in search of the OpInit entry: a cluster's first leader proposes it
// among its first few entries.
const rootScanLimit = 256

// clusterRootLocked returns this cluster's identity (see above) as this
// node's history holds it: the root record of the newest snapshot, or the
// first OpInit entry of a log that still starts at entry 1. ok is false
// while the history holds neither.
func (f *FSM) clusterRootLocked() (created int64, ok bool) {
	if f.rootKnown {
		return f.root, true
	}
	if f.history == nil {
		return 0, false
	}
	_, root, err := f.newestSnapshotHeadLocked()
	switch {
	case err != nil:
		f.log.Warn().Err(err).Msg("cannot read the newest snapshot's root collection to check the store's cluster")
	case root != nil:
		f.root, f.rootKnown = root.Created, true
		return f.root, true
	}
	for i := uint64(1); i <= rootScanLimit; i++ {
		e, err := f.history.Entry(i)
		if err != nil {
			break
		}
		if !e.Command {
			continue
		}
		if cmd, err := DecodeCommand(e.Data); err == nil && cmd.Op == OpInit {
			// The first OpInit creates the root with the entry's time
			// (applier.init); later ones find it there.
			f.root, f.rootKnown = cmd.Time, true
			return f.root, true
		}
	}
	return 0, false
}

// newestSnapshotHeadLocked reads the header and the root record (nil if
// the snapshot holds no root) of the newest local snapshot; a zero info
// and no error when there is none.
func (f *FSM) newestSnapshotHeadLocked() (SnapshotInfo, *metastore.Inode, error) {
	rc, ok, err := f.history.NewestSnapshot()
	if err != nil || !ok {
		return SnapshotInfo{}, nil, err
	}
	defer rc.Close()
	return readSnapshotHead(rc)
}

// readSnapshotHead reads a snapshot's header and its first record, which
// is the root collection when the snapshot holds one (writeState emits it
// first).
func readSnapshotHead(r io.Reader) (SnapshotInfo, *metastore.Inode, error) {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return SnapshotInfo{}, nil, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	dec := json.NewDecoder(zr)
	info, err := readInfo(dec)
	if err != nil {
		return info, nil, err
	}
	var rec record
	if err := dec.Decode(&rec); err != nil {
		return info, nil, fmt.Errorf("fsm: read snapshot's first record: %w", err)
	}
	if rec.T == "i" && rec.Parent == 0 && rec.Inode != nil && rec.Inode.ID == metastore.RootID {
		return info, rec.Inode, nil
	}
	return info, nil, nil
}
