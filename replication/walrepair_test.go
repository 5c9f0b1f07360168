package replication

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/rs/zerolog"
)

func openWAL(t *testing.T, dir string) (*raftwal.WAL, func()) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(dir, raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	return w, func() {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := meta.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func storeRange(t *testing.T, w *raftwal.WAL, from, to, term uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d term %d", i, term)})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

// TestRepairWALAfterTailTruncation: raft truncates the log's tail (a
// deposed leader dropping entries the new leader lacks); raft-wal v0.4.0
// then cannot read the truncated segment after a restart, and the node
// never starts again (found by the fault suite: a leader partitioned, then
// killed). repairWAL rebuilds the log with every entry and raft's term and
// vote; a log without the problem is left alone.
func TestRepairWALAfterTailTruncation(t *testing.T) {
	for _, crashedSwap := range []bool{false, true} {
		t.Run(fmt.Sprintf("crashed-swap=%v", crashedSwap), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			w, closeW := openWAL(t, dir)
			storeRange(t, w, 1, 40, 1)
			if err := w.DeleteRange(1, 5); err != nil { // compaction after a snapshot
				t.Fatal(err)
			}
			if err := w.SetUint64([]byte("CurrentTerm"), 2); err != nil {
				t.Fatal(err)
			}
			if err := w.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
				t.Fatal(err)
			}
			if err := w.DeleteRange(31, 40); err != nil { // "clearing log suffix"
				t.Fatal(err)
			}
			storeRange(t, w, 31, 50, 2)
			closeW()

			// The defect: after a restart the truncated segment cannot be read.
			w, closeW = openWAL(t, dir)
			var l raft.Log
			if err := w.GetLog(20, &l); err == nil {
				t.Fatal("raft-wal reads the truncated segment after a restart: the repair may no longer be needed")
			}
			closeW()

			if crashedSwap {
				// A crash in the middle of an earlier repair's swap.
				if err := os.Rename(dir, dir+".broken"); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir+".repair", 0o700); err != nil {
					t.Fatal(err)
				}
			}
			repaired, err := repairWAL(dir, zerolog.Nop())
			if err != nil || !repaired {
				t.Fatalf("repairWAL: %v, %v", repaired, err)
			}
			for _, leftover := range []string{dir + ".broken", dir + ".repair"} {
				if _, err := os.Stat(leftover); !os.IsNotExist(err) {
					t.Fatalf("%s left behind: %v", leftover, err)
				}
			}

			w, closeW = openWAL(t, dir)
			first, _ := w.FirstIndex()
			last, _ := w.LastIndex()
			if first != 6 || last != 50 {
				t.Fatalf("repaired log holds %d..%d, want 6..50", first, last)
			}
			for i := first; i <= last; i++ {
				term := uint64(1)
				if i > 30 {
					term = 2
				}
				var l raft.Log
				if err := w.GetLog(i, &l); err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if want := fmt.Sprintf("entry %d term %d", i, term); l.Index != i || l.Term != term || string(l.Data) != want {
					t.Fatalf("entry %d: %+v, want %q", i, l, want)
				}
			}
			if v, err := w.GetUint64([]byte("CurrentTerm")); err != nil || v != 2 {
				t.Fatalf("CurrentTerm %d, %v", v, err)
			}
			if v, err := w.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
				t.Fatalf("LastVoteCand %q, %v", v, err)
			}
			closeW()
			if again, err := repairWAL(dir, zerolog.Nop()); err != nil || again {
				t.Fatalf("a second repairWAL: %v, %v; want nothing to do", again, err)
			}
			w, closeW = openWAL(t, dir)
			if err := w.GetLog(20, &l); err != nil || l.Index != 20 {
				t.Fatalf("entry 20 after reopening the repaired log: %+v, %v", l, err)
			}
			closeW()
		})
	}
}
