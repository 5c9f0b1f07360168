// Package clusterauth owns how dfs nodes prove to each other that a request
// comes from the cluster: every internal call (join, remove, content push
// and fetch, read-index) carries the shared cluster secret in one header,
// compared in constant time. The header is dfs's own, so a client's
// Authorization header passes through forwarding untouched.
package clusterauth

import (
	"crypto/subtle"
	"net/http"
)

// Header carries the cluster secret on internal requests.
const Header = "X-Dfs-Cluster-Secret"

// Set adds the cluster secret to an outgoing internal request.
func Set(r *http.Request, secret string) {
	r.Header.Set(Header, secret)
}

// Check reports how an incoming request authenticates: 0 when it carries
// the right secret, 401 when it carries none, 403 when it carries a wrong
// one or when this node has no secret configured (then nothing internal is
// allowed).
func Check(r *http.Request, secret string) int {
	got := r.Header.Get(Header)
	switch {
	case got == "":
		return http.StatusUnauthorized
	case secret == "":
		return http.StatusForbidden
	case subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1:
		return http.StatusForbidden
	}
	return 0
}

// Require wraps an internal handler: requests without the right secret get
// 401 or 403 and never reach it.
func Require(secret string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status := Check(r, secret); status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `DfsCluster realm="dfs internal API"`)
			}
			http.Error(w, "internal dfs API: the cluster secret ("+Header+") is missing or wrong", status)
			return
		}
		next.ServeHTTP(w, r)
	})
}
