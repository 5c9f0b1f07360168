package webdav_test

// Parsing of WebDAV response bodies for the handler tests: multistatus
// (PROPFIND, PROPPATCH), lock discovery and error bodies, with namespaces
// resolved, so assertions compare meaning rather than prefixes.

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// xnode is an XML element with its namespaces resolved.
type xnode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xnode    `xml:",any"`
	Text     string     `xml:",chardata"`
}

// canon renders the element independently of prefixes, namespace
// declarations and attribute order: two elements with the same canon mean
// the same XML.
func (x xnode) canon() string {
	var b strings.Builder
	x.writeCanon(&b)
	return b.String()
}

func (x xnode) writeCanon(b *strings.Builder) {
	fmt.Fprintf(b, "{%s}%s", x.XMLName.Space, x.XMLName.Local)
	var attrs []string
	for _, a := range x.Attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue // a declaration, not content
		}
		attrs = append(attrs, fmt.Sprintf("{%s}%s=%q", a.Name.Space, a.Name.Local, a.Value))
	}
	sort.Strings(attrs)
	if len(attrs) > 0 {
		b.WriteString("(" + strings.Join(attrs, " ") + ")")
	}
	b.WriteString("[")
	if t := strings.TrimSpace(x.Text); t != "" {
		b.WriteString(strconv.Quote(t))
	}
	for _, c := range x.Children {
		c.writeCanon(b)
	}
	b.WriteString("]")
}

// child returns the first child element with the given name.
func (x xnode) child(space, local string) (xnode, bool) {
	for _, c := range x.Children {
		if c.XMLName.Space == space && c.XMLName.Local == local {
			return c, true
		}
	}
	return xnode{}, false
}

// find returns the descendants (x included) with the given name, depth
// first.
func (x xnode) find(space, local string) []xnode {
	var out []xnode
	if x.XMLName.Space == space && x.XMLName.Local == local {
		out = append(out, x)
	}
	for _, c := range x.Children {
		out = append(out, c.find(space, local)...)
	}
	return out
}

// parseXML decodes one XML document or fragment into an xnode.
func parseXML(tb testing.TB, doc []byte) xnode {
	tb.Helper()
	var x xnode
	if err := xml.Unmarshal(doc, &x); err != nil {
		tb.Fatalf("response is not well-formed XML: %v\n%s", err, doc)
	}
	return x
}

type msMultistatus struct {
	XMLName   xml.Name     `xml:"DAV: multistatus"`
	Responses []msResponse `xml:"DAV: response"`
}

type msResponse struct {
	Hrefs    []string     `xml:"DAV: href"`
	Status   string       `xml:"DAV: status"`
	Propstat []msPropstat `xml:"DAV: propstat"`
}

type msPropstat struct {
	Prop struct {
		Any []xnode `xml:",any"`
	} `xml:"DAV: prop"`
	Status string `xml:"DAV: status"`
	Error  *xnode `xml:"DAV: error"`
}

// davProp is one property as a multistatus reported it.
type davProp struct {
	status int
	node   xnode  // the property element
	err    *xnode // the propstat's DAV:error, if any
}

// davResource is one DAV:response of a multistatus.
type davResource struct {
	href   string // as sent
	path   string // unescaped, without a trailing slash (except "/")
	status int    // the response-level status, 0 if it has propstats
	props  map[xml.Name]davProp
}

// value is the text of a property reported with 200, and whether it was.
func (r davResource) value(space, local string) (string, bool) {
	p, ok := r.props[xml.Name{Space: space, Local: local}]
	if !ok || p.status != http.StatusOK {
		return "", false
	}
	return strings.TrimSpace(p.node.Text), true
}

// statusOf parses "HTTP/1.1 200 OK".
func statusOf(tb testing.TB, line string) int {
	tb.Helper()
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		tb.Fatalf("malformed DAV:status %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		tb.Fatalf("malformed DAV:status %q", line)
	}
	return code
}

