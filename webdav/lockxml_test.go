package webdav

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const xmlDecl = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// neonLockBody is the body neon (and so litmus) sends with LOCK.
func neonLockBody(scope, owner string) string {
	return xmlDecl + "<lockinfo xmlns='DAV:'>\n <lockscope><" + scope + "/></lockscope>\n" +
		"<locktype><write/></locktype><owner>" + owner + "</owner>\n</lockinfo>\n"
}

func TestParseLockInfo(t *testing.T) {
	tests := []struct {
		name, body string
		want       LockInfo
	}{
		{"litmus exclusive", neonLockBody("exclusive", "litmus test suite"),
			LockInfo{Exclusive: true, Owner: "litmus test suite"}},
		{"litmus shared", neonLockBody("shared", "litmus: notowner_sharedlock"),
			LockInfo{Shared: true, Owner: "litmus: notowner_sharedlock"}},
		{"empty body is a refresh", "", LockInfo{Empty: true}},
		{"white space body is a refresh", " \r\n\t", LockInfo{Empty: true}},
		{"no owner", `<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>`,
			LockInfo{Exclusive: true}},
		{"empty owner", `<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner/></lockinfo>`,
			LockInfo{Shared: true}},
		// RFC 4918 §9.10.7: owner with an href in DAV:, via a prefix
		{"rfc owner href", xmlDecl + `<D:lockinfo xmlns:D='DAV:'>
  <D:lockscope><D:exclusive/></D:lockscope>
  <D:locktype><D:write/></D:locktype>
  <D:owner>
    <D:href>http://example.org/~ejw/contact.html</D:href>
  </D:owner>
</D:lockinfo>`, LockInfo{Exclusive: true, Owner: "\n    <D:href xmlns:D=\"DAV:\">http://example.org/~ejw/contact.html</D:href>\n  "}},
		// default namespace inherited from lockinfo
		{"owner href default ns", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner><href>mailto:a@b</href></owner></lockinfo>`,
			LockInfo{Exclusive: true, Owner: `<href xmlns="DAV:">mailto:a@b</href>`}},
		// foreign namespaces declared on ancestors, nested elements,
		// attributes with prefixes, declarations made inside the owner kept,
		// escapes re-escaped, CDATA as text, comments dropped
		{"owner foreign namespaces", `<?xml version="1.0"?>
<x:lockinfo xmlns:x="DAV:" xmlns:o="urn:owner" xmlns:a="urn:attr" xmlns="urn:default">
<x:lockscope><x:exclusive/></x:lockscope><x:locktype><x:write/></x:locktype>
<x:owner>Tom &amp; Jerry &lt;3 <o:person a:role="r&quot;1" plain='v'><name>T<!-- c --><![CDATA[<x>]]></name><o:mail xmlns:m="urn:m" m:kind="work">t@x</o:mail><n xmlns="">none</n></o:person></x:owner>
</x:lockinfo>`, LockInfo{Exclusive: true, Owner: `Tom &amp; Jerry &lt;3 ` +
			`<o:person xmlns:o="urn:owner" xmlns:a="urn:attr" a:role="r&quot;1" plain="v">` +
			`<name xmlns="urn:default">T&lt;x&gt;</name>` +
			`<o:mail xmlns:m="urn:m" m:kind="work">t@x</o:mail>` +
			`<n xmlns="">none</n></o:person>`}},
		// a prefix rebound inside the owner
		{"owner rebinds prefix", `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:x/><D:y xmlns:D="urn:other"><D:z/></D:y><D:w/></D:owner></D:lockinfo>`,
			LockInfo{Shared: true, Owner: `<D:x xmlns:D="DAV:"></D:x><D:y xmlns:D="urn:other"><D:z></D:z></D:y><D:w xmlns:D="DAV:"></D:w>`}},
		// unprefixed element in no namespace gets xmlns=""
		{"owner no namespace", `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><who>me</who>&#13;&#x10000;</D:owner></D:lockinfo>`,
			LockInfo{Shared: true, Owner: "<who xmlns=\"\">me</who>&#xD;\U00010000"}},
		// whitespace in attributes survives normalisation
		{"owner attribute white space", `<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner><a xmlns="" v="&#9;&#10;&#13;"/></owner></lockinfo>`,
			LockInfo{Shared: true, Owner: `<a xmlns="" v="&#x9;&#xA;&#xD;"></a>`}},
		// unknown elements anywhere are ignored (RFC 4918 §17)
		{"extensions", `<lockinfo xmlns="DAV:" xmlns:e="urn:ext"><e:x><lockscope><shared/></lockscope></e:x><lockscope><e:y/><exclusive/></lockscope><foo/><locktype><write/><e:z/></locktype></lockinfo>`,
			LockInfo{Exclusive: true}},
	}
	for _, tt := range tests {
		got, err := ParseLockInfo(strings.NewReader(tt.body), 1<<16)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

// TestLockOwnerRoundTrip checks that owners come out namespace-complete:
// embedded in a lockdiscovery response under arbitrary prefixes, every
// element resolves to the same expanded names as in the request.
func TestLockOwnerRoundTrip(t *testing.T) {
	bodies := []string{
		`<x:lockinfo xmlns:x="DAV:" xmlns:o="urn:owner" xmlns:a="urn:attr" xmlns="urn:default"><x:lockscope><x:exclusive/></x:lockscope><x:locktype><x:write/></x:locktype><x:owner>Tom <o:person a:role="r"><name>T</name><o:mail xmlns:m="urn:m" m:kind="w">t@x</o:mail><n xmlns="">none</n><x:href>h</x:href></o:person></x:owner></x:lockinfo>`,
		`<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner><href>h</href><D:y xmlns:D="urn:other" xmlns="urn:z"><D:z/><q/></D:y></owner></lockinfo>`,
	}
	for _, body := range bodies {
		li, err := ParseLockInfo(strings.NewReader(body), 1<<16)
		if err != nil {
			t.Fatalf("ParseLockInfo: %v", err)
		}
		in := ownerNames(t, body)
		for _, wrap := range []string{
			LockDiscoveryXML([]ActiveLock{{Token: tokA, Owner: li.Owner}}),
			lockResponse(t, ActiveLock{Token: tokA, Owner: li.Owner}),
		} {
			doc := `<r xmlns="urn:confuse" xmlns:o="urn:confuse" xmlns:D="urn:confuse">` + strings.TrimPrefix(wrap, xmlDecl) + `</r>`
			out := ownerNames(t, doc)
			if strings.Join(in, " ") != strings.Join(out, " ") {
				t.Errorf("owner %q\nin:  %q\nout: %q", li.Owner, in, out)
			}
		}
	}
}

// ownerNames lists the expanded names of elements and attributes inside the
// first DAV:owner element of doc, and its text.
func ownerNames(t *testing.T, doc string) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var out []string
	depth := -1
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%v in %s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth >= 0 {
				depth++
				out = append(out, "<{"+tok.Name.Space+"}"+tok.Name.Local)
				for _, a := range tok.Attr {
					if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
						out = append(out, "@{"+a.Name.Space+"}"+a.Name.Local+"="+a.Value)
					}
				}
			} else if tok.Name.Space == davNS && tok.Name.Local == "owner" {
				depth = 0
			}
		case xml.EndElement:
			if depth == 0 {
				return out
			}
			if depth > 0 {
				depth--
				out = append(out, ">")
			}
		case xml.CharData:
			if depth >= 0 {
				out = append(out, string(tok))
			}
		}
	}
}

