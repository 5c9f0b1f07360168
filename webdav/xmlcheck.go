package webdav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrBodyTooLarge is returned by CheckXMLBody and ParseLockInfo when the
// request body is longer than the limit they were given. The handler answers
// 413 (Content Too Large).
var ErrBodyTooLarge = errors.New("webdav: request body too large")

// The two namespace names that XML Namespaces 1.0 reserves.
const (
	xmlNamespaceURI   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNamespaceURI = "http://www.w3.org/2000/xmlns/"
)

// xmlMaxDepth bounds element nesting in request bodies. WebDAV bodies are a
// handful of levels deep; property values with nested markup add a few more.
const xmlMaxDepth = 1000

// CheckXMLBody reads at most limit bytes of a WebDAV request body (PROPFIND,
// PROPPATCH, ...) and checks that it is a well-formed XML 1.0 document with
// correct namespace usage, which golang.org/x/net/webdav does not verify:
//
//   - every prefix used on an element or attribute is declared (xml is
//     predeclared; the xmlns prefix may not be used on elements);
//   - no prefix is undeclared with xmlns:p="" (forbidden by XML Namespaces
//     1.0; litmus's propfind_invalid2), while xmlns="" (undeclaring the
//     default namespace) is allowed;
//   - the xml and xmlns prefixes and namespace names are not rebound;
//   - attributes are unique both by name and by expanded name;
//   - start and end tags match, there is exactly one root element, no
//     non-whitespace text outside it, an XML declaration only at the very
//     start, and a DOCTYPE only before the root element.
//
// The document must be UTF-8, with or without a byte order mark; a
// declared encoding other than UTF-8 is rejected, as x/net/webdav could not
// read it either. Nesting deeper than 1000 elements is rejected.
//
// It returns the bytes read so the handler can hand them on. An empty body
// (zero bytes) is returned without error, since PROPFIND defines it as
// allprop; a body of only whitespace is an error. A body longer than limit
// gives ErrBodyTooLarge (so does an *http.MaxBytesError from r); any other
// error means the body is malformed (400 Bad Request), except errors from r
// itself, which are returned wrapped. A non-positive limit admits only an
// empty body.
func CheckXMLBody(r io.Reader, limit int64) ([]byte, error) {
	body, err := readXMLBody(r, limit)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return body, nil
	}
	t := newXMLTokenizer(body)
	for {
		if _, err := t.next(); err == io.EOF {
			return body, nil
		} else if err != nil {
			return nil, err
		}
	}
}

// readXMLBody reads all of r, failing with ErrBodyTooLarge if it holds more
// than limit bytes.
func readXMLBody(r io.Reader, limit int64) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	n := limit
	if n < 1<<62 {
		n++ // read one byte more than allowed to detect overflow
	}
	body, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrBodyTooLarge
		}
		return nil, fmt.Errorf("webdav: reading request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, ErrBodyTooLarge
	}
	return body, nil
}

// xmlTokKind says what an xmlTok is.
type xmlTokKind int

const (
	xmlTokStart xmlTokKind = iota
	xmlTokEnd
	xmlTokText
	xmlTokOther // comment, processing instruction, DOCTYPE
)

// xmlTok is one checked token of a document.
type xmlTok struct {
	kind   xmlTokKind
	prefix string     // element's prefix as written (start, end)
	name   xml.Name   // element's expanded name: Space is the namespace URI
	attrs  []xml.Attr // attributes as written, xmlns ones included (start)
	text   []byte     // character data, entities resolved (text)
}

// nsScope maps prefixes to namespace names through nested elements. The
// default namespace is the prefix "".
type nsScope struct {
	bind   map[string][]string // prefix → stack of bindings, innermost last
	frames [][]string          // prefixes declared by each open element
}

func newNSScope() *nsScope {
	return &nsScope{bind: map[string][]string{"xml": {xmlNamespaceURI}}}
}

// push opens an element's scope.
func (s *nsScope) push() { s.frames = append(s.frames, nil) }

// declare binds prefix in the innermost open scope.
func (s *nsScope) declare(prefix, uri string) {
	s.bind[prefix] = append(s.bind[prefix], uri)
	f := &s.frames[len(s.frames)-1]
	*f = append(*f, prefix)
}

