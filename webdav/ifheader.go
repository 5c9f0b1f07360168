package webdav

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on If headers, well beyond what clients send (litmus's longest is
// about 120 bytes; clients holding many locks send one list per lock).
const (
	maxIfHeaderLen  = 8 << 10 // bytes
	maxIfConditions = 256     // conditions in all lists together
)

// noLockToken is the state token that never matches a lock (RFC 4918
// §10.4.8), used to submit tokens without making the header conditional:
// "(<token>) (Not <DAV:no-lock>)".
const noLockToken = "DAV:no-lock"

// IfHeader is a parsed If request header (RFC 4918 §10.4): a disjunction of
// lists. It is true if any list is true.
type IfHeader struct {
	Lists []IfList
}

// IfList is one parenthesised list of conditions, true if all of them are.
type IfList struct {
	// Resource is the resource tag of a Tagged-list, as written between
	// the angle brackets (an absolute URI or an absolute path, still
	// percent-encoded), or "" for a No-tag-list, which applies to the
	// Request-URI. A header's lists are either all tagged or all untagged;
	// consecutive lists after one tag share its Resource.
	Resource   string
	Conditions []IfCondition
}

// IfCondition is one condition: a state token or an entity tag, possibly
// negated. Exactly one of Token and ETag is set.
type IfCondition struct {
	Not bool
	// Token is a state token (a lock token or DAV:no-lock) without the
	// angle brackets.
	Token string
	// ETag is an entity tag as sent, with its quotes and any W/ prefix,
	// without the square brackets.
	ETag string
}

// ParseIf parses the value of an If header (RFC 4918 §10.4.2):
//
//	If = ( 1*No-tag-list | 1*Tagged-list )
//	No-tag-list = List
//	Tagged-list = Resource-Tag 1*List
//	List = "(" 1*Condition ")"
//	Condition = ["Not"] (State-token | "[" entity-tag "]")
//	State-token = Coded-URL = "<" absolute-URI ">"
//	Resource-Tag = "<" Simple-ref ">"
//
// Spaces and tabs may separate any two items and are optional between
// them; "Not" is matched case-insensitively. As the grammar says, none is
// allowed inside angle or square brackets. State tokens must be absolute
// URIs (scheme ":" ...); resource tags absolute URIs or absolute paths.
// Entity tags are W/ optional then a double-quoted string without escapes
// (RFC 7232), which may contain any byte but '"' and controls. Bytes
// >= 0x80 are accepted in URIs, as some clients send raw UTF-8.
//
// Any violation is an error, and the handler answers 400. So is a header
// over 8 KiB or with more than 256 conditions. The empty string is an error
// too: callers parse the header only when it is present (if it appears
// more than once, join the values with a space).
func ParseIf(h string) (IfHeader, error) {
	if len(h) > maxIfHeaderLen {
		return IfHeader{}, fmt.Errorf("webdav: If header longer than %d bytes", maxIfHeaderLen)
	}
	p := ifParser{s: h}
	hdr, err := p.parse()
	if err != nil {
		return IfHeader{}, err
	}
	return hdr, nil
}

type ifParser struct {
	s     string
	i     int
	conds int
}

func (p *ifParser) errorf(format string, args ...any) error {
	return fmt.Errorf("webdav: malformed If header at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *ifParser) skipLWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *ifParser) parse() (IfHeader, error) {
	var h IfHeader
	p.skipLWS()
	if p.i == len(p.s) {
		return IfHeader{}, errors.New("webdav: empty If header")
	}
	tagged := p.s[p.i] == '<'
	resource := ""
	pending := false // a resource tag not yet followed by a list
	for {
		p.skipLWS()
		if p.i == len(p.s) {
			break
		}
		switch p.s[p.i] {
		case '<':
			if !tagged {
				return IfHeader{}, p.errorf("resource tag in a header of untagged lists")
			}
			if pending {
				return IfHeader{}, p.errorf("resource tag without a list")
			}
			tag, err := p.angle()
			if err != nil {
				return IfHeader{}, err
			}
			if !isAbsoluteURI(tag) && !(strings.HasPrefix(tag, "/") && !strings.HasPrefix(tag, "//")) {
				return IfHeader{}, p.errorf("resource tag %q is neither an absolute URI nor an absolute path", tag)
			}
			resource, pending = tag, true
		case '(':
			conds, err := p.list()
			if err != nil {
				return IfHeader{}, err
			}
			h.Lists = append(h.Lists, IfList{Resource: resource, Conditions: conds})
			pending = false
		default:
			return IfHeader{}, p.errorf("unexpected %q", p.s[p.i])
		}
	}
	if pending {
		return IfHeader{}, p.errorf("resource tag without a list")
	}
	return h, nil
}

// list parses "(" 1*Condition ")" at p.i.
func (p *ifParser) list() ([]IfCondition, error) {
	p.i++ // '('
	var conds []IfCondition
	for {
		p.skipLWS()
		if p.i == len(p.s) {
			return nil, p.errorf("unterminated list")
		}
		if p.s[p.i] == ')' {
			p.i++
			if len(conds) == 0 {
				return nil, p.errorf("empty list")
			}
			return conds, nil
		}
		var c IfCondition
		if len(p.s)-p.i >= 3 && strings.EqualFold(p.s[p.i:p.i+3], "not") {
			c.Not = true
			p.i += 3
			p.skipLWS()
			if p.i == len(p.s) {
				return nil, p.errorf("unterminated list")
			}
		}
		switch p.s[p.i] {
		case '<':
			tok, err := p.angle()
			if err != nil {
				return nil, err
			}
			if !isAbsoluteURI(tok) {
				return nil, p.errorf("state token %q is not an absolute URI", tok)
			}
			c.Token = tok
		case '[':
			etag, err := p.etag()
			if err != nil {
				return nil, err
			}
			c.ETag = etag
		default:
			return nil, p.errorf("expected a state token or entity tag, found %q", p.s[p.i])
		}
		p.conds++
		if p.conds > maxIfConditions {
			return nil, p.errorf("more than %d conditions", maxIfConditions)
		}
		conds = append(conds, c)
	}
}

// angle parses "<" 1*char ">" at p.i, returning what is between the
// brackets: no white space, controls or angle brackets.
func (p *ifParser) angle() (string, error) {
	p.i++ // '<'
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '>':
			if p.i == start {
				return "", p.errorf("empty <>")
			}
			p.i++
			return p.s[start : p.i-1], nil
		case c <= ' ' || c == 0x7f || c == '<':
			return "", p.errorf("%q inside <...>", c)
		}
	}
	return "", p.errorf("unterminated <...>")
}

