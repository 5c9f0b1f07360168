// Package auth owns who may use the WebDAV API: HTTP Basic authentication
// against an htpasswd file of bcrypt entries and a file of device
// passwords (both re-read when they change), read-only roles, a growing
// delay for repeated failures, and the identity a follower passes to the
// leader with a forwarded write.
//
// The node API (/healthz, /readyz, /metrics, /cluster/...) is not behind
// this package: probes and Prometheus stay open, and the internal API has
// its own cluster-secret authentication (internal/clusterauth).
package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/dfs-project/dfs/internal/clusterauth"
)

// UserHeader carries the authenticated user from a follower to the leader
// on a forwarded request. The leader believes it only together with the
// right cluster secret (clusterauth.Header); from anyone else it is
// removed before anything reads it.
const UserHeader = "X-Dfs-User"

// Options is what an operator configures.
type Options struct {
	// HtpasswdFile is the htpasswd file of bcrypt entries; empty leaves the
	// WebDAV API open to anyone.
	HtpasswdFile string
	// DeviceTokensFile holds the users' device passwords (DeviceToken);
	// empty: none. Needs HtpasswdFile: a token belongs to one of its users.
	DeviceTokensFile string
	// ReadOnlyUsers may only GET, HEAD, OPTIONS and PROPFIND.
	ReadOnlyUsers []string
	// Realm is the Basic realm announced in 401 answers ("dfs" if empty).
	Realm string
}

// UserSource is the user set Basic credentials are checked against
// (*Users).
type UserSource interface {
	// Lookup returns name's bcrypt hash and the generation of the set it
	// belongs to.
	Lookup(name string) (hash []byte, gen uint64, ok bool)
	// Dummy is a bcrypt hash no password matches, at the usual cost.
	Dummy() []byte
}

// TokenSource is the device passwords Basic credentials are also checked
// against (*DeviceTokens).
type TokenSource interface {
	// Match returns user's token that password is, expired or not.
	Match(user, password string) (DeviceToken, bool)
	// Generation changes whenever the set of tokens does.
	Generation() uint64
}

// Result is what the gate made of one request, for metrics.
type Result string

// The results Config.Observe receives. They never say whether a user
// exists: /metrics is public.
const (
	ResultOK         Result = "ok"                // credentials accepted (checked or remembered)
	ResultForwarded  Result = "forwarded"         // a user another node authenticated
	ResultChallenged Result = "challenged"        // no credentials: 401 with the challenge
	ResultMalformed  Result = "malformed"         // an Authorization header that is not Basic or not valid
	ResultFailed     Result = "failed"            // wrong user name or password
	ResultReadOnly   Result = "read_only_refused" // a read-only user asked to change something
)

// Results lists every Result, for metrics that show each from the start.
func Results() []Result {
	return []Result{ResultOK, ResultForwarded, ResultChallenged, ResultMalformed, ResultFailed, ResultReadOnly}
}

// Config configures an Authenticator.
type Config struct {
	// Users is the user set; nil leaves the API open (every request passes,
	// a client-supplied UserHeader is still removed).
	Users UserSource
	// Tokens, if set, are device passwords that authenticate their user
	// too, as long as the user is in Users.
	Tokens   TokenSource
	ReadOnly []string
	Realm    string
	// ClusterSecret authenticates forwarded requests whose UserHeader is
	// believed; empty believes none.
	ClusterSecret string
	Backoff       BackoffConfig
	// CacheTTL is how long a verified password is remembered (default 2m;
	// negative: never).
	CacheTTL time.Duration
	// MaxChecks bounds the bcrypt comparisons running at once (default
	// half the CPUs, at least 1): a flood of guesses queues instead of
	// taking every CPU from the node's real work.
	MaxChecks int
	// Observe, if set, is told the result of every request the gate
	// decides on, once per request (not of requests to an open API).
	Observe func(Result)
	Log     zerolog.Logger
	// Now and Sleep are the clock (time.Now, a timer); tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Authenticator is the WebDAV API's gate: see Wrap.
type Authenticator struct {
	users    UserSource
	tokens   TokenSource // nil: no device passwords
	readOnly map[string]bool
	realm    string
	secret   string
	backoff  *Backoff
	cache    *verifiedCache
	log      zerolog.Logger
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	checks   chan struct{} // one token per bcrypt comparison running
	observe  func(Result)
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	// The realm goes into a quoted string: no quotes, backslashes or
	// control characters.
	cfg.Realm = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || unicode.IsControl(r) {
			return -1
		}
		return r
	}, cfg.Realm)
	if cfg.Realm == "" {
		cfg.Realm = "dfs"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 2 * time.Minute
	}
	if cfg.Observe == nil {
		cfg.Observe = func(Result) {}
	}
	if cfg.MaxChecks <= 0 {
		cfg.MaxChecks = max(1, runtime.GOMAXPROCS(0)/2)
	}
	a := &Authenticator{
		users:    cfg.Users,
		tokens:   cfg.Tokens,
		readOnly: map[string]bool{},
		realm:    cfg.Realm,
		secret:   cfg.ClusterSecret,
		backoff:  NewBackoff(cfg.Backoff, cfg.Now),
		cache:    newVerifiedCache(cfg.CacheTTL, 4096, cfg.Now),
		log:      cfg.Log,
		now:      cfg.Now,
		sleep:    cfg.Sleep,
		checks:   make(chan struct{}, cfg.MaxChecks),
		observe:  cfg.Observe,
	}
	for _, u := range cfg.ReadOnly {
		a.readOnly[u] = true
	}
	return a
}

