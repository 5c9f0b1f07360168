package fsm

import (
	"slices"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

const (
	hA = "aaaa000000000000000000000000000000000000000000000000000000000000"
	hB = "bbbb000000000000000000000000000000000000000000000000000000000000"
	hC = "cccc000000000000000000000000000000000000000000000000000000000000"
)

var pName = metastore.PropName{Space: "urn:x", Local: "color"}

func TestInit(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		if root := e.mustStat("/"); root.ID != metastore.RootID || !root.IsDir() || root.Created != 0 {
			t.Fatalf("synthesized root = %+v", root)
		}
		r := e.ok(Command{Op: OpInit})
		if !r.Created || r.Inode.Created != T(1) || r.Inode.Modified != T(1) {
			t.Fatalf("init result %+v", r)
		}
		r = e.ok(Command{Op: OpInit})
		if r.Created || e.mustStat("/").Created != T(1) || len(e.last.Ops) != 0 {
			t.Fatalf("second init changed the root: %+v, %d ops", r, len(e.last.Ops))
		}
	})
}

func TestPut(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		fixture := func(t *testing.T) *env {
			e := newEnv(t, open(t))
			e.init()
			e.mkcol("/dir")
			e.put("/file", hA)
			return e
		}
		etagA := ETag(metastore.Inode{Kind: metastore.KindFile, Hash: hA})
		failures := []struct {
			name string
			cmd  Command
			want Code
		}{
			{"parent missing", Command{Path: "/nope/x"}, Conflict},
			{"parent is a file", Command{Path: "/file/x"}, Conflict},
			{"path is a collection", Command{Path: "/dir"}, NotAllowed},
			{"root", Command{Path: "/"}, NotAllowed},
			{"If-None-Match * on existing", Command{Path: "/file", IfNoneMatch: "*"}, PreconditionFailed},
			{"If-None-Match etag matches", Command{Path: "/file", IfNoneMatch: `"x", ` + etagA}, PreconditionFailed},
			{"If-None-Match weak etag matches", Command{Path: "/file", IfNoneMatch: "W/" + etagA}, PreconditionFailed},
			{"If-Match * on missing", Command{Path: "/new", IfMatch: "*"}, PreconditionFailed},
			{"If-Match etag differs", Command{Path: "/file", IfMatch: `"` + hB + `"`}, PreconditionFailed},
			{"If-Match weak never matches", Command{Path: "/file", IfMatch: "W/" + etagA}, PreconditionFailed},
			{"If-Match etag on missing", Command{Path: "/new", IfMatch: etagA}, PreconditionFailed},
			{"no hash", Command{Path: "/new", Hash: "-"}, Invalid},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				e := fixture(t)
				before := e.dumpState()
				c := tc.cmd
				c.Op = OpPut
				switch c.Hash {
				case "":
					c.Hash = hB
				case "-":
					c.Hash = ""
				}
				e.code(c, tc.want)
				if d := diffLines(before, e.dumpState()); d != "" {
					t.Fatalf("refused put changed state: %s", d)
				}
			})
		}
		t.Run("create", func(t *testing.T) {
			e := fixture(t)
			r := e.ok(Command{Op: OpPut, Path: "/dir/new", Hash: hB, Size: 7, ContentType: "text/plain", IfNoneMatch: "*"})
			if !r.Created || r.Inode.Hash != hB || r.Inode.Size != 7 || r.Inode.ContentType != "text/plain" ||
				r.Inode.Created != T(e.index) || r.Inode.Modified != T(e.index) {
				t.Fatalf("result %+v", r)
			}
			if r.Inode.ID != metastore.ID(e.index<<20) {
				t.Fatalf("new ID %d, want index<<20 = %d", r.Inode.ID, e.index<<20)
			}
			if got := e.mustStat("/dir/new"); got != r.Inode {
				t.Fatalf("stored %+v, result %+v", got, r.Inode)
			}
			if d := e.mustStat("/dir"); d.Modified != T(e.index) {
				t.Fatalf("parent Modified %d, want %d", d.Modified, T(e.index))
			}
			e.wantRefs(hB, 1)
		})
		t.Run("create in uninitialised root", func(t *testing.T) {
			e := newEnv(t, open(t))
			e.put("/x", hA)
			if root := e.mustStat("/"); root.Modified != T(1) || !root.IsDir() {
				t.Fatalf("root %+v", root)
			}
		})
		t.Run("overwrite", func(t *testing.T) {
			e := fixture(t)
			old := e.mustStat("/file")
			e.ok(Command{Op: OpPropPatch, Path: "/file", Patches: []PropPatch{{Name: pName, Value: "red"}}})
			rootMod := e.mustStat("/").Modified
			r := e.ok(Command{Op: OpPut, Path: "/file", Hash: hB, Size: 3, ContentType: "a/b", IfMatch: `"zz", ` + ETag(old)})
			if r.Created {
				t.Fatal("overwrite reported Created")
			}
			in := e.mustStat("/file")
			if in.ID != old.ID || in.Created != old.Created || in.Modified != T(e.index) || in.Hash != hB || in.Size != 3 || in.ContentType != "a/b" {
				t.Fatalf("overwritten inode %+v (was %+v)", in, old)
			}
			if e.props(in.ID)[pName] != "red" {
				t.Fatal("overwrite lost dead properties")
			}
			if e.mustStat("/").Modified != rootMod {
				t.Fatal("overwrite changed the parent's Modified")
			}
			e.wantRefs(hA, 0)
			e.wantRefs(hB, 1)
			if !slices.Equal(e.released, []string{hA}) {
				t.Fatalf("released %v, want [%s]", e.released, hA)
			}
		})
		t.Run("overwrite same content", func(t *testing.T) {
			e := fixture(t)
			e.ok(Command{Op: OpPut, Path: "/file", Hash: hA, Size: 1})
			e.wantRefs(hA, 1)
			for _, op := range e.last.Ops {
				if op.Kind == metastore.OpAddRef {
					t.Fatalf("same-hash overwrite changed refs: %+v", op)
				}
			}
			if len(e.released) != 0 {
				t.Fatalf("released %v", e.released)
			}
		})
		t.Run("shared content", func(t *testing.T) {
			e := fixture(t)
			e.put("/dir/a", hA)
			e.wantRefs(hA, 2)
			e.put("/file", hC)
			e.wantRefs(hA, 1)
			if len(e.released) != 0 {
				t.Fatalf("released %v while still referenced", e.released)
			}
		})
	})
}

