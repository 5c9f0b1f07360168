package webdav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const litmusNS = "http://webdav.org/neon/litmus/"

// wellFormedBodies are request bodies CheckXMLBody must accept: the
// PROPFIND and PROPPATCH bodies of litmus's props tests (as neon sends
// them, or verbatim where litmus builds them itself) and other legal forms.
var wellFormedBodies = []string{
	// propfind_d0 (ne_propfind_named)
	xmlDecl + `<propfind xmlns="DAV:"><prop>` + "\n" +
		`<getcontentlength xmlns="DAV:"/>` + "\n" + `<getlastmodified xmlns="DAV:"/>` + "\n" +
		`<displayname xmlns="DAV:"/>` + "\n" + `<resourcetype xmlns="DAV:"/>` + "\n" +
		`<foo xmlns="` + litmusNS + `"/>` + "\n" + `<bar xmlns="` + litmusNS + `"/>` + "\n" +
		`</prop></propfind>` + "\n",
	// propset (ne_proppatch)
	xmlDecl + `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>` +
		`<prop0 xmlns="` + litmusNS + `">value0</prop0><prop1 xmlns="` + litmusNS + `">value1</prop1>` +
		`</D:prop></D:set></D:propertyupdate>` + "\n",
	// propdeletes
	xmlDecl + `<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><prop0 xmlns="` + litmusNS + `"/></D:prop></D:remove>` +
		`<D:set><D:prop><prop5 xmlns="` + litmusNS + `">newvalue5</prop5></D:prop></D:set></D:propertyupdate>`,
	// propnullns: xmlns="" undeclares the default namespace
	xmlDecl + `<propertyupdate xmlns="DAV:"><set><prop><nonamespace xmlns="">randomvalue</nonamespace></prop></set></propertyupdate>`,
	// prophighunicode
	xmlDecl + `<propertyupdate xmlns='DAV:'><set><prop><high-unicode xmlns='` + litmusNS + `'>&#65536;</high-unicode></prop></set></propertyupdate>`,
	xmlDecl + `<propertyupdate xmlns='DAV:'><set><prop><high-unicode xmlns='` + litmusNS + "'>\U00010000</high-unicode></prop></set></propertyupdate>",
	// propremoveset
	xmlDecl + `<propertyupdate xmlns='DAV:'>` +
		`<remove><prop><removeset xmlns='` + litmusNS + `'/></prop></remove>` +
		`<set><prop><removeset xmlns='` + litmusNS + `'>x</removeset></prop></set>` +
		`<set><prop><removeset xmlns='` + litmusNS + `'>y</removeset></prop></set>` +
		`</propertyupdate>`,
	// propvalnspace: a value with a nested foreign-namespace element
	xmlDecl + `<propertyupdate xmlns='DAV:'><set><prop>` +
		`<t:valnspace xmlns:t='` + litmusNS + `'><foo xmlns='bar'/></t:valnspace>` +
		`</prop></set></propertyupdate>`,
	// propwformed, propextended
	xmlDecl + `<propfind xmlns='DAV:'><prop><valnspace xmlns='` + litmusNS + `'/></prop></propfind>`,
	xmlDecl + `<propfind xmlns="DAV:"><foobar/><allprop/></propfind>`,
	// propmanyns: relative namespace names are deprecated but legal
	xmlDecl + `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>` +
		`<somename xmlns="alpha">manynsvalue</somename><somename xmlns="beta">manynsvalue</somename>` +
		`<somename xmlns="kappa">manynsvalue</somename></D:prop></D:set></D:propertyupdate>`,
	// deeper values, prefixed and xml: attributes, mixed content
	`<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/standards/z39.50/"><D:set><D:prop>` +
		`<Z:Authors xml:lang="en" Z:kind='people'><Z:Author>Jim &amp; <b xmlns="">Roy</b></Z:Author><Z:Author/></Z:Authors>` +
		`</D:prop></D:set></D:propertyupdate>`,
	// an allowed rebinding and redundant declarations
	`<a:x xmlns:a="urn:1"><a:y xmlns:a="urn:2"><a:z xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:space="preserve"/></a:y></a:x>`,
	// attributes with the same local name in different namespaces
	`<x xmlns:p="urn:p" xmlns:q="urn:q" p:a="1" q:a="2" a="3"/>`,
	// prolog and epilogue: comments, processing instructions, DOCTYPE
	xmlDecl + "<!-- hi --><?pi data?>\n<!DOCTYPE propfind>\n<propfind xmlns=\"DAV:\"><propname/></propfind>\n<!-- bye --><?pi?>\n",
	// CDATA, character references, CR LF line ends
	"<D:propfind xmlns:D=\"DAV:\">\r\n<D:prop><x xmlns=\"urn:x\"><![CDATA[<not markup>]]>&#x41;&lt;&gt;&amp;&apos;&quot;</x></D:prop>\r\n</D:propfind>",
	// byte order mark
	"\xef\xbb\xbf" + xmlDecl + `<propfind xmlns="DAV:"><allprop/></propfind>`,
	"\xef\xbb\xbf<propfind xmlns=\"DAV:\"><allprop/></propfind>",
	// no declaration; single quotes; empty root
	`<propfind xmlns='DAV:'/>`,
	`<root/>`,
}

