package access

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/fspath"
)

// fuzzRules are fixed rules with {user} in every position that matters:
// first, middle and last segment, twice in one path, and beside literal
// rules of the same length.
var fuzzRules = []string{
	`{path: "/", read: ["*"]}`,
	`{path: "/home", read: ["*"]}`,
	`{path: "/home/{user}", write: ["{user}"]}`,
	`{path: "/home/alice", read: [alice, bob]}`,
	`{path: "/team/{user}/private", write: ["*"]}`,
	`{path: "/team", write: ["@staff"]}`,
	`{path: "/{user}", write: ["{user}"]}`,
	`{path: "/{user}/in/{user}", read: ["{user}"]}`,
	`{path: "/shared/locked"}`,
	`{path: "/t/{user}/a", read: ["*"]}`,
	`{path: "/t/a/{user}", write: ["*"]}`,
}

func fuzzFile(withUser bool) string {
	var b strings.Builder
	b.WriteString("default: read\ngroups:\n  staff: [alice, \"a/b\", \"..\", \"\\0\"]\nrules:\n")
	for _, r := range fuzzRules {
		if withUser || !strings.Contains(r, "{user}") {
			b.WriteString("  - " + r + "\n")
		}
	}
	return b.String()
}

// FuzzLevel holds Level and Below, on fixed rules, to what the package
// promises for any user name and any path.
func FuzzLevel(f *testing.F) {
	for _, u := range []string{"alice", "bob", "a", "../x", "a/b", ".", "..", "", "x\x00", "{user}", "in"} {
		for _, p := range []string{"/", "/home/alice", "/home/" + u, "/" + u, "/" + u + "/in/" + u, "/team/" + u + "/private", "/t/a/a", "/home/../x"} {
			f.Add(u, p)
		}
	}
	rules := mustParse(f, fuzzFile(true))
	noUser := mustParse(f, fuzzFile(false))
	f.Fuzz(func(t *testing.T, user, p string) {
		level := rules.Level(user, p)
		below := rules.Below(user, p)

		clean, err := fspath.Clean(p)
		pClean := err == nil && clean == p
		if isClean(p) != pClean {
			t.Fatalf("isClean(%q) = %v, fspath.Clean says %v", p, !pClean, pClean)
		}
		c, err := fspath.Clean("/" + user)
		userSeg := err == nil && c == "/"+user && user != "" && !strings.Contains(user, "/")
		if segmentOK(user) != userSeg {
			t.Fatalf("segmentOK(%q) = %v, fspath.Clean says %v", user, !userSeg, userSeg)
		}

		if !pClean {
			if level != None || below != nil {
				t.Fatalf("unclean %q: Level(%q) = %v, Below = %v; want none and nil", p, user, level, below)
			}
			return
		}
		if want := slowLevel(rules, user, p); level != want {
			t.Fatalf("Level(%q, %q) = %v, the rule-by-rule reading says %v", user, p, level, want)
		}
		if !userSeg {
			// No {user} rule may apply: the answer is the one of the
			// rules without them.
			if want := noUser.Level(user, p); level != want {
				t.Fatalf("Level(%q, %q) = %v, without {user} rules %v", user, p, level, want)
			}
			if want := noUser.Below(user, p); !reflect.DeepEqual(below, want) {
				t.Fatalf("Below(%q, %q) = %v, without {user} rules %v", user, p, below, want)
			}
		}
		for i, b := range below {
			if b.Path == p || !fspath.IsAncestor(p, b.Path) {
				t.Fatalf("Below(%q, %q) lists %q, not strictly under it", user, p, b.Path)
			}
			if i > 0 && below[i-1].Path >= b.Path {
				t.Fatalf("Below(%q, %q) is not sorted and distinct: %v", user, p, below)
			}
			if l := rules.Level(user, b.Path); b.Level != l {
				t.Fatalf("Below(%q, %q) says %v at %q, Level says %v", user, p, b.Level, b.Path, l)
			}
		}
	})
}