func lockResponse(t *testing.T, l ActiveLock) string {
	t.Helper()
	var b strings.Builder
	if err := WriteLockResponse(&b, l); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseLockInfoErrors(t *testing.T) {
	const scopeType = `<lockscope><exclusive/></lockscope><locktype><write/></locktype>`
	tests := []struct {
		name, body  string
		unsupported bool
	}{
		{"not xml", "lock please", false},
		{"unclosed", `<lockinfo xmlns="DAV:">` + scopeType, false},
		{"wrong root", `<propfind xmlns="DAV:">` + scopeType + `</propfind>`, false},
		{"root by prefix only", `<D:lockinfo xmlns:D="urn:notdav"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`, false},
		{"no namespace", `<lockinfo><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>`, false},
		{"no lockscope", `<lockinfo xmlns="DAV:"><locktype><write/></locktype></lockinfo>`, false},
		{"no locktype", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope></lockinfo>`, false},
		{"empty lockscope", `<lockinfo xmlns="DAV:"><lockscope/><locktype><write/></locktype></lockinfo>`, false},
		{"empty locktype", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype/></lockinfo>`, false},
		{"both scopes", `<lockinfo xmlns="DAV:"><lockscope><exclusive/><shared/></lockscope><locktype><write/></locktype></lockinfo>`, false},
		{"two lockscopes", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope>` + scopeType + `</lockinfo>`, false},
		{"two locktypes", `<lockinfo xmlns="DAV:">` + scopeType + `<locktype><write/></locktype></lockinfo>`, false},
		{"two owners", `<lockinfo xmlns="DAV:">` + scopeType + `<owner>a</owner><owner>b</owner></lockinfo>`, false},
		{"scope in other namespace", `<lockinfo xmlns="DAV:" xmlns:e="urn:e"><lockscope><e:exclusive/></lockscope><locktype><write/></locktype></lockinfo>`, true},
		{"unknown scope", `<lockinfo xmlns="DAV:"><lockscope><partial/></lockscope><locktype><write/></locktype></lockinfo>`, true},
		{"read lock", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><read/></locktype></lockinfo>`, true},
		{"bad namespace in owner", `<lockinfo xmlns="DAV:">` + scopeType + `<owner><x:y/></owner></lockinfo>`, false},
		{"empty prefix binding", `<lockinfo xmlns="DAV:">` + scopeType + `<owner><x:y xmlns:x=""/></owner></lockinfo>`, false},
		{"trailing element", `<lockinfo xmlns="DAV:">` + scopeType + `</lockinfo><more/>`, false},
		{"trailing text", `<lockinfo xmlns="DAV:">` + scopeType + `</lockinfo>x`, false},
	}
	for _, tt := range tests {
		got, err := ParseLockInfo(strings.NewReader(tt.body), 1<<16)
		if err == nil {
			t.Errorf("%s: ParseLockInfo = %+v, want error", tt.name, got)
			continue
		}
		if errors.Is(err, ErrUnsupportedLock) != tt.unsupported {
			t.Errorf("%s: error %v, want unsupported=%v", tt.name, err, tt.unsupported)
		}
		if errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("%s: error %v", tt.name, err)
		}
	}
}

