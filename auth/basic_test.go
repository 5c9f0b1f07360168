package auth

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseBasic(t *testing.T) {
	tests := []struct {
		header, user, password string
		err                    error
	}{
		{"", "", "", ErrNoCredentials},
		{"Basic YWxpY2U6c2VjcmV0", "alice", "secret", nil},
		{"basic YWxpY2U6c2VjcmV0", "alice", "secret", nil},
		{"BASIC   YWxpY2U6c2VjcmV0  ", "alice", "secret", nil},
		{"Basic YWxpY2U6OmE6Yg==", "alice", ":a:b", nil}, // colons in the password
		{"Basic YWxpY2U6", "alice", "", nil},             // empty password: parsed, then never matches
		{"Basic w7xzZXI6cMOkc3M=", "üser", "päss", nil},
		{"Bearer abc", "", "", ErrNotBasic},
		{"Basic", "", "", ErrMalformed}, // the scheme alone
		{"Basic ", "", "", ErrMalformed},
		{"Basic !!!!", "", "", ErrMalformed},
		{"Basic YWxpY2U", "", "", ErrMalformed},            // unpadded
		{"Basic YWxpY2U=", "", "", ErrMalformed},           // no colon
		{"Basic OnNlY3JldA==", "", "", ErrMalformed},       // empty user
		{"Basic YQlhOmI=", "", "", ErrMalformed},           // tab in the user
		{"Basic /w==", "", "", ErrMalformed},               // invalid UTF-8, no colon
		{"Basic /zpi", "", "", ErrMalformed},               // invalid UTF-8 user
		{"Basic YWxpY2U6c2VjcmV0 x", "", "", ErrMalformed}, // trailing junk
	}
	for _, tt := range tests {
		u, p, err := ParseBasic(tt.header)
		if u != tt.user || p != tt.password || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseBasic(%q) = %q, %q, %v; want %q, %q, %v", tt.header, u, p, err, tt.user, tt.password, tt.err)
		}
	}
}

// FuzzParseBasic: the Authorization parser never panics, only ever returns
// a user it could format back, and reads back every pair FormatBasic
// writes for a valid user name.
func FuzzParseBasic(f *testing.F) {
	seeds := []struct{ header, user, password string }{
		{"Basic YWxpY2U6c2VjcmV0", "alice", "secret"},
		{"basic YWxpY2U6OmE6Yg==", "bob", ":a:b"},
		{"Basic", "ü", "p\x00ss"},
		{"Bearer x", "a b", ""},
		{"Basic !!!", "x", strings.Repeat("p", 100)},
		{"Basic w7xzZXI6cMOkc3M=", "\xff", "x"},
		{"Basic \t", "tab\tuser", "x"},
		{"", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.header, s.user, s.password)
	}
	f.Fuzz(func(t *testing.T, header, user, password string) {
		u, p, err := ParseBasic(header)
		if err == nil {
			if u == "" || strings.Contains(u, ":") || !utf8.ValidString(u) || strings.IndexFunc(u, unicode.IsControl) >= 0 {
				t.Fatalf("ParseBasic(%q) accepted user %q", header, u)
			}
			if u2, p2, err := ParseBasic(FormatBasic(u, p)); err != nil || u2 != u || p2 != p {
				t.Fatalf("round trip of %q, %q: %q, %q, %v", u, p, u2, p2, err)
			}
		} else if u != "" || p != "" {
			t.Fatalf("ParseBasic(%q) failed with %v but returned %q, %q", header, err, u, p)
		}
		validUser := user != "" && !strings.Contains(user, ":") && utf8.ValidString(user) && strings.IndexFunc(user, unicode.IsControl) < 0
		u, p, err = ParseBasic(FormatBasic(user, password))
		if validUser && (err != nil || u != user || p != password) {
			t.Fatalf("FormatBasic(%q, %q) reads back as %q, %q, %v", user, password, u, p, err)
		}
		// A name with a colon reads back as its part before the colon (a
		// valid, different user); any other invalid name is refused.
		if !validUser && err == nil && (u == user || !strings.HasPrefix(user, u+":")) {
			t.Fatalf("FormatBasic(%q, %q) accepted as user %q", user, password, u)
		}
	})
}
