package fsm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// batchScript is script() with bounded-step work, quota refusals and
// entries that depend on the entry just before them (a collection and its
// first file, a lock and the write that presents it), so that groups of
// entries applied together exercise every kind of change.
func batchScript() []Command {
	cs := script()
	more := []Command{
		{Op: OpMkcol, Path: "/g"},
		{Op: OpPut, Path: "/g/1", Hash: hA, Size: 1},
		{Op: OpPut, Path: "/g/2", Hash: hA, Size: 1},
		{Op: OpPut, Path: "/g/1", Hash: hB, Size: 2, IfMatch: "*"},
		{Op: OpPut, Path: "/g/3", Hash: hC, Size: 3, IfNoneMatch: "*"},
		{Op: OpPut, Path: "/g/3", Hash: hC, Size: 3, IfNoneMatch: "*"}, // PreconditionFailed
		{Op: OpPut, Path: "/g/big", Hash: hB, Size: 1 << 40, Quota: 1 << 30},
		{Op: OpMkcol, Path: "/g/d"},
		{Op: OpPut, Path: "/g/d/x", Hash: hA, Size: 1},
		{Op: OpPut, Path: "/g/d/y", Hash: hB, Size: 2},
		{Op: OpPropPatch, Path: "/g/d", Patches: []PropPatch{{Name: metastore.PropName{Space: "urn:s", Local: "p"}, Value: "v"}}},
		{Op: OpCopy, Path: "/g", Dest: "/g2", Depth: DepthInfinity, Step: 3},
		{Op: OpCopyStep, Job: "", Step: 3},             // filled in below
		{Op: OpPut, Path: "/g/new", Hash: hA, Size: 1}, // Locked while the copy is built
		{Op: OpCopyStep, Job: "", Step: 3},
		{Op: OpCopyStep, Job: "", Step: 3},
		{Op: OpCopyStep, Job: "", Step: 3},
		{Op: OpDelete, Path: "/g2", Step: 3},
		{Op: OpPurge, Step: 3},
		{Op: OpPurge, Step: 3},
		{Op: OpPurge, Step: 3},
		{Op: OpPurge, Step: 3},
		lockCmd("/g/1", "tok-g", false, false, 0),
		{Op: OpPut, Path: "/g/1", Hash: hC, Size: 3, Tokens: []string{"tok-g"}},
		{Op: OpUnlock, Path: "/g/1", Token: "tok-g"},
		{Op: OpDelete, Path: "/g/d"},
		{Op: OpMove, Path: "/g/1", Dest: "/g/2", Overwrite: true},
	}
	n := len(cs)
	for i := range more {
		more[i].Time = T(uint64(n + i + 1))
	}
	return append(cs, more...)
}

// TestApplyBatchMatchesOneByOne applies one script to two stores of each
// kind, one entry at a time and in random groups (ApplyBatch, with a
// no-op or a configuration entry here and there, as raft hands them over):
// every entry's result and the final states must be identical, and a group
// must commit once.
func TestApplyBatchMatchesOneByOne(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ctx := context.Background()
				one := New(open(t), zerolog.Nop())
				commits := 0
				grouped := New(open(t), zerolog.Nop(), withBatchHook(func(*metastore.Batch) { commits++ }))
				rnd := rand.New(rand.NewPCG(seed, 7))
				cmds := batchScript()
				var logs []*raft.Log
				var want []*Result
				index := uint64(0)
				job := ""
				for _, c := range cmds {
					if rnd.IntN(5) == 0 {
						index++
						logs = append(logs, &raft.Log{Index: index, Term: 1, Type: raft.LogNoop})
					}
					index++
					if c.Op == OpCopyStep {
						c.Job = job
					}
					data, err := c.Encode()
					if err != nil {
						t.Fatal(err)
					}
					r, err := one.ApplyLogEntry(ctx, index, 1, data)
					if err != nil {
						t.Fatal(err)
					}
					if r.Job != "" && c.Op == OpCopy {
						job = r.Job
					}
					want = append(want, r)
					logs = append(logs, &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
				}
				var got []*Result
				groups := 0
				for len(logs) > 0 {
					n := min(1+rnd.IntN(8), len(logs))
					out := grouped.ApplyBatch(logs[:n])
					for i, l := range logs[:n] {
						if l.Type != raft.LogCommand {
							if out[i] != nil {
								t.Fatalf("entry %d (%v): result %v", l.Index, l.Type, out[i])
							}
							continue
						}
						r, ok := out[i].(*Result)
						if !ok {
							t.Fatalf("entry %d: result %T %v", l.Index, out[i], out[i])
						}
						got = append(got, r)
					}
					logs = logs[n:]
					groups++
				}
				for i := range want {
					if fmt.Sprintf("%+v", got[i]) != fmt.Sprintf("%+v", want[i]) {
						t.Fatalf("entry %d (%s %s): together %+v, alone %+v", i, cmds[i].Op, cmds[i].Path, got[i], want[i])
					}
				}
				if d := diffLines(dump(t, one.Store()), dump(t, grouped.Store())); d != "" {
					t.Fatalf("states differ: %s", d)
				}
				if commits > groups {
					t.Fatalf("%d commits for %d groups", commits, groups)
				}
			})
		})
	}
}

// TestApplyBatchLostReply: a group's commit happens but its reply is lost;
// the entries, retried one by one, answer what the group decided.
func TestApplyBatchLostReply(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		ls := &lostReplyStore{Store: open(t)}
		f := New(ls, zerolog.Nop())
		setup := []Command{{Op: OpInit, Time: T(1)}, {Op: OpMkcol, Path: "/d", Time: T(2)}}
		applyAll(t, f, setup, 1)
		group := []Command{
			{Op: OpPut, Path: "/d/a", Hash: hA, Size: 1, Time: T(3)},
			{Op: OpMkcol, Path: "/d", Time: T(4)},                                      // NotAllowed
			{Op: OpPut, Path: "/d/a", Hash: hB, Size: 2, IfNoneMatch: "*", Time: T(5)}, // PreconditionFailed: /d/a from the entry before
		}
		var logs []*raft.Log
		for i, c := range group {
			data, err := c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			logs = append(logs, &raft.Log{Index: uint64(3 + i), Term: 2, Type: raft.LogCommand, Data: data})
		}
		ls.lose = 1
		out := f.ApplyBatch(logs)
		for i, want := range []Code{OK, NotAllowed, PreconditionFailed} {
			r, ok := out[i].(*Result)
			if !ok || r.Code != want || r.Msg == "replayed" {
				t.Fatalf("entry %d after a lost reply: %+v, want %v", i, out[i], want)
			}
		}
		if r := out[0].(*Result); r.Inode.Hash != hA {
			t.Fatalf("the PUT's result lost its inode: %+v", r)
		}
		if pos, _ := ls.AppliedPosition(context.Background()); pos.Index != 5 || pos.Term != 2 {
			t.Fatalf("applied position %+v, want 5 in term 2", pos)
		}
	})
}
