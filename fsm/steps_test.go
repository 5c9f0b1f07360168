package fsm

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// bigTree creates /t with dirs subfolders of files files each (1 + dirs +
// dirs*files inodes), file k of folder j holding hash h<j>-<k>, and a dead
// property on every folder.
func (e *env) bigTree(root string, dirs, files int) {
	e.t.Helper()
	e.mkcol(root)
	for j := range dirs {
		d := fmt.Sprintf("%s/d%02d", root, j)
		e.mkcol(d)
		e.ok(Command{Op: OpPropPatch, Path: d, Patches: []PropPatch{{Name: metastore.PropName{Space: "urn:x", Local: "p"}, Value: d}}})
		for k := range files {
			e.ok(Command{Op: OpPut, Path: fmt.Sprintf("%s/f%02d", d, k), Hash: fmt.Sprintf("h%d-%d", j, k), Size: 10})
		}
	}
}

// area lists a work area's top-level entries.
func (e *env) area(id metastore.ID) []metastore.Dirent {
	e.t.Helper()
	ents, err := e.s.List(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ents
}

// steps applies c until its result says no work is left, checking that no
// entry creates or deletes more than step inodes, and returns the count.
func (e *env) steps(c Command, step int) int {
	e.t.Helper()
	for n := 1; ; n++ {
		if n > 1000 {
			e.t.Fatalf("%s does not finish", c.Op)
		}
		r := e.ok(c)
		touched := 0
		for _, op := range e.last.Ops {
			if op.Inode.ID == metastore.PurgeID || op.Inode.ID == metastore.StagingID {
				continue // a work area's own inode, stored when first used
			}
			if op.Kind == metastore.OpPutInode || op.Kind == metastore.OpDeleteInode {
				touched++
			}
		}
		if touched > step {
			e.t.Fatalf("%s step %d touched %d inodes, more than its step of %d", c.Op, n, touched, step)
		}
		if !r.More {
			return n
		}
	}
}

// tree describes the subtree at p: every member's relative path, kind,
// content and dead properties, in order.
func (e *env) tree(p string) string {
	e.t.Helper()
	var b strings.Builder
	var walk func(rel string, in metastore.Inode)
	walk = func(rel string, in metastore.Inode) {
		props := e.props(in.ID)
		keys := make([]string, 0, len(props))
		for k, v := range props {
			keys = append(keys, k.Key()+"="+v)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "%s kind=%d hash=%s size=%d props=%v\n", rel, in.Kind, in.Hash, in.Size, keys)
		if !in.IsDir() {
			return
		}
		ents, err := e.s.List(e.ctx, in.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range ents {
			walk(rel+"/"+d.Name, d.Inode)
		}
	}
	walk(".", e.mustStat(p))
	return b.String()
}

// TestBoundedDelete deletes a tree larger than the step: the path is gone
// at once, the purge entries remove the rest bottom-up in bounded steps,
// and the end state is the one an all-at-once delete gives.
func TestBoundedDelete(t *testing.T) {
	const step = 7
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		ref := newEnv(t, open(t))
		for _, x := range []*env{e, ref} {
			x.init()
			x.bigTree("/t", 5, 6) // 36 inodes
			x.put("/keep", "hk")
		}
		full := e.used()

		e.ok(Command{Op: OpDelete, Path: "/t", Step: step})
		e.gone("/t")
		if len(e.area(metastore.PurgeID)) != 1 {
			t.Fatalf("the purge area holds %v, want the detached tree", e.area(metastore.PurgeID))
		}
		if e.used() != full || e.refs("h0-0") != 1 {
			t.Fatalf("the detached tree stopped counting before it was purged: used %d of %d", e.used(), full)
		}
		// The name is free at once, and a new tree there is not purged.
		e.mkcol("/t")
		e.put("/t/new", "hn")
		n := e.steps(Command{Op: OpPurge, Step: step}, step)
		if n < 36/step {
			t.Fatalf("the purge took %d entries for 36 inodes in steps of %d", n, step)
		}
		if len(e.area(metastore.PurgeID)) != 0 {
			t.Fatal("the purge area is not empty")
		}
		e.wantRefs("h0-0", 0)
		e.wantRefs("h4-5", 0)
		if !slices.Contains(e.released, "h4-5") {
			t.Fatal("the purge did not release the content it dropped")
		}
		e.mustStat("/t/new")

		ref.ok(Command{Op: OpDelete, Path: "/t"})
		ref.mkcol("/t")
		ref.put("/t/new", "hn")
		if e.used() != ref.used() {
			t.Fatalf("used %d after the purge, %d after an all-at-once delete", e.used(), ref.used())
		}
		if got, want := e.tree("/"), ref.tree("/"); got != want {
			t.Fatalf("namespace after the purge:\n%s\nafter an all-at-once delete:\n%s", got, want)
		}
		// Another purge finds nothing to do.
		if r := e.ok(Command{Op: OpPurge, Step: step}); r.More || len(e.last.Ops) != 0 {
			t.Fatalf("a purge of an empty area: %+v, %d ops", r, len(e.last.Ops))
		}
	})
}