func TestParseLockInfoLimit(t *testing.T) {
	body := neonLockBody("exclusive", "litmus test suite")
	n := int64(len(body))
	if _, err := ParseLockInfo(strings.NewReader(body), n); err != nil {
		t.Errorf("body of exactly the limit: %v", err)
	}
	if _, err := ParseLockInfo(strings.NewReader(body), n-1); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("body over the limit: %v, want ErrBodyTooLarge", err)
	}
	if _, err := ParseLockInfo(strings.NewReader(""), 0); err != nil {
		t.Errorf("empty body, limit 0: %v", err)
	}
	boom := errors.New("boom")
	if _, err := ParseLockInfo(iotest.ErrReader(boom), 100); !errors.Is(err, boom) {
		t.Errorf("read error: %v, want wrapped boom", err)
	}
}

func TestParseTimeout(t *testing.T) {
	const week = 7 * 24 * 3600
	tests := []struct {
		in       string
		seconds  int64
		infinite bool
		bad      bool
	}{
		{"", week, false, false},
		{"Second-3600", 3600, false, false},
		{"second-60", 60, false, false},
		{" Second-1 ", 1, false, false},
		{"Second-0", 1, false, false},
		{"Second-604800", week, false, false},
		{"Second-604801", week, false, false},
		{"Second-4100000000", week, false, false},
		{"Second-99999999999999999999999", week, false, false},
		{"Infinite", week, true, false},
		{"infinite", week, true, false},
		{"Infinite, Second-4100000000", week, true, false}, // Windows
		{"Second-600, Infinite", 600, false, false},
		{"Extension-1, Second-30", 30, false, false},
		{"Extension-1", week, false, false},
		{",,", week, false, false},
		{"Second-", 0, false, true},
		{"Second-abc", 0, false, true},
		{"Second--1", 0, false, true},
		{"Second-1.5", 0, false, true},
		{"Second- 1", 0, false, true},
	}
	for _, tt := range tests {
		s, inf, err := ParseTimeout(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseTimeout(%q) = %d, %v; want error", tt.in, s, inf)
			}
			continue
		}
		if err != nil || s != tt.seconds || inf != tt.infinite {
			t.Errorf("ParseTimeout(%q) = %d, %v, %v; want %d, %v", tt.in, s, inf, err, tt.seconds, tt.infinite)
		}
	}
}

