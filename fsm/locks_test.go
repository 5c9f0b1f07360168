package fsm

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

// TestLockConflictMatrix applies an existing lock and then a second one for
// every combination of scope (exclusive/shared), depth (0/infinity) and
// relation of the roots (same, second below first, second above first).
func TestLockConflictMatrix(t *testing.T) {
	type kind struct {
		shared, infinite bool
	}
	kinds := []kind{{false, false}, {false, true}, {true, false}, {true, true}}
	name := func(k kind) string {
		s := "exclusive"
		if k.shared {
			s = "shared"
		}
		if k.infinite {
			return s + "/infinity"
		}
		return s + "/0"
	}
	relations := []struct {
		name        string
		first, next string
	}{
		{"same", "/a/b", "/a/b"},
		{"descendant", "/a", "/a/b"},
		{"ancestor", "/a/b", "/a"},
		{"sibling", "/a/b", "/a/c"},
	}
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		for _, rel := range relations {
			for _, k1 := range kinds {
				for _, k2 := range kinds {
					t.Run(fmt.Sprintf("%s %s then %s", rel.name, name(k1), name(k2)), func(t *testing.T) {
						var overlap bool
						switch rel.name {
						case "same":
							overlap = true
						case "descendant": // the first lock is above the second
							overlap = k1.infinite
						case "ancestor": // the second lock is above the first
							overlap = k2.infinite
						}
						wantConflict := overlap && !(k1.shared && k2.shared)

						e := newEnv(t, open(t))
						e.init()
						e.mkcol("/a")
						e.mkcol("/a/b")
						e.mkcol("/a/c")
						e.ok(lockCmd(rel.first, "t1", k1.infinite, k1.shared, 0))
						want := OK
						if wantConflict {
							want = Locked
						}
						r := e.code(lockCmd(rel.next, "t2", k2.infinite, k2.shared, 0), want)
						if wantConflict && r.LockedPath != rel.first {
							t.Fatalf("LockedPath %q, want %q", r.LockedPath, rel.first)
						}
						if !wantConflict && (r.Lock.Token != "t2" || len(e.locks()) != 2) {
							t.Fatalf("lock not granted: %+v, locks %+v", r, e.locks())
						}
					})
				}
			}
		}
	})
}

func TestLockUnmapped(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.mkcol("/d")
		e.put("/f", hA)
		e.code(lockCmd("/nope/x", "t0", false, false, 0), Conflict)
		e.code(lockCmd("/f/x", "t0", false, false, 0), Conflict)
		e.code(Command{Op: OpLock, Path: "/d"}, Invalid)
		e.code(Command{Op: OpLock, Path: "/d", Lock: &metastore.Lock{Token: "t", Root: "/f"}}, Invalid)

		r := e.ok(lockCmd("/d/new", "t1", false, false, T(100)))
		if !r.Created || r.Inode.Hash != EmptyHash || r.Inode.Size != 0 || r.Inode.Kind != metastore.KindFile {
			t.Fatalf("lock-null result %+v", r)
		}
		if r.Lock.Root != "/d/new" || r.Lock.Expires != T(100) || r.Lock.Owner != "<href>o</href>" {
			t.Fatalf("stored lock %+v", r.Lock)
		}
		e.wantRefs(EmptyHash, 1)
		if e.mustStat("/d").Modified != T(e.index) {
			t.Fatal("parent Modified not bumped")
		}
		e.code(lockCmd("/d/new", "t1", false, true, 0), Invalid) // token reuse

		// The parent's depth-0 lock protects its membership.
		e.ok(lockCmd("/d", "tp", false, false, 0))
		r = e.code(lockCmd("/d/other", "t2", false, false, 0), Locked)
		if r.LockedPath != "/d" {
			t.Fatalf("LockedPath %q", r.LockedPath)
		}
		e.ok(lockCmd("/d/other", "t2", false, false, 0, "tp"))
		// Locking an existing resource creates nothing.
		e.ok(lockCmd("/f", "t3", false, false, 0))
		if len(e.last.Ops) != 1 || e.last.Ops[0].Kind != metastore.OpPutLock {
			t.Fatalf("lock on existing file committed %+v", e.last.Ops)
		}
	})
}

