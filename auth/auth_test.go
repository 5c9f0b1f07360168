package auth

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/clusterauth"
)

const testSecret = "cluster-secret"

// gate is an Authenticator over a real htpasswd file, with a manual clock
// and a sleep that records what it was asked to wait.
type gate struct {
	a      *Authenticator
	users  *Users
	path   string
	clock  *clock
	slept  []time.Duration
	logs   *bytes.Buffer
	served []string // user seen by the wrapped handler, per request that reached it
	result []Result // what Config.Observe was told, per request
}

func newGate(t *testing.T, readOnly ...string) *gate {
	t.Helper()
	g := &gate{clock: newClock(), logs: &bytes.Buffer{}}
	g.path = filepath.Join(t.TempDir(), "users")
	writeFile(t, g.path, entry(t, "alice", "alice-pw")+entry(t, "reader", "reader-pw"))
	var err error
	if g.users, err = OpenUsers(g.path, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	g.a = New(Config{
		Users: g.users, ReadOnly: readOnly, ClusterSecret: testSecret,
		Backoff: BackoffConfig{Free: 2, Base: time.Second, Max: 8 * time.Second, HalfLife: time.Minute},
		Observe: func(r Result) { g.result = append(g.result, r) },
		Log:     zerolog.New(g.logs), Now: g.clock.now,
		Sleep: func(_ context.Context, d time.Duration) error {
			g.slept = append(g.slept, d)
			g.clock.advance(d)
			return nil
		},
	})
	return g
}

// do sends one request through the gate from remote, returning the
// answer; hdr may set Authorization, UserHeader, the cluster secret.
func (g *gate) do(method, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	h := g.a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the next handler (Forward, WebDAV) sees.
		g.served = append(g.served, User(r.Context())+"|"+r.Header.Get(UserHeader))
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest(method, "/f.txt", nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func basic(user, pw string) map[string]string {
	return map[string]string{"Authorization": FormatBasic(user, pw)}
}

func TestGate(t *testing.T) {
	const ip = "192.0.2.1:5000"
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		status int
		served string // what the next handler saw; "" if it was not reached
		body   string
		result Result // what the metrics are told
	}{
		{"no credentials", "GET", nil, 401, "", "requires HTTP Basic", ResultChallenged},
		{"other scheme", "GET", map[string]string{"Authorization": "Bearer abc"}, 401, "", "only Basic", ResultMalformed},
		{"malformed", "GET", map[string]string{"Authorization": "Basic !!!"}, 401, "", "malformed", ResultMalformed},
		{"wrong password", "GET", basic("alice", "nope"), 401, "", "wrong user name or password", ResultFailed},
		{"unknown user", "GET", basic("mallory", "alice-pw"), 401, "", "wrong user name or password", ResultFailed},
		{"right password", "PUT", basic("alice", "alice-pw"), 204, "alice|alice", "", ResultOK},
		{"scheme in any case", "GET", map[string]string{"Authorization": strings.Replace(FormatBasic("alice", "alice-pw"), "Basic", "bAsIc", 1)}, 204, "alice|alice", "", ResultOK},
		{"read-only user reads", "PROPFIND", basic("reader", "reader-pw"), 204, "reader|reader", "", ResultOK},
		{"read-only user writes", "PUT", basic("reader", "reader-pw"), 403, "", "user reader is read-only: PUT", ResultReadOnly},
		{"forged user header, no secret", "PUT", map[string]string{UserHeader: "alice"}, 401, "", "", ResultChallenged},
		{"forged user header, wrong secret", "PUT", map[string]string{UserHeader: "alice", clusterauth.Header: "guess"}, 401, "", "", ResultChallenged},
		{"forged user header beside own credentials", "PUT", map[string]string{UserHeader: "alice", "Authorization": FormatBasic("reader", "reader-pw")}, 403, "", "user reader is read-only", ResultReadOnly},
		{"forwarded by a node", "PUT", map[string]string{UserHeader: "alice", clusterauth.Header: testSecret}, 204, "alice|alice", "", ResultForwarded},
		{"forwarded read-only user", "DELETE", map[string]string{UserHeader: "reader", clusterauth.Header: testSecret}, 403, "", "read-only", ResultReadOnly},
		{"forwarded without a user", "PUT", map[string]string{clusterauth.Header: testSecret}, 401, "", "", ResultChallenged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t, "reader")
			w := g.do(tt.method, ip, tt.hdr)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tt.status, w.Body.String())
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %q does not say %q", w.Body.String(), tt.body)
			}
			if tt.status == 401 && w.Header().Get("WWW-Authenticate") != `Basic realm="dfs", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			var served string
			if len(g.served) > 0 {
				served = g.served[0]
			}
			if served != tt.served {
				t.Errorf("next handler saw %q, want %q", served, tt.served)
			}
			if len(g.result) != 1 || g.result[0] != tt.result {
				t.Errorf("observed %v, want exactly [%s]", g.result, tt.result)
			}
			if strings.Contains(g.logs.String(), "-pw") {
				t.Errorf("a password reached the log: %s", g.logs.String())
			}
		})
	}
}

func TestGateReadOnlyMethods(t *testing.T) {
	g := newGate(t, "reader")
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "PROPFIND", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK", "POST", "PATCH", "BREW"} {
		want := http.StatusForbidden
		if ReadMethod(m) {
			want = http.StatusNoContent
		}
		if w := g.do(m, "192.0.2.1:1", basic("reader", "reader-pw")); w.Code != want {
			t.Errorf("%s by a read-only user: %d, want %d", m, w.Code, want)
		}
		if w := g.do(m, "192.0.2.1:1", basic("alice", "alice-pw")); w.Code != http.StatusNoContent {
			t.Errorf("%s by alice: %d, want 204", m, w.Code)
		}
	}
}

// TestGateOpen: without users everything passes, but a client's identity
// header never reaches the next handler (it would be forwarded to the
// leader with the cluster secret).
func TestGateOpen(t *testing.T) {
	var saw []string
	h := New(Config{ClusterSecret: testSecret}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		saw = append(saw, r.Header.Get(UserHeader)+"|"+User(r.Context()))
	}))
	r := httptest.NewRequest("PUT", "/x", nil)
	r.Header.Set(UserHeader, "alice")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(saw) != 1 || saw[0] != "|" {
		t.Fatalf("next handler saw %q, want no user", saw)
	}
}

// TestGateBackoff: failures from one client, or for one user from many
// clients, earn a growing delay before the password is even checked; the
// right password still succeeds after the delay (no lock-out), and
// Retry-After tells the client what the next attempt costs.
func TestGateBackoff(t *testing.T) {
	g := newGate(t)
	const ip = "198.51.100.7:4000"
	wantSlept := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, want := range wantSlept {
		before := len(g.slept)
		w := g.do("GET", ip, basic("alice", "wrong"))
		var slept time.Duration
		if len(g.slept) > before {
			slept = g.slept[before]
		}
		if w.Code != 401 || slept != want {
			t.Fatalf("failure %d: status %d, waited %s; want 401 after %s", i+1, w.Code, slept, want)
		}
		if i >= 2 && w.Header().Get("Retry-After") == "" {
			t.Errorf("failure %d: no Retry-After", i+1)
		}
	}
	if !strings.Contains(g.logs.String(), `"user":"alice"`) || !strings.Contains(g.logs.String(), `"client_ip":"198.51.100.7"`) {
		t.Errorf("failures not logged with user and client IP: %s", g.logs.String())
	}
	// No lock-out: the right password succeeds after the delay.
	before := len(g.slept)
	if w := g.do("GET", ip, basic("alice", "alice-pw")); w.Code != http.StatusNoContent {
		t.Fatalf("the right password after failures: %d", w.Code)
	}
	if len(g.slept) != before+1 || g.slept[before] != 8*time.Second {
		t.Fatalf("the right password waited %v, want the current delay 8s", g.slept[before:])
	}
	// Verified and remembered: the next request does not wait again.
	if w := g.do("GET", ip, basic("alice", "alice-pw")); w.Code != http.StatusNoContent || len(g.slept) != before+1 {
		t.Fatalf("a remembered password waited again: %v", g.slept[before:])
	}
	// Another user from another client is not slowed down...
	before = len(g.slept)
	if w := g.do("GET", "203.0.113.9:1", basic("reader", "reader-pw")); w.Code != http.StatusNoContent || len(g.slept) != before {
		t.Fatalf("an uninvolved client waited %v", g.slept[before:])
	}
	// ...but guessing alice's password from a fresh client is.
	before = len(g.slept)
	g.do("GET", "203.0.113.10:1", basic("alice", "guess"))
	if len(g.slept) != before+1 {
		t.Fatal("guessing alice's password from a new client was not slowed down")
	}
	// Failures are forgotten over time.
	g.clock.advance(30 * time.Minute)
	before = len(g.slept)
	g.do("GET", ip, basic("alice", "wrong"))
	if len(g.slept) != before {
		t.Fatalf("delay after 30 quiet minutes: %v", g.slept[before:])
	}
}

// TestGateIPv6Prefix: an IPv6 client cannot escape the backoff by
// rotating addresses within its /64.
func TestGateIPv6Prefix(t *testing.T) {
	g := newGate(t)
	for i := range 3 {
		g.do("GET", "[2001:db8:1:2::"+string(rune('a'+i))+"]:1", basic("u"+string(rune('a'+i)), "x"))
	}
	before := len(g.slept)
	g.do("GET", "[2001:db8:1:2::ffff]:1", basic("fresh", "x"))
	if len(g.slept) != before+1 {
		t.Fatal("a new address in the same /64 was not slowed down")
	}
	before = len(g.slept)
	g.do("GET", "[2001:db8:1:3::1]:1", basic("fresh2", "x"))
	if len(g.slept) != before {
		t.Fatal("another /64 was slowed down")
	}
}

// TestGateCacheVoidedOnReload: a remembered password stops working as
// soon as the file that made it valid changes.
func TestGateCacheVoidedOnReload(t *testing.T) {
	g := newGate(t)
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "alice-pw")); w.Code != http.StatusNoContent {
		t.Fatal(w.Code)
	}
	if g.a.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", g.a.cache.len())
	}
	writeFile(t, g.path, entry(t, "alice", "new-pw"))
	if _, err := g.users.Reload(); err != nil {
		t.Fatal(err)
	}
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "alice-pw")); w.Code != http.StatusUnauthorized {
		t.Fatalf("old password after reload: %d, want 401", w.Code)
	}
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "new-pw")); w.Code != http.StatusNoContent {
		t.Fatalf("new password after reload: %d", w.Code)
	}
	// Removed users are gone at once.
	writeFile(t, g.path, entry(t, "bob", "b"))
	if _, err := g.users.Reload(); err != nil {
		t.Fatal(err)
	}
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "new-pw")); w.Code != http.StatusUnauthorized {
		t.Fatalf("removed user: %d, want 401", w.Code)
	}
}

func TestGateCacheExpires(t *testing.T) {
	g := newGate(t)
	g.do("GET", "192.0.2.1:1", basic("alice", "alice-pw"))
	key := g.a.cache.keyOf("alice", "alice-pw")
	if e, ok := g.a.cache.entries[key]; !ok || !e.expires.Equal(g.clock.now().Add(2*time.Minute)) {
		t.Fatalf("cache entry %+v, want one expiring in 2m", e)
	}
	g.clock.advance(2 * time.Minute)
	if g.a.cache.ok("alice", "alice-pw", generation{users: g.users.Generation()}) {
		t.Fatal("expired entry still valid")
	}
	if g.a.cache.ok("alice", "other", generation{users: g.users.Generation()}) {
		t.Fatal("another password matched")
	}
}

// TestGateChecksBounded: with every bcrypt slot taken, a request waits
// for one, and gives up when its client goes away, without an answer
// and without counting as a failure.
func TestGateChecksBounded(t *testing.T) {
	g := newGate(t)
	for range cap(g.a.checks) {
		g.a.checks <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	r.RemoteAddr = "192.0.2.1:1"
	r.Header.Set("Authorization", FormatBasic("alice", "alice-pw"))
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		g.a.Wrap(http.NotFoundHandler()).ServeHTTP(w, r)
		done <- w
	}()
	select {
	case w := <-done:
		t.Fatalf("answered %d while no check slot was free", w.Code)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	w := <-done
	if w.Code != http.StatusOK || w.Body.Len() != 0 || g.a.backoff.Len() != 0 {
		t.Fatalf("a request whose client left: status %d, body %q, %d failures recorded; want nothing written or counted", w.Code, w.Body.String(), g.a.backoff.Len())
	}
	// A free slot lets requests through again.
	<-g.a.checks
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "alice-pw")); w.Code != http.StatusNoContent {
		t.Fatalf("with a free slot: %d", w.Code)
	}
}

func TestRealm(t *testing.T) {
	for in, want := range map[string]string{"": "dfs", "Team files": "Team files", "a\"b\\c\r\nd": "abcd", "\"": "dfs"} {
		a := New(Config{Users: &Users{}, Realm: in})
		w := httptest.NewRecorder()
		a.challenge(w, "x", 0)
		if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="`+want+`", charset="UTF-8"` {
			t.Errorf("realm %q: WWW-Authenticate %q", in, got)
		}
	}
}

