package access

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/fspath"
)

// example is the file of the package's documentation.
const example = `
default: none
groups:
  staff: [alice, carol]
rules:
  - path: /home
    read: ["*"]
  - path: /home/{user}
    write: ["{user}"]
  - path: /shared
    read: ["*"]
    write: ["@staff"]
`

func mustParse(t testing.TB, text string) *Rules {
	t.Helper()
	r, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return r
}

type levelCase struct {
	user, path string
	want       Level
}

func checkLevels(t *testing.T, r *Rules, cases []levelCase) {
	t.Helper()
	for _, c := range cases {
		if got := r.Level(c.user, c.path); got != c.want {
			t.Errorf("Level(%q, %q) = %v, want %v", c.user, c.path, got, c.want)
		}
		// The reference implementation must agree wherever it applies.
		if c.user != "" && isClean(c.path) {
			if ref := slowLevel(r, c.user, c.path); ref != c.want {
				t.Errorf("slowLevel(%q, %q) = %v, want %v", c.user, c.path, ref, c.want)
			}
		}
	}
}

func TestExample(t *testing.T) {
	r := mustParse(t, example)
	checkLevels(t, r, []levelCase{
		// alice is staff.
		{"alice", "/", None},
		{"alice", "/home", Read},
		{"alice", "/home/alice", Write},
		{"alice", "/home/alice/x", Write},
		{"alice", "/home/bob", Read},
		{"alice", "/shared", Write},
		{"alice", "/shared/x", Write},
		{"alice", "/other", None},
		// bob is not.
		{"bob", "/", None},
		{"bob", "/home", Read},
		{"bob", "/home/alice", Read},
		{"bob", "/home/alice/x", Read},
		{"bob", "/home/bob", Write},
		{"bob", "/home/bob/x/y", Write},
		{"bob", "/shared", Read},
		{"bob", "/shared/x", Read},
		{"bob", "/other", None},
		// carol is staff too.
		{"carol", "/", None},
		{"carol", "/home", Read},
		{"carol", "/home/alice", Read},
		{"carol", "/home/alice/x", Read},
		{"carol", "/home/carol", Write},
		{"carol", "/shared", Write},
		{"carol", "/shared/x", Write},
		{"carol", "/other", None},
		// Prefixes are whole segments.
		{"alice", "/homework", None},
		{"alice", "/home/alicex", Read},
		{"alice", "/sharedx", None},
	})
}

func TestLongestMatch(t *testing.T) {
	r := mustParse(t, `
default: read
rules:
  - path: /a/b/c
    write: [alice]
  - path: /a
    read: ["*"]
    write: [bob]
  - path: /a/b        # neither list: nobody, whatever /a says
  - path: /x
    write: [alice]    # write alone implies read
`)
	checkLevels(t, r, []levelCase{
		{"alice", "/", Read}, // the default
		{"alice", "/z", Read},
		{"alice", "/a", Read},
		{"bob", "/a", Write},
		{"bob", "/a/q", Write},
		{"alice", "/a/b", None},
		{"bob", "/a/b/x", None},
		{"alice", "/a/b/c", Write},
		{"alice", "/a/b/c/d", Write},
		{"bob", "/a/b/c", None}, // listed in neither list of the rule that decides
		{"alice", "/a/bc", Read},
		{"alice", "/x", Write},
		{"bob", "/x", None},
	})
}

func TestDefault(t *testing.T) {
	for _, def := range []Level{None, Read, Write} {
		r := mustParse(t, "default: "+def.String()+"\nrules:\n  - path: /locked\n")
		checkLevels(t, r, []levelCase{
			{"alice", "/", def},
			{"alice", "/a/b", def},
			{"alice", "/locked", None},
			{"alice", "/locked/x", None},
			{"", "/", None}, // nobody, even where the default grants
		})
	}
	// No default key, and an empty file: none.
	for _, text := range []string{"rules: []\n", "", "# only a comment\n", "~\n"} {
		checkLevels(t, mustParse(t, text), []levelCase{{"alice", "/", None}, {"alice", "/a", None}})
	}
}