// TestLockEnforcement checks the Locked outcome of each mutating op against
// the paths it must protect.
func TestLockEnforcement(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		fixture := func(t *testing.T) *env {
			e := newEnv(t, open(t))
			e.init()
			e.mkcol("/open")
			e.mkcol("/d0") // depth-0 exclusive lock: membership only
			e.put("/d0/f", hA)
			e.mkcol("/inf") // depth-infinity exclusive lock
			e.put("/inf/f", hA)
			e.put("/file", hA) // depth-0 exclusive lock on a file
			e.put("/shared", hA)
			e.ok(lockCmd("/d0", "L-d0", false, false, 0))
			e.ok(lockCmd("/inf", "L-inf", true, false, 0))
			e.ok(lockCmd("/file", "L-file", false, false, 0))
			e.ok(lockCmd("/shared", "S1", false, true, 0))
			e.ok(lockCmd("/shared", "S2", false, true, 0))
			e.ok(lockCmd("/open", "L-old", true, false, T(e.index))) // expires now
			return e
		}
		put := func(p string) Command { return Command{Op: OpPut, Path: p, Hash: hB} }
		cases := []struct {
			name   string
			cmd    Command
			locked string // LockedPath expected without tokens; "" = allowed
			tokens []string
		}{
			{"put locked file", put("/file"), "/file", []string{"L-file"}},
			{"put existing member of depth-0 collection", put("/d0/f"), "", nil},
			{"put new member of depth-0 collection", put("/d0/g"), "/d0", []string{"L-d0"}},
			{"put below infinity lock", put("/inf/f"), "/inf", []string{"L-inf"}},
			{"put shared-locked file", put("/shared"), "/shared", []string{"S2"}},
			{"put below expired lock", put("/open/x"), "", nil},
			{"mkcol in depth-0 collection", Command{Op: OpMkcol, Path: "/d0/c"}, "/d0", []string{"L-d0"}},
			{"delete member of depth-0 collection", Command{Op: OpDelete, Path: "/d0/f"}, "/d0", []string{"L-d0"}},
			{"delete locked file", Command{Op: OpDelete, Path: "/file"}, "/file", []string{"L-file"}},
			{"delete root of infinity lock", Command{Op: OpDelete, Path: "/inf"}, "/inf", []string{"L-inf"}},
			{"proppatch locked file", Command{Op: OpPropPatch, Path: "/file", Patches: []PropPatch{{Name: pName, Value: "v"}}}, "/file", []string{"L-file"}},
			{"proppatch locked collection", Command{Op: OpPropPatch, Path: "/d0", Patches: []PropPatch{{Name: pName, Value: "v"}}}, "/d0", []string{"L-d0"}},
			{"copy from locked file", Command{Op: OpCopy, Path: "/file", Dest: "/open/c", Depth: DepthInfinity}, "", nil},
			{"copy into depth-0 collection", Command{Op: OpCopy, Path: "/open", Dest: "/d0/c", Depth: DepthInfinity}, "/d0", []string{"L-d0"}},
			{"copy over locked file", Command{Op: OpCopy, Path: "/open", Dest: "/file", Depth: DepthInfinity, Overwrite: true}, "/file", []string{"L-file"}},
			{"move locked file", Command{Op: OpMove, Path: "/file", Dest: "/open/m"}, "/file", []string{"L-file"}},
			{"move out of depth-0 collection", Command{Op: OpMove, Path: "/d0/f", Dest: "/open/m"}, "/d0", []string{"L-d0"}},
			{"move into infinity lock", Command{Op: OpMove, Path: "/open", Dest: "/inf/m"}, "/inf", []string{"L-inf"}},
			{"move collection holding a lock", Command{Op: OpMove, Path: "/inf", Dest: "/m"}, "/inf", []string{"L-inf"}},
			{"move over locked file", Command{Op: OpMove, Path: "/open", Dest: "/file", Overwrite: true}, "/file", []string{"L-file"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := fixture(t)
				if tc.locked == "" {
					e.ok(tc.cmd)
					return
				}
				r := e.code(tc.cmd, Locked)
				if r.LockedPath != tc.locked {
					t.Fatalf("LockedPath %q, want %q", r.LockedPath, tc.locked)
				}
				c := tc.cmd
				c.Tokens = append([]string{"unrelated"}, tc.tokens...)
				e.ok(c)
			})
		}
	})
}

func TestLockLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		e := newEnv(t, open(t))
		e.init()
		e.mkcol("/d")
		e.put("/d/f", hA)
		exp := T(e.index + 10) // expires at the time of entry index+10
		e.ok(lockCmd("/d", "L", true, false, exp))

		// Refresh.
		e.code(Command{Op: OpRefresh, Token: "nope", Expires: exp}, NotFound)
		e.code(Command{Op: OpRefresh}, Invalid)
		exp = T(e.index + 20)
		r := e.ok(Command{Op: OpRefresh, Token: "L", Expires: exp, Timeout: 60})
		if r.Lock.Expires != exp || r.Lock.Timeout != 60 || r.Lock.Root != "/d" || !r.Lock.Infinite {
			t.Fatalf("refreshed lock %+v", r.Lock)
		}
		if ls := e.locks(); len(ls) != 1 || ls[0] != r.Lock {
			t.Fatalf("stored %+v, result %+v", ls, r.Lock)
		}

		// Unlock must name a path the lock covers.
		e.code(Command{Op: OpUnlock, Path: "/", Token: "L"}, Conflict)
		e.code(Command{Op: OpUnlock, Path: "/d", Token: "nope"}, NotFound)

		// The lock protects until its expiry time, and not from then on.
		for e.index+1 < uint64(exp-T(0))/1000 {
			e.code(Command{Op: OpPut, Path: "/d/f", Hash: hB}, Locked)
		}
		e.ok(Command{Op: OpPut, Path: "/d/f", Hash: hB}) // Time == Expires
		e.code(Command{Op: OpRefresh, Token: "L", Expires: 0}, NotFound)
		e.code(Command{Op: OpUnlock, Path: "/d/f", Token: "L"}, NotFound)

		// Expire removes exactly the expired locks (the new lock already
		// dropped L, which had expired).
		e.ok(lockCmd("/d/f", "keep", false, false, 0))
		e.ok(lockCmd("/d", "later", false, true, T(e.index+100)))
		e.ok(lockCmd("/d", "soon", false, true, T(e.index+2)))
		if len(e.locks()) != 3 {
			t.Fatalf("locks %+v", e.locks())
		}
		e.index += 2
		e.ok(Command{Op: OpExpire})
		if ls := e.locks(); len(ls) != 2 || ls[0].Token != "keep" || ls[1].Token != "later" {
			t.Fatalf("after expire: %+v", ls)
		}
		// Unlock of a depth-0 lock from its root.
		e.ok(Command{Op: OpUnlock, Path: "/d/f", Token: "keep"})
		// A new lock drops expired ones first.
		e.ok(lockCmd("/x", "short", false, false, T(e.index+2)))
		e.index += 5
		e.ok(lockCmd("/d/f", "next", false, false, 0))
		for _, l := range e.locks() {
			if l.Token == "short" {
				t.Fatal("expired lock survived a new lock")
			}
		}
	})
}

