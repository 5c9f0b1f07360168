package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

const (
	tokenHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	created   = "2026-12-07T10:00:00Z"
)

func TestParseTokenLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		entry   bool   // a token
		wantErr string // "" for no error
		check   func(DeviceToken) bool
	}{
		{name: "blank", line: "   \t"},
		{name: "comment", line: "  # alice laptop ..."},
		{name: "read-write, never expires", line: "alice laptop abcd1234 " + tokenHash + " - " + created + " -", entry: true,
			check: func(d DeviceToken) bool {
				return d.User == "alice" && d.Label == "laptop" && d.ID == "abcd1234" && !d.ReadOnly && d.Expires.IsZero() &&
					hex.EncodeToString(d.Hash[:]) == tokenHash && d.Created.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
			}},
		{name: "read-only, expires, tabs and CR", line: "alice\tphone\tefgh5678\t" + strings.ToUpper(tokenHash) + "\tro\t" + created + "\t2027-03-07T12:00:00+02:00\r", entry: true,
			check: func(d DeviceToken) bool {
				return d.ReadOnly && d.Expires.Equal(time.Date(2027, 3, 7, 10, 0, 0, 0, time.UTC))
			}},
		{name: "too few fields", line: "alice laptop abcd1234 " + tokenHash + " - " + created, wantErr: "6 fields, want 7"},
		{name: "too many fields", line: "alice laptop abcd1234 " + tokenHash + " - " + created + " - x", wantErr: "8 fields"},
		{name: "colon in user", line: "a:b laptop abcd1234 " + tokenHash + " - " + created + " -", wantErr: "contains ':'"},
		{name: "label -", line: "alice - abcd1234 " + tokenHash + " - " + created + " -", wantErr: "label"},
		{name: "uppercase id", line: "alice laptop ABCD1234 " + tokenHash + " - " + created + " -", wantErr: "id"},
		{name: "short id", line: "alice laptop abc " + tokenHash + " - " + created + " -", wantErr: "id"},
		{name: "short hash", line: "alice laptop abcd1234 " + tokenHash[:62] + " - " + created + " -", wantErr: "64 hex"},
		{name: "not hex", line: "alice laptop abcd1234 " + strings.Repeat("zz", 32) + " - " + created + " -", wantErr: "64 hex"},
		// A flag this dfs does not know may restrict the token: the line
		// must not authenticate with fewer restrictions than it says.
		{name: "unknown flag", line: "alice laptop abcd1234 " + tokenHash + " ro,ipv6only " + created + " -", wantErr: `unknown flag "ipv6only"`},
		{name: "empty flag", line: "alice laptop abcd1234 " + tokenHash + " ro, " + created + " -", wantErr: "unknown flag"},
		{name: "bad created", line: "alice laptop abcd1234 " + tokenHash + " - yesterday -", wantErr: "created"},
		{name: "bad expires", line: "alice laptop abcd1234 " + tokenHash + " - " + created + " 2027-03-07", wantErr: "expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok, err := parseTokenLine(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || ok {
					t.Fatalf("ok %v, err %v; want an error saying %q", ok, err, tt.wantErr)
				}
				return
			}
			if err != nil || ok != tt.entry {
				t.Fatalf("ok %v, err %v; want ok %v", ok, err, tt.entry)
			}
			if tt.check != nil && !tt.check(d) {
				t.Fatalf("parsed %+v", d)
			}
			if ok {
				again, ok2, err := parseTokenLine(d.line())
				if !ok2 || err != nil || !sameToken(again, d) {
					t.Fatalf("line %q reads back as %+v (%v, %v)", d.line(), again, ok2, err)
				}
			}
		})
	}
}

func sameToken(a, b DeviceToken) bool {
	return a.User == b.User && a.Label == b.Label && a.ID == b.ID && a.Hash == b.Hash && a.ReadOnly == b.ReadOnly &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

// FuzzParseTokenLine: no line panics the parser, a line it takes writes
// back as a single line that reads back as the same token, and a line it
// takes holds a valid user name and label.
func FuzzParseTokenLine(f *testing.F) {
	f.Add("alice laptop abcd1234 " + tokenHash + " - " + created + " -")
	f.Add("alice phone efgh5678 " + tokenHash + " ro " + created + " 2027-03-07T12:00:00.5+02:00")
	f.Add("# comment")
	f.Add("alice laptop abcd1234 " + tokenHash + " ro,ro " + created + " -")
	f.Fuzz(func(t *testing.T, line string) {
		d, ok, err := parseTokenLine(line)
		if err != nil || !ok {
			return
		}
		if ValidUserName(d.User) != nil || ValidTokenLabel(d.Label) != nil || validTokenID(d.ID) != nil {
			t.Fatalf("%q: took %+v", line, d)
		}
		out := d.line()
		if strings.ContainsAny(out, "\r\n") {
			t.Fatalf("%q: writes back as %q, more than one line", line, out)
		}
		again, ok, err := parseTokenLine(out)
		if !ok || err != nil || !sameToken(again, d) {
			t.Fatalf("%q: writes back as %q, which reads as %+v (%v, %v), not %+v", line, out, again, ok, err, d)
		}
	})
}

func TestNewTokenSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, sum, err := NewTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(s, TokenPrefix)
		if !ok || len(body) != 52 || strings.Trim(body, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("token %q: want %s and 52 lowercase base32 characters (32 bytes)", s, TokenPrefix)
		}
		if sum != sha256.Sum256([]byte(s)) {
			t.Fatal("the hash is not the SHA-256 of the token")
		}
		if seen[s] {
			t.Fatal("the same token twice")
		}
		seen[s] = true
	}
}

func TestTokenExpired(t *testing.T) {
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	d := DeviceToken{Expires: at}
	if d.Expired(at.Add(-time.Nanosecond)) || !d.Expired(at) || !d.Expired(at.Add(time.Hour)) {
		t.Error("a token must work until, not at, its expiry")
	}
	if (DeviceToken{}).Expired(at.AddDate(100, 0, 0)) {
		t.Error("a token without expiry expired")
	}
}
