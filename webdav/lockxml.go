package webdav

import (
	"errors"
	"io"
	"strconv"
	"strings"
)

// ErrUnsupportedLock is returned by ParseLockInfo for a well-formed lockinfo
// body that asks for a lock type other than write, or names only a lock
// scope other than exclusive or shared. RFC 4918 §11.2 gives 422
// (Unprocessable Content) for well-formed but semantically unusable
// bodies, and that is the recommended answer (mod_dav answers 400; both are
// defensible, 422 tells the client the syntax was fine).
var ErrUnsupportedLock = errors.New("webdav: unsupported lock type or scope")

// LockInfo is a parsed LOCK request body (RFC 4918 §14.11).
type LockInfo struct {
	// Shared and Exclusive give the requested scope; exactly one is set
	// unless Empty.
	Shared    bool
	Exclusive bool
	// Owner is the inner XML of <DAV:owner>, "" if absent. Text is
	// re-escaped and elements are written as they were, but
	// namespace-complete: every prefix (and the default namespace) an
	// element or attribute relies on is declared on it or an ancestor
	// inside Owner, so Owner can be embedded in any document. An
	// unprefixed element always carries an xmlns declaration (xmlns="" if
	// in no namespace) unless an enclosing element inside Owner has one.
	// Comments and processing instructions are dropped; CDATA sections
	// become escaped text.
	Owner string
	// Empty is set when the body was empty (or only white space): a LOCK
	// without a body is a refresh (RFC 4918 §9.10.2).
	Empty bool
}

// The DAV: namespace name.
const davNS = "DAV:"

// ParseLockInfo reads at most limit bytes of a LOCK request body and parses
// it as a DAV:lockinfo element. Element names are compared by namespace
// name and local name, never by prefix; unknown elements are ignored
// (RFC 4918 §17), and the body must pass the same well-formedness and
// namespace checks as CheckXMLBody.
//
// Errors: ErrBodyTooLarge if the body exceeds limit (413),
// ErrUnsupportedLock for a lock type other than write or an unknown lock
// scope (422), errors from reading r wrapped, and any other error for a
// malformed body (400): not lockinfo, lockscope or locktype missing or
// repeated, both or neither of exclusive and shared, an empty locktype, more
// than one owner.
func ParseLockInfo(r io.Reader, limit int64) (LockInfo, error) {
	body, err := readXMLBody(r, limit)
	if err != nil {
		return LockInfo{}, err
	}
	if isXMLSpace(body) {
		return LockInfo{Empty: true}, nil
	}
	p := lockInfoParser{t: newXMLTokenizer(body)}
	return p.parse()
}

type lockInfoParser struct {
	t *xmlTokenizer
}

var errBadLockInfo = errors.New("webdav: malformed lockinfo body")

func badLockInfo(msg string) error {
	return errors.New("webdav: malformed lockinfo body: " + msg)
}

// nextElem returns the next start or end tag, skipping text, comments and
// processing instructions.
func (p *lockInfoParser) nextElem() (xmlTok, error) {
	for {
		tok, err := p.t.next()
		if err == io.EOF {
			return xmlTok{}, errBadLockInfo // unreachable: root closes first
		}
		if err != nil {
			return xmlTok{}, err
		}
		if tok.kind == xmlTokStart || tok.kind == xmlTokEnd {
			return tok, nil
		}
	}
}

// skip consumes the rest of an element whose start tag was just read.
func (p *lockInfoParser) skip() error {
	for depth := 1; depth > 0; {
		tok, err := p.nextElem()
		if err != nil {
			return err
		}
		if tok.kind == xmlTokStart {
			depth++
		} else {
			depth--
		}
	}
	return nil
}

// children calls f for each child element of the element whose start tag
// was just read, up to its end tag. f must consume the child entirely.
func (p *lockInfoParser) children(f func(xmlTok) error) error {
	for {
		tok, err := p.nextElem()
		if err != nil {
			return err
		}
		if tok.kind == xmlTokEnd {
			return nil
		}
		if err := f(tok); err != nil {
			return err
		}
	}
}