func TestRootRule(t *testing.T) {
	r := mustParse(t, `
default: write
rules:
  - path: /
    read: ["*"]
  - path: /{user}
    write: ["{user}"]
`)
	checkLevels(t, r, []levelCase{
		{"alice", "/", Read},
		{"alice", "/bob", Read},
		{"alice", "/alice", Write},
		{"alice", "/alice/deep/down", Write},
	})
}

// A literal path beats {user} at equal length: it is the more specific
// statement about that user.
func TestLiteralBeatsUser(t *testing.T) {
	r := mustParse(t, `
rules:
  - path: /home/{user}
    write: ["{user}"]
  - path: /home/alice
    read: [alice]
  - path: /t/{user}/alice
    read: ["*"]
  - path: /t/alice/{user}
    write: ["*"]
`)
	checkLevels(t, r, []levelCase{
		{"alice", "/home/alice", Read},
		{"alice", "/home/alice/f", Read},
		{"bob", "/home/bob", Write},
		{"bob", "/home/alice", None},
		// Both /t rules cover /t/alice/alice for alice; the leftmost
		// literal decides.
		{"alice", "/t/alice/alice", Write},
		{"bob", "/t/bob/alice", Read},
		{"bob", "/t/alice/bob", Write},
		{"bob", "/t/alice/alice", None},
	})
}

// A user name that is not one path segment never steers a {user} rule onto
// another path: such rules apply to nobody for that user.
func TestUserInjection(t *testing.T) {
	r := mustParse(t, `
default: read
rules:
  - path: /home
    read: ["*"]
  - path: /home/{user}
    write: ["{user}"]
  - path: /team/{user}/private
    write: ["*"]
  - path: /team
    write: [x]
`)
	for _, u := range []string{"../x", "a/b", ".", "..", "", "x\x00", "x/", "/x", "a\\b", "tab\t", strings.Repeat("u", 256), "\xff"} {
		t.Run(u, func(t *testing.T) {
			if segmentOK(u) {
				t.Fatalf("segmentOK(%q): want false", u)
			}
			want := func(v Level) Level {
				if u == "" {
					return None
				}
				return v
			}
			// /home/a/b is a clean path, and /home covers it; every
			// other name makes /home/<name> unclean.
			homeU := None
			if isClean("/home/" + u) {
				homeU = want(Read)
			}
			checkLevels(t, r, []levelCase{
				{u, "/home", want(Read)},
				{u, "/home/x", want(Read)},
				{u, "/home/a/b", want(Read)},
				{u, "/team/a/b/private", None},
				{u, "/team/x/private", None},
				{u, "/", want(Read)},
				{u, "/home/" + u, homeU},
			})
			for _, b := range r.Below(u, "/") {
				if strings.Contains(b.Path, "{user}") || b.Path != "/home" && b.Path != "/team" {
					t.Errorf("Below(%q, /) lists %q", u, b.Path)
				}
			}
		})
	}
	// A valid name that looks odd is still a name.
	checkLevels(t, r, []levelCase{
		{"...", "/home/...", Write},
		{"{user}", "/home/{user}", Write},
		{"x", "/team/x/private", Write},
		{"x", "/team/y/private", Write}, // via /team, not the {user} rule
		{"y", "/team/x/private", None},
	})
}

func TestUncleanPath(t *testing.T) {
	r := mustParse(t, "default: write\n")
	for _, p := range []string{"", "a", "//", "/a/", "/a//b", "/./a", "/a/.", "/a/../b", "/..", "/a\x00", "/a\\b", "/\xff", "/" + strings.Repeat("n", 256)} {
		if got := r.Level("alice", p); got != None {
			t.Errorf("Level(alice, %q) = %v, want none", p, got)
		}
		if got := r.Below("alice", p); got != nil {
			t.Errorf("Below(alice, %q) = %v, want nil", p, got)
		}
	}
}