func TestCheckLocks(t *testing.T) {
	locks := []metastore.Lock{
		{Token: "a", Root: "/a", Infinite: true},
		{Token: "b", Root: "/a/b/c"},
		{Token: "s1", Root: "/s", Shared: true},
		{Token: "s2", Root: "/s", Shared: true},
		{Token: "old", Root: "/old", Expires: 10},
		// Locks taken by authenticated users (RFC 4918 §6.4).
		{Token: "al", Root: "/al", Principal: "alice"},
		{Token: "al-inf", Root: "/tree", Infinite: true, Principal: "alice"},
		{Token: "bo-deep", Root: "/tree/x/y", Principal: "bob"},
		{Token: "sh-al", Root: "/sh", Shared: true, Principal: "alice"},
		{Token: "sh-bo", Root: "/sh", Shared: true, Principal: "bob"},
	}
	for _, tc := range []struct {
		need      []Protect
		principal string
		tokens    []string
		locked    string
	}{
		{[]Protect{{Path: "/x"}}, "", nil, ""},
		{[]Protect{{Path: "/a"}}, "", nil, "/a"},
		{[]Protect{{Path: "/a/b/c/d"}}, "", nil, "/a"},
		{[]Protect{{Path: "/a/b/c"}}, "", []string{"a"}, ""}, // any covering lock's token suffices
		{[]Protect{{Path: "/a/b/c"}}, "", []string{"b"}, ""},
		{[]Protect{{Path: "/a", Subtree: true}}, "", []string{"a"}, ""}, // a covers /a/b/c too
		{[]Protect{{Path: "/", Subtree: true}}, "", nil, "/a"},
		{[]Protect{{Path: "/a/b", Subtree: true}}, "", nil, "/a"},
		{[]Protect{{Path: "/s"}}, "", []string{"s2"}, ""},
		{[]Protect{{Path: "/s"}}, "", []string{"x"}, "/s"},
		{[]Protect{{Path: "/old"}}, "", nil, ""},
		{[]Protect{{Path: "/x"}, {Path: "/s"}}, "", nil, "/s"},
		// A lock without a principal serves whoever presents its token.
		{[]Protect{{Path: "/a"}}, "alice", []string{"a"}, ""},
		{[]Protect{{Path: "/s"}}, "bob", []string{"s1"}, ""},
		// A lock with one serves its principal only.
		{[]Protect{{Path: "/al"}}, "alice", []string{"al"}, ""},
		{[]Protect{{Path: "/al"}}, "bob", []string{"al"}, "/al"},
		{[]Protect{{Path: "/al"}}, "", []string{"al"}, "/al"},      // anonymous (the API opened since)
		{[]Protect{{Path: "/al"}}, "Alice", []string{"al"}, "/al"}, // names are exact
		{[]Protect{{Path: "/al"}}, "bob", nil, "/al"},
		{[]Protect{{Path: "/tree/f"}}, "alice", []string{"al-inf"}, ""},
		{[]Protect{{Path: "/tree/f"}}, "bob", []string{"al-inf"}, "/tree"},
		// A subtree: every lock below needs a token its principal submits.
		{[]Protect{{Path: "/tree", Subtree: true}}, "alice", []string{"al-inf"}, ""}, // al-inf covers /tree/x/y
		{[]Protect{{Path: "/tree", Subtree: true}}, "bob", []string{"bo-deep"}, "/tree"},
		{[]Protect{{Path: "/tree", Subtree: true}}, "bob", []string{"al-inf", "bo-deep"}, "/tree"},
		{[]Protect{{Path: "/tree/x/y"}}, "bob", []string{"bo-deep"}, ""},
		// Shared locks: each user submits their own token; another's does not count.
		{[]Protect{{Path: "/sh"}}, "bob", []string{"sh-bo"}, ""},
		{[]Protect{{Path: "/sh"}}, "bob", []string{"sh-al"}, "/sh"},
		{[]Protect{{Path: "/sh"}}, "carol", []string{"sh-al", "sh-bo"}, "/sh"},
		{[]Protect{{Path: "/sh"}}, "alice", []string{"sh-bo", "sh-al"}, ""},
	} {
		lp, ok := CheckLocks(locks, 10, tc.principal, tc.tokens, tc.need)
		if ok != (tc.locked == "") || lp != tc.locked {
			t.Errorf("CheckLocks(%+v, %q, %v) = %q, %v; want %q", tc.need, tc.principal, tc.tokens, lp, ok, tc.locked)
		}
	}
	// A subtree protection reaches locks rooted below it.
	ls := []metastore.Lock{{Token: "deep", Root: "/p/q/r"}}
	if lp, ok := CheckLocks(ls, 0, "", nil, []Protect{{Path: "/p", Subtree: true}}); ok || lp != "/p/q/r" {
		t.Errorf("subtree check missed a lock below: %q %v", lp, ok)
	}
	if _, ok := CheckLocks(ls, 0, "", nil, []Protect{{Path: "/p"}}); !ok {
		t.Error("non-subtree check blocked by a lock below")
	}
	if got := LocksCovering(locks, 10, "/a/b/c/x"); len(got) != 1 || got[0].Token != "a" {
		t.Errorf("LocksCovering = %+v", got)
	}
}