// etag parses "[" entity-tag "]" at p.i, returning the entity tag.
func (p *ifParser) etag() (string, error) {
	p.i++ // '['
	start := p.i
	if strings.HasPrefix(p.s[p.i:], "W/") {
		p.i += 2
	}
	if p.i == len(p.s) || p.s[p.i] != '"' {
		return "", p.errorf(`entity tag does not start with '"' or 'W/"'`)
	}
	for p.i++; ; p.i++ {
		if p.i == len(p.s) {
			return "", p.errorf("unterminated entity tag")
		}
		c := p.s[p.i]
		if c == '"' {
			break
		}
		if c < ' ' || c == 0x7f {
			return "", p.errorf("control character in entity tag")
		}
	}
	p.i++ // closing '"'
	if p.i == len(p.s) || p.s[p.i] != ']' {
		return "", p.errorf("expected ']' right after the entity tag")
	}
	p.i++
	return p.s[start : p.i-1], nil
}

// isAbsoluteURI reports whether s starts with a URI scheme and a colon
// (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":").
func isAbsoluteURI(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

// String renders h in the header syntax ParseIf reads: conditions and lists
// separated by single spaces, "Not" capitalised, and a resource tag written
// before a list only when it differs from the previous list's. For any
// header ParseIf accepted, ParseIf(h.String()) gives h back (if it still
// fits the length limit, since String may add spaces).
func (h IfHeader) String() string {
	var b strings.Builder
	for i, l := range h.Lists {
		if i > 0 {
			b.WriteByte(' ')
		}
		if l.Resource != "" && (i == 0 || h.Lists[i-1].Resource != l.Resource) {
			b.WriteByte('<')
			b.WriteString(l.Resource)
			b.WriteString("> ")
		}
		b.WriteByte('(')
		for j, c := range l.Conditions {
			if j > 0 {
				b.WriteByte(' ')
			}
			if c.Not {
				b.WriteString("Not ")
			}
			if c.Token != "" {
				b.WriteByte('<')
				b.WriteString(c.Token)
				b.WriteByte('>')
			} else {
				b.WriteByte('[')
				b.WriteString(c.ETag)
				b.WriteByte(']')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Tokens returns every state token in the header, in order of first
// appearance and without duplicates, except DAV:no-lock: these are the lock
// tokens the client submits with the request.
//
// Negated tokens and tokens in lists tagged with other resources are
// included. RFC 4918 §10.4.1 says "the mere fact that a state token appears
// in an If header means that it has been 'submitted' with the request", and
// mod_dav's check for a submitted lock token does the same (it scans every
// state of every list, Not or not). Knowing a token proves knowledge, not
// authority (tokens are public through lockdiscovery), so the handler must
// still check the lock's principal, whichever way a token appears. A
// negated token cannot be used to slip past the If evaluation: "(Not <t>)"
// is false on any resource that t locks.
//
// The handler should evaluate the header first (Eval false → 412), then
// require that every lock the method must honour has its token in Tokens
// (else 423). litmus's cond_put_corrupt_token relies on this order: the
// header "(<token-corrupted>) (Not <DAV:no-lock>)" is true, but the lock's
// token is not submitted, so the PUT fails with 423.
func (h IfHeader) Tokens() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range h.Lists {
		for _, c := range l.Conditions {
			if c.Token == "" || strings.EqualFold(c.Token, noLockToken) || seen[c.Token] {
				continue
			}
			seen[c.Token] = true
			out = append(out, c.Token)
		}
	}
	return out
}

// ifState is what Eval knows of one resource.
type ifState struct {
	etag   string
	tokens []string
	exists bool
}

// Eval evaluates the header (RFC 4918 §10.4.3-4): true if any list is true;
// a list is true if all its conditions are.
//
// Untagged lists apply to reqPath. A tagged list's Resource is passed, as
// written, to resolve, which maps it to a clean dfs path and reports false
// if it names nothing this server holds (another host, an unparsable URI,
// a path outside the mount); resolve must decode percent-escapes, and
// ParseDestination does what it needs. A nil resolve resolves nothing.
// state reports a path's current strong or weak ETag as sent in the ETag
// header (quotes included, "" for none), the tokens of all locks whose
// scope covers it (including locks inherited from collections with depth
// infinity, and, at the handler's choice, locks covering it while it does
// not exist, such as a depth-infinity lock on its parent), and whether it
// exists. state is called at most once per path.
//
// A state-token condition is true iff the token is one of the path's lock
// tokens; DAV:no-lock never is. An entity-tag condition is true iff the
// resource exists and its ETag equals the condition's by the strong
// comparison (RFC 7232 §2.3.2): both are strong and equal octet by octet,
// so a weak tag never matches (RFC 4918 allows either comparison; mod_dav
// compares weakly). Not inverts a condition. A resource resolve cannot map
// is treated as existing without any state (RFC 4918 §10.4.4, unmapped
// URLs): its token and entity-tag conditions are false, their negations
// true.
func (h IfHeader) Eval(reqPath string, resolve func(resource string) (path string, ok bool), state func(path string) (etag string, tokens []string, exists bool)) bool {
	cache := map[string]ifState{}
	lookup := func(path string) ifState {
		s, ok := cache[path]
		if !ok {
			s.etag, s.tokens, s.exists = state(path)
			cache[path] = s
		}
		return s
	}
	for _, l := range h.Lists {
		var s ifState // unmapped: no state
		if l.Resource == "" {
			s = lookup(reqPath)
		} else if resolve != nil {
			if path, ok := resolve(l.Resource); ok {
				s = lookup(path)
			}
		}
		if evalIfList(l.Conditions, s) {
			return true
		}
	}
	return false
}

func evalIfList(conds []IfCondition, s ifState) bool {
	for _, c := range conds {
		var match bool
		if c.Token != "" {
			if !strings.EqualFold(c.Token, noLockToken) {
				for _, t := range s.tokens {
					if t == c.Token {
						match = true
						break
					}
				}
			}
		} else {
			match = s.exists && isStrongETag(c.ETag) && c.ETag == s.etag
		}
		if match == c.Not {
			return false
		}
	}
	return len(conds) > 0
}

// isStrongETag reports whether e is a quoted entity tag without W/.
func isStrongETag(e string) bool {
	return len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"'
}
