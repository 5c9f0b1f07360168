package webdav

import (
	"reflect"
	"strings"
	"testing"
)

const (
	tokA = "opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4"
	tokB = "urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092"
)

func TestParseIf(t *testing.T) {
	tests := []struct {
		in   string
		want []IfList
	}{
		{`(<` + tokA + `>)`, []IfList{{Conditions: []IfCondition{{Token: tokA}}}}},
		// litmus cond_put
		{`(<` + tokA + `> ["abc"])`, []IfList{{Conditions: []IfCondition{{Token: tokA}, {ETag: `"abc"`}}}}},
		// litmus fail_cond_put
		{`(<DAV:no-lock> ["abc"])`, []IfList{{Conditions: []IfCondition{{Token: "DAV:no-lock"}, {ETag: `"abc"`}}}}},
		// litmus cond_put_with_not
		{`(<` + tokA + `>) (Not <DAV:no-lock>)`, []IfList{
			{Conditions: []IfCondition{{Token: tokA}}},
			{Conditions: []IfCondition{{Not: true, Token: "DAV:no-lock"}}},
		}},
		// litmus complex_cond_put
		{`(<` + tokA + `> ["abc"]) (Not <DAV:no-lock> ["abc"])`, []IfList{
			{Conditions: []IfCondition{{Token: tokA}, {ETag: `"abc"`}}},
			{Conditions: []IfCondition{{Not: true, Token: "DAV:no-lock"}, {ETag: `"abc"`}}},
		}},
		// RFC 4918 §10.4.6 and §10.4.7
		{`(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> ["I am an ETag"]) (["I am another ETag"])`, []IfList{
			{Conditions: []IfCondition{{Token: "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"}, {ETag: `"I am an ETag"`}}},
			{Conditions: []IfCondition{{ETag: `"I am another ETag"`}}},
		}},
		{`(Not <urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> <` + tokB + `>)`, []IfList{
			{Conditions: []IfCondition{{Not: true, Token: "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"}, {Token: tokB}}},
		}},
		// RFC 4918 §10.4.9, 10.4.10: tagged lists
		{`<http://www.example.com/specs/> (<` + tokB + `>)`, []IfList{
			{Resource: "http://www.example.com/specs/", Conditions: []IfCondition{{Token: tokB}}},
		}},
		{`</specs/rfc2518.doc> (["4217"])`, []IfList{
			{Resource: "/specs/rfc2518.doc", Conditions: []IfCondition{{ETag: `"4217"`}}},
		}},
		{`</specs/rfc2518.doc> (Not ["4217"])`, []IfList{
			{Resource: "/specs/rfc2518.doc", Conditions: []IfCondition{{Not: true, ETag: `"4217"`}}},
		}},
		// one tag, several lists; then another tag
		{`</a> (<` + tokA + `>) (["x"]) <http://h/b%20c> (<` + tokB + `>)`, []IfList{
			{Resource: "/a", Conditions: []IfCondition{{Token: tokA}}},
			{Resource: "/a", Conditions: []IfCondition{{ETag: `"x"`}}},
			{Resource: "http://h/b%20c", Conditions: []IfCondition{{Token: tokB}}},
		}},
		// white space optional and tabs allowed; Not in any case; W/
		{"\t(not<" + tokA + ">[W/\"w\"])(NOT\t[\"s\"])  ", []IfList{
			{Conditions: []IfCondition{{Not: true, Token: tokA}, {ETag: `W/"w"`}}},
			{Conditions: []IfCondition{{Not: true, ETag: `"s"`}}},
		}},
		// entity tags may contain ']' and spaces; empty entity tag
		{`(["a]b c"] [""])`, []IfList{{Conditions: []IfCondition{{ETag: `"a]b c"`}, {ETag: `""`}}}}},
		// raw UTF-8 in a resource tag
		{"</caf\u00e9> (<" + tokA + ">)", []IfList{{Resource: "/caf\u00e9", Conditions: []IfCondition{{Token: tokA}}}}},
	}
	for _, tt := range tests {
		got, err := ParseIf(tt.in)
		if err != nil {
			t.Errorf("ParseIf(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got.Lists, tt.want) {
			t.Errorf("ParseIf(%q) =\n %+v\nwant\n %+v", tt.in, got.Lists, tt.want)
		}
		again, err := ParseIf(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseIf(%q).String() = %q, which parses to %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestParseIfErrors(t *testing.T) {
	tests := []string{
		"",
		"   ",
		"<" + tokA + ">",                    // state token outside a list
		"()",                                // empty list
		"(<" + tokA + ">",                   // unterminated list
		"(<" + tokA + ")",                   // unterminated <
		"(<>)",                              // empty coded URL
		"(< " + tokA + ">)",                 // LWS inside <>
		"(<" + tokA + " >)",                 // LWS inside <>
		"(<foo>)",                           // state token not an absolute URI
		"(<:foo>)",                          // empty scheme
		"(<1a:foo>)",                        // scheme starts with a digit
		"([abc])",                           // unquoted entity tag
		`([ "abc"])`,                        // LWS inside []
		`(["abc" ])`,                        // LWS inside []
		`(["abc")`,                          // missing ]
		`(["abc)`,                           // unterminated quote
		`([w/"abc"])`,                       // weak indicator is case-sensitive
		"([\"a\x01\"])",                     // control character
		`(Not)`,                             // Not without a condition
		`(Not Not <DAV:no-lock>)`,           // double Not
		`(Nope <DAV:no-lock>)`,              // not Not
		`(<DAV:no-lock>) </a> (["x"])`,      // mixes untagged and tagged
		`</a> (<DAV:no-lock>) (["x"]) </b>`, // trailing tag
		`</a> </b> (["x"])`,                 // tag without list
		`<> (["x"])`,                        // empty tag
		`<a/b> (["x"])`,                     // relative tag
		`<//h/a> (["x"])`,                   // network-path tag
		`(<DAV:no-lock>), (["x"])`,          // comma
		`(<DAV:no-lock>) x`,                 // junk
		"(<DAV:no-lock>)\r\n",               // CR LF is not LWS here
		`(<DAV:no-lock>))`,
		"(<DAV:no-lock>\x00)",
	}
	for _, in := range tests {
		if got, err := ParseIf(in); err == nil {
			t.Errorf("ParseIf(%q) = %+v, want error", in, got)
		}
	}
}

func TestParseIfLimits(t *testing.T) {
	cond := "(<" + tokA + ">)"
	n := maxIfHeaderLen / len(cond)
	if _, err := ParseIf(strings.Repeat(cond, n)); err != nil && n <= maxIfConditions {
		t.Errorf("header at the length limit: %v", err)
	}
	if _, err := ParseIf(strings.Repeat(" ", maxIfHeaderLen-len(cond)) + cond); err != nil {
		t.Errorf("header of exactly %d bytes: %v", maxIfHeaderLen, err)
	}
	if _, err := ParseIf(strings.Repeat(" ", maxIfHeaderLen-len(cond)+1) + cond); err == nil {
		t.Errorf("header over %d bytes accepted", maxIfHeaderLen)
	}
	short := `(<a:>)`
	if _, err := ParseIf(strings.Repeat(short, maxIfConditions)); err != nil {
		t.Errorf("%d conditions: %v", maxIfConditions, err)
	}
	if _, err := ParseIf(strings.Repeat(short, maxIfConditions+1)); err == nil {
		t.Errorf("%d conditions accepted", maxIfConditions+1)
	}
}

func TestIfString(t *testing.T) {
	h := IfHeader{Lists: []IfList{
		{Resource: "/a", Conditions: []IfCondition{{Token: tokA}, {Not: true, ETag: `"x"`}}},
		{Resource: "/a", Conditions: []IfCondition{{Not: true, Token: "DAV:no-lock"}}},
		{Resource: "http://h/b", Conditions: []IfCondition{{ETag: `W/"y"`}}},
	}}
	want := `</a> (<` + tokA + `> Not ["x"]) (Not <DAV:no-lock>) <http://h/b> ([W/"y"])`
	if got := h.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestIfTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`(<` + tokA + `> ["e"])`, []string{tokA}},
		{`(<DAV:no-lock> ["e"])`, nil},
		{`(<` + tokA + `>) (Not <DAV:no-lock>)`, []string{tokA}},
		// negated tokens count as submitted (RFC 4918 §10.4.1)
		{`(Not <` + tokA + `> <` + tokB + `>)`, []string{tokA, tokB}},
		// tokens in lists tagged for other resources too; no duplicates
		{`</a> (<` + tokB + `>) </b> (<` + tokA + `>) (<` + tokB + `> <dav:NO-LOCK>)`, []string{tokB, tokA}},
	}
	for _, tt := range tests {
		h, err := ParseIf(tt.in)
		if err != nil {
			t.Fatalf("ParseIf(%q): %v", tt.in, err)
		}
		if got := h.Tokens(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIf(%q).Tokens() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// ifWorld is a tiny server state for Eval tests.
type ifWorld map[string]ifState

func (w ifWorld) state(calls map[string]int) func(string) (string, []string, bool) {
	return func(p string) (string, []string, bool) {
		calls[p]++
		s := w[p]
		return s.etag, s.tokens, s.exists
	}
}

// testResolve resolves tags on host "dav.example" and absolute paths.
func testResolve(tag string) (string, bool) {
	switch {
	case strings.HasPrefix(tag, "/"):
		return strings.TrimSuffix(tag, "/"), true
	case strings.HasPrefix(tag, "http://dav.example/"):
		return strings.TrimSuffix(strings.TrimPrefix(tag, "http://dav.example"), "/"), true
	}
	return "", false
}

func TestIfEval(t *testing.T) {
	const etag, other = `"3f2a"`, `"3f2b"`
	world := ifWorld{
		"/litmus/lockme":            {etag: etag, tokens: []string{tokA}, exists: true},
		"/litmus/notlocked":         {etag: etag, exists: true},
		"/litmus/weak":              {etag: `W/"3f2a"`, exists: true},
		"/litmus/lockcoll":          {tokens: []string{tokB}, exists: true},
		"/litmus/lockcoll/new.txt":  {tokens: []string{tokB}}, // unmapped, in the lock's scope
		"/litmus/lockcoll/file.txt": {etag: etag, tokens: []string{tokB}, exists: true},
	}
	tests := []struct {
		name, path, hdr string
		want            bool
	}{
		// litmus locks.c, with gotlock = tokA on /litmus/lockme
		{"cond_put", "/litmus/lockme", `(<` + tokA + `> [` + etag + `])`, true},
		{"fail_cond_put", "/litmus/lockme", `(<DAV:no-lock> [` + etag + `])`, false},
		{"fail_cond_put_unlocked", "/litmus/notlocked", `(<DAV:no-lock>)`, false},
		{"cond_put_with_not", "/litmus/lockme", `(<` + tokA + `>) (Not <DAV:no-lock>)`, true},
		// true, but the lock's token is not submitted: the handler gives 423
		{"cond_put_corrupt_token", "/litmus/lockme", `(<` + tokA + `x>) (Not <DAV:no-lock>)`, true},
		{"complex_cond_put", "/litmus/lockme", `(<` + tokA + `> [` + etag + `]) (Not <DAV:no-lock> [` + etag + `])`, true},
		{"fail_complex_cond_put", "/litmus/lockme", `(<` + tokA + `> [` + other + `]) (Not <DAV:no-lock> [` + other + `])`, false},

		{"token of another resource", "/litmus/notlocked", `(<` + tokA + `>)`, false},
		{"not a lock it holds", "/litmus/lockme", `(Not <` + tokA + `>)`, false},
		{"not a lock it lacks", "/litmus/notlocked", `(Not <` + tokA + `>)`, true},
		{"etag mismatch", "/litmus/lockme", `([` + other + `])`, false},
		{"not etag", "/litmus/lockme", `(Not [` + other + `])`, true},
		{"weak tag in header", "/litmus/lockme", `([W/` + etag + `])`, false},
		{"weak tag on resource", "/litmus/weak", `([W/` + etag + `])`, false},
		{"weak tag on resource, strong in header", "/litmus/weak", `([` + etag + `])`, false},
		{"no etag on collection", "/litmus/lockcoll", `([""])`, false},
		{"second list true", "/litmus/lockme", `([` + other + `]) ([` + etag + `])`, true},
		{"all conditions needed", "/litmus/lockme", `(<` + tokA + `> [` + other + `])`, false},

		// inherited depth-infinity lock, unmapped member: as state says
		{"inherited lock", "/litmus/lockcoll/file.txt", `(<` + tokB + `>)`, true},
		{"new member of locked collection", "/litmus/lockcoll/new.txt", `(<` + tokB + `>)`, true},
		{"etag of missing resource", "/litmus/lockcoll/new.txt", `([` + etag + `])`, false},
		{"not etag of missing resource", "/litmus/lockcoll/new.txt", `(Not [` + etag + `])`, true},

		// tagged lists: neon tags the lock root
		{"tagged root", "/litmus/lockcoll/new.txt", `<http://dav.example/litmus/lockcoll/> (<` + tokB + `>)`, true},
		{"tagged path", "/x", `</litmus/lockme> (<` + tokA + `> [` + etag + `])`, true},
		{"tagged wrong token", "/litmus/lockme", `</litmus/notlocked> (<` + tokA + `>)`, false},
		{"tagged, one list true", "/x", `</litmus/notlocked> (<` + tokA + `>) </litmus/lockme> (<` + tokA + `>)`, true},
		{"tag lists share resource", "/x", `</litmus/notlocked> (<` + tokA + `>) ([` + etag + `])`, true},
		// unmapped tags exist without state
		{"foreign host", "/litmus/lockme", `<http://elsewhere/litmus/lockme> (<` + tokA + `>)`, false},
		{"foreign host, Not", "/litmus/lockme", `<http://elsewhere/litmus/lockme> (Not <` + tokA + `>)`, true},
		{"foreign host, Not etag", "/litmus/lockme", `<http://elsewhere/litmus/lockme> (Not [` + etag + `])`, true},
	}
	for _, tt := range tests {
		h, err := ParseIf(tt.hdr)
		if err != nil {
			t.Fatalf("%s: ParseIf(%q): %v", tt.name, tt.hdr, err)
		}
		calls := map[string]int{}
		if got := h.Eval(tt.path, testResolve, world.state(calls)); got != tt.want {
			t.Errorf("%s: Eval(%q, %q) = %v, want %v", tt.name, tt.path, tt.hdr, got, tt.want)
		}
		for p, n := range calls {
			if n > 1 {
				t.Errorf("%s: state(%q) called %d times", tt.name, p, n)
			}
		}
	}
}

func TestIfEvalNilResolve(t *testing.T) {
	h, err := ParseIf(`</a> (Not <DAV:no-lock>)`)
	if err != nil {
		t.Fatal(err)
	}
	state := func(string) (string, []string, bool) { t.Fatal("state called"); return "", nil, false }
	if !h.Eval("/a", nil, state) {
		t.Error("Eval with nil resolve: Not on an unmapped resource should be true")
	}
}

func FuzzParseIf(f *testing.F) {
	for _, s := range []string{
		`(<` + tokA + `> ["3f2a"])`,
		`(<DAV:no-lock> ["3f2a"])`,
		`(<DAV:no-lock>)`,
		`(<` + tokA + `>) (Not <DAV:no-lock>)`,
		`(<` + tokA + `x>) (Not <DAV:no-lock>)`,
		`(<` + tokA + `> ["3f2a"]) (Not <DAV:no-lock> ["3f2a"])`,
		`(<` + tokA + `> ["3f2b"]) (Not <DAV:no-lock> ["3f2b"])`,
		`<http://localhost/litmus/lockcoll/> (<` + tokA + `>)`,
		`</specs/rfc2518.doc> (Not ["4217"]) ([W/"x"])`,
		"\t(not<a:b>[W/\"w\"])(NOT\t[\"s\"])",
		`(["a]b"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseIf(s)
		if err != nil {
			return
		}
		if len(h.Lists) == 0 {
			t.Fatalf("ParseIf(%q) accepted no lists", s)
		}
		out := h.String()
		if len(out) > maxIfHeaderLen {
			return
		}
		again, err := ParseIf(out)
		if err != nil {
			t.Fatalf("ParseIf(%q).String() = %q: %v", s, out, err)
		}
		if !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip of %q via %q:\n %+v\n %+v", s, out, h, again)
		}
		h.Tokens()
		h.Eval("/x", testResolve, func(string) (string, []string, bool) { return `"x"`, []string{"a:b"}, true })
	})
}
