package fspath

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var cleanTests = []struct {
	name string
	in   string
	// decode runs url.PathUnescape first, as the HTTP layer does before
	// Clean: an encoded slash is then just a slash.
	decode bool
	want   string // "" means an error wrapping ErrInvalid
}{
	// Plain forms.
	{name: "root", in: "/", want: "/"},
	{name: "empty is root", in: "", want: "/"},
	{name: "simple", in: "/a/b", want: "/a/b"},
	{name: "trailing slash", in: "/a/b/", want: "/a/b"},
	{name: "repeated slashes", in: "//a///b//", want: "/a/b"},
	{name: "relative gets rooted", in: "a/b", want: "/a/b"},
	{name: "dot segments", in: "/./a/./b/.", want: "/a/b"},
	{name: "lone dot", in: ".", want: "/"},

	// Dot-dot.
	{name: "dotdot inside", in: "/a/b/../c", want: "/a/c"},
	{name: "dotdot to root", in: "/a/..", want: "/"},
	{name: "dotdot chain", in: "/a/b/c/../../d", want: "/a/d"},
	{name: "dotdot above root", in: "/..", want: ""},
	{name: "bare dotdot", in: "..", want: ""},
	{name: "dotdot after pop", in: "/a/../..", want: ""},
	{name: "dotdot climb to etc", in: "/a/b/../../../etc/passwd", want: ""},
	{name: "three dots is a name", in: "/...", want: "/..."},
	{name: "dotdot prefix is a name", in: "/..a/a..", want: "/..a/a.."},
	{name: "dot space is a name", in: "/. /.. ", want: "/. /.. "},

	// Encoded then decoded: %2F is a plain '/' by the time Clean sees it.
	{name: "decoded slash", in: "/a%2Fb", decode: true, want: "/a/b"},
	{name: "decoded dotdot climb", in: "/a%2F..%2F..%2Fetc", decode: true, want: ""},
	{name: "decoded dots", in: "/%2e%2e/x", decode: true, want: ""},
	{name: "decoded NUL", in: "/a%00b", decode: true, want: ""},
	{name: "decoded space", in: "/my%20file", decode: true, want: "/my file"},
	{name: "double encoded stays a name", in: "/a%252Fb", decode: true, want: "/a%2Fb"},

	// Bytes that no honest client sends.
	{name: "NUL", in: "/a\x00b", want: ""},
	{name: "trailing NUL", in: "/a\x00", want: ""},
	{name: "tab", in: "/a\tb", want: ""},
	{name: "newline", in: "/a\nb", want: ""},
	{name: "carriage return", in: "/a\r", want: ""},
	{name: "escape", in: "/\x1b[31m", want: ""},
	{name: "DEL", in: "/a\x7f", want: ""},
	{name: "backslash", in: `/a\b`, want: ""},
	{name: "backslash dotdot", in: `/..\..\etc`, want: ""},
	{name: "invalid UTF-8 byte", in: "/\xff", want: ""},
	{name: "truncated UTF-8", in: "/caf\xc3", want: ""},
	{name: "overlong slash", in: "/a\xc0\xafb", want: ""},
	{name: "UTF-16 surrogate", in: "/\xed\xa0\x80", want: ""},
	// C1 controls are valid UTF-8 and legal file names: accepted.
	{name: "C1 control", in: "/a\u0085b", want: "/a\u0085b"},

	// Ordinary names with characters that are special elsewhere.
	{name: "unicode", in: "/日本語/ファイル.txt", want: "/日本語/ファイル.txt"},
	{name: "emoji", in: "/📁/😀", want: "/📁/😀"},
	{name: "NFD kept as sent", in: "/e\u0301", want: "/e\u0301"},
	{name: "spaces kept", in: "/a b/ c /  ", want: "/a b/ c /  "},
	{name: "percent is a name", in: "/100%/%2F", want: "/100%/%2F"},
	{name: "hash and query", in: "/a#b/c?d", want: "/a#b/c?d"},
	{name: "colon and semicolon", in: "/a:b;c", want: "/a:b;c"},

	// Lengths.
	{name: "name at limit", in: "/" + strings.Repeat("n", MaxNameBytes), want: "/" + strings.Repeat("n", MaxNameBytes)},
	{name: "name over limit", in: "/" + strings.Repeat("n", MaxNameBytes+1), want: ""},
	{name: "multibyte name at limit", in: "/" + strings.Repeat("日", 85), want: "/" + strings.Repeat("日", 85)},
	{name: "multibyte name over limit", in: "/" + strings.Repeat("日", 86), want: ""},
	{name: "long name popped by dotdot", in: "/" + strings.Repeat("n", MaxNameBytes+1) + "/..", want: ""},
	{name: "path at limit", in: "/" + strings.Repeat("a/", 2047) + "a", want: "/" + strings.Repeat("a/", 2047) + "a"},
	{name: "path over limit", in: "/" + strings.Repeat("a/", 2048) + "a", want: ""},
	{name: "long path that cleans short", in: strings.Repeat("/", MaxPathBytes+1), want: ""},
	// A relative path of MaxPathBytes gains a slash: it must not come out
	// longer than the limit (it used to, and Clean then rejected its own
	// output).
	{name: "relative path at limit", in: strings.Repeat("a/", 2047) + "aa", want: ""},
}