func (p *lockInfoParser) parse() (LockInfo, error) {
	var li LockInfo
	root, err := p.nextElem()
	if err != nil {
		return LockInfo{}, err
	}
	if root.name.Space != davNS || root.name.Local != "lockinfo" {
		return LockInfo{}, badLockInfo("root element is not DAV:lockinfo")
	}
	var haveScope, haveType, haveOwner, unknownScope, unknownType bool
	err = p.children(func(c xmlTok) error {
		if c.name.Space != davNS {
			return p.skip()
		}
		switch c.name.Local {
		case "lockscope":
			if haveScope {
				return badLockInfo("more than one lockscope")
			}
			haveScope = true
			return p.children(func(s xmlTok) error {
				switch {
				case s.name.Space == davNS && s.name.Local == "exclusive":
					li.Exclusive = true
				case s.name.Space == davNS && s.name.Local == "shared":
					li.Shared = true
				default:
					unknownScope = true
				}
				return p.skip()
			})
		case "locktype":
			if haveType {
				return badLockInfo("more than one locktype")
			}
			haveType = true
			var write bool
			err := p.children(func(s xmlTok) error {
				if s.name.Space == davNS && s.name.Local == "write" {
					write = true
				} else {
					unknownType = true
				}
				return p.skip()
			})
			if err == nil && !write {
				if unknownType {
					return ErrUnsupportedLock
				}
				return badLockInfo("empty locktype")
			}
			return err
		case "owner":
			if haveOwner {
				return badLockInfo("more than one owner")
			}
			haveOwner = true
			owner, err := p.owner()
			li.Owner = owner
			return err
		}
		return p.skip()
	})
	if err != nil {
		return LockInfo{}, err
	}
	// The root is closed; the tokenizer still checks the epilogue.
	for {
		if _, err := p.t.next(); err == io.EOF {
			break
		} else if err != nil {
			return LockInfo{}, err
		}
	}
	switch {
	case !haveScope:
		return LockInfo{}, badLockInfo("no lockscope")
	case !haveType:
		return LockInfo{}, badLockInfo("no locktype")
	case li.Exclusive && li.Shared:
		return LockInfo{}, badLockInfo("both exclusive and shared")
	case !li.Exclusive && !li.Shared && unknownScope:
		return LockInfo{}, ErrUnsupportedLock
	case !li.Exclusive && !li.Shared:
		return LockInfo{}, badLockInfo("empty lockscope")
	}
	return li, nil
}

// owner serialises the content of <owner>, whose start tag was just read, up
// to its end tag. Declarations are added where the output would otherwise
// depend on bindings made outside the owner element (see LockInfo.Owner).
func (p *lockInfoParser) owner() (string, error) {
	var b strings.Builder
	out := &nsScope{bind: map[string][]string{"xml": {xmlNamespaceURI}}}
	// Bindings in out are those visible in the output. The default
	// namespace starts unknown: the owner is embedded in foreign markup.
	for depth := 0; ; {
		tok, err := p.t.next()
		if err != nil {
			if err == io.EOF {
				err = errBadLockInfo // unreachable: owner closes first
			}
			return "", err
		}
		switch tok.kind {
		case xmlTokText:
			escapeXMLText(&b, string(tok.text))
		case xmlTokEnd:
			if depth == 0 {
				return b.String(), nil
			}
			depth--
			out.pop()
			b.WriteString("</")
			writeQName(&b, tok.prefix, tok.name.Local)
			b.WriteByte('>')
		case xmlTokStart:
			depth++
			out.push()
			b.WriteByte('<')
			writeQName(&b, tok.prefix, tok.name.Local)
			// Declarations as written first, then those the element or its
			// attributes need but cannot see in the output.
			for _, a := range tok.attrs {
				if a.Name.Space == "xmlns" {
					out.declare(a.Name.Local, a.Value)
				} else if a.Name.Space == "" && a.Name.Local == "xmlns" {
					out.declare("", a.Value)
				}
			}
			need := []string{tok.prefix}
			for _, a := range tok.attrs {
				if a.Name.Space != "" && a.Name.Space != "xmlns" {
					need = append(need, a.Name.Space)
				}
			}
			for _, prefix := range need {
				uri, _ := p.t.ns.lookup(prefix) // checked by the tokenizer
				if have, ok := out.lookup(prefix); ok && have == uri {
					continue
				}
				out.declare(prefix, uri)
				writeXMLNSAttr(&b, prefix, uri)
			}
			for _, a := range tok.attrs {
				b.WriteByte(' ')
				writeQName(&b, a.Name.Space, a.Name.Local)
				b.WriteString(`="`)
				escapeXMLAttr(&b, a.Value)
				b.WriteByte('"')
			}
			b.WriteByte('>')
		}
	}
}

