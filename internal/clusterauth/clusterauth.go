// Package clusterauth owns how dfs nodes prove to each other that a request
// comes from the cluster: every internal call (join, remove, content push
// and fetch, read-index) carries the shared cluster secret in one header,
// compared in constant time. The header is dfs's own, so a client's
// Authorization header passes through forwarding untouched.
//
// # Rotation
//
// A secret setting may hold several secrets separated by commas (so a
// secret itself never contains a comma): a node sends the first and
// accepts any of them. A secret changes without a refused call in rolling
// restarts: first every node accepts the new secret while still sending
// the old one ("old,new"), then every node sends the new one and still
// accepts the old ("new,old"), then the old one goes ("new").
package clusterauth

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// Header carries the cluster secret on internal requests.
const Header = "X-Dfs-Cluster-Secret"

// List joins the secret to send and further ones to accept into one
// secret setting (empty elements are dropped).
func List(send string, accept ...string) string {
	var parts []string
	for _, s := range append([]string{send}, accept...) {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, ",")
}

// Validate checks a secret setting: empty (no secret), or secrets without
// empty elements or surrounding blanks, which are almost certainly typos.
func Validate(setting string) error {
	if setting == "" {
		return nil
	}
	for _, s := range strings.Split(setting, ",") {
		if s == "" || strings.TrimSpace(s) != s {
			return errors.New("clusterauth: the cluster secret list has an empty element or blanks around a secret (secrets are separated by commas and cannot contain one)")
		}
	}
	return nil
}

// current is the secret a node sends: the first of the setting.
func current(setting string) string {
	s, _, _ := strings.Cut(setting, ",")
	return s
}

// Set adds the cluster secret (the first of the setting) to an outgoing
// internal request.
func Set(r *http.Request, setting string) {
	r.Header.Set(Header, current(setting))
}

// Check reports how an incoming request authenticates: 0 when it carries
// one of the setting's secrets, 401 when it carries none, 403 when it
// carries a wrong one or when this node has no secret configured (then
// nothing internal is allowed). Every configured secret is compared, so the
// time taken does not tell which one matched.
func Check(r *http.Request, setting string) int {
	got := r.Header.Get(Header)
	switch {
	case got == "":
		return http.StatusUnauthorized
	case setting == "":
		return http.StatusForbidden
	}
	match := 0
	for _, s := range strings.Split(setting, ",") {
		if s != "" {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(s))
		}
	}
	if match != 1 {
		return http.StatusForbidden
	}
	return 0
}

// Require wraps an internal handler: requests without the right secret get
// 401 or 403 and never reach it.
func Require(setting string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status := Check(r, setting); status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `DfsCluster realm="dfs internal API"`)
			}
			http.Error(w, "internal dfs API: the cluster secret ("+Header+") is missing or wrong", status)
			return
		}
		next.ServeHTTP(w, r)
	})
}