func TestLockDiscoveryXML(t *testing.T) {
	locks := []ActiveLock{
		{Token: tokA, Root: "/litmus/lockme", Owner: "litmus test suite", TimeoutSeconds: 3600},
		{Token: tokB, Root: "/a%20b/c&d", Shared: true, Infinite: true, Owner: `<href xmlns="DAV:">x</href>`, InfiniteTimeout: true},
		{Token: "opaquelocktoken:x", TimeoutSeconds: -5},
	}
	want := `<activelock xmlns="DAV:"><locktype><write/></locktype><lockscope><exclusive/></lockscope><depth>0</depth>` +
		`<owner>litmus test suite</owner><timeout>Second-3600</timeout>` +
		`<locktoken><href>` + tokA + `</href></locktoken><lockroot><href>/litmus/lockme</href></lockroot></activelock>` +
		`<activelock xmlns="DAV:"><locktype><write/></locktype><lockscope><shared/></lockscope><depth>infinity</depth>` +
		`<owner><href xmlns="DAV:">x</href></owner><timeout>Infinite</timeout>` +
		`<locktoken><href>` + tokB + `</href></locktoken><lockroot><href>/a%20b/c&amp;d</href></lockroot></activelock>` +
		`<activelock xmlns="DAV:"><locktype><write/></locktype><lockscope><exclusive/></lockscope><depth>0</depth>` +
		`<timeout>Second-0</timeout><locktoken><href>opaquelocktoken:x</href></locktoken></activelock>`
	got := LockDiscoveryXML(locks)
	if got != want {
		t.Errorf("LockDiscoveryXML =\n%s\nwant\n%s", got, want)
	}
	var b strings.Builder
	if err := WriteLockDiscovery(&b, locks); err != nil || b.String() != want {
		t.Errorf("WriteLockDiscovery wrote %q, %v", b.String(), err)
	}
	if LockDiscoveryXML(nil) != "" {
		t.Error("LockDiscoveryXML(nil) not empty")
	}
	// embeddable anywhere: well-formed and in DAV: under a foreign default
	checkDAVElements(t, `<x xmlns="urn:other">`+got+`</x>`, "activelock", "owner", "href", "timeout")
}