func TestRefusedEntryAdvancesIndex(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.code(Command{Op: OpDelete, Path: "/missing"}, NotFound)
		e.code(Command{Op: "bogus", Path: "/"}, Invalid)
		e.index++
		res, err := e.f.ApplyEntry(e.ctx, e.index, []byte("{not json"))
		if err != nil || res.Code != Invalid {
			t.Fatalf("undecodable entry: %+v, %v", res, err)
		}
		if i, _ := e.s.AppliedIndex(e.ctx); i != 3 {
			t.Fatalf("applied index %d, want 3", i)
		}
	})
}

func TestMkcol(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.mkcol("/a")
		e.put("/f", hA)
		r := e.mkcol("/a/b")
		if !r.Created || !r.Inode.IsDir() || r.Inode.Created != T(e.index) {
			t.Fatalf("mkcol result %+v", r)
		}
		if e.mustStat("/a").Modified != T(e.index) {
			t.Fatal("parent Modified not bumped")
		}
		for _, tc := range []struct {
			path string
			want Code
		}{
			{"/a", NotAllowed},
			{"/f", NotAllowed},
			{"/", NotAllowed},
			{"/x/y", Conflict},
			{"/f/y", Conflict},
		} {
			e.code(Command{Op: OpMkcol, Path: tc.path}, tc.want)
		}
	})
}

func TestDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.mkcol("/a")
		e.mkcol("/a/b")
		e.put("/a/b/f1", hA)
		e.put("/a/f2", hA)
		e.put("/a/f3", hB)
		e.put("/keep", hB)
		f1 := e.mustStat("/a/b/f1")
		b := e.mustStat("/a/b")
		e.ok(Command{Op: OpPropPatch, Path: "/a/b/f1", Patches: []PropPatch{{Name: pName, Value: "x"}}})
		e.ok(lockCmd("/a/b", "tok-b", false, false, 0, ""))
		e.ok(lockCmd("/keep", "tok-keep", false, false, 0))

		e.code(Command{Op: OpDelete, Path: "/"}, Forbidden)
		e.code(Command{Op: OpDelete, Path: "/nope"}, NotFound)
		e.code(Command{Op: OpDelete, Path: "/nope/x"}, NotFound)
		r := e.code(Command{Op: OpDelete, Path: "/a"}, Locked)
		if r.LockedPath != "/a/b" {
			t.Fatalf("LockedPath %q, want /a/b", r.LockedPath)
		}

		e.ok(Command{Op: OpDelete, Path: "/a", Tokens: []string{"tok-b"}})
		for _, p := range []string{"/a", "/a/b", "/a/b/f1", "/a/f2", "/a/f3"} {
			e.gone(p)
		}
		e.mustStat("/keep")
		if _, err := e.s.Get(e.ctx, f1.ID); err == nil {
			t.Fatal("inode of a deleted file still stored")
		}
		if ents, _ := e.s.List(e.ctx, b.ID); len(ents) != 0 {
			t.Fatalf("deleted collection still has entries %v", ents)
		}
		if len(e.props(f1.ID)) != 0 {
			t.Fatal("dead properties of a deleted file survive")
		}
		e.wantRefs(hA, 0)
		e.wantRefs(hB, 1)
		if !slices.Equal(e.released, []string{hA}) {
			t.Fatalf("released %v", e.released)
		}
		if ls := e.locks(); len(ls) != 1 || ls[0].Token != "tok-keep" {
			t.Fatalf("locks after delete: %+v", ls)
		}
		if e.mustStat("/").Modified != T(e.index) {
			t.Fatal("parent Modified not bumped")
		}
	})
}

