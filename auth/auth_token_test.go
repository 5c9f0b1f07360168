package auth

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// tokenGate is a gate whose users also have device passwords in a real
// token file: alice a read-write laptop, a read-only phone and a tablet
// that expires in an hour; bob (in the token file, not in htpasswd) an
// old laptop.
type tokenGate struct {
	*gate
	tokens     *DeviceTokens
	tokensPath string
	secret     map[string]string // label (user/label for bob) to token
	id         map[string]string
}

func newTokenGate(t *testing.T) *tokenGate {
	t.Helper()
	g := &tokenGate{gate: newGate(t), secret: map[string]string{}, id: map[string]string{}}
	g.tokensPath = filepath.Join(t.TempDir(), "tokens")
	for _, d := range []struct {
		user, label string
		ro          bool
		expires     time.Time
	}{
		{"alice", "laptop", false, time.Time{}},
		{"alice", "phone", true, time.Time{}},
		{"alice", "tablet", false, g.clock.now().Add(time.Hour)},
		{"bob", "laptop", false, time.Time{}},
	} {
		tok, secret := newToken(t, d.user, d.label, d.ro, d.expires)
		tok, err := AddToken(g.tokensPath, tok)
		if err != nil {
			t.Fatal(err)
		}
		key := d.label
		if d.user != "alice" {
			key = d.user + "/" + d.label
		}
		g.secret[key], g.id[key] = secret, tok.ID
	}
	var err error
	if g.tokens, err = OpenDeviceTokens(g.tokensPath, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	// The gate of newGate, now with tokens.
	base := g.a
	g.a = New(Config{
		Users: g.users, Tokens: g.tokens, ReadOnly: []string{"reader"}, ClusterSecret: testSecret,
		Backoff: BackoffConfig{Free: 2, Base: time.Second, Max: 8 * time.Second, HalfLife: time.Minute},
		Observe: func(r Result) { g.result = append(g.result, r) },
		Log:     zerolog.New(g.logs).Level(zerolog.DebugLevel), Now: g.clock.now,
		Sleep: base.sleep,
	})
	return g
}

func TestGateDeviceTokens(t *testing.T) {
	const ip = "192.0.2.1:5000"
	tests := []struct {
		name     string
		method   string
		user     string
		password func(g *tokenGate) string
		advance  time.Duration // clock moves before the request
		status   int
		body     string
		result   Result
		log      string // in the auth log
	}{
		{name: "token", method: "PUT", user: "alice", password: func(g *tokenGate) string { return g.secret["laptop"] },
			status: 204, result: ResultOK, log: "authenticated with a device password"},
		{name: "account password beside tokens", method: "PUT", user: "alice", password: func(*tokenGate) string { return "alice-pw" },
			status: 204, result: ResultOK},
		{name: "read-only token reads", method: "GET", user: "alice", password: func(g *tokenGate) string { return g.secret["phone"] },
			status: 204, result: ResultOK},
		{name: "read-only token lists", method: "PROPFIND", user: "alice", password: func(g *tokenGate) string { return g.secret["phone"] },
			status: 204, result: ResultOK},
		{name: "read-only token writes", method: "PUT", user: "alice", password: func(g *tokenGate) string { return g.secret["phone"] },
			status: 403, result: ResultReadOnly, body: "device password phone of user alice is read-only: PUT is not allowed"},
		{name: "expiring token before its time", method: "PUT", user: "alice", password: func(g *tokenGate) string { return g.secret["tablet"] },
			advance: 59 * time.Minute, status: 204, result: ResultOK},
		{name: "expired token", method: "GET", user: "alice", password: func(g *tokenGate) string { return g.secret["tablet"] },
			advance: time.Hour, status: 401, result: ResultFailed, body: "wrong user name or password", log: "expired device password tablet"},
		{name: "another user's token", method: "GET", user: "reader", password: func(g *tokenGate) string { return g.secret["laptop"] },
			status: 401, result: ResultFailed, log: "wrong password"},
		{name: "token of a user not in htpasswd", method: "GET", user: "bob", password: func(g *tokenGate) string { return g.secret["bob/laptop"] },
			status: 401, result: ResultFailed, body: "wrong user name or password", log: "no longer in the htpasswd file"},
		{name: "made-up token", method: "GET", user: "alice", password: func(*tokenGate) string { return TokenPrefix + strings.Repeat("a", 52) },
			status: 401, result: ResultFailed, log: "wrong password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTokenGate(t)
			g.clock.advance(tt.advance)
			secret := tt.password(g)
			w := g.do(tt.method, ip, basic(tt.user, secret))
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.body) {
				t.Fatalf("status %d, body %q; want %d saying %q", w.Code, w.Body.String(), tt.status, tt.body)
			}
			if len(g.result) != 1 || g.result[0] != tt.result {
				t.Errorf("observed %v, want exactly [%s]", g.result, tt.result)
			}
			if tt.status == 204 && (len(g.served) != 1 || g.served[0] != tt.user+"|"+tt.user) {
				t.Errorf("next handler saw %v, want %s", g.served, tt.user)
			}
			logs := g.logs.String()
			if !strings.Contains(logs, tt.log) {
				t.Errorf("log does not say %q:\n%s", tt.log, logs)
			}
			if strings.Contains(logs, secret) || strings.Contains(logs, TokenPrefix) {
				t.Errorf("a password reached the log:\n%s", logs)
			}
			if tt.log == "authenticated with a device password" && !strings.Contains(logs, `"token_id":"`+g.id["laptop"]+`"`) {
				t.Errorf("the log does not name the token's id %s:\n%s", g.id["laptop"], logs)
			}
		})
	}
}