func writeQName(b *strings.Builder, prefix, local string) {
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte(':')
	}
	b.WriteString(local)
}

func writeXMLNSAttr(b *strings.Builder, prefix, uri string) {
	b.WriteString(" xmlns")
	if prefix != "" {
		b.WriteByte(':')
		b.WriteString(prefix)
	}
	b.WriteString(`="`)
	escapeXMLAttr(b, uri)
	b.WriteByte('"')
}

// escapeXMLText escapes character data. Unlike xml.EscapeText it leaves
// newlines and tabs alone; a carriage return is written as a character
// reference, since a literal one would be normalised away by the reader.
func escapeXMLText(b *strings.Builder, s string) { escapeXML(b, s, false) }

// escapeXMLAttr escapes a double-quoted attribute value, writing white
// space other than a space as character references so that attribute value
// normalisation gives back the same value.
func escapeXMLAttr(b *strings.Builder, s string) { escapeXML(b, s, true) }

func escapeXML(b *strings.Builder, s string, attr bool) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\r':
			esc = "&#xD;"
		case attr && c == '"':
			esc = "&quot;"
		case attr && c == '\t':
			esc = "&#x9;"
		case attr && c == '\n':
			esc = "&#xA;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// maxLockTimeout is the longest lock timeout ParseTimeout gives, and what
// it gives when the client expresses no usable preference: one week.
// Clients refresh locks they hold for longer; abandoned locks expire.
const maxLockTimeout = 7 * 24 * 60 * 60

// ParseTimeout parses a Timeout request header (RFC 4918 §10.7): a comma
// separated list of "Second-N" and "Infinite", compared case-insensitively,
// of which the first understood one is used and unknown ones are skipped.
// The seconds returned are always usable: between 1 and 604800 (one week).
//
//   - "Second-N" gives (N, false), N raised to 1 and capped at one week
//     (an N beyond int64 is capped too, not an error).
//   - "Infinite" gives (604800, true): the client asked for no timeout.
//     A handler that grants infinite locks ignores seconds; one that does
//     not (recommended for dfs: abandoned infinite locks never go away)
//     uses seconds.
//   - An empty header, or one with only unknown values, gives
//     (604800, false): the server chooses, and dfs's default is the cap.
//     A handler wanting another default checks for an empty header itself.
//
// A "Second-" value whose number is not 1*DIGIT is an error (400).
func ParseTimeout(h string) (seconds int64, infinite bool, err error) {
	for _, v := range strings.Split(h, ",") {
		v = strings.Trim(v, " \t")
		switch {
		case v == "":
			continue
		case strings.EqualFold(v, "Infinite"):
			return maxLockTimeout, true, nil
		case len(v) >= 7 && strings.EqualFold(v[:7], "Second-"):
			digits := v[7:]
			if digits == "" || strings.Trim(digits, "0123456789") != "" {
				return 0, false, errors.New("webdav: malformed Timeout " + strconv.Quote(v))
			}
			n, err := strconv.ParseInt(digits, 10, 64)
			if err != nil || n > maxLockTimeout { // only overflow can fail
				n = maxLockTimeout
			}
			return max(n, 1), false, nil
		}
	}
	return maxLockTimeout, false, nil
}