// TestSmallDeleteInline keeps a DELETE within the step a single entry.
func TestSmallDeleteInline(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.bigTree("/t", 2, 2) // 7 inodes
		e.ok(Command{Op: OpDelete, Path: "/t", Step: 7})
		e.gone("/t")
		e.wantRefs("h1-1", 0)
		if len(e.area(metastore.PurgeID)) != 0 {
			t.Fatal("a delete within the step used the purge area")
		}
	})
}

// TestStagedCopy copies a tree larger than the step: nothing is visible at
// the destination until the last step, source and destination are frozen
// meanwhile (even for a client holding a lock there), and the result is
// the copy an all-at-once COPY makes.
func TestStagedCopy(t *testing.T) {
	const step = 5
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("overwrite=%v", overwrite), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				e := newEnv(t, open(t))
				e.init()
				e.bigTree("/t", 4, 5) // 25 inodes
				e.ok(lockCmd("/t/d01/f01", "opaquelocktoken:mine", false, false, 0))
				if overwrite {
					e.bigTree("/c", 3, 3)
				}
				r := e.ok(Command{Op: OpCopy, Path: "/t", Dest: "/c", Depth: DepthInfinity, Overwrite: true, Step: step, MaxTree: 100})
				copyTime := T(e.index)
				if r.Job == "" || r.Created == overwrite {
					t.Fatalf("COPY result %+v: want a staged job, created=%v", r, !overwrite)
				}
				if overwrite {
					if _, ok := e.stat("/c/d02/f02"); !ok {
						t.Fatal("the destination was replaced before the copy was built")
					}
				} else {
					e.gone("/c")
				}
				// Frozen: no write under source or destination, whatever token.
				frozen := []Command{
					{Op: OpPut, Path: "/t/d01/f01", Hash: "hx", Size: 1, Tokens: []string{"opaquelocktoken:mine"}},
					{Op: OpPut, Path: "/t/new", Hash: "hx", Size: 1},
					{Op: OpDelete, Path: "/t/d00"},
					{Op: OpMove, Path: "/t", Dest: "/moved"},
					{Op: OpDelete, Path: "/t"},
					lockCmd("/t/d03", "opaquelocktoken:other", true, false, 0),
				}
				if overwrite {
					frozen = append(frozen, Command{Op: OpDelete, Path: "/c"}, Command{Op: OpPut, Path: "/c/d00/f00", Hash: "hx", Size: 1})
				} else {
					frozen = append(frozen, Command{Op: OpMkcol, Path: "/c"}, Command{Op: OpPut, Path: "/c", Hash: "hx", Size: 1})
				}
				for _, c := range frozen {
					e.code(c, Locked)
				}
				for _, l := range e.locks() {
					if strings.HasPrefix(l.Token, "urn:dfs:copy:") {
						e.code(Command{Op: OpUnlock, Path: l.Root, Token: l.Token}, Forbidden)
					}
				}
				before := e.used()
				n := e.steps(Command{Op: OpCopyStep, Job: r.Job, Step: step}, step)
				if n < 24/step {
					t.Fatalf("the copy took %d steps for 24 members in steps of %d", n, step)
				}
				if got, want := e.tree("/c"), e.tree("/t"); got != want {
					t.Fatalf("the copy:\n%s\nthe source:\n%s", got, want)
				}
				for _, p := range []string{"/c", "/c/d03", "/c/d03/f04"} {
					if c := e.mustStat(p); c.Created != copyTime || c.Modified != copyTime {
						t.Fatalf("%s: created %d, modified %d, want the COPY's time %d", p, c.Created, c.Modified, copyTime)
					}
				}
				e.wantRefs("h3-4", 2)
				if e.used() != before+20*10 {
					t.Fatalf("used %d after the copy, want %d", e.used(), before+200)
				}
				for _, l := range e.locks() {
					if isFreeze(l) {
						t.Fatalf("the freeze lock %+v outlived the copy", l)
					}
				}
				if len(e.area(metastore.StagingID)) != 0 {
					t.Fatal("the staging area is not empty")
				}
				e.put("/t/new", "hy")
				e.put("/c/new", "hz")
				if overwrite {
					e.wantRefs("h2-2", 3) // /t's, the copy's and the replaced tree's, detached
					e.steps(Command{Op: OpPurge, Step: step}, step)
					e.wantRefs("h2-2", 2)
				}
				// A step proposed again after the end changes nothing.
				if r := e.ok(Command{Op: OpCopyStep, Job: r.Job, Step: step}); r.More || len(e.last.Ops) != 0 {
					t.Fatalf("a step of a finished job: %+v, %d ops", r, len(e.last.Ops))
				}
			})
		})
	}
}