// Open reports whether the API is open to anyone (no user set).
func (a *Authenticator) Open() bool { return a.users == nil }

type userKey struct{}

type fromNodeKey struct{}

// User returns the user a request was authenticated as ("" when the API
// is open). It is the principal WebDAV locks belong to.
func User(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// FromNode reports whether the request came through Wrap carrying the
// right cluster secret: another node of the cluster forwarded it (a
// follower, to the leader) and vouches for what it added, such as the
// X-Forwarded-For entry naming the peer it received the request from.
func FromNode(ctx context.Context) bool {
	v, _ := ctx.Value(fromNodeKey{}).(bool)
	return v
}

// ReadMethod reports whether a read-only user may use method.
func ReadMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "PROPFIND":
		return true
	}
	return false
}

// Wrap puts the gate in front of next:
//
//   - a request forwarded by another node of the cluster (right cluster
//     secret) that names its user in UserHeader is that user: the
//     forwarding node checked the password;
//   - any other request loses its UserHeader and must carry Basic
//     credentials of a user in the file: none gets 401 with a challenge,
//     wrong ones get 401 after the delay the client's and the user's
//     recent failures have earned;
//   - a read-only user, or a read-only device password, gets 403 for
//     every method but GET, HEAD, OPTIONS and PROPFIND, on whichever node
//     the request arrives;
//   - an authenticated request reaches next with the user in its context
//     (User) and in UserHeader, for a node that forwards it to the leader;
//   - a request that carries the right cluster secret is marked as coming
//     from a node (FromNode), with or without users.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fromNode := a.fromNode(r)
		user := ""
		if fromNode {
			user = a.forwardedUser(r)
		}
		r.Header.Del(UserHeader)
		if fromNode {
			r = r.WithContext(context.WithValue(r.Context(), fromNodeKey{}, true))
		}
		if a.users == nil {
			next.ServeHTTP(w, r)
			return
		}
		passed := ResultForwarded
		var token *DeviceToken // the device password used, if any
		if user == "" {
			var ok bool
			if user, token, ok = a.authenticate(w, r); !ok {
				return
			}
			passed = ResultOK
		}
		// A follower refuses a read-only token's write itself, so the
		// leader never needs to know which token a forwarded user used.
		if (a.readOnly[user] || (token != nil && token.ReadOnly)) && !ReadMethod(r.Method) {
			a.refuseReadOnly(w, r, user, token)
			return
		}
		a.observe(passed)
		r.Header.Set(UserHeader, user)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// refuseReadOnly answers 403 to a write by a read-only user or with a
// read-only device password.
func (a *Authenticator) refuseReadOnly(w http.ResponseWriter, r *http.Request, user string, token *DeviceToken) {
	a.observe(ResultReadOnly)
	ev := a.log.Info().Str("user", user).Str("method", r.Method).Str("path", r.URL.Path)
	who, whose := "user "+user, "users"
	if token != nil && token.ReadOnly && !a.readOnly[user] {
		ev = ev.Str("device", token.Label).Str("token_id", token.ID)
		who, whose = fmt.Sprintf("device password %s of user %s", token.Label, user), "device passwords"
	}
	ev.Msg("read-only user refused")
	http.Error(w, fmt.Sprintf("dfs: %s is read-only: %s is not allowed (read-only %s may use GET, HEAD, OPTIONS and PROPFIND)", who, r.Method, whose), http.StatusForbidden)
}

// fromNode reports whether r carries the right cluster secret: another
// node forwarded it.
func (a *Authenticator) fromNode(r *http.Request) bool {
	return a.secret != "" && r.Header.Get(clusterauth.Header) != "" && clusterauth.Check(r, a.secret) == 0
}

// forwardedUser is the user a request forwarded by another node carries
// (the caller checked fromNode), or "" when it names none or an invalid
// one.
func (a *Authenticator) forwardedUser(r *http.Request) string {
	u := r.Header.Get(UserHeader)
	if u == "" || ValidUserName(u) != nil {
		return ""
	}
	return u
}