func TestCopy(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		fixture := func(t *testing.T) *env {
			e := newEnv(t, open(t))
			e.init()
			e.mkcol("/src")
			e.mkcol("/src/sub")
			e.put("/src/f", hA)
			e.put("/src/sub/g", hB)
			e.ok(Command{Op: OpPropPatch, Path: "/src", Patches: []PropPatch{{Name: pName, Value: "dir"}}})
			e.ok(Command{Op: OpPropPatch, Path: "/src/f", Patches: []PropPatch{{Name: pName, Value: "file"}}})
			e.mkcol("/other")
			e.put("/other/old", hC)
			e.put("/file", hC)
			return e
		}
		failures := []struct {
			name string
			cmd  Command
			want Code
		}{
			{"root source", Command{Path: "/", Dest: "/x"}, Forbidden},
			{"root destination", Command{Path: "/src", Dest: "/", Overwrite: true}, Forbidden},
			{"source missing", Command{Path: "/nope", Dest: "/x"}, NotFound},
			{"same path", Command{Path: "/src", Dest: "/src", Overwrite: true}, Forbidden},
			{"destination below source", Command{Path: "/src", Dest: "/src/sub/x"}, Forbidden},
			{"destination parent missing", Command{Path: "/src", Dest: "/nope/x"}, Conflict},
			{"destination parent is a file", Command{Path: "/src", Dest: "/file/x"}, Conflict},
			{"exists, Overwrite F", Command{Path: "/src", Dest: "/other"}, PreconditionFailed},
			{"destination contains source", Command{Path: "/src/sub", Dest: "/src", Overwrite: true}, Forbidden},
			{"depth 1", Command{Path: "/src", Dest: "/x", Depth: 1}, Invalid},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				e := fixture(t)
				c := tc.cmd
				c.Op = OpCopy
				if c.Depth == 0 {
					c.Depth = DepthInfinity
				}
				e.code(c, tc.want)
			})
		}
		t.Run("depth 0 of a collection may target its own member", func(t *testing.T) {
			e := fixture(t)
			e.ok(Command{Op: OpCopy, Path: "/src", Dest: "/src/copy", Depth: 0})
		})
		t.Run("tree", func(t *testing.T) {
			e := fixture(t)
			r := e.ok(Command{Op: OpCopy, Path: "/src", Dest: "/dst", Depth: DepthInfinity})
			if !r.Created || !r.Inode.IsDir() {
				t.Fatalf("result %+v", r)
			}
			for _, p := range []string{"/dst", "/dst/f", "/dst/sub", "/dst/sub/g"} {
				in := e.mustStat(p)
				src := e.mustStat("/src" + p[len("/dst"):])
				if in.ID == src.ID || in.ID>>20 != metastore.ID(e.index) {
					t.Fatalf("%s: ID %d not new (source %d)", p, in.ID, src.ID)
				}
				if in.Created != T(e.index) || in.Modified != T(e.index) || in.Hash != src.Hash || in.Kind != src.Kind {
					t.Fatalf("%s copied as %+v from %+v", p, in, src)
				}
			}
			if e.props(e.mustStat("/dst").ID)[pName] != "dir" || e.props(e.mustStat("/dst/f").ID)[pName] != "file" {
				t.Fatal("dead properties not copied")
			}
			e.wantRefs(hA, 2)
			e.wantRefs(hB, 2)
			if e.mustStat("/").Modified != T(e.index) {
				t.Fatal("destination parent Modified not bumped")
			}
		})
		t.Run("depth 0", func(t *testing.T) {
			e := fixture(t)
			e.ok(Command{Op: OpCopy, Path: "/src", Dest: "/dst", Depth: 0})
			d := e.mustStat("/dst")
			if ents, _ := e.s.List(e.ctx, d.ID); len(ents) != 0 {
				t.Fatalf("depth 0 copied members %v", ents)
			}
			if e.props(d.ID)[pName] != "dir" {
				t.Fatal("depth 0 did not copy properties")
			}
		})
		t.Run("overwrite", func(t *testing.T) {
			e := fixture(t)
			e.ok(lockCmd("/other/old", "tok-old", false, false, 0))
			old := e.mustStat("/other/old")
			e.code(Command{Op: OpCopy, Path: "/src/f", Dest: "/other", Overwrite: true}, Locked)
			r := e.ok(Command{Op: OpCopy, Path: "/src/f", Dest: "/other", Overwrite: true, Tokens: []string{"tok-old"}})
			if r.Created {
				t.Fatal("overwrite reported Created")
			}
			if in := e.mustStat("/other"); in.IsDir() || in.Hash != hA {
				t.Fatalf("destination now %+v", in)
			}
			if _, err := e.s.Get(e.ctx, old.ID); err == nil {
				t.Fatal("replaced subtree's inode survives")
			}
			e.wantRefs(hC, 1) // /file only
			e.wantRefs(hA, 2)
			if len(e.locks()) != 0 {
				t.Fatalf("locks in the replaced subtree survive: %+v", e.locks())
			}
		})
		t.Run("file", func(t *testing.T) {
			e := fixture(t)
			r := e.ok(Command{Op: OpCopy, Path: "/src/f", Dest: "/other/f2"})
			if !r.Created || r.Inode.Hash != hA || r.Inode.Size != e.mustStat("/src/f").Size {
				t.Fatalf("result %+v", r)
			}
			e.wantRefs(hA, 2)
		})
	})
}