// TestStagedCopyLimits refuses up front, changing nothing, a COPY above
// MaxTree or one the quota cannot take, however it would be built.
func TestStagedCopyLimits(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.bigTree("/t", 3, 4) // 16 inodes, 120 bytes
		before := e.dumpState()
		r := e.code(Command{Op: OpCopy, Path: "/t", Dest: "/c", Depth: DepthInfinity, Step: 4, MaxTree: 15}, Forbidden)
		if !strings.Contains(r.Msg, "--max-tree-entries") {
			t.Fatalf("refusal does not say why: %q", r.Msg)
		}
		e.code(Command{Op: OpCopy, Path: "/t", Dest: "/c", Depth: DepthInfinity, Step: 4, Quota: e.used() + 119}, InsufficientStorage)
		if d := diffLines(before, e.dumpState()); d != "" {
			t.Fatalf("a refused COPY changed the state: %s", d)
		}
		e.ok(Command{Op: OpCopy, Path: "/t", Dest: "/c", Depth: DepthInfinity, Step: 4, MaxTree: 16, Quota: e.used() + 120})
	})
}

// TestStepsSurviveSnapshot takes a snapshot while a purge and a staged
// copy are half done: the restored store carries both and, given the same
// entries, ends in the same state as the store it came from.
func TestStepsSurviveSnapshot(t *testing.T) {
	const step = 4
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.bigTree("/t", 3, 4)
		e.bigTree("/gone", 3, 3)
		r := e.ok(Command{Op: OpCopy, Path: "/t", Dest: "/c", Depth: DepthInfinity, Step: step})
		e.ok(Command{Op: OpDelete, Path: "/gone", Step: step})
		e.ok(Command{Op: OpCopyStep, Job: r.Job, Step: step})
		e.ok(Command{Op: OpPurge, Step: step})

		var snap bytes.Buffer
		if _, err := e.f.WriteSnapshot(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		o := newEnv(t, open(t))
		if _, err := o.f.RestoreFrom(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		o.index = e.index
		if d := diffLines(e.dump(), o.dump()); d != "" {
			t.Fatalf("restored store differs: %s", d)
		}
		for _, x := range []*env{e, o} {
			x.steps(Command{Op: OpCopyStep, Job: r.Job, Step: step}, step)
			x.steps(Command{Op: OpPurge, Step: step}, step)
		}
		if d := diffLines(e.dump(), o.dump()); d != "" {
			t.Fatalf("after the same steps the restored store differs: %s", d)
		}
		if got, want := o.tree("/c"), o.tree("/t"); got != want {
			t.Fatalf("the copy:\n%s\nthe source:\n%s", got, want)
		}
		o.gone("/gone")
	})
}

// TestStagedCopyOfATreeBeingReplaced refuses (423) a staged COPY whose
// source is, or holds, the destination of a staged copy in progress: that
// tree changes between the steps and the copy would mix old and new. A
// copy of a frozen source is fine: nothing changes there.
func TestStagedCopyOfATreeBeingReplaced(t *testing.T) {
	const step = 4
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.bigTree("/t", 2, 4)
		e.mkcol("/x")
		e.bigTree("/x/b", 2, 4)
		r := e.ok(Command{Op: OpCopy, Path: "/t", Dest: "/x/b", Depth: DepthInfinity, Overwrite: true, Step: step})
		if r.Job == "" {
			t.Fatal("the copy was not staged")
		}
		for _, src := range []string{"/x/b", "/x/b/d00", "/x"} {
			res := e.code(Command{Op: OpCopy, Path: src, Dest: "/y", Depth: DepthInfinity, Step: step}, Locked)
			if res.LockedPath != "/x/b" {
				t.Fatalf("COPY %s: locked path %q", src, res.LockedPath)
			}
		}
		r2 := e.ok(Command{Op: OpCopy, Path: "/t", Dest: "/z", Depth: DepthInfinity, Step: step})
		if r2.Job == "" {
			t.Fatal("the second copy was not staged")
		}
		e.steps(Command{Op: OpCopyStep, Job: r.Job, Step: step}, step)
		e.steps(Command{Op: OpCopyStep, Job: r2.Job, Step: step}, step)
		if got, want := e.tree("/z"), e.tree("/t"); got != want {
			t.Fatalf("the copy of a frozen source:\n%s\nthe source:\n%s", got, want)
		}
		e.ok(Command{Op: OpCopy, Path: "/x", Dest: "/y", Depth: DepthInfinity, Step: step})
	})
}