// TestLockPrincipal applies entries of two users against locks with and
// without a principal: the lock keeps the principal the entry gives it,
// writes, refreshes and unlocks under another user's token are refused at
// apply time, and a lock without one serves anyone.
func TestLockPrincipal(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
		fixture := func(t *testing.T) *env {
			e := newEnv(t, open(t))
			e.init()
			e.mkcol("/d")
			e.put("/d/f", hA)
			e.put("/g", hA)
			e.put("/h", hA)
			al := lockCmd("/d", "L-alice", true, false, 0)
			al.User, al.Lock.Principal = UserOf("alice"), "alice"
			e.ok(al)
			e.ok(lockCmd("/g", "L-anon", false, false, 0)) // no principal
			e.mkcol("/e")
			el := lockCmd("/e", "L-e", false, false, 0)
			el.User, el.Lock.Principal = UserOf("alice"), "alice"
			e.ok(el)
			return e
		}
		as := func(user string, c Command) Command { c.User = UserOf(user); return c }
		put := func(p string, tokens ...string) Command {
			return Command{Op: OpPut, Path: p, Hash: hB, Tokens: tokens}
		}
		cases := []struct {
			name string
			cmd  Command
			want Code
		}{
			{"owner writes with her token", as("alice", put("/d/f", "L-alice")), OK},
			{"another user writes with her token", as("bob", put("/d/f", "L-alice")), Locked},
			{"anonymous writes with her token", as("", put("/d/f", "L-alice")), Locked},
			// An entry without a user comes from a leader that did not
			// record principals: it applies as it did there.
			{"an older leader's entry writes with her token", put("/d/f", "L-alice"), OK},
			{"an older leader's entry writes without a token", put("/d/f"), Locked},
			{"another user creates below with her token", as("bob", put("/d/new", "L-alice")), Locked},
			{"another user deletes with her token", as("bob", Command{Op: OpDelete, Path: "/d", Tokens: []string{"L-alice"}}), Locked},
			{"another user moves with her token", as("bob", Command{Op: OpMove, Path: "/d/f", Dest: "/moved", Tokens: []string{"L-alice"}}), Locked},
			{"another user proppatches with her token", as("bob", Command{Op: OpPropPatch, Path: "/d", Tokens: []string{"L-alice"},
				Patches: []PropPatch{{Name: pName, Value: "v"}}}), Locked},
			{"anyone writes under a lock without principal", as("bob", put("/g", "L-anon")), OK},
			{"owner refreshes", as("alice", Command{Op: OpRefresh, Token: "L-alice", Expires: T(1000)}), OK},
			{"another user refreshes", as("bob", Command{Op: OpRefresh, Token: "L-alice", Expires: T(1000)}), Forbidden},
			{"anonymous refreshes", as("", Command{Op: OpRefresh, Token: "L-alice", Expires: T(1000)}), Forbidden},
			{"an older leader's entry refreshes", Command{Op: OpRefresh, Token: "L-alice", Expires: T(1000)}, OK},
			{"an older leader's entry unlocks", Command{Op: OpUnlock, Path: "/d", Token: "L-alice"}, OK},
			{"anyone refreshes a lock without principal", as("bob", Command{Op: OpRefresh, Token: "L-anon", Expires: T(1000)}), OK},
			{"owner unlocks", as("alice", Command{Op: OpUnlock, Path: "/d/f", Token: "L-alice"}), OK},
			{"another user unlocks", as("bob", Command{Op: OpUnlock, Path: "/d/f", Token: "L-alice"}), Forbidden},
			{"another user unlocks elsewhere", as("bob", Command{Op: OpUnlock, Path: "/g", Token: "L-alice"}), Conflict},
			{"anyone unlocks a lock without principal", as("bob", Command{Op: OpUnlock, Path: "/g", Token: "L-anon"}), OK},
			{"lock with a principal from an older leader's entry", func() Command {
				c := lockCmd("/h", "L-h", false, false, 0)
				c.Lock.Principal = "alice"
				return c
			}(), Invalid},
			{"lock without a principal for a user", func() Command {
				c := lockCmd("/h", "L-h", false, false, 0)
				c.User = UserOf("alice")
				return c
			}(), Invalid},
			{"lock for another principal than the entry's", func() Command {
				c := lockCmd("/h", "L-h", false, false, 0)
				c.User, c.Lock.Principal = UserOf("bob"), "alice"
				return c
			}(), Invalid},
			{"another user locks in her depth-0 collection with her token", func() Command {
				c := lockCmd("/e/new", "L-new", false, false, 0, "L-e")
				c.User, c.Lock.Principal = UserOf("bob"), "bob"
				return c
			}(), Locked},
			{"owner locks in her depth-0 collection with her token", func() Command {
				c := lockCmd("/e/new", "L-new", false, false, 0, "L-e")
				c.User, c.Lock.Principal = UserOf("alice"), "alice"
				return c
			}(), OK},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := fixture(t)
				before := e.locks()
				r := e.code(tc.cmd, tc.want)
				if tc.want == Locked && r.LockedPath == "" {
					t.Fatalf("Locked without LockedPath: %+v", r)
				}
				if tc.want != OK {
					if after := e.locks(); !slices.Equal(after, before) {
						t.Fatalf("a refused entry changed the locks: %+v -> %+v", before, after)
					}
				}
			})
		}
		// The principal is stored with the lock and survives a refresh.
		e := fixture(t)
		r := e.ok(Command{Op: OpRefresh, User: UserOf("alice"), Token: "L-alice", Expires: T(1000), Timeout: 10})
		if r.Lock.Principal != "alice" {
			t.Fatalf("refreshed lock %+v lost its principal", r.Lock)
		}
		for _, l := range e.locks() {
			want := map[string]string{"L-alice": "alice", "L-anon": "", "L-e": "alice"}[l.Token]
			if l.Principal != want {
				t.Errorf("stored lock %s: principal %q, want %q", l.Token, l.Principal, want)
			}
		}
	})
}

// TestCommandUser: an entry from a leader that recorded no principal
// decodes without a user, an anonymous one (the API open) with an empty
// one (TestLockPrincipal applies both), and both encode as they came.
func TestCommandUser(t *testing.T) {
	for _, tc := range []struct {
		json string
		user *string
	}{
		{`{"op":"put","t":0,"p":"/f"}`, nil},
		{`{"op":"put","t":0,"p":"/f","u":""}`, UserOf("")},
		{`{"op":"put","t":0,"p":"/f","u":"alice"}`, UserOf("alice")},
	} {
		c, err := DecodeCommand([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		if (c.User == nil) != (tc.user == nil) || (c.User != nil && *c.User != *tc.user) {
			t.Errorf("%s: User %v, want %v", tc.json, c.User, tc.user)
		}
		b, err := c.Encode()
		if err != nil || string(b) != tc.json {
			t.Errorf("%s encodes as %s (%v)", tc.json, b, err)
		}
	}
}