func TestMove(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		fixture := func(t *testing.T) *env {
			e := newEnv(t, open(t))
			e.init()
			e.mkcol("/src")
			e.mkcol("/src/sub")
			e.put("/src/sub/g", hB)
			e.mkcol("/dst")
			e.put("/dst/old", hC)
			e.put("/file", hA)
			return e
		}
		for _, tc := range []struct {
			name string
			cmd  Command
			want Code
		}{
			{"root source", Command{Path: "/", Dest: "/x"}, Forbidden},
			{"root destination", Command{Path: "/src", Dest: "/", Overwrite: true}, Forbidden},
			{"source missing", Command{Path: "/nope", Dest: "/x"}, NotFound},
			{"same path", Command{Path: "/src", Dest: "/src"}, Forbidden},
			{"into itself", Command{Path: "/src", Dest: "/src/sub/x"}, Forbidden},
			{"destination parent missing", Command{Path: "/src", Dest: "/nope/x"}, Conflict},
			{"below a file", Command{Path: "/file", Dest: "/file/x"}, Conflict},
			{"exists, Overwrite F", Command{Path: "/src", Dest: "/dst/old"}, PreconditionFailed},
			{"destination contains source", Command{Path: "/src/sub", Dest: "/src", Overwrite: true}, Forbidden},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := fixture(t)
				c := tc.cmd
				c.Op = OpMove
				e.code(c, tc.want)
			})
		}
		t.Run("rename", func(t *testing.T) {
			e := fixture(t)
			src := e.mustStat("/src")
			g := e.mustStat("/src/sub/g")
			e.ok(lockCmd("/src/sub", "tok-sub", false, false, 0))
			e.ok(lockCmd("/", "tok-root", false, true, 0)) // depth 0 on the root: membership
			e.code(Command{Op: OpMove, Path: "/src", Dest: "/moved"}, Locked)
			e.code(Command{Op: OpMove, Path: "/src", Dest: "/moved", Tokens: []string{"tok-root"}}, Locked)
			r := e.ok(Command{Op: OpMove, Path: "/src", Dest: "/moved", Tokens: []string{"tok-root", "tok-sub"}})
			if !r.Created || r.Inode.ID != src.ID {
				t.Fatalf("result %+v", r)
			}
			e.gone("/src")
			if in := e.mustStat("/moved"); in != src {
				t.Fatalf("moved inode %+v, was %+v", in, src)
			}
			if in := e.mustStat("/moved/sub/g"); in != g {
				t.Fatalf("descendant changed: %+v, was %+v", in, g)
			}
			if ls := e.locks(); len(ls) != 1 || ls[0].Token != "tok-root" {
				t.Fatalf("locks after move: %+v (source locks must go)", ls)
			}
			if e.mustStat("/").Modified != T(e.index) {
				t.Fatal("parent Modified not bumped")
			}
		})
		t.Run("overwrite", func(t *testing.T) {
			e := fixture(t)
			src := e.mustStat("/src")
			r := e.ok(Command{Op: OpMove, Path: "/src", Dest: "/dst", Overwrite: true})
			if r.Created {
				t.Fatal("overwrite reported Created")
			}
			if in := e.mustStat("/dst"); in.ID != src.ID {
				t.Fatalf("/dst is %+v, want the moved inode %d", in, src.ID)
			}
			e.mustStat("/dst/sub/g")
			e.gone("/dst/old")
			e.wantRefs(hC, 0)
			e.wantRefs(hB, 1)
			if !slices.Equal(e.released, []string{hC}) {
				t.Fatalf("released %v", e.released)
			}
		})
		t.Run("across collections", func(t *testing.T) {
			e := fixture(t)
			e.ok(Command{Op: OpMove, Path: "/src/sub/g", Dest: "/dst/g"})
			if e.mustStat("/src/sub").Modified != T(e.index) || e.mustStat("/dst").Modified != T(e.index) {
				t.Fatal("both parents' Modified must be bumped")
			}
			e.wantRefs(hB, 1)
		})
	})
}