// lookup returns prefix's current binding.
func (s *nsScope) lookup(prefix string) (string, bool) {
	st := s.bind[prefix]
	if len(st) == 0 {
		return "", false
	}
	return st[len(st)-1], true
}

// pop closes the innermost scope, dropping its declarations.
func (s *nsScope) pop() {
	last := len(s.frames) - 1
	for _, p := range s.frames[last] {
		st := s.bind[p]
		s.bind[p] = st[:len(st)-1]
	}
	s.frames = s.frames[:last]
}

// xmlTokenizer reads a document with encoding/xml's RawToken, which keeps
// prefixes but checks neither tag matching nor namespaces, and does both
// itself.
type xmlTokenizer struct {
	d        *xml.Decoder
	ns       *nsScope
	open     []xml.Name // raw names of the open elements
	ntok     int        // tokens returned so far
	rootSeen bool
	rootDone bool
	doctype  bool
}

func newXMLTokenizer(body []byte) *xmlTokenizer {
	// A UTF-8 byte order mark is legal (and sent by .NET clients), but
	// encoding/xml returns it as text outside the root element.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	ns := newNSScope()
	ns.bind[""] = []string{""} // unprefixed names start in no namespace
	return &xmlTokenizer{d: d, ns: ns}
}

func xmlErrorf(format string, args ...any) error {
	return fmt.Errorf("webdav: malformed XML body: "+format, args...)
}

// next returns the next token, io.EOF at a well-formed end of document, or
// an error describing the first violation.
func (t *xmlTokenizer) next() (xmlTok, error) {
	off := t.d.InputOffset()
	raw, err := t.d.RawToken()
	if err == io.EOF {
		switch {
		case !t.rootSeen:
			return xmlTok{}, xmlErrorf("no root element")
		case len(t.open) > 0:
			return xmlTok{}, xmlErrorf("unexpected end of document inside <%s>", qname(t.open[len(t.open)-1]))
		}
		return xmlTok{}, io.EOF
	}
	if err != nil {
		return xmlTok{}, xmlErrorf("%v", err)
	}
	t.ntok++
	switch tok := raw.(type) {
	case xml.StartElement:
		return t.start(tok)
	case xml.EndElement:
		return t.end(tok)
	case xml.CharData:
		if len(t.open) == 0 && !isXMLSpace(tok) {
			return xmlTok{}, xmlErrorf("text outside the root element")
		}
		return xmlTok{kind: xmlTokText, text: bytes.Clone(tok)}, nil
	case xml.ProcInst:
		if strings.EqualFold(tok.Target, "xml") {
			if tok.Target != "xml" || off != 0 || t.ntok != 1 {
				return xmlTok{}, xmlErrorf("misplaced XML declaration or reserved processing instruction target %q", tok.Target)
			}
		}
		return xmlTok{kind: xmlTokOther}, nil
	case xml.Directive:
		if t.rootSeen || t.doctype || !bytes.HasPrefix(tok, []byte("DOCTYPE")) {
			return xmlTok{}, xmlErrorf("misplaced or unknown <!%s", firstWord(tok))
		}
		t.doctype = true
		return xmlTok{kind: xmlTokOther}, nil
	case xml.Comment:
		return xmlTok{kind: xmlTokOther}, nil
	}
	return xmlTok{}, xmlErrorf("unexpected token %T", raw)
}

