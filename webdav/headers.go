package webdav

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// ErrForeignDestination is the cause of the 502 (Bad Gateway, RFC 4918
// §9.8.5, §9.9.4) a COPY or MOVE gets when its Destination names another
// server than this one: not the request's own origin, a public URL of the
// cluster, an origin a trusted proxy reports, nor a member's URL (see
// Handler.isHere). dfs cannot copy or move a resource to another server,
// and carrying it out here, at the Destination's path, would change
// something the client did not name.
var ErrForeignDestination = errors.New("webdav: Destination names another server")

// ParseDepth parses a Depth header (RFC 4918 §10.2): "0", "1" or "infinity"
// (case-insensitive, surrounding white space ignored), giving 0, 1 or -1
// for infinity. An empty header gives def. Anything else is an error (400).
// Methods that allow only some depths check the result themselves.
func ParseDepth(h string, def int) (int, error) {
	switch v := strings.Trim(h, " \t"); {
	case v == "":
		return def, nil
	case v == "0":
		return 0, nil
	case v == "1":
		return 1, nil
	case strings.EqualFold(v, "infinity"):
		return -1, nil
	}
	return 0, errors.New("webdav: invalid Depth header " + strconv.Quote(h))
}

// ParseOverwrite parses an Overwrite header (RFC 4918 §10.6): "T" or "F"
// (either case, surrounding white space ignored). An empty header means T.
// Anything else is an error (400).
func ParseOverwrite(h string) (bool, error) {
	switch strings.Trim(h, " \t") {
	case "", "T", "t":
		return true, nil
	case "F", "f":
		return false, nil
	}
	return false, errors.New("webdav: invalid Overwrite header " + strconv.Quote(h))
}

// ParseDestination parses a Destination header (RFC 4918 §10.3): an
// absolute http or https URI, or an absolute path. It returns the
// percent-decoded URL path (not yet cleaned: pass it through fspath.Clean;
// note that %2F decodes to "/", as in net/http's URL.Path) and the server
// the URI names, its Origin: the zero Origin for an absolute path, which
// names this server. Whether an Origin is this server is the handler's
// decision (isHere).
//
// Malformed values (400) are errors: empty, a relative reference, a
// network-path reference ("//host/..."), another scheme, a missing host,
// user info, a query or fragment (a literal "?" or "#" in a name must be
// escaped), bad percent-escapes, a bad port, white space or control
// characters.
func ParseDestination(h string) (path string, dst Origin, err error) {
	v := strings.Trim(h, " \t")
	bad := func(why string) (string, Origin, error) {
		return "", Origin{}, errors.New("webdav: invalid Destination header " + strconv.Quote(h) + ": " + why)
	}
	if v == "" {
		return bad("empty")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return bad("white space or control character")
		}
	}
	if strings.HasPrefix(v, "//") {
		return bad("network-path reference")
	}
	u, err := url.Parse(v)
	if err != nil {
		return bad(err.Error())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(v, "?#") {
		return bad("query or fragment")
	}
	if strings.HasPrefix(v, "/") {
		return u.Path, Origin{}, nil
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return bad("not an absolute path or http(s) URI")
	case u.Opaque != "" || u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("user info")
	}
	dst, ok := NewOrigin(scheme, u.Host)
	if !ok {
		return bad("bad host or port")
	}
	path = u.Path
	if path == "" {
		path = "/"
	}
	return path, dst, nil
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]" without
// validating either part.
func splitHostPort(hp string) (host, port string) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 || strings.LastIndexByte(hp, ']') > i {
		return hp, ""
	}
	return hp[:i], hp[i+1:]
}
