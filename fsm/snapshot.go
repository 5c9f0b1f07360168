package fsm

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/dfs-project/dfs/metastore"
)

// Snapshot format
//
// A snapshot is a gzip stream of JSON values, one per line:
//
//	{"format":"dfs-fsm-snapshot","version":1,"index":N,"term":T,"inodes":I,"props":P,"locks":L,"members":M}
//	{"t":"i","i":{root inode},"pr":{...}}                   the root, if stored
//	{"t":"i","p":parentID,"n":"name","i":{inode},"pr":{...}} every other inode, preorder
//	{"t":"i","i":{work area},...} and its inodes               the purge and staging areas, if stored
//	{"t":"l","l":{lock}}                                    every lock
//	{"t":"m","m":{member}}                                  every cluster member
//	{"t":"end","c":{"inodes":I,"props":P,"locks":L,"members":M}}
//
// Inodes come depth-first from the root, members in name order, so a
// parent always precedes its members and two stores with the same state
// produce the same bytes. Dead properties ride on their inode ("pr", Clark
// keys, sorted by encoding/json). Reference counts are not stored: they are
// a function of the inodes and Restore recomputes them, so a snapshot can
// never carry a count that disagrees with its namespace. The usage counter
// (metastore.Reader.UsedBytes) is not stored either, for the same reason:
// it is the sum of the files' sizes, and Restore adds them up. The end record
// detects truncation; gzip's CRC detects corruption. It carries no
// store-specific keys, so a bolt snapshot restores into Redis and back.

const (
	snapshotFormat  = "dfs-fsm-snapshot"
	snapshotVersion = 1
)

// SnapshotInfo is the header of a snapshot.
type SnapshotInfo struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Index is the store's applied index when the snapshot was taken. It
	// can be below Raft's index for the same snapshot, whose last entries
	// may be no-ops or configuration changes that never reach the FSM.
	Index uint64 `json:"index"`
	// Term is the Raft term of the entry at Index, which the restored
	// store records with it. 0 in snapshots taken before terms were
	// recorded: a field added to version 1, which older readers ignore.
	Term    uint64 `json:"term,omitempty"`
	Inodes  int64  `json:"inodes"`
	Props   int64  `json:"props"`
	Locks   int64  `json:"locks"`
	Members int64  `json:"members"`
}

type counts struct {
	Inodes  int64 `json:"inodes"`
	Props   int64 `json:"props"`
	Locks   int64 `json:"locks"`
	Members int64 `json:"members"`
}

type record struct {
	T      string            `json:"t"`
	Parent metastore.ID      `json:"p,omitempty"`
	Name   string            `json:"n,omitempty"`
	Inode  *metastore.Inode  `json:"i,omitempty"`
	Props  map[string]string `json:"pr,omitempty"`
	Lock   *metastore.Lock   `json:"l,omitempty"`
	Member *metastore.Member `json:"m,omitempty"`
	Hash   string            `json:"h,omitempty"`  // Dump only
	Refs   int64             `json:"rc,omitempty"` // Dump only
	Counts *counts           `json:"c,omitempty"`  // end record
}

