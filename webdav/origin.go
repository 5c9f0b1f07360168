package webdav

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/dfs-project/dfs/auth"
)

// Origin is the server a URL names: its scheme, host and port (RFC 6454),
// the host in lower case without a trailing dot and the port always
// explicit, so two URLs name the same server exactly when their Origins
// are equal.
type Origin struct {
	Scheme string // "http" or "https"
	Host   string // a name, an IPv4 address or a bracketed IPv6 address
	Port   string
}

// NewOrigin returns the origin of a URL with scheme and authority
// hostport ("host", "host:port", "[v6]:port"): the port defaults to the
// scheme's. It reports false for another scheme, an empty host or a port
// that is not a number.
func NewOrigin(scheme, hostport string) (Origin, bool) {
	scheme = strings.ToLower(scheme)
	def := ""
	switch scheme {
	case "http":
		def = "80"
	case "https":
		def = "443"
	default:
		return Origin{}, false
	}
	host, port := splitHostPort(strings.ToLower(hostport))
	host = strings.TrimSuffix(host, ".")
	if host == "" || host == "[]" {
		return Origin{}, false
	}
	if port == "" {
		port = def
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return Origin{}, false
	}
	port = strings.TrimLeft(port, "0")
	return Origin{Scheme: scheme, Host: host, Port: port}, true
}

// String returns the origin as a URL: scheme://host, with :port unless it
// is the scheme's default.
func (o Origin) String() string {
	if (o.Scheme == "http" && o.Port == "80") || (o.Scheme == "https" && o.Port == "443") {
		return o.Scheme + "://" + o.Host
	}
	return o.Scheme + "://" + o.Host + ":" + o.Port
}

// ParsePublicURL parses one --public-url: an http or https URL with a host
// and nothing else (a path other than "/", a query, a fragment or user
// info is refused: dfs serves its files at the root of every URL).
func ParsePublicURL(s string) (Origin, error) {
	bad := func(why string) (Origin, error) {
		return Origin{}, fmt.Errorf("public URL %q: %s", s, why)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return bad(err.Error())
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("want an http:// or https:// URL")
	case u.Opaque != "" || u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("user info")
	case u.Path != "" && u.Path != "/":
		return bad("a path: dfs serves its files at the root of the URL")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("a query or fragment")
	}
	o, ok := NewOrigin(u.Scheme, u.Host)
	if !ok {
		return bad("bad host or port")
	}
	return o, nil
}

// ParsePublicURLs parses --public-url values; each may itself be a
// comma-separated list. Empty elements are skipped.
func ParsePublicURLs(values []string) ([]Origin, error) {
	var out []Origin
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			o, err := ParsePublicURL(s)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// ParseTrustedProxies parses --trusted-proxies values: CIDR prefixes
// ("10.0.0.0/8", "fd00::/8") or single addresses, each value possibly a
// comma-separated list. Empty elements are skipped.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if strings.Contains(s, "/") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
				}
				if p.Addr().Is4In6() {
					return nil, fmt.Errorf("trusted proxy %q: write IPv4-mapped prefixes as plain IPv4", s)
				}
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix: %w", s, err)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// errForeignDestination is the 502 of a COPY or MOVE whose Destination
// names another server.
func errForeignDestination(r *http.Request, dst Origin) error {
	here := "this server"
	if own, ok := requestOrigin(r); ok {
		here += ", which this request reached as " + own.String()
	}
	return &statusError{status: http.StatusBadGateway, err: ErrForeignDestination,
		msg: fmt.Sprintf("the Destination %s names another server (%s): COPY and MOVE only work within %s "+
			"(RFC 4918 §9.9.4); nothing was changed. If %s is this server's public address (an ingress or proxy in front of it), "+
			"list it with --public-url, or trust the proxy's X-Forwarded-Host with --trusted-proxies",
			strings.TrimSpace(r.Header.Get("Destination")), dst, here, dst)}
}

// requestOrigin is the server a request reached as its client addressed
// it without any proxy: the request's Host, with https when it came over
// TLS. A request a follower forwarded keeps the client's Host, and reaches
// the leader over the same kind of listener the follower serves, so the
// leader sees what the follower saw.
func requestOrigin(r *http.Request) (Origin, bool) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return NewOrigin(scheme, r.Host)
}

// isHere reports whether dst names this server (this node or any node of
// its cluster), the server the request reached. That is, in order:
//
//   - the request's own origin (requestOrigin);
//   - a public URL (Config.PublicURLs);
//   - the origin a trusted proxy (Config.TrustedProxies) says the client
//     addressed, in X-Forwarded-Host and X-Forwarded-Proto (each
//     defaulting to the request's own), believed only when the peer that
//     sent them is trusted: the TCP peer, or, for a request another node
//     forwarded (auth.FromNode: it carries the cluster secret), the peer
//     that node received it from, which it appended to X-Forwarded-For;
//   - the URL of any member of the cluster (the member table).
func (h *Handler) isHere(ctx context.Context, r *http.Request, dst Origin) (bool, error) {
	if own, ok := requestOrigin(r); ok && own == dst {
		return true, nil
	}
	for _, o := range h.publicURLs {
		if o == dst {
			return true, nil
		}
	}
	if fwd, ok := h.forwardedOrigin(ctx, r); ok && fwd == dst {
		return true, nil
	}
	members, err := h.meta.Members(ctx)
	if err != nil {
		return false, fmt.Errorf("read cluster members: %w", err)
	}
	for _, m := range members {
		if u, err := url.Parse(m.URL); err == nil {
			if o, ok := NewOrigin(u.Scheme, u.Host); ok && o == dst {
				return true, nil
			}
		}
	}
	return false, nil
}

// forwardedOrigin is the origin a trusted proxy reports for r (see isHere).
func (h *Handler) forwardedOrigin(ctx context.Context, r *http.Request) (Origin, bool) {
	if len(h.trustedProxies) == 0 {
		return Origin{}, false
	}
	var peer netip.Addr
	if auth.FromNode(ctx) {
		peer = parseAddr(lastElement(r.Header.Values("X-Forwarded-For")))
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		peer = parseAddr(host)
	}
	if !peer.IsValid() || !h.trusted(peer) {
		return Origin{}, false
	}
	own, _ := requestOrigin(r)
	scheme, host := own.Scheme, r.Host
	if p := strings.ToLower(lastElement(r.Header.Values("X-Forwarded-Proto"))); p == "http" || p == "https" {
		scheme = p
	}
	if fh := lastElement(r.Header.Values("X-Forwarded-Host")); fh != "" {
		host = fh
	}
	return NewOrigin(scheme, host)
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// lastElement is the last element of a comma-separated header, over all
// its lines: the one the nearest proxy added.
func lastElement(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// parseAddr parses an IP address as X-Forwarded-For or RemoteAddr carry
// it (IPv6 possibly in brackets, possibly with a port); the zero Addr if
// it is none.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
