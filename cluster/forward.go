package cluster

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/dfs-project/dfs/internal/clusterauth"
)

// Mutating reports whether a WebDAV method changes the namespace, and so
// must be served by the leader.
func Mutating(method string) bool {
	switch method {
	case http.MethodPut, http.MethodDelete, "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK":
		return true
	}
	return false
}

type targetKey struct{}

// Forward wraps the WebDAV handler: on a follower, mutating requests (see
// Mutating) are proxied to the leader, bodies streaming both ways without
// buffering, every header and the status and body of the answer passed
// through as they are. Everything else, and everything on the leader, goes
// to next.
//
// Nothing in the request is rewritten for the leader, and nothing needs to
// be: the leader reads only the path of a Destination header and of the
// resource tags in an If header and ignores their host (behind an ingress
// they carry the ingress's host anyway), and the forwarded request keeps
// the client's Host header. X-Forwarded-For, -Host and -Proto are set (or
// extended, when an ingress already set them).
//
// A request forwarded to a node that no longer leads gets 503 there, not
// forwarded again. With no leader known within LeaderWait, or a leader that
// does not answer, the client gets 503 with Retry-After: 1.
func (c *Cluster) Forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Mutating(r.Method) || c.raft.IsLeader() {
			next.ServeHTTP(w, r)
			return
		}
		if c.isForwarded(r) {
			c.log.Warn().Str("from", r.Header.Get(ForwardedByHeader)).Str("method", r.Method).
				Msg("a forwarded write reached this node, which does not lead; not forwarding it again")
			unavailable(w, "this node was forwarded the request as leader but does not lead")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.LeaderWait)
		id, leader, err := c.LeaderURL(ctx)
		cancel()
		if err != nil {
			if r.Context().Err() == nil {
				c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("write not forwarded")
			}
			unavailable(w, "no leader is known right now")
			return
		}
		if id == c.cfg.ID {
			// Elected while waiting: serve it here.
			next.ServeHTTP(w, r)
			return
		}
		target, err := url.Parse(leader)
		if err != nil {
			c.log.Error().Err(err).Str("leader", id).Str("url", leader).Msg("the leader's URL in the member table is invalid")
			unavailable(w, "the leader's URL is invalid")
			return
		}
		c.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
	})
}

func (c *Cluster) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
			// The client's Host, as the leader would have seen it.
			pr.Out.Host = pr.In.Host
			// Rewrite gets the request with X-Forwarded-* removed: keep
			// what an ingress set, and add this hop.
			if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
				pr.Out.Header["X-Forwarded-For"] = v
			}
			pr.SetXForwarded()
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Get(h); v != "" {
					pr.Out.Header.Set(h, v)
				}
			}
			pr.Out.Header.Del(clusterauth.Header)
			if c.cfg.Secret != "" {
				clusterauth.Set(pr.Out, c.cfg.Secret)
			}
			pr.Out.Header.Set(ForwardedByHeader, c.cfg.ID)
		},
		Transport: c.tr,
		// Flush every write at once: a streamed download (or a slow
		// multistatus) reaches the client as the leader sends it.
		FlushInterval: -1,
		ErrorLog:      log.New(logWriter{c}, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
				return // the client went away
			}
			c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("forwarding to the leader failed")
			unavailable(w, "the leader could not be reached")
		},
	}
}

func unavailable(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "dfs: "+why+"; retry", http.StatusServiceUnavailable)
}

// logWriter routes the proxy's own messages into the node's log.
type logWriter struct{ c *Cluster }

func (l logWriter) Write(p []byte) (int, error) {
	l.c.log.Warn().Str("component", "proxy").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
