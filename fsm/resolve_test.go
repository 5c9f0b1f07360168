package fsm

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/dfs-project/dfs/metastore"
)

func TestResolve(t *testing.T) {
	e := newEnv(t, openBolt(t))
	e.init()
	e.mkcol("/a")
	e.mkcol("/a/b")
	e.put("/a/b/f", hA)
	e.put("/a/g", hB)
	ctx := context.Background()

	for _, tc := range []struct {
		path          string
		found, parent bool // parent: ErrParentMissing expected
	}{
		{"/", true, false},
		{"/a/b/f", true, false},
		{"/a/nope", false, false},
		{"/nope/x", false, true},
		{"/a/g/x", false, true},
		{"/a/g/x/y", false, true},
	} {
		in, err := Resolve(ctx, e.s, tc.path)
		if tc.found {
			if err != nil {
				t.Errorf("Resolve(%s): %v", tc.path, err)
			}
			continue
		}
		if !errors.Is(err, metastore.ErrNotFound) || errors.Is(err, ErrParentMissing) != tc.parent {
			t.Errorf("Resolve(%s) = %+v, %v; parent missing %v", tc.path, in, err, tc.parent)
		}
	}

	p, name, err := ResolveParent(ctx, e.s, "/a/b/new")
	if err != nil || name != "new" || p.ID != e.mustStat("/a/b").ID {
		t.Fatalf("ResolveParent = %+v %q %v", p, name, err)
	}
	if _, _, err := ResolveParent(ctx, e.s, "/a/g/x"); !errors.Is(err, ErrParentMissing) {
		t.Fatalf("ResolveParent below a file: %v", err)
	}
	if _, _, err := ResolveParent(ctx, e.s, "/"); !errors.Is(err, ErrRoot) {
		t.Fatalf("ResolveParent(/): %v", err)
	}

	var seen []string
	walk := func(depth int, skip string) []string {
		seen = nil
		err := Walk(ctx, e.s, "/", e.mustStat("/"), depth, func(p string, in metastore.Inode) error {
			seen = append(seen, p)
			if p == skip {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if got := walk(DepthInfinity, ""); !slices.Equal(got, []string{"/", "/a", "/a/b", "/a/b/f", "/a/g"}) {
		t.Errorf("Walk infinity: %v", got)
	}
	if got := walk(1, ""); !slices.Equal(got, []string{"/", "/a"}) {
		t.Errorf("Walk 1: %v", got)
	}
	if got := walk(0, ""); !slices.Equal(got, []string{"/"}) {
		t.Errorf("Walk 0: %v", got)
	}
	if got := walk(DepthInfinity, "/a/b"); !slices.Equal(got, []string{"/", "/a", "/a/b", "/a/g"}) {
		t.Errorf("Walk with SkipDir: %v", got)
	}

	if ETag(e.mustStat("/a/b/f")) != `"`+hA[:ETagHexLen]+`"` || ETag(e.mustStat("/a")) != "" {
		t.Error("ETag")
	}
}

func TestConditionalHeaders(t *testing.T) {
	const tag = `"abc"`
	for _, tc := range []struct {
		header      string
		exists      bool
		match, none bool
	}{
		{"", true, true, true},
		{"", false, true, true},
		{"*", true, true, false},
		{" * ", false, false, true},
		{`"abc"`, true, true, false},
		{`"x", "abc"`, true, true, false},
		{`"x","y"`, true, false, true},
		{`W/"abc"`, true, false, false}, // weak: never for If-Match, matches for If-None-Match
		{`"abc"`, false, false, true},
		{`"a,b", "abc"`, true, true, false}, // comma inside a tag
		{`garbage`, true, false, true},
	} {
		if got := IfMatch(tc.header, tag, tc.exists); got != tc.match {
			t.Errorf("IfMatch(%q, exists=%v) = %v", tc.header, tc.exists, got)
		}
		if got := IfNoneMatch(tc.header, tag, tc.exists); got != tc.none {
			t.Errorf("IfNoneMatch(%q, exists=%v) = %v", tc.header, tc.exists, got)
		}
	}
	// A collection has no ETag: only "*" matches it.
	if IfMatch(`"abc"`, "", true) || !IfMatch("*", "", true) || !IfNoneMatch(`"abc"`, "", true) {
		t.Error("collection ETag handling")
	}
}

func TestInodeLimit(t *testing.T) {
	a := newApplier(context.Background(), openBolt(t), 7, &Command{Op: OpPut})
	a.newInodes = MaxNewInodes - 1
	id, err := a.newID()
	if err != nil || id != metastore.ID(7<<20|(MaxNewInodes-1)) {
		t.Fatalf("last ID %d, %v", id, err)
	}
	_, err = a.newID()
	var fl *failure
	if !errors.As(err, &fl) || fl.res.Code != Invalid {
		t.Fatalf("ID past the limit: %v", err)
	}
}
