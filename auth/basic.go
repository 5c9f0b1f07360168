package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Why an Authorization header was not taken; the 401 body says it.
var (
	ErrNoCredentials = errors.New("no credentials: this server requires HTTP Basic authentication")
	ErrNotBasic      = errors.New("unsupported authorization scheme: only Basic is accepted")
	ErrMalformed     = errors.New("malformed Basic credentials: want base64 of user:password")
)

// ParseBasic parses an Authorization header value of the Basic scheme
// (RFC 7617): the scheme name in any case, spaces, then base64 of
// "user:password". The user name is everything before the first colon and
// must be valid UTF-8 without control characters; the password may hold
// anything, colons included.
func ParseBasic(header string) (user, password string, err error) {
	if header == "" {
		return "", "", ErrNoCredentials
	}
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", ErrNotBasic
	}
	token := strings.Trim(rest, " \t")
	if token == "" {
		return "", "", ErrMalformed
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil {
		return "", "", ErrMalformed
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || !utf8.ValidString(user) || strings.IndexFunc(user, unicode.IsControl) >= 0 {
		return "", "", ErrMalformed
	}
	return user, password, nil
}

// FormatBasic is the Authorization header value ParseBasic reads back as
// user and password.
func FormatBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