// TestGateFromNode: a request carrying the right cluster secret is marked
// as forwarded by a node (FromNode), with or without users; nothing else
// is, whatever it claims.
func TestGateFromNode(t *testing.T) {
	g := newGate(t)
	open := New(Config{ClusterSecret: testSecret})
	noSecret := New(Config{})
	tests := []struct {
		name string
		a    *Authenticator
		hdr  map[string]string
		want string // "user|fromNode" as the next handler saw it; "" if not reached
	}{
		{"users, forwarded", g.a, map[string]string{UserHeader: "alice", clusterauth.Header: testSecret}, "alice|true"},
		{"users, own credentials", g.a, basic("alice", "alice-pw"), "alice|false"},
		{"users, wrong secret", g.a, map[string]string{clusterauth.Header: "guess", "Authorization": FormatBasic("alice", "alice-pw")}, "alice|false"},
		{"open, forwarded", open, map[string]string{clusterauth.Header: testSecret, UserHeader: "alice"}, "|true"},
		{"open, wrong secret", open, map[string]string{clusterauth.Header: "guess"}, "|false"},
		{"open, nothing", open, nil, "|false"},
		{"no secret configured", noSecret, map[string]string{clusterauth.Header: testSecret}, "|false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var saw string
			h := tt.a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				saw = User(r.Context()) + "|" + strconv.FormatBool(FromNode(r.Context()))
			}))
			r := httptest.NewRequest("PUT", "/x", nil)
			r.RemoteAddr = "192.0.2.1:1"
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if saw != tt.want {
				t.Errorf("next handler saw %q, want %q", saw, tt.want)
			}
		})
	}
}