func TestClean(t *testing.T) {
	for _, tc := range cleanTests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.decode {
				var err error
				if in, err = url.PathUnescape(in); err != nil {
					t.Fatalf("PathUnescape(%q): %v", tc.in, err)
				}
			}
			got, err := Clean(in)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Clean(%q) = %q, %v; want an error wrapping ErrInvalid", in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Clean(%q) = %q, %v; want %q", in, got, err, tc.want)
			}
			if again, err := Clean(got); err != nil || again != got {
				t.Fatalf("Clean(Clean(%q)) = %q, %v; not idempotent", in, again, err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ in, dir, name string }{
		{"/", "", ""},
		{"/a", "/", "a"},
		{"/a/b", "/a", "b"},
		{"/a/b/c d", "/a/b", "c d"},
	} {
		dir, name := Split(tc.in)
		if dir != tc.dir || name != tc.name {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tc.in, dir, name, tc.dir, tc.name)
		}
		if tc.in != "/" {
			if j := Join(dir, name); j != tc.in {
				t.Errorf("Join(Split(%q)) = %q", tc.in, j)
			}
		}
	}
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/", nil},
		{"/a", []string{"a"}},
		{"/a/b c/d", []string{"a", "b c", "d"}},
	} {
		got := Segments(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("Segments(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range []struct{ dir, name, want string }{
		{"/", "a", "/a"},
		{"/a", "b", "/a/b"},
		{"/a/b", "c d", "/a/b/c d"},
	} {
		if got := Join(tc.dir, tc.name); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.dir, tc.name, got, tc.want)
		}
	}
}

func TestIsAncestor(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"/", "/", true},
		{"/", "/a/b", true},
		{"/a", "/a", true},
		{"/a", "/a/b", true},
		{"/a", "/a/b/c", true},
		{"/a/b", "/a", false},
		{"/a", "/ab", false}, // a prefix of the name is not an ancestor
		{"/a", "/b", false},
		{"/a/b", "/a/c/b", false},
	} {
		if got := IsAncestor(tc.a, tc.b); got != tc.want {
			t.Errorf("IsAncestor(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// FuzzClean checks the invariants the rest of dfs relies on for every path
// Clean accepts.
func FuzzClean(f *testing.F) {
	for _, tc := range cleanTests {
		if tc.decode {
			if in, err := url.PathUnescape(tc.in); err == nil {
				f.Add(in)
			}
			continue
		}
		f.Add(tc.in)
	}
	const root = "/var/lib/dfs/root"
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Clean(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Clean(%q) error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("Clean(%q) = %q: not absolute", in, got)
		}
		if got != "/" && strings.HasSuffix(got, "/") {
			t.Fatalf("Clean(%q) = %q: trailing slash", in, got)
		}
		if len(got) > MaxPathBytes {
			t.Fatalf("Clean(%q) = %d bytes: over MaxPathBytes", in, len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Clean(%q) = %q: invalid UTF-8", in, got)
		}
		if strings.ContainsAny(got, "\x00\\") {
			t.Fatalf("Clean(%q) = %q: contains NUL or backslash", in, got)
		}
		for _, seg := range Segments(got) {
			switch {
			case seg == "" || seg == "." || seg == "..":
				t.Fatalf("Clean(%q) = %q: segment %q", in, got, seg)
			case len(seg) > MaxNameBytes:
				t.Fatalf("Clean(%q) = %q: segment of %d bytes", in, got, len(seg))
			}
		}
		if again, err := Clean(got); err != nil || again != got {
			t.Fatalf("Clean(%q) = %q, but Clean of that = %q, %v: not idempotent", in, got, again, err)
		}
		if got != "/" {
			if dir, name := Split(got); Join(dir, name) != got || !IsAncestor(dir, got) {
				t.Fatalf("Split/Join/IsAncestor disagree on %q", got)
			}
		}
		j := filepath.Join(root, got)
		if j != root && !strings.HasPrefix(j, root+string(filepath.Separator)) {
			t.Fatalf("Join(%q, Clean(%q)) = %q escapes the root", root, in, j)
		}
		if rel, err := filepath.Rel(root, j); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("Join(%q, Clean(%q)) = %q escapes the root (rel %q, %v)", root, in, j, rel, err)
		}
	})
}
