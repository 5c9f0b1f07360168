package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Problem is a line of an htpasswd file that was not taken, and why.
type Problem struct {
	Line   int
	User   string
	Reason string
}

func (p Problem) String() string {
	if p.User == "" {
		return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
	}
	return fmt.Sprintf("line %d (user %q): %s", p.Line, p.User, p.Reason)
}

// Entries are the users of an htpasswd file: name to bcrypt hash.
type Entries map[string][]byte

// ParseHtpasswd reads an htpasswd file: one "name:hash" per line, blank
// lines and lines starting with # ignored. Only bcrypt hashes ($2y$ as
// `htpasswd -B` writes them, $2a$, $2b$) are taken; any other line
// (plaintext, MD5 "$apr1$", SHA "{SHA}", crypt, a malformed hash, a second
// entry for a name) is left out and reported as a Problem, so a weak or
// broken entry can never authenticate anyone. An error is returned only when
// r cannot be read.
func ParseHtpasswd(r io.Reader) (Entries, []Problem, error) {
	entries := Entries{}
	var problems []Problem
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			problems = append(problems, Problem{Line: n, Reason: "no ':' between user name and hash"})
			continue
		}
		if err := ValidUserName(name); err != nil {
			problems = append(problems, Problem{Line: n, Reason: err.Error()})
			continue
		}
		if err := validBcrypt(hash); err != nil {
			problems = append(problems, Problem{Line: n, User: name, Reason: err.Error()})
			continue
		}
		if _, dup := entries[name]; dup {
			problems = append(problems, Problem{Line: n, User: name, Reason: "a second entry for this user; the first one counts"})
			continue
		}
		entries[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read htpasswd: %w", err)
	}
	return entries, problems, nil
}

// validBcrypt accepts the bcrypt variants htpasswd and bcrypt libraries
// write, and nothing else.
func validBcrypt(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
	case hash == "":
		return errors.New("empty hash")
	case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
		return errors.New("MD5 hash: not accepted, only bcrypt (create it with `dfs user add` or `htpasswd -B`)")
	case strings.HasPrefix(hash, "{SHA}"):
		return errors.New("SHA-1 hash: not accepted, only bcrypt (create it with `dfs user add` or `htpasswd -B`)")
	default:
		return errors.New("not a bcrypt hash (plaintext or crypt are never accepted; create it with `dfs user add` or `htpasswd -B`)")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("malformed bcrypt hash: %w", err)
	}
	return nil
}

// ValidUserName reports why name cannot be a user name: it must be
// non-empty UTF-8 of at most 255 bytes without ':' (the htpasswd and Basic
// separator), spaces or control characters.
func ValidUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > 255:
		return errors.New("user name longer than 255 bytes")
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	case strings.ContainsRune(name, ':'):
		return errors.New("user name contains ':'")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("user name contains a space or a control character")
	}
	return nil
}

// MaxPasswordBytes is bcrypt's limit: longer passwords cannot be hashed.
const MaxPasswordBytes = 72

// HashPassword returns a bcrypt hash of password at cost (bcrypt.DefaultCost
// if 0).
func HashPassword(password string, cost int) ([]byte, error) {
	if password == "" {
		return nil, errors.New("empty password")
	}
	if len(password) > MaxPasswordBytes {
		return nil, fmt.Errorf("password longer than %d bytes (bcrypt's limit)", MaxPasswordBytes)
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// SetUser writes name's entry into the htpasswd file at path, replacing an
// existing entry for name or appending one (creating the file), and keeps
// every other line as it was. It reports whether an entry was replaced.
func SetUser(path, name string, hash []byte) (replaced bool, err error) {
	if err := ValidUserName(name); err != nil {
		return false, err
	}
	if err := validBcrypt(string(hash)); err != nil {
		return false, err
	}
	lines, err := readLines(path, true)
	if err != nil {
		return false, err
	}
	entry := name + ":" + string(hash)
	out := lines[:0:0]
	for _, l := range lines {
		if lineUser(l) == name {
			if !replaced {
				out = append(out, entry)
			}
			replaced = true
			continue
		}
		out = append(out, l)
	}
	if !replaced {
		out = append(out, entry)
	}
	return replaced, writeLines(path, out)
}

// RemoveUser deletes name's entries from the htpasswd file at path and
// keeps every other line. It reports whether there was one.
func RemoveUser(path, name string) (bool, error) {
	lines, err := readLines(path, false)
	if err != nil {
		return false, err
	}
	out := lines[:0:0]
	found := false
	for _, l := range lines {
		if lineUser(l) == name {
			found = true
			continue
		}
		out = append(out, l)
	}
	if !found {
		return false, nil
	}
	return true, writeLines(path, out)
}

// lineUser is the user name a line is an entry for ("" for comments and
// blank lines).
func lineUser(line string) string {
	if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
		return ""
	}
	name, _, _ := strings.Cut(line, ":")
	return name
}

func readLines(path string, missingOK bool) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// writeLines replaces the file at path atomically: a reader (a running
// node polling the file) sees the old file or the new one, never a part.
// The file gets mode 0600: it holds password hashes.
func writeLines(path string, lines []string) (err error) {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Make the rename itself durable.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
