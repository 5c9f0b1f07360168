package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TokenPrefix starts every device password. It tells a token from an
// account password without hashing (and lets secret scanners find leaked
// ones).
const TokenPrefix = "dfs_"

// tokenBytes is the entropy of a device password: 256 bits, far beyond
// guessing, which is why a fast hash (SHA-256) is enough to store it.
const tokenBytes = 32

// lowerBase32 is base32 without padding, in lowercase: tokens are typed
// into password fields on phones, where mixed case is a nuisance.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DeviceToken is one device password of a user: a random secret of which
// only the SHA-256 is kept.
type DeviceToken struct {
	User  string
	Label string // the user's name for the device, unique per user
	ID    string // short public identifier, unique in the file; for logs and revoke
	Hash  [sha256.Size]byte
	// ReadOnly caps requests with the token at GET, HEAD, OPTIONS and
	// PROPFIND, whatever the user may do with the account password.
	ReadOnly bool
	Created  time.Time
	Expires  time.Time // zero: never
}

// Expired reports whether the token no longer authenticates at now.
func (t DeviceToken) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// matches reports whether secret is this token, in time independent of
// where the hashes differ.
func (t DeviceToken) matches(sum [sha256.Size]byte) bool {
	return subtle.ConstantTimeCompare(t.Hash[:], sum[:]) == 1
}

// NewTokenSecret returns a fresh device password: TokenPrefix and 32
// random bytes in lowercase base32, and the SHA-256 that is stored in
// its place.
func NewTokenSecret() (secret string, sum [sha256.Size]byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", sum, fmt.Errorf("device password: %w", err)
	}
	secret = TokenPrefix + lowerBase32.EncodeToString(b)
	return secret, sha256.Sum256([]byte(secret)), nil
}

// newTokenID returns a random token id: 8 base32 characters (40 bits),
// enough to be unique among the tokens of one file without coordination.
func newTokenID() (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("device password id: %w", err)
	}
	return lowerBase32.EncodeToString(b), nil
}

// ValidTokenLabel reports why label cannot name a device: it must be
// non-empty UTF-8 of at most 64 bytes without spaces or control
// characters (fields of the token file are separated by spaces).
func ValidTokenLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label")
	case len(label) > 64:
		return errors.New("label longer than 64 bytes")
	case !utf8.ValidString(label):
		return errors.New("label is not valid UTF-8")
	case strings.IndexFunc(label, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("label contains a space or a control character")
	case label == "-" || strings.HasPrefix(label, "#"):
		return errors.New(`label "-" or starting with "#" would read as an empty field or a comment`)
	}
	return nil
}

// validTokenID accepts what newTokenID makes, and hand-made ids of 4 to 32
// lowercase letters and digits.
func validTokenID(id string) error {
	if len(id) < 4 || len(id) > 32 || strings.IndexFunc(id, func(r rune) bool { return (r < 'a' || r > 'z') && (r < '0' || r > '9') }) >= 0 {
		return fmt.Errorf("id %q is not 4 to 32 lowercase letters and digits", id)
	}
	return nil
}

// The token file's fields, in order (docs/auth.md, "Device passwords").
const tokenFields = 7

// tokenFileHeader starts a token file dfs creates: the format, for whoever
// edits it by hand.
const tokenFileHeader = "# dfs device passwords (docs/auth.md): user label id sha256 flags created expires"

// line is t as a line of the token file.
func (t DeviceToken) line() string {
	flags := "-"
	if t.ReadOnly {
		flags = "ro"
	}
	expires := "-"
	if !t.Expires.IsZero() {
		expires = t.Expires.Format(time.RFC3339Nano)
	}
	return strings.Join([]string{t.User, t.Label, t.ID, hex.EncodeToString(t.Hash[:]), flags, t.Created.Format(time.RFC3339Nano), expires}, " ")
}

// parseTokenLine reads one line of the token file. Blank lines and
// comments are no entry (ok false, no error). A line that is not a valid
// entry is an error saying why; it must authenticate nothing.
func parseTokenLine(line string) (t DeviceToken, ok bool, err error) {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return t, false, nil
	}
	f := strings.Fields(trimmed)
	if len(f) != tokenFields {
		return t, false, fmt.Errorf("%d fields, want %d: user label id sha256 flags created expires", len(f), tokenFields)
	}
	t.User, t.Label, t.ID = f[0], f[1], f[2]
	if err := ValidUserName(t.User); err != nil {
		return t, false, err
	}
	if err := ValidTokenLabel(t.Label); err != nil {
		return t, false, err
	}
	if err := validTokenID(t.ID); err != nil {
		return t, false, err
	}
	if len(f[3]) != 2*sha256.Size {
		return t, false, errors.New("sha256 is not 64 hex digits")
	}
	if _, err := hex.Decode(t.Hash[:], []byte(f[3])); err != nil {
		return t, false, errors.New("sha256 is not 64 hex digits")
	}
	if t.ReadOnly, err = parseTokenFlags(f[4]); err != nil {
		return t, false, err
	}
	if t.Created, err = time.Parse(time.RFC3339Nano, f[5]); err != nil {
		return t, false, fmt.Errorf("created is not an RFC 3339 time: %w", err)
	}
	if f[6] != "-" {
		if t.Expires, err = time.Parse(time.RFC3339Nano, f[6]); err != nil {
			return t, false, fmt.Errorf("expires is neither - nor an RFC 3339 time: %w", err)
		}
	}
	return t, true, nil
}

// parseTokenFlags reads the flags field: "-" for none, or a
// comma-separated list. An unknown flag makes the line invalid rather than
// being skipped: it may be a restriction that this dfs would not apply,
// and a token must never get more than its line says.
func parseTokenFlags(s string) (readOnly bool, err error) {
	if s == "-" {
		return false, nil
	}
	for _, flag := range strings.Split(s, ",") {
		switch flag {
		case "ro":
			readOnly = true
		default:
			return false, fmt.Errorf("unknown flag %q (known: ro; none: -)", flag)
		}
	}
	return readOnly, nil
}
