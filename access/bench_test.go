package access

import (
	"fmt"
	"strings"
	"testing"
)

// benchRules is a file of 50 rules, the size a team's setup reaches: homes,
// a shared area, and 22 projects with an archive each.
func benchRules() string {
	var b strings.Builder
	b.WriteString("default: none\ngroups:\n  staff: [alice, carol, dave, erin, frank]\n  ops: [olga, oscar]\nrules:\n")
	rule := func(path, read, write string) {
		fmt.Fprintf(&b, "  - path: %s\n    read: [%s]\n    write: [%s]\n", path, read, write)
	}
	rule("/", `"@ops"`, "")
	rule("/home", `"*"`, "")
	rule("/home/{user}", "", `"{user}"`)
	rule("/home/{user}/public", `"*"`, `"{user}"`)
	rule("/shared", `"*"`, `"@staff"`)
	rule("/projects", `"@staff"`, "")
	for i := range 22 {
		rule(fmt.Sprintf("/projects/p%02d", i), `"*"`, fmt.Sprintf("user%d, alice", i))
		rule(fmt.Sprintf("/projects/p%02d/archive", i), `"@staff"`, `"@ops"`)
	}
	return b.String()
}

// benchPaths are the paths of a mixed load: deep ones under a rule, under
// {user}, and under no rule at all.
var benchPaths = []string{
	"/home/alice/docs/2026/report.odt",
	"/home/bob/public/photo.jpg",
	"/projects/p07/src/main.go",
	"/projects/p13/archive/2020/q4/notes.txt",
	"/shared/templates/letter.dotx",
	"/other/deep/path/x",
	"/",
	"/projects",
}

func TestBenchRules(t *testing.T) {
	r := mustParse(t, benchRules())
	if n := len(r.rules); n != 50 {
		t.Fatalf("%d rules, want 50", n)
	}
	checkLevels(t, r, []levelCase{
		{"alice", benchPaths[0], Write},
		{"alice", benchPaths[1], Read},
		{"user7", benchPaths[2], Write},
		{"alice", benchPaths[3], Read},
		{"olga", benchPaths[3], Write},
		{"alice", benchPaths[5], None},
		{"olga", benchPaths[5], Read},
	})
}

func BenchmarkLevel(b *testing.B) {
	r := mustParse(b, benchRules())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Level("alice", benchPaths[i%len(benchPaths)])
	}
}

func BenchmarkBelow(b *testing.B) {
	r := mustParse(b, benchRules())
	for _, bc := range []struct{ name, path string }{
		{"root", "/"},             // every rule but "/": the worst case, 49 boundaries
		{"projects", "/projects"}, // 44 boundaries
		{"home", "/home"},         // the user's own two
		{"leaf", "/projects/p07/src"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = len(r.Below("alice", bc.path))
			}
			b.ReportMetric(float64(n), "boundaries")
		})
	}
}