func TestBelow(t *testing.T) {
	r := mustParse(t, example+`
  - path: /home/alice/inbox
    write: ["*"]
  - path: /home/{user}/public
    read: ["*"]
`)
	tests := []struct {
		user, path string
		want       []Boundary
	}{
		{"alice", "/", []Boundary{{"/home", Read}, {"/home/alice", Write}, {"/home/alice/inbox", Write}, {"/home/alice/public", Read}, {"/shared", Write}}},
		{"bob", "/", []Boundary{{"/home", Read}, {"/home/alice/inbox", Write}, {"/home/bob", Write}, {"/home/bob/public", Read}, {"/shared", Read}}},
		{"alice", "/home", []Boundary{{"/home/alice", Write}, {"/home/alice/inbox", Write}, {"/home/alice/public", Read}}},
		{"bob", "/home", []Boundary{{"/home/alice/inbox", Write}, {"/home/bob", Write}, {"/home/bob/public", Read}}},
		{"bob", "/home/alice", []Boundary{{"/home/alice/inbox", Write}}},
		{"alice", "/home/alice", []Boundary{{"/home/alice/inbox", Write}, {"/home/alice/public", Read}}},
		{"alice", "/home/alice/inbox", nil},
		// A path segment reading "{user}" is a name like any other, not
		// the placeholder (found by FuzzLevel).
		{"alice", "/home/{user}", nil},
		{"{user}", "/home/{user}", []Boundary{{"/home/{user}/public", Read}}},
		{"alice", "/shared", nil},
		{"alice", "/sh", nil},
		{"alice", "/other/x", nil},
		{"a/b", "/", []Boundary{{"/home", Read}, {"/home/alice/inbox", Write}, {"/shared", Read}}},
		{"", "/", nil},
	}
	for _, tt := range tests {
		if got := r.Below(tt.user, tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Below(%q, %q) =\n  %v\nwant\n  %v", tt.user, tt.path, got, tt.want)
		}
	}
}

// /home/alice and /home/{user} are one path for alice: Below lists it once,
// at the level of the rule that wins there.
func TestBelowTie(t *testing.T) {
	r := mustParse(t, `
rules:
  - path: /home/{user}
    write: ["{user}"]
  - path: /home/alice
    read: [alice]
`)
	want := []Boundary{{"/home/alice", Read}}
	if got := r.Below("alice", "/home"); !reflect.DeepEqual(got, want) {
		t.Errorf("Below(alice, /home) = %v, want %v", got, want)
	}
}

func TestLevelString(t *testing.T) {
	for _, l := range []Level{None, Read, Write} {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := ParseLevel("Read"); err == nil {
		t.Error("ParseLevel(Read): want an error, levels are lower case")
	}
	if s := Level(7).String(); s != "Level(7)" {
		t.Errorf("Level(7).String() = %q", s)
	}
	if !(None < Read && Read < Write) {
		t.Error("levels are not ordered")
	}
}

func TestLevelAllocs(t *testing.T) {
	r := mustParse(t, benchRules())
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range benchPaths {
			r.Level("alice", p)
		}
	})
	if allocs != 0 {
		t.Errorf("Level allocates %.1f times per %d calls", allocs, len(benchPaths))
	}
}

// slowLevel is Level by the letter of the documentation, rule by rule: the
// oracle the tests and the fuzz target hold the trie to.
func slowLevel(r *Rules, user, p string) Level {
	if user == "" {
		return None
	}
	userOK := user != "" && !strings.Contains(user, "/")
	if c, err := fspath.Clean("/" + user); err != nil || c != "/"+user {
		userOK = false
	}
	var best *rule
	for _, ru := range r.rules {
		if ru.hasUser && !userOK {
			continue
		}
		if !fspath.IsAncestor(ru.expand(user), p) {
			continue
		}
		if best == nil || len(ru.segs) > len(best.segs) || len(ru.segs) == len(best.segs) && moreLiteral(ru, best) {
			best = ru
		}
	}
	if best == nil {
		return r.def
	}
	return best.level(user)
}

// moreLiteral reports whether a has a literal segment where b has {user}
// at their leftmost difference of that kind.
func moreLiteral(a, b *rule) bool {
	for i := range a.segs {
		au, bu := a.segs[i] == userSeg, b.segs[i] == userSeg
		if au != bu {
			return bu
		}
	}
	return false
}