func (t *xmlTokenizer) start(tok xml.StartElement) (xmlTok, error) {
	if t.rootDone {
		return xmlTok{}, xmlErrorf("content after the root element")
	}
	if len(t.open) >= xmlMaxDepth {
		return xmlTok{}, xmlErrorf("elements nested deeper than %d", xmlMaxDepth)
	}
	t.rootSeen = true
	if !isNCName(tok.Name.Local) || tok.Name.Space == "xmlns" {
		return xmlTok{}, xmlErrorf("invalid element name <%s>", qname(tok.Name))
	}
	t.open = append(t.open, tok.Name)
	t.ns.push()

	// Namespace declarations first: they apply to the element's own name
	// and attributes whatever their order.
	for _, a := range tok.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if a.Value == xmlNamespaceURI || a.Value == xmlnsNamespaceURI {
				return xmlTok{}, xmlErrorf("default namespace may not be %q", a.Value)
			}
			t.ns.declare("", a.Value)
		case a.Name.Space == "xmlns":
			p, v := a.Name.Local, a.Value
			switch {
			case !isNCName(p):
				return xmlTok{}, xmlErrorf("invalid namespace prefix %q", p)
			case v == "":
				return xmlTok{}, xmlErrorf("prefix %q bound to the empty namespace name", p)
			case p == "xmlns":
				return xmlTok{}, xmlErrorf("the xmlns prefix may not be declared")
			case (p == "xml") != (v == xmlNamespaceURI):
				return xmlTok{}, xmlErrorf("the xml prefix and namespace may only be bound to each other")
			case v == xmlnsNamespaceURI:
				return xmlTok{}, xmlErrorf("namespace %q may not be bound", v)
			}
			t.ns.declare(p, v)
		}
	}

	uri, ok := t.ns.lookup(tok.Name.Space)
	if !ok {
		return xmlTok{}, xmlErrorf("undeclared namespace prefix %q on <%s>", tok.Name.Space, qname(tok.Name))
	}

	// Attributes: names valid, prefixes declared, no duplicates either as
	// written or as expanded names.
	type expanded struct{ space, local string }
	var seenRaw map[xml.Name]bool
	var seenExp map[expanded]bool
	if len(tok.Attr) > 1 {
		seenRaw = make(map[xml.Name]bool, len(tok.Attr))
		seenExp = make(map[expanded]bool, len(tok.Attr))
	}
	for _, a := range tok.Attr {
		if !isNCName(a.Name.Local) && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
			return xmlTok{}, xmlErrorf("invalid attribute name %q", qname(a.Name))
		}
		if seenRaw != nil {
			if seenRaw[a.Name] {
				return xmlTok{}, xmlErrorf("duplicate attribute %q on <%s>", qname(a.Name), qname(tok.Name))
			}
			seenRaw[a.Name] = true
		}
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		space := "" // unprefixed attributes are in no namespace
		if a.Name.Space != "" {
			if space, ok = t.ns.lookup(a.Name.Space); !ok {
				return xmlTok{}, xmlErrorf("undeclared namespace prefix %q on attribute %q", a.Name.Space, qname(a.Name))
			}
		}
		if seenExp != nil {
			e := expanded{space, a.Name.Local}
			if seenExp[e] {
				return xmlTok{}, xmlErrorf("duplicate attribute {%s}%s on <%s>", space, a.Name.Local, qname(tok.Name))
			}
			seenExp[e] = true
		}
	}
	return xmlTok{
		kind:   xmlTokStart,
		prefix: tok.Name.Space,
		name:   xml.Name{Space: uri, Local: tok.Name.Local},
		attrs:  tok.Attr,
	}, nil
}

func (t *xmlTokenizer) end(tok xml.EndElement) (xmlTok, error) {
	if len(t.open) == 0 {
		return xmlTok{}, xmlErrorf("unexpected </%s>", qname(tok.Name))
	}
	top := t.open[len(t.open)-1]
	if top != tok.Name {
		return xmlTok{}, xmlErrorf("</%s> closes <%s>", qname(tok.Name), qname(top))
	}
	uri, _ := t.ns.lookup(tok.Name.Space) // declared: checked at the start tag
	t.ns.pop()
	t.open = t.open[:len(t.open)-1]
	if len(t.open) == 0 {
		t.rootDone = true
	}
	return xmlTok{
		kind:   xmlTokEnd,
		prefix: tok.Name.Space,
		name:   xml.Name{Space: uri, Local: tok.Name.Local},
	}, nil
}

// qname renders a raw name as written.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// isNCName reports whether s is a name without colons. encoding/xml has
// already checked the characters; a colon survives in Local only when the
// name was "a:b:c", ":b" or "a:".
func isNCName(s string) bool {
	return s != "" && !strings.Contains(s, ":")
}

// isXMLSpace reports whether b is only XML white space (S production).
func isXMLSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

func firstWord(b []byte) string {
	if i := bytes.IndexAny(b, " \t\r\n["); i >= 0 {
		b = b[:i]
	}
	if len(b) > 20 {
		b = b[:20]
	}
	return string(b)
}
