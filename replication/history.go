package replication

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/dfs-project/dfs/fsm"
)

// localHistory is the node's own snapshots and log, from which the state
// machine rebuilds a metastore that lost data or holds another history,
// and against which it checks the store's position.
type localHistory struct {
	snaps raft.SnapshotStore
	log   raft.LogStore
}

var _ fsm.History = localHistory{}

func (h localHistory) NewestSnapshot() (io.ReadCloser, bool, error) {
	list, err := h.snaps.List()
	if err != nil {
		return nil, false, fmt.Errorf("replication: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil, false, nil
	}
	_, rc, err := h.snaps.Open(list[0].ID)
	if err != nil {
		return nil, false, fmt.Errorf("replication: open snapshot %s: %w", list[0].ID, err)
	}
	return rc, true, nil
}

func (h localHistory) Entry(index uint64) (fsm.LogEntry, error) {
	var l raft.Log
	if err := h.log.GetLog(index, &l); err != nil {
		if errors.Is(err, raft.ErrLogNotFound) {
			// Truncated after a snapshot, or not appended yet.
			return fsm.LogEntry{}, fmt.Errorf("replication: log entry %d: %w: %w", index, fsm.ErrNotInLog, err)
		}
		return fsm.LogEntry{}, fmt.Errorf("replication: log entry %d: %w", index, err)
	}
	return fsm.LogEntry{Term: l.Term, Data: l.Data, Command: l.Type == raft.LogCommand}, nil
}