// TestMoveLargeTree checks the O(1) move: a collection with 100 000
// descendants moves with a batch of a few ops and its descendants are not
// touched.
func TestMoveLargeTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100 000 inode tree")
	}
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		s := open(t)
		e := newEnv(t, s)
		e.init()
		e.mkcol("/big")
		e.mkcol("/to")
		big := e.mustStat("/big")
		// Build the tree straight through the store, 20 batches of 5000
		// descendants, with IDs that cannot collide with entry-derived ones.
		const dirs, files = 100, 999 // 100 + 100*999 = 100 000 descendants
		next := metastore.ID(1 << 62)
		for d := 0; d < dirs; d++ {
			if d%5 == 0 {
				if d > 0 {
					e.commitRaw()
				}
				e.raw = &metastore.Batch{}
			}
			dir := metastore.Inode{ID: next, Kind: metastore.KindDir, Created: 1, Modified: 1}
			next++
			e.raw.PutInode(dir).Link(big.ID, "d"+itoa(d), dir.ID)
			for f := 0; f < files; f++ {
				in := metastore.Inode{ID: next, Kind: metastore.KindFile, Hash: hA, Size: 1, Created: 1, Modified: 1}
				next++
				e.raw.PutInode(in).Link(dir.ID, "f"+itoa(f), in.ID)
			}
			e.raw.AddRef(hA, files)
		}
		e.commitRaw()

		e.ok(Command{Op: OpMove, Path: "/big", Dest: "/to/big"})
		if n := len(e.last.Ops); n > 6 {
			t.Fatalf("move of a 100 000 descendant tree committed %d ops: %+v", n, e.last.Ops)
		}
		for _, op := range e.last.Ops {
			if op.Kind == metastore.OpPutInode && op.Inode.ID >= 1<<62 {
				t.Fatalf("move touched descendant %d", op.Inode.ID)
			}
		}
		if in := e.mustStat("/to/big/d99/f998"); in.ID != next-1 {
			t.Fatalf("last descendant %+v, want ID %d", in, next-1)
		}
		e.gone("/big")
		e.wantRefs(hA, dirs*files)
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestPropPatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.put("/f", hA)
		id := e.mustStat("/f").ID
		other := metastore.PropName{Space: "urn:y", Local: "n"}
		e.ok(Command{Op: OpPropPatch, Path: "/f", Patches: []PropPatch{
			{Name: pName, Value: "<b>red</b>"}, {Name: other, Value: "1"}, {Name: other, Remove: true},
		}})
		if p := e.props(id); len(p) != 1 || p[pName] != "<b>red</b>" {
			t.Fatalf("props %v", p)
		}
		e.code(Command{Op: OpPropPatch, Path: "/nope", Patches: []PropPatch{{Name: pName, Value: "x"}}}, NotFound)
		// All or nothing: the DAV: patch refuses the whole entry.
		e.code(Command{Op: OpPropPatch, Path: "/f", Patches: []PropPatch{
			{Name: pName, Remove: true}, {Name: metastore.PropName{Space: "DAV:", Local: "getetag"}, Value: "x"},
		}}, Forbidden)
		if e.props(id)[pName] != "<b>red</b>" {
			t.Fatal("refused proppatch changed a property")
		}
		e.ok(lockCmd("/f", "tok", false, false, 0))
		r := e.code(Command{Op: OpPropPatch, Path: "/f", Patches: []PropPatch{{Name: pName, Value: "blue"}}}, Locked)
		if r.LockedPath != "/f" {
			t.Fatalf("LockedPath %q", r.LockedPath)
		}
		e.ok(Command{Op: OpPropPatch, Path: "/f", Tokens: []string{"tok"}, Patches: []PropPatch{{Name: pName, Value: "blue"}}})
		if e.props(id)[pName] != "blue" {
			t.Fatal("proppatch with token did not apply")
		}
		// Properties on a root that was never initialised survive a snapshot.
		e2 := newEnv(t, open(t))
		e2.ok(Command{Op: OpPropPatch, Path: "/", Patches: []PropPatch{{Name: pName, Value: "root"}}})
		if _, err := e2.s.Get(e2.ctx, metastore.RootID); err != nil {
			t.Fatalf("root not stored: %v", err)
		}
	})
}

func TestMembers(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		n1 := metastore.Member{ID: "n1", URL: "http://n1:8080", RaftAddr: "n1:7000"}
		n2 := metastore.Member{ID: "n2", URL: "http://n2:8080", RaftAddr: "n2:7000"}
		e.ok(Command{Op: OpMember, Member: &n1})
		e.ok(Command{Op: OpMember, Member: &n2})
		n1b := n1
		n1b.URL = "http://n1.new:8080"
		e.ok(Command{Op: OpMember, Member: &n1b}) // rejoining with a new address replaces it
		e.ok(Command{Op: OpRemoveMember, Member: &metastore.Member{ID: "n2"}})
		e.code(Command{Op: OpMember}, Invalid)
		e.code(Command{Op: OpRemoveMember, Member: &metastore.Member{}}, Invalid)
		got, err := e.s.Members(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != n1b {
			t.Fatalf("members = %+v, want only %+v", got, n1b)
		}
	})
}