// ActiveLock describes one lock for DAV:lockdiscovery.
type ActiveLock struct {
	// Token is the lock token URI, scheme included
	// ("opaquelocktoken:…" or "urn:uuid:…").
	Token string
	// Root is the lock root's href, already URL-escaped by the caller; it
	// is XML-escaped here. "" omits DAV:lockroot.
	Root string
	// Shared is the scope; false means exclusive.
	Shared bool
	// Infinite is the depth; false means 0.
	Infinite bool
	// Owner is inserted verbatim as the content of DAV:owner: it must be
	// namespace-complete XML such as LockInfo.Owner. "" omits DAV:owner.
	Owner string
	// TimeoutSeconds is the time remaining, rendered "Second-N" (negative
	// values as 0). It is ignored if InfiniteTimeout.
	TimeoutSeconds  int64
	InfiniteTimeout bool
}

// writeActiveLock renders l as a DAV:activelock element. With prefix "D:",
// elements are written D:-prefixed and the caller must have bound D to
// DAV:; with prefix "", the activelock element declares xmlns="DAV:".
func writeActiveLock(b *strings.Builder, l ActiveLock, prefix string) {
	open := func(name string) {
		b.WriteByte('<')
		b.WriteString(prefix)
		b.WriteString(name)
		b.WriteByte('>')
	}
	closeTag := func(name string) {
		b.WriteString("</")
		b.WriteString(prefix)
		b.WriteString(name)
		b.WriteByte('>')
	}
	empty := func(name string) {
		b.WriteByte('<')
		b.WriteString(prefix)
		b.WriteString(name)
		b.WriteString("/>")
	}
	if prefix == "" {
		b.WriteString(`<activelock xmlns="DAV:">`)
	} else {
		open("activelock")
	}
	open("locktype")
	empty("write")
	closeTag("locktype")
	open("lockscope")
	if l.Shared {
		empty("shared")
	} else {
		empty("exclusive")
	}
	closeTag("lockscope")
	open("depth")
	if l.Infinite {
		b.WriteString("infinity")
	} else {
		b.WriteString("0")
	}
	closeTag("depth")
	if l.Owner != "" {
		open("owner")
		b.WriteString(l.Owner)
		closeTag("owner")
	}
	open("timeout")
	if l.InfiniteTimeout {
		b.WriteString("Infinite")
	} else {
		b.WriteString("Second-")
		b.WriteString(strconv.FormatInt(max(l.TimeoutSeconds, 0), 10))
	}
	closeTag("timeout")
	if l.Token != "" {
		open("locktoken")
		open("href")
		escapeXMLText(b, l.Token)
		closeTag("href")
		closeTag("locktoken")
	}
	if l.Root != "" {
		open("lockroot")
		open("href")
		escapeXMLText(b, l.Root)
		closeTag("href")
		closeTag("lockroot")
	}
	closeTag("activelock")
}

// LockDiscoveryXML returns the content of a DAV:lockdiscovery property for
// locks: one DAV:activelock element per lock, each declaring xmlns="DAV:"
// so that the result is self-contained and can be embedded in any
// document. No locks give "".
func LockDiscoveryXML(locks []ActiveLock) string {
	var b strings.Builder
	for _, l := range locks {
		writeActiveLock(&b, l, "")
	}
	return b.String()
}

// WriteLockDiscovery writes LockDiscoveryXML(locks) to w.
func WriteLockDiscovery(w io.Writer, locks []ActiveLock) error {
	_, err := io.WriteString(w, LockDiscoveryXML(locks))
	return err
}

// WriteLockResponse writes the body of a successful LOCK response
// (RFC 4918 §9.10.1): an XML declaration and
// <D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>…</D:activelock></D:lockdiscovery></D:prop>.
// The handler sets Content-Type "application/xml; charset=utf-8" and the
// Lock-Token header itself.
func WriteLockResponse(w io.Writer, l ActiveLock) error {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<D:prop xmlns:D="DAV:"><D:lockdiscovery>`)
	writeActiveLock(&b, l, "D:")
	b.WriteString("</D:lockdiscovery></D:prop>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SupportedLockXML returns the content of the DAV:supportedlock property:
// lockentry elements for exclusive and shared write locks, each declaring
// xmlns="DAV:" so the result can be embedded anywhere.
func SupportedLockXML() string {
	return `<lockentry xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockentry>` +
		`<lockentry xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype></lockentry>`
}
