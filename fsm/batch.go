package fsm

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/dfs-project/dfs/metastore"
)

var _ raft.BatchingFSM = (*FSM)(nil)

// ApplyBatch implements raft.BatchingFSM: raft hands over every entry
// committed together, and the state machine applies their commands in one
// store transaction (one bbolt commit, one fsync; one MULTI/EXEC) instead of
// one each. Each entry is built on an overlay that holds the changes of the
// entries before it, so each is decided exactly as if applied alone, and
// each gets its own Result; the applied index and term recorded with the
// transaction are the last entry's. Anything unusual (an entry already
// applied, an earlier commit whose reply was lost, a store error) falls back
// to applying the entries one by one, which handles it.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var cmds []*raft.Log
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) > 1 {
		f.mu.Lock()
		results, ok := f.applyTogetherLocked(f.ctx, cmds)
		f.mu.Unlock()
		if ok {
			i := 0
			for j, l := range logs {
				if l.Type == raft.LogCommand {
					out[j] = results[i]
					i++
				}
			}
			return out
		}
	}
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

// applyTogetherLocked applies entries in one store transaction and reports
// false, having committed nothing or leaving the outcomes for the retry
// (unconfirmed), when the entries must be applied one by one instead.
func (f *FSM) applyTogetherLocked(ctx context.Context, logs []*raft.Log) ([]*Result, bool) {
	if len(f.unconfirmed) > 0 {
		return nil, false
	}
	applied, err := f.appliedIndex(ctx)
	if err != nil || logs[0].Index <= applied {
		return nil, false
	}
	ov := newOverlay(f.store)
	last := logs[len(logs)-1]
	b := &metastore.Batch{Index: last.Index, Term: last.Term}
	outcomes := make([]*outcome, len(logs))
	cmds := make([]*Command, len(logs))
	for i, l := range logs {
		o := &outcome{index: l.Index}
		cmd, decErr := DecodeCommand(l.Data)
		cmds[i] = cmd
		if decErr != nil {
			o.res = fail(Invalid, "%v", decErr)
		} else {
			a := newApplier(ctx, ov, l.Index, cmd)
			res, err := a.build()
			if err != nil {
				f.log.Warn().Err(err).Uint64("index", l.Index).Msg("cannot build entries together; applying them one by one")
				return nil, false
			}
			o.res = res
			if res.Code == OK {
				if err := ov.add(ctx, a.b); err != nil {
					f.log.Warn().Err(err).Uint64("index", l.Index).Msg("cannot build entries together; applying them one by one")
					return nil, false
				}
				b.Ops = append(b.Ops, a.b.Ops...)
				o.released, o.referenced = a.released(), a.referenced()
			}
		}
		outcomes[i] = o
	}
	if f.onBatch != nil {
		f.onBatch(b)
	}
	if err := f.commitBuilt(ctx, b); err != nil {
		// As for one entry: the commit may have happened; the retry,
		// one entry at a time, answers what these attempts decided.
		f.appliedOK = false
		f.unconfirmed = outcomes
		f.log.Error().Err(err).Uint64("first", logs[0].Index).Uint64("last", last.Index).
			Msg(fmt.Sprintf("cannot commit %d entries together; applying them one by one", len(logs)))
		return nil, false
	}
	f.setHigh(max(f.high, last.Index))
	f.setApplied(last.Index, last.Term)
	// The reference hook fires for content whose count the transaction
	// raised from 0; entries of one transaction may share a hash, so the
	// count after it is compared with their increases added up.
	var refs []contentRef
	at := map[string]int{}
	for _, o := range outcomes {
		for _, r := range o.referenced {
			if i, ok := at[r.hash]; ok {
				refs[i].delta += r.delta
				continue
			}
			at[r.hash] = len(refs)
			refs = append(refs, r)
		}
		o.referenced = nil
	}
	results := make([]*Result, len(logs))
	for i, o := range outcomes {
		results[i] = f.finish(ctx, cmds[i], o)
	}
	f.announceReferenced(ctx, refs)
	return results, true
}