// authenticate checks r's Basic credentials, and returns the user and the
// device password used (nil: the account password); on failure it has
// answered the request.
func (a *Authenticator) authenticate(w http.ResponseWriter, r *http.Request) (string, *DeviceToken, bool) {
	ip := clientKey(r.RemoteAddr)
	user, password, err := ParseBasic(r.Header.Get("Authorization"))
	if errors.Is(err, ErrNoCredentials) {
		// Clients ask without credentials first and answer the challenge:
		// not a failure.
		a.observe(ResultChallenged)
		a.challenge(w, err.Error(), 0)
		return "", nil, false
	}
	if err != nil {
		a.observe(ResultMalformed)
		a.backoff.Fail("ip " + ip)
		a.log.Warn().Str("client_ip", ip).Err(err).Msg("authentication failed")
		a.challenge(w, err.Error(), a.backoff.Delay("ip "+ip))
		return "", nil, false
	}
	hash, usersGen, known := a.users.Lookup(user)
	gen := generation{users: usersGen}
	var token DeviceToken
	tokenFound := false
	if a.tokens != nil {
		gen.tokens = a.tokens.Generation()
		token, tokenFound = a.tokens.Match(user, password)
	}
	// A device password is checked on every request, against the tokens
	// and the clock of now (SHA-256 is cheap; nothing is remembered), so a
	// revoked or expired one fails at once. Like a remembered password it
	// is not delayed: guessing cannot slow down a device that has its
	// token, and a guess that misses takes the path below (delay, bcrypt,
	// failure), which counts it.
	if tokenFound && known && !token.Expired(a.now()) {
		a.log.Debug().Str("user", user).Str("device", token.Label).Str("token_id", token.ID).Msg("authenticated with a device password")
		return user, &token, true
	}
	// The cache is asked for unknown users too, so that the work done
	// before bcrypt does not depend on whether the user exists.
	if a.cache.ok(user, password, gen) && known {
		return user, nil, true
	}
	ipKey, uKey := "ip "+ip, "user "+user
	wait := max(a.backoff.Delay(ipKey), a.backoff.Delay(uKey))
	if wait > 0 {
		if err := a.sleep(r.Context(), wait); err != nil {
			return "", nil, false // the client went away
		}
	}
	// A password that is one of the user's tokens (256 random bits, so not
	// the account password too) and did not pass above has expired or its
	// user is gone: it fails without bcrypt, after the same delay. Only a
	// client that holds the token can tell from the timing.
	match := false
	if !tokenFound {
		if !known {
			hash = a.users.Dummy()
		}
		select {
		case a.checks <- struct{}{}:
		case <-r.Context().Done():
			return "", nil, false // the client went away
		}
		// bcrypt's comparison takes the same time whether or not the
		// password matches; an unknown user is checked against the dummy
		// hash at the usual cost, so timing tells nothing about who exists.
		match = bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
		<-a.checks
	}
	if match && known {
		a.cache.add(user, password, gen)
		return user, nil, true
	}
	reason := "wrong password"
	switch {
	case !known && tokenFound:
		reason = fmt.Sprintf("unknown user (device password %s, id %s, of a user no longer in the htpasswd file)", token.Label, token.ID)
	case !known:
		reason = "unknown user"
	case tokenFound:
		// Only the log says so: the client gets the answer a wrong
		// password gets.
		reason = fmt.Sprintf("expired device password %s (id %s)", token.Label, token.ID)
	}
	a.observe(ResultFailed)
	ipFails, userFails := a.backoff.Fail(ipKey), a.backoff.Fail(uKey)
	next := max(a.backoff.Delay(ipKey), a.backoff.Delay(uKey))
	a.log.Warn().Str("user", user).Str("client_ip", ip).Str("reason", reason).
		Float64("client_failures", math.Round(ipFails*10)/10).Float64("user_failures", math.Round(userFails*10)/10).
		Dur("waited", wait).Dur("next_delay", next).Msg("authentication failed")
	a.challenge(w, "wrong user name or password", next)
	return "", nil, false
}

// challenge answers 401 with a Basic challenge. A client that has earned
// a delay learns it in Retry-After (whole seconds, rounded up).
func (a *Authenticator) challenge(w http.ResponseWriter, why string, next time.Duration) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+a.realm+`", charset="UTF-8"`)
	if next > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(next.Seconds()))))
	}
	http.Error(w, "dfs: "+why, http.StatusUnauthorized)
}

// clientKey is the key failures of the client at remoteAddr (the TCP peer,
// never a header a client can write) count under: its IP address, or its
// /64 for IPv6, since one IPv6 host commonly holds a whole /64.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