// writeState writes the records of r's state to w, calling onFile for every
// file's hash (Dump collects them).
func writeState(ctx context.Context, r metastore.Reader, w io.Writer, onFile func(hash string)) (counts, error) {
	var c counts
	enc := json.NewEncoder(w)
	emit := func(parent metastore.ID, name string, in metastore.Inode) error {
		props, err := r.Props(ctx, in.ID)
		if err != nil {
			return fmt.Errorf("fsm: read properties of inode %d: %w", in.ID, err)
		}
		rec := record{T: "i", Parent: parent, Name: name, Inode: &in}
		if len(props) > 0 {
			rec.Props = make(map[string]string, len(props))
			for n, v := range props {
				rec.Props[n.Key()] = v
			}
		}
		c.Inodes++
		c.Props += int64(len(props))
		if !in.IsDir() && onFile != nil {
			onFile(in.Hash)
		}
		return enc.Encode(rec)
	}
	var walk func(dir metastore.ID) error
	walk = func(dir metastore.ID) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := r.List(ctx, dir)
		if err != nil {
			return fmt.Errorf("fsm: list inode %d: %w", dir, err)
		}
		for _, e := range ents {
			if err := emit(dir, e.Name, e.Inode); err != nil {
				return err
			}
			if e.Inode.IsDir() {
				if err := walk(e.Inode.ID); err != nil {
					return err
				}
			}
		}
		return nil
	}
	root, err := r.Get(ctx, metastore.RootID)
	switch {
	case err == nil:
		if err := emit(0, "", root); err != nil {
			return c, err
		}
	case !errors.Is(err, metastore.ErrNotFound):
		return c, fmt.Errorf("fsm: read root: %w", err)
	}
	if err := walk(metastore.RootID); err != nil {
		return c, err
	}
	// The work areas of bounded subtree work, after the namespace.
	for _, id := range []metastore.ID{metastore.PurgeID, metastore.StagingID} {
		area, err := r.Get(ctx, id)
		if errors.Is(err, metastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return c, fmt.Errorf("fsm: read work area %d: %w", id, err)
		}
		if err := emit(0, "", area); err != nil {
			return c, err
		}
		if err := walk(id); err != nil {
			return c, err
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return c, fmt.Errorf("fsm: read locks: %w", err)
	}
	for _, l := range locks {
		c.Locks++
		if err := enc.Encode(record{T: "l", Lock: &l}); err != nil {
			return c, err
		}
	}
	members, err := r.Members(ctx)
	if err != nil {
		return c, fmt.Errorf("fsm: read members: %w", err)
	}
	for _, m := range members {
		c.Members++
		if err := enc.Encode(record{T: "m", Member: &m}); err != nil {
			return c, err
		}
	}
	cc := c
	return c, enc.Encode(record{T: "end", Counts: &cc})
}