// TestGateTokenNoBcrypt: a device password is checked without bcrypt, so
// it passes even while every bcrypt slot is taken, and never needs the
// verified-password cache (nothing there could outlive its revocation).
// An expired one, or one of a removed user, fails without bcrypt too.
func TestGateTokenNoBcrypt(t *testing.T) {
	g := newTokenGate(t)
	for range cap(g.a.checks) {
		g.a.checks <- struct{}{}
	}
	for range 3 {
		if w := g.do("PUT", "192.0.2.1:1", basic("alice", g.secret["laptop"])); w.Code != http.StatusNoContent {
			t.Fatalf("token with every bcrypt slot taken: %d", w.Code)
		}
	}
	if n := g.a.cache.len(); n != 0 {
		t.Fatalf("the cache holds %d entries after token logins, want 0", n)
	}
	g.clock.advance(2 * time.Hour) // the tablet's token has expired
	for _, c := range []struct{ user, key string }{{"alice", "tablet"}, {"bob", "bob/laptop"}} {
		if w := g.do("GET", "192.0.2.1:1", basic(c.user, g.secret[c.key])); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s's unusable token with every bcrypt slot taken: %d, want 401", c.user, w.Code)
		}
	}
}

// TestGateTokenRevoked: a revoked token is refused from the first request
// after the reload, however often it was used before, and the account
// password and the other tokens keep working.
func TestGateTokenRevoked(t *testing.T) {
	g := newTokenGate(t)
	for range 3 {
		if w := g.do("GET", "192.0.2.1:1", basic("alice", g.secret["laptop"])); w.Code != http.StatusNoContent {
			t.Fatalf("before revocation: %d", w.Code)
		}
	}
	// The account password is remembered under the current generation.
	if w := g.do("GET", "192.0.2.1:1", basic("alice", "alice-pw")); w.Code != http.StatusNoContent || g.a.cache.len() != 1 {
		t.Fatalf("account password: %d, %d cached", w.Code, g.a.cache.len())
	}
	if _, err := RevokeToken(g.tokensPath, "alice", "laptop"); err != nil {
		t.Fatal(err)
	}
	if changed, err := g.tokens.Reload(); !changed || err != nil {
		t.Fatalf("Reload: %v, %v", changed, err)
	}
	if w := g.do("GET", "192.0.2.1:1", basic("alice", g.secret["laptop"])); w.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", w.Code)
	}
	// A change of the token file voids remembered account passwords too:
	// the cache's generation includes the token file's.
	if g.a.cache.ok("alice", "alice-pw", generation{users: g.users.Generation(), tokens: g.tokens.Generation()}) {
		t.Fatal("a verification remembered before the token file changed still counts")
	}
	for _, pw := range []string{"alice-pw", g.secret["phone"]} {
		if w := g.do("GET", "192.0.2.1:1", basic("alice", pw)); w.Code != http.StatusNoContent {
			t.Fatalf("after revoking the laptop, %.8s...: %d", pw, w.Code)
		}
	}
}

// TestGateTokenUserRemoved: removing a user from htpasswd stops their
// tokens, even though the token file still has them.
func TestGateTokenUserRemoved(t *testing.T) {
	g := newTokenGate(t)
	if w := g.do("GET", "192.0.2.1:1", basic("alice", g.secret["laptop"])); w.Code != http.StatusNoContent {
		t.Fatal(w.Code)
	}
	writeFile(t, g.path, entry(t, "reader", "reader-pw"))
	if _, err := g.users.Reload(); err != nil {
		t.Fatal(err)
	}
	if w := g.do("GET", "192.0.2.1:1", basic("alice", g.secret["laptop"])); w.Code != http.StatusUnauthorized {
		t.Fatalf("token of a removed user: %d, want 401", w.Code)
	}
}

// TestGateTokenBackoff: a wrong device password is a failure like a wrong
// password, earning the same delay; the right token still passes.
func TestGateTokenBackoff(t *testing.T) {
	g := newTokenGate(t)
	const ip = "198.51.100.7:4000"
	wrong := TokenPrefix + strings.Repeat("b", 52)
	for range 3 {
		g.do("GET", ip, basic("alice", wrong))
	}
	before := len(g.slept)
	if w := g.do("GET", ip, basic("alice", wrong)); w.Code != http.StatusUnauthorized || len(g.slept) != before+1 || g.slept[before] != time.Second {
		t.Fatalf("4th wrong token: %d after %v, want 401 after 1s", w.Code, g.slept[before:])
	}
	if g.a.backoff.Delay("user alice") == 0 {
		t.Fatal("wrong tokens did not count against alice")
	}
	if w := g.do("GET", ip, basic("alice", g.secret["laptop"])); w.Code != http.StatusNoContent {
		t.Fatalf("the right token after failures: %d", w.Code)
	}
}