// hrefPath turns an href (a path or an absolute URL) into a clean,
// unescaped path.
func hrefPath(tb testing.TB, href string) string {
	tb.Helper()
	u, err := url.Parse(href)
	if err != nil {
		tb.Fatalf("malformed href %q: %v", href, err)
	}
	p := u.Path
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// parseMultistatus decodes a 207 body, keyed by unescaped path.
func parseMultistatus(tb testing.TB, body []byte) map[string]davResource {
	tb.Helper()
	var ms msMultistatus
	if err := xml.Unmarshal(body, &ms); err != nil {
		tb.Fatalf("not a DAV:multistatus: %v\n%s", err, body)
	}
	out := make(map[string]davResource, len(ms.Responses))
	for _, r := range ms.Responses {
		if len(r.Hrefs) != 1 {
			tb.Fatalf("a DAV:response with %d hrefs: %s", len(r.Hrefs), body)
		}
		res := davResource{href: r.Hrefs[0], path: hrefPath(tb, r.Hrefs[0]), props: map[xml.Name]davProp{}}
		if r.Status != "" {
			res.status = statusOf(tb, r.Status)
		}
		for _, ps := range r.Propstat {
			code := statusOf(tb, ps.Status)
			for _, p := range ps.Prop.Any {
				if _, dup := res.props[p.XMLName]; dup {
					tb.Errorf("%s: property %v reported twice", res.path, p.XMLName)
				}
				res.props[p.XMLName] = davProp{status: code, node: p, err: ps.Error}
			}
		}
		if _, dup := out[res.path]; dup {
			tb.Fatalf("%s listed twice in a multistatus: %s", res.path, body)
		}
		out[res.path] = res
	}
	return out
}

// propfindBody asks for the named properties ("space local" pairs).
func propfindBody(names ...xml.Name) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>`)
	for i, n := range names {
		if n.Space == "" {
			fmt.Fprintf(&b, `<%s xmlns=""/>`, n.Local)
			continue
		}
		fmt.Fprintf(&b, `<p%d:%s xmlns:p%d="%s"/>`, i, n.Local, i, n.Space)
	}
	b.WriteString(`</D:prop></D:propfind>`)
	return b.String()
}

const allpropBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`

// propertyupdate builds a PROPPATCH body from raw property elements.
func propertyupdate(set, remove string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:">`)
	if remove != "" {
		b.WriteString(`<D:remove><D:prop>` + remove + `</D:prop></D:remove>`)
	}
	if set != "" {
		b.WriteString(`<D:set><D:prop>` + set + `</D:prop></D:set>`)
	}
	b.WriteString(`</D:propertyupdate>`)
	return b.String()
}

// propfind sends a PROPFIND, requires 207 with an XML body and returns
// the resources it lists.
func (n *testNode) propfind(tb testing.TB, target, depth, body string) map[string]davResource {
	tb.Helper()
	h := hdr{"Content-Type": "application/xml"}
	if depth != "" {
		h["Depth"] = depth
	}
	r := n.must(tb, http.StatusMultiStatus, "PROPFIND", target, body, h)
	if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
		tb.Fatalf("PROPFIND %s: Content-Type %q, want XML", target, ct)
	}
	return parseMultistatus(tb, r.body)
}

// prop returns one property of one resource through PROPFIND Depth 0.
func (n *testNode) prop(tb testing.TB, target string, name xml.Name) (davProp, bool) {
	tb.Helper()
	ms := n.propfind(tb, target, "0", propfindBody(name))
	if len(ms) != 1 {
		tb.Fatalf("PROPFIND %s Depth 0 listed %d resources, want 1", target, len(ms))
	}
	for _, r := range ms {
		p, ok := r.props[name]
		return p, ok
	}
	return davProp{}, false
}

// lockInfo builds a LOCK body.
func lockInfo(scope, owner string) string {
	return `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:` + scope +
		`/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + owner + `</D:owner></D:lockinfo>`
}

// activeLocks extracts the DAV:activelock elements of a body.
func activeLocks(tb testing.TB, body []byte) []xnode {
	tb.Helper()
	return parseXML(tb, body).find("DAV:", "activelock")
}

// lockToken is the token of an activelock element.
func lockToken(al xnode) string {
	if lt, ok := al.child("DAV:", "locktoken"); ok {
		if h, ok := lt.child("DAV:", "href"); ok {
			return strings.TrimSpace(h.Text)
		}
	}
	return ""
}

// davName is shorthand for a DAV: property name.
func davName(local string) xml.Name { return xml.Name{Space: "DAV:", Local: local} }