func TestWriteLockResponse(t *testing.T) {
	got := lockResponse(t, ActiveLock{Token: tokA, Root: "/litmus/lockme", Owner: "litmus test suite", TimeoutSeconds: 3600})
	want := xmlDecl + `<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>` +
		`<D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope><D:depth>0</D:depth>` +
		`<D:owner>litmus test suite</D:owner><D:timeout>Second-3600</D:timeout>` +
		`<D:locktoken><D:href>` + tokA + `</D:href></D:locktoken><D:lockroot><D:href>/litmus/lockme</D:href></D:lockroot>` +
		`</D:activelock></D:lockdiscovery></D:prop>` + "\n"
	if got != want {
		t.Errorf("WriteLockResponse =\n%s\nwant\n%s", got, want)
	}
	if _, err := CheckXMLBody(strings.NewReader(got), 1<<16); err != nil {
		t.Errorf("lock response not well-formed: %v", err)
	}
	if err := WriteLockResponse(errWriter{}, ActiveLock{}); err == nil {
		t.Error("write error not returned")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestSupportedLockXML(t *testing.T) {
	s := SupportedLockXML()
	checkDAVElements(t, `<x xmlns="urn:other">`+s+`</x>`, "lockentry", "exclusive", "shared", "write")
}

// checkDAVElements checks doc is well-formed and each of names occurs as
// an element in DAV:.
func checkDAVElements(t *testing.T, doc string, names ...string) {
	t.Helper()
	if _, err := CheckXMLBody(strings.NewReader(doc), 1<<20); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	found := map[string]bool{}
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == davNS {
			found[se.Name.Local] = true
		}
	}
	for _, n := range names {
		if !found[n] {
			t.Errorf("no DAV:%s in %s", n, doc)
		}
	}
}

func FuzzParseLockInfo(f *testing.F) {
	f.Add(neonLockBody("exclusive", "litmus test suite"), int64(4096))
	f.Add(neonLockBody("shared", "<href>x</href>"), int64(4096))
	f.Add(`<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>http://example.org/~ejw/contact.html</D:href></D:owner></D:lockinfo>`, int64(4096))
	f.Add(`<x:lockinfo xmlns:x="DAV:" xmlns:o="urn:owner" xmlns:a="urn:attr" xmlns="urn:default"><x:lockscope><x:exclusive/></x:lockscope><x:locktype><x:write/></x:locktype><x:owner>Tom &amp; <o:person a:role="r"><name>T<![CDATA[<x>]]></name><n xmlns="">none</n></o:person></x:owner></x:lockinfo>`, int64(4096))
	f.Add(`<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><read/></locktype></lockinfo>`, int64(4096))
	f.Add("", int64(0))
	f.Add(neonLockBody("exclusive", "x"), int64(10))
	f.Fuzz(func(t *testing.T, body string, limit int64) {
		li, err := ParseLockInfo(strings.NewReader(body), limit)
		if int64(len(body)) > max(limit, 0) {
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("body of %d bytes, limit %d: %v", len(body), limit, err)
			}
			return
		}
		if errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("body of %d bytes within limit %d: ErrBodyTooLarge", len(body), limit)
		}
		if err != nil {
			return
		}
		if li.Empty {
			if li.Shared || li.Exclusive || li.Owner != "" {
				t.Fatalf("empty with content: %+v", li)
			}
			return
		}
		if li.Shared == li.Exclusive {
			t.Fatalf("scope: %+v", li)
		}
		// The owner must embed into any document, and parse back the same.
		doc := `<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner>` + li.Owner + `</owner></lockinfo>`
		li2, err := ParseLockInfo(strings.NewReader(doc), 1<<30)
		if err != nil {
			t.Fatalf("owner %q does not embed: %v", li.Owner, err)
		}
		if li2.Owner != li.Owner {
			t.Fatalf("owner %q re-parses as %q", li.Owner, li2.Owner)
		}
		if _, err := CheckXMLBody(strings.NewReader(lockResponse(t, ActiveLock{Token: tokA, Owner: li.Owner})), 1<<30); err != nil {
			t.Fatalf("lock response with owner %q: %v", li.Owner, err)
		}
	})
}
