package replication

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/content"
)

// raft-wal v0.4.0 (the latest release) truncates the log's tail, which
// raft does when a deposed leader or a follower drops entries the new
// leader does not have ("clearing log suffix"), by marking the tail segment
// sealed in its metadata without ever writing the segment's index block.
// The running process still reads that segment from memory, but after a
// restart every read of it fails with "sealed segment has no index block"
// and raft.NewRaft panics: the node can never start again
// (hashicorp/raft-wal#31, fixed upstream by #33 after the release). The
// fault suite hit it: a leader partitioned, then killed.
//
// repairWAL finds such segments before the WAL is opened and rebuilds the
// log: it reads every entry by scanning the segment files' committed
// frames (which needs no index), writes them into a new WAL beside the old
// one, copies raft's stable values (term and vote), and swaps the
// directories. A crash during the swap is resumed on the next start
// (walRecoverSwap). Logs without such segments are not touched.

// Raft's keys in its stable store (hashicorp/raft api.go).
var raftStableKeys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm"), []byte("LastVoteCand")}

// walRecoverSwap finishes or undoes a repair that a crash interrupted:
// the old log moved aside but the new one not yet in place.
func walRecoverSwap(walDir string) error {
	broken, repair := walDir+".broken", walDir+".repair"
	if _, err := os.Stat(walDir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(broken); err == nil {
			// The swap stopped after moving the old log aside: put it
			// back; the repair runs again.
			if err := os.Rename(broken, walDir); err != nil {
				return fmt.Errorf("replication: restore %s: %w", broken, err)
			}
		}
	}
	if err := os.RemoveAll(repair); err != nil {
		return fmt.Errorf("replication: remove an unfinished log repair: %w", err)
	}
	if _, err := os.Stat(walDir); err == nil {
		if err := os.RemoveAll(broken); err != nil {
			return fmt.Errorf("replication: remove a repaired log's old copy: %w", err)
		}
	}
	return nil
}

// unindexedSegments lists the sealed segments without an index block.
func unindexedSegments(walDir string) (types.PersistentState, []types.SegmentInfo, error) {
	if _, err := os.Stat(filepath.Join(walDir, "wal-meta.db")); errors.Is(err, os.ErrNotExist) {
		return types.PersistentState{}, nil, nil // a new log
	}
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	state, err := meta.Load(walDir)
	if err != nil {
		return state, nil, fmt.Errorf("replication: read raft log metadata in %s: %w", walDir, err)
	}
	var bad []types.SegmentInfo
	for _, s := range state.Segments {
		if !s.SealTime.IsZero() && s.IndexStart == 0 {
			bad = append(bad, s)
		}
	}
	return state, bad, nil
}

// repairWAL rebuilds the log in walDir if it has sealed segments without an
// index block (see above); it reports whether it did.
func repairWAL(walDir string, log zerolog.Logger) (bool, error) {
	if err := walRecoverSwap(walDir); err != nil {
		return false, err
	}
	state, bad, err := unindexedSegments(walDir)
	if err != nil || len(bad) == 0 {
		return false, err
	}
	log.Warn().Int("segments", len(bad)).Uint64("first_base_index", bad[0].BaseIndex).
		Msg("raft log has sealed segments without an index (a tail truncation by raft-wal v0.4.0); rebuilding the log")

	// The term and vote, read through the old log's metadata.
	oldMeta := &metadb.BoltMetaDB{}
	if _, err := oldMeta.Load(walDir); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	stable := map[string][]byte{}
	for _, k := range raftStableKeys {
		v, err := oldMeta.GetStable(k)
		if err != nil {
			_ = oldMeta.Close()
			return false, fmt.Errorf("replication: repair raft log: read %s: %w", k, err)
		}
		if v != nil {
			stable[string(k)] = slices.Clone(v)
		}
	}
	if err := oldMeta.Close(); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}

	repairDir := walDir + ".repair"
	if err := os.MkdirAll(repairDir, 0o700); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	newMeta := &metadb.BoltMetaDB{}
	nw, err := raftwal.Open(repairDir, raftwal.WithMetaStore(newMeta))
	if err != nil {
		_ = newMeta.Close()
		return false, fmt.Errorf("replication: repair raft log: open %s: %w", repairDir, err)
	}
	closeNew := func() error { return errors.Join(nw.Close(), newMeta.Close()) }

	// Every entry the metadata says the log holds, segment by segment, from
	// the frames committed in each file. A truncated tail's file still holds
	// the dropped entries after its MaxIndex: the bound leaves them out.
	filer := segment.NewFiler(walDir, walfs.New())
	codec := &raftwal.BinaryCodec{}
	segs := slices.Clone(state.Segments)
	slices.SortFunc(segs, func(a, b types.SegmentInfo) int { return cmp.Compare(a.BaseIndex, b.BaseIndex) })
	var batch []*raft.Log
	var next, copied uint64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := nw.StoreLogs(batch)
		batch = batch[:0]
		return err
	}
	for _, s := range segs {
		var after uint64
		if s.MinIndex > 0 {
			after = s.MinIndex - 1
		}
		// No upper bound for DumpSegment: it hands entries over only at
		// their batch's commit frame, and stopping at the bound would drop
		// the batch the bound falls in. Entries past MaxIndex are skipped.
		err := filer.DumpSegment(s.BaseIndex, s.ID, after, 0, func(info types.SegmentInfo, e types.LogEntry) (bool, error) {
			if !s.SealTime.IsZero() && e.Index > s.MaxIndex {
				return true, nil
			}
			if info.Codec != codec.ID() {
				return false, fmt.Errorf("segment %d uses codec %d, not raft-wal's binary codec", s.ID, info.Codec)
			}
			l := &raft.Log{}
			if err := codec.Decode(e.Data, l); err != nil {
				return false, fmt.Errorf("entry %d: %w", e.Index, err)
			}
			if l.Index != e.Index || (next != 0 && l.Index != next) {
				return false, fmt.Errorf("entry %d found where %d was expected", l.Index, next)
			}
			next = l.Index + 1
			batch = append(batch, l)
			copied++
			if len(batch) == 256 {
				return true, flush()
			}
			return true, nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			_ = closeNew()
			return false, fmt.Errorf("replication: repair raft log: segment %d (base index %d): %w", s.ID, s.BaseIndex, err)
		}
	}
	for k, v := range stable {
		if err := nw.Set([]byte(k), v); err != nil {
			_ = closeNew()
			return false, fmt.Errorf("replication: repair raft log: write %s: %w", k, err)
		}
	}
	if err := closeNew(); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}

	// Swap: old aside, new in place, then drop the old (walRecoverSwap
	// completes this if a crash interrupts it).
	broken := walDir + ".broken"
	if err := os.Rename(walDir, broken); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	if err := os.Rename(repairDir, walDir); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	if err := content.SyncDir(filepath.Dir(walDir)); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	if err := os.RemoveAll(broken); err != nil {
		return false, fmt.Errorf("replication: repair raft log: %w", err)
	}
	log.Warn().Uint64("entries", copied).Msg("raft log rebuilt")
	return true, nil
}
