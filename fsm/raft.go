package fsm

import (
	"io"

	"github.com/hashicorp/raft"
)

var _ raft.FSM = (*FSM)(nil)

// Apply implements raft.FSM. The response, ApplyFuture.Response(), is a
// *Result, or an error if the entry could not be committed before Close.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	res, err := f.ApplyLogEntry(f.ctx, l.Index, l.Term, l.Data)
	if err != nil {
		return err
	}
	return res
}

// Snapshot implements raft.FSM; see (*FSM).snapshot for the trade-off.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return f.snapshot(f.ctx)
}

// Restore implements raft.FSM. Raft closes rc.
func (f *FSM) Restore(rc io.ReadCloser) error {
	_, err := f.RestoreFrom(f.ctx, rc)
	return err
}

// Persist implements raft.FSMSnapshot.
func (s *fileSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.writeStream(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}