func TestCheckXMLBodyAccepts(t *testing.T) {
	for _, body := range wellFormedBodies {
		got, err := CheckXMLBody(strings.NewReader(body), int64(len(body)))
		if err != nil {
			t.Errorf("CheckXMLBody(%q): %v", body, err)
			continue
		}
		if string(got) != body {
			t.Errorf("CheckXMLBody(%q) returned %q", body, got)
		}
	}
	got, err := CheckXMLBody(strings.NewReader(""), 100)
	if err != nil || len(got) != 0 {
		t.Errorf("empty body: %q, %v", got, err)
	}
}

func TestCheckXMLBodyRejects(t *testing.T) {
	deep := strings.Repeat("<a>", xmlMaxDepth+1) + strings.Repeat("</a>", xmlMaxDepth+1)
	tests := []struct{ name, body string }{
		{"propfind_invalid", "<foo>"},
		{"propfind_invalid2", `<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>`},
		{"undeclared element prefix", `<D:propfind><D:allprop/></D:propfind>`},
		{"undeclared inner prefix", `<propfind xmlns="DAV:"><prop><x:foo/></prop></propfind>`},
		{"prefix out of scope", `<r><a xmlns:x="urn:x"/><x:b/></r>`},
		{"undeclared attribute prefix", `<r x:a="1"/>`},
		{"xmlns element prefix", `<xmlns:r/>`},
		{"xmlns prefix declared", `<r xmlns:xmlns="urn:x"/>`},
		{"xml prefix rebound", `<r xmlns:xml="urn:x"/>`},
		{"xml namespace on other prefix", `<r xmlns:p="http://www.w3.org/XML/1998/namespace"/>`},
		{"xml namespace as default", `<r xmlns="http://www.w3.org/XML/1998/namespace"/>`},
		{"xmlns namespace bound", `<r xmlns:p="http://www.w3.org/2000/xmlns/"/>`},
		{"xmlns namespace as default", `<r xmlns="http://www.w3.org/2000/xmlns/"/>`},
		{"two colons", `<a:b:c xmlns:a="urn:a"/>`},
		{"leading colon", `<:a/>`},
		{"trailing colon", `<a: />`},
		{"colon attribute", `<a :b="1"/>`},
		{"bad prefix declaration", `<a xmlns:="urn:a"/>`},
		{"duplicate attribute", `<a x="1" x="2"/>`},
		{"duplicate declaration", `<a xmlns:p="urn:1" xmlns:p="urn:2"/>`},
		{"duplicate expanded attribute", `<a xmlns:p="urn:u" xmlns:q="urn:u" p:x="1" q:x="2"/>`},
		{"mismatched end", `<a></b>`},
		{"end with other prefix", `<p:a xmlns:p="urn:u" xmlns:q="urn:u"></q:a>`},
		{"stray end", `<a/></a>`},
		{"unclosed", `<a><b></b>`},
		{"two roots", `<a/><b/>`},
		{"text before root", `x<a/>`},
		{"text after root", `<a/>x`},
		{"only white space", " \n"},
		{"two byte order marks", "\xef\xbb\xbf\xef\xbb\xbf<a/>"},
		{"text ]]>", "<a>]]></a>"},
		{"only a comment", `<!-- x -->`},
		{"late declaration", ` <?xml version="1.0"?><a/>`},
		{"declaration after comment", `<!-- x --><?xml version="1.0"?><a/>`},
		{"reserved target", `<?XML version="1.0"?><a/>`},
		{"declaration inside", `<a><?xml version="1.0"?></a>`},
		{"xml 1.1", `<?xml version="1.1"?><a/>`},
		{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`},
		{"doctype after root", `<a/><!DOCTYPE a>`},
		{"doctype inside", `<a><!DOCTYPE a></a>`},
		{"two doctypes", `<!DOCTYPE a><!DOCTYPE a><a/>`},
		{"entity directive", `<!ENTITY x "y"><a/>`},
		{"undefined entity", `<a>&foo;</a>`},
		{"NUL reference", `<a>&#0;</a>`},
		{"control character", "<a>\x01</a>"},
		{"invalid UTF-8", "<a>\xff</a>"},
		{"unquoted attribute", `<a x=1/>`},
		{"attribute without value", `<a x/>`},
		{"lt in attribute", `<a x="<"/>`},
		{"double dash comment", `<a><!-- a -- b --></a>`},
		{"too deep", deep},
	}
	for _, tt := range tests {
		if _, err := CheckXMLBody(strings.NewReader(tt.body), 1<<20); err == nil {
			t.Errorf("%s: CheckXMLBody(%q) accepted", tt.name, tt.body)
		} else if errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	ok := strings.Repeat("<a>", xmlMaxDepth) + strings.Repeat("</a>", xmlMaxDepth)
	if _, err := CheckXMLBody(strings.NewReader(ok), 1<<20); err != nil {
		t.Errorf("nesting of %d: %v", xmlMaxDepth, err)
	}
}

func TestCheckXMLBodyLimit(t *testing.T) {
	body := `<propfind xmlns="DAV:"><allprop/></propfind>`
	n := int64(len(body))
	if _, err := CheckXMLBody(strings.NewReader(body), n); err != nil {
		t.Errorf("body of exactly the limit: %v", err)
	}
	for _, limit := range []int64{n - 1, 0, -1} {
		if _, err := CheckXMLBody(strings.NewReader(body), limit); !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("limit %d: %v, want ErrBodyTooLarge", limit, err)
		}
	}
	// an endless body stops at the limit
	if _, err := CheckXMLBody(endless{}, 1<<16); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("endless body: %v, want ErrBodyTooLarge", err)
	}
	// http.MaxBytesReader's error maps to ErrBodyTooLarge
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body)), 5)
	if _, err := CheckXMLBody(r, 1<<16); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("MaxBytesReader: %v, want ErrBodyTooLarge", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func FuzzCheckXMLBody(f *testing.F) {
	for _, b := range wellFormedBodies {
		f.Add([]byte(b), int64(1<<16))
	}
	f.Add([]byte(`<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>`), int64(1<<16))
	f.Add([]byte(`<a xmlns:p="urn:u" xmlns:q="urn:u" p:x="1" q:x="2"/>`), int64(1<<16))
	f.Add([]byte(`<propfind xmlns="DAV:"><allprop/></propfind>`), int64(10))
	f.Fuzz(func(t *testing.T, body []byte, limit int64) {
		got, err := CheckXMLBody(bytes.NewReader(body), limit)
		if int64(len(body)) > max(limit, 0) {
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("body of %d bytes, limit %d: %v", len(body), limit, err)
			}
			return
		}
		if errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("body of %d bytes within limit %d: ErrBodyTooLarge", len(body), limit)
		}
		if err != nil || len(body) == 0 {
			return
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("returned %q for %q", got, body)
		}
		// What CheckXMLBody accepts, encoding/xml's namespace-aware,
		// tag-matching reader must read to the end.
		d := xml.NewDecoder(bytes.NewReader(body))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("accepted %q, but encoding/xml says %v", body, err)
			}
		}
	})
}
