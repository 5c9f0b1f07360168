package auth

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// BenchmarkGate measures one authenticated request through the gate with
// a cost-10 entry (dfs user add's default): remembered (a client sending
// Basic on every request) and checked with bcrypt every time.
func BenchmarkGate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "users")
	h, err := HashPassword("alice-pw", bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := SetUser(path, "alice", h); err != nil {
		b.Fatal(err)
	}
	users, err := OpenUsers(path, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"remembered", 0}, {"bcrypt", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			gate := New(Config{Users: users, CacheTTL: bc.ttl}).Wrap(next)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "192.0.2.1:1"
			r.Header.Set("Authorization", FormatBasic("alice", "alice-pw"))
			for b.Loop() {
				w := httptest.NewRecorder()
				gate.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