// Dump writes a canonical, uncompressed description of a store's state:
// its applied index and usage counter, every inode (with parent, name and properties) in
// snapshot order, every lock and cluster member, and the reference count of every hash a file
// uses. Equal states give equal bytes, whatever the store; tests compare
// nodes with it, and it is a debugging aid.
func Dump(ctx context.Context, r metastore.Reader, w io.Writer) error {
	applied, err := r.AppliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("fsm: read applied index: %w", err)
	}
	used, err := r.UsedBytes(ctx)
	if err != nil {
		return fmt.Errorf("fsm: read used bytes: %w", err)
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(map[string]int64{"applied": int64(applied), "used": used}); err != nil {
		return err
	}
	seen := map[string]bool{}
	if _, err := writeState(ctx, r, bw, func(h string) { seen[h] = true }); err != nil {
		return err
	}
	hashes := make([]string, 0, len(seen))
	for h := range seen {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	enc := json.NewEncoder(bw)
	for _, h := range hashes {
		n, err := r.RefCount(ctx, h)
		if err != nil {
			return fmt.Errorf("fsm: read reference count of %s: %w", h, err)
		}
		if err := enc.Encode(record{T: "r", Hash: h, Refs: n}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// fileSnapshot is a raft.FSMSnapshot: the state dumped to a temporary file.
type fileSnapshot struct {
	path string
	info SnapshotInfo
}

// snapshot dumps the store into a temporary file while holding the apply
// mutex, so the dump is a consistent cut at one applied index.
//
// Trade-off: the Redis store has no MVCC, so there is no cheap
// point-in-time view to hand to Persist; copying the state out is the
// simplest correct way to get one. Applying pauses for the length of the
// dump (O(namespace) reads; Raft also never calls Apply concurrently with
// Snapshot), while compressing and writing to the snapshot sink happen in
// Persist, concurrently with Apply.
func (f *FSM) snapshot(ctx context.Context) (*fileSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Never snapshot a store that lost data: the snapshot would make the
	// loss permanent once the log before it is truncated.
	if err := f.verifyStoreLocked(ctx); err != nil {
		return nil, err
	}
	applied, term := f.applied, f.appliedTerm
	file, err := os.CreateTemp(f.tmpDir, "dfs-fsm-snapshot-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	s := &fileSnapshot{path: file.Name()}
	bw := bufio.NewWriterSize(file, 1<<20)
	c, err := writeState(ctx, f.store, bw, nil)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.Release()
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	s.info = SnapshotInfo{Format: snapshotFormat, Version: snapshotVersion, Index: applied, Term: term,
		Inodes: c.Inodes, Props: c.Props, Locks: c.Locks, Members: c.Members}
	f.log.Info().Uint64("index", applied).Int64("inodes", c.Inodes).Msg("snapshot taken")
	return s, nil
}

// writeStream writes the snapshot in its portable format to w.
func (s *fileSnapshot) writeStream(w io.Writer) error {
	in, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	defer in.Close()
	zw := gzip.NewWriter(w)
	if err := json.NewEncoder(zw).Encode(s.info); err != nil {
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fileSnapshot) Release() { _ = os.Remove(s.path) }

// WriteSnapshot writes a snapshot of the current state to w (a backup, a
// test). It takes the same consistent cut Raft's snapshots do.
func (f *FSM) WriteSnapshot(ctx context.Context, w io.Writer) (SnapshotInfo, error) {
	s, err := f.snapshot(ctx)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer s.Release()
	return s.info, s.writeStream(w)
}

// ReadSnapshotInfo reads the header of a snapshot stream.
func ReadSnapshotInfo(r io.Reader) (SnapshotInfo, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	return readInfo(json.NewDecoder(zr))
}

func readInfo(dec *json.Decoder) (SnapshotInfo, error) {
	var info SnapshotInfo
	if err := dec.Decode(&info); err != nil {
		return info, fmt.Errorf("fsm: read snapshot header: %w", err)
	}
	if info.Format != snapshotFormat {
		return info, fmt.Errorf("fsm: not a dfs snapshot (format %q)", info.Format)
	}
	if info.Version != snapshotVersion {
		return info, fmt.Errorf("fsm: snapshot version %d not supported (want %d)", info.Version, snapshotVersion)
	}
	return info, nil
}

// restoreBatchOps bounds the operations per batch while restoring.
const restoreBatchOps = 1000

// RestoreFrom replaces the store's state with the snapshot read from r and
// returns the snapshot's applied index, which is the store's afterwards.
//
// The store is Reset and then loaded in batches of about restoreBatchOps
// operations. Commit needs strictly increasing indexes, so the loading
// batches take indexes 1, 2, ... below the snapshot's index and the last
// batch takes the snapshot's index itself; when the index leaves too few
// numbers, batches grow instead. Until the last batch commits, the store
// reports an applied index below the snapshot's: a crash mid-restore is
// visible, and replication.Open restores again from the snapshot it finds
// newer than the store.
func (f *FSM) RestoreFrom(ctx context.Context, r io.Reader) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setRebuilding("restoring the metadata store from a snapshot")
	defer f.setRebuilding("")
	f.restoreMu.Lock()
	defer f.restoreMu.Unlock()
	idx, err := f.restoreLocked(ctx, r)
	if err != nil {
		return 0, err
	}
	if f.restore != nil {
		f.restore()
	}
	return idx, nil
}

// restoreLocked is RestoreFrom without the locking and the restore hook.
func (f *FSM) restoreLocked(ctx context.Context, r io.Reader) (uint64, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<16))
	if err != nil {
		return 0, fmt.Errorf("fsm: restore: %w", err)
	}
	dec := json.NewDecoder(zr)
	info, err := readInfo(dec)
	if err != nil {
		return 0, fmt.Errorf("fsm: restore: %w", err)
	}
	f.appliedOK, f.unconfirmed = false, nil
	if err := f.store.Reset(ctx); err != nil {
		return 0, fmt.Errorf("fsm: restore: reset store: %w", err)
	}
	per := restoreBatchOps
	if est := 3*info.Inodes + info.Props + info.Locks + info.Members; info.Index > 1 && est/int64(info.Index-1) >= int64(per) {
		per = int(est/int64(info.Index-1)) + 1
	}
	var (
		next uint64 = 1
		b           = &metastore.Batch{}
		got  counts
	)
	commit := func(index uint64) error {
		b.Index = index
		if err := f.store.Commit(ctx, b); err != nil {
			return fmt.Errorf("fsm: restore: commit batch %d: %w", index, err)
		}
		b = &metastore.Batch{}
		return nil
	}
	for done := false; !done; {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("fsm: restore: truncated or corrupt snapshot: %w", err)
		}
		switch rec.T {
		case "i":
			if err := restoreInode(b, &rec); err != nil {
				return 0, err
			}
			got.Inodes++
			got.Props += int64(len(rec.Props))
		case "l":
			if rec.Lock == nil || rec.Lock.Token == "" {
				return 0, errors.New("fsm: restore: lock record without a lock")
			}
			b.PutLock(*rec.Lock)
			got.Locks++
		case "m":
			if rec.Member == nil || rec.Member.ID == "" {
				return 0, errors.New("fsm: restore: member record without a member")
			}
			b.PutMember(*rec.Member)
			got.Members++
		case "end":
			if rec.Counts == nil || *rec.Counts != got {
				return 0, fmt.Errorf("fsm: restore: snapshot holds %+v, end record says %+v", got, rec.Counts)
			}
			done = true
		default:
			return 0, fmt.Errorf("fsm: restore: unknown record %q", rec.T)
		}
		if len(b.Ops) >= per && next < info.Index {
			if err := commit(next); err != nil {
				return 0, err
			}
			next++
		}
	}
	// Reading to the end makes gzip verify its checksum.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return 0, fmt.Errorf("fsm: restore: corrupt snapshot: %w", err)
	}
	switch {
	case info.Index > 0:
		b.Term = info.Term
		if err := commit(info.Index); err != nil {
			return 0, err
		}
	case len(b.Ops) > 0:
		return 0, errors.New("fsm: restore: snapshot at index 0 is not empty")
	}
	f.setApplied(info.Index, info.Term)
	// A restore defines the state from here on, even an older one.
	f.setHigh(info.Index)
	f.log.Info().Uint64("index", info.Index).Int64("inodes", got.Inodes).Msg("snapshot restored")
	return info.Index, nil
}

func restoreInode(b *metastore.Batch, rec *record) error {
	in := rec.Inode
	if in == nil || in.ID == 0 || (in.Kind != metastore.KindFile && in.Kind != metastore.KindDir) {
		return errors.New("fsm: restore: bad inode record")
	}
	top := in.ID == metastore.RootID || in.ID == metastore.PurgeID || in.ID == metastore.StagingID
	if top != (rec.Parent == 0) || (rec.Parent != 0 && rec.Name == "") {
		return fmt.Errorf("fsm: restore: inode %d has a bad parent or name", in.ID)
	}
	b.PutInode(*in)
	if rec.Parent != 0 {
		b.Link(rec.Parent, rec.Name, in.ID)
	}
	keys := make([]string, 0, len(rec.Props))
	for k := range rec.Props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		n, err := metastore.ParsePropName(k)
		if err != nil {
			return fmt.Errorf("fsm: restore: inode %d: %w", in.ID, err)
		}
		b.SetProp(in.ID, n, rec.Props[k])
	}
	if !in.IsDir() && in.Hash != "" {
		b.AddRef(in.Hash, 1)
	}
	if !in.IsDir() && in.Size > 0 {
		b.AddUsage(in.Size)
	}
	return nil
}
