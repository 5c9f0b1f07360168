package access

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string // a part of the message
	}{
		{"unknown default level", "default: all\n", 1, `default: unknown level "all"`},
		{"default as a list", "default: [read]\n", 1, "default: want a single value"},
		{"unknown level is case sensitive", "\ndefault: Read\n", 2, "unknown level"},
		{"unknown top key", "default: none\nrule:\n  - path: /\n", 2, `unknown key "rule"`},
		{"repeated top key", "default: none\ndefault: read\n", 2, `key "default" repeats the one at line 1`},
		{"top level a list", "- path: /\n", 1, "top level: want a mapping"},
		{"rules a mapping", "rules:\n  path: /\n", 2, "rules: want a list"},
		{"rule a string", "rules:\n  - /home\n", 2, "rule: want a mapping"},
		{"unknown rule key", "rules:\n  - path: /a\n    raed: [\"*\"]\n", 3, `rule: unknown key "raed"`},
		{"repeated rule key", "rules:\n  - path: /a\n    read: [a]\n    read: [b]\n", 4, `key "read" repeats`},
		{"rule without path", "rules:\n  - read: [a]\n", 2, "rule without a path"},
		{"path a list", "rules:\n  - path: [/a]\n", 2, "path: want a single value"},
		{"empty path", "rules:\n  - path: \"\"\n", 2, "empty"},
		{"null path", "rules:\n  - path:\n", 2, "empty"},
		{"relative path", "rules:\n  - path: home\n", 2, `path "home": not absolute`},
		{"dotdot", "rules:\n  - path: /a/../b\n", 2, `contains ".."`},
		{"dotdot at the end", "rules:\n  - path: /a/..\n", 2, `contains ".."`},
		{"trailing slash", "rules:\n  - path: /a/\n", 2, `not clean (want "/a")`},
		{"double slash", "rules:\n  - path: //a\n", 2, "not clean"},
		{"dot segment", "rules:\n  - path: /a/./b\n", 2, "not clean"},
		{"control byte", "rules:\n  - path: \"/a\\tb\"\n", 2, "invalid path"},
		{"user inside a segment", "rules:\n  - path: /home/{user}x\n", 2, "{user} must be a whole path segment"},
		{"user prefix", "rules:\n  - path: /home/x{user}\n", 2, "{user} must be a whole path segment"},
		{"misspelt placeholder", "rules:\n  - path: /home/{username}\n", 2, `unknown placeholder "{username}"`},
		{"duplicate path", "rules:\n  - path: /a\n    read: [x]\n  - path: /b\n  - path: /a\n", 5, `duplicate rule path "/a" (first at line 2)`},
		{"duplicate user path", "rules:\n  - path: /h/{user}\n  - path: /h/{user}\n", 3, "duplicate rule path"},
		{"unknown group", "groups:\n  staff: [a]\nrules:\n  - path: /a\n    write: [\"@stuff\"]\n", 5, `write: unknown group "stuff"`},
		{"empty group reference", "rules:\n  - path: /a\n    read: [\"@\"]\n", 3, `unknown group ""`},
		{"empty member", "rules:\n  - path: /a\n    read: [\"\"]\n", 3, "read: empty member"},
		{"null member", "rules:\n  - path: /a\n    read:\n      -\n", 4, "read: empty member"},
		{"member a list", "rules:\n  - path: /a\n    read: [[a]]\n", 3, "read: want a single value"},
		{"members a string", "rules:\n  - path: /a\n    write: alice\n", 3, "write: want a list"},
		{"user member without user path", "rules:\n  - path: /a\n    write: [\"{user}\"]\n", 3, "{user} in a rule whose path has no {user}"},
		{"unknown member placeholder", "rules:\n  - path: /a/{user}\n    write: [\"{usr}\"]\n", 3, `unknown placeholder "{usr}"`},
		{"groups a list", "groups:\n  - staff\n", 2, "groups: want a mapping"},
		{"group members a string", "groups:\n  staff: alice\n", 2, "group staff: want a list"},
		{"empty group member", "groups:\n  staff:\n    - alice\n    - \"\"\n", 4, "group staff: empty member"},
		{"nested group", "groups:\n  a: [x]\n  b: [\"@a\"]\n", 3, "a group lists user names only"},
		{"star in group", "groups:\n  a: [\"*\"]\n", 2, "a group lists user names only"},
		{"group name with @", "groups:\n  \"@a\": [x]\n", 2, `group name "@a"`},
		{"repeated group", "groups:\n  a: [x]\n  a: [y]\n", 3, `key "a" repeats`},
		{"alias", "groups:\n  a: &l [x]\nrules:\n  - path: /a\n    read: *l\n", 5, "aliases are not supported"},
		{"merge key", "rules:\n  - &r {path: /a}\n  - <<: *r\n", 3, "aliases are not supported"},
		// The line of a syntax error is yaml.v3's: where the block or
		// the flow it cannot finish began.
		{"bad YAML", "rules:\n  - path: /a\n   read: [x]\n", 1, "bad YAML: did not find expected '-' indicator"},
		{"unclosed flow", "default: none\nrules: [\n", 2, "bad YAML"},
		{"tab indent", "rules:\n\t- path: /a\n", 2, "bad YAML"},
		{"two documents", "default: none\n---\ndefault: read\n", 2, "a second YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(strings.NewReader(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded (%d rules), want an error at line %d\n%s", len(r.rules), tt.line, tt.text)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.msg)
			}
			if want := fmt.Sprintf("line %d: ", tt.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", err, want)
			}
		})
	}
}

func TestParseTooLong(t *testing.T) {
	text := "default: none\n" + strings.Repeat("# padding\n", MaxFileBytes/10+1)
	_, err := Parse(strings.NewReader(text))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 0 || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Parse of %d bytes: %v", len(text), err)
	}
}

func TestParseAccepts(t *testing.T) {
	// What a careful file may hold beside the example: groups after the
	// rules that use them, an empty group, null lists, numeric-looking
	// names, and a {user} member in a {user} rule.
	r := mustParse(t, `
rules:
  - path: /p
    read: ["@empty", "@staff"]
    write:
  - path: /p/{user}/x
    write: ["{user}", 1234]
groups:
  staff: [alice, "007"]
  empty: []
default: read
`)
	checkLevels(t, r, []levelCase{
		{"alice", "/p", Read},
		{"007", "/p/q", Read},
		{"bob", "/p", None},
		{"bob", "/p/bob/x", Write},
		{"1234", "/p/bob/x", None},
		{"bob", "/q", Read},
	})
}
