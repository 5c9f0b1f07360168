package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ParseTokens reads a device-token file: one token per line (see
// DeviceToken.line), blank lines and lines starting with # ignored. A line
// that is not a valid entry, or that repeats a label of the same user or an
// id, is left out and reported as a Problem: it authenticates nothing. An
// error is returned only when r cannot be read.
func ParseTokens(r io.Reader) ([]DeviceToken, []Problem, error) {
	var tokens []DeviceToken
	var problems []Problem
	labels, ids := map[[2]string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		t, ok, err := parseTokenLine(sc.Text())
		switch {
		case err != nil:
			problems = append(problems, Problem{Line: n, User: t.User, Reason: err.Error()})
			continue
		case !ok:
			continue
		case labels[[2]string{t.User, t.Label}]:
			problems = append(problems, Problem{Line: n, User: t.User, Reason: fmt.Sprintf("a second token labelled %q for this user; the first one counts", t.Label)})
			continue
		case ids[t.ID]:
			problems = append(problems, Problem{Line: n, User: t.User, Reason: fmt.Sprintf("a second token with id %s; the first one counts", t.ID)})
			continue
		}
		labels[[2]string{t.User, t.Label}], ids[t.ID] = true, true
		tokens = append(tokens, t)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read device tokens: %w", err)
	}
	return tokens, problems, nil
}

// ReadTokens parses the token file at path; a missing file holds no
// tokens.
func ReadTokens(path string) ([]DeviceToken, []Problem, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("device tokens: %w", err)
	}
	defer f.Close()
	return ParseTokens(f)
}

// ErrTokenNotFound: no token of the user has the label or id asked for.
var ErrTokenNotFound = errors.New("no such device password")

// AddToken appends t to the token file at path (creating it, with a
// header comment saying the format) and returns it as written: an empty
// t.ID gets a fresh one. It refuses a label the user already has. Every
// other line is kept as it was; the file is replaced atomically.
func AddToken(path string, t DeviceToken) (DeviceToken, error) {
	if err := ValidUserName(t.User); err != nil {
		return t, err
	}
	if strings.HasPrefix(t.User, "#") {
		// Its line would be a comment, as in htpasswd, where no such user
		// can exist either.
		return t, fmt.Errorf("user name %q starts with #: its line would be a comment", t.User)
	}
	if err := ValidTokenLabel(t.Label); err != nil {
		return t, err
	}
	lines, err := readLines(path, true)
	if err != nil {
		return t, err
	}
	ids := map[string]bool{}
	for _, l := range lines {
		old, ok, _ := parseTokenLine(l)
		if !ok {
			continue
		}
		ids[old.ID] = true
		if old.User == t.User && old.Label == t.Label {
			return t, fmt.Errorf("user %s already has a device password labelled %q (id %s): revoke it first or choose another label", t.User, t.Label, old.ID)
		}
	}
	// A label equal to another token's id of the same user would make
	// revoke ambiguous; ids are random, so a fresh one avoids it.
	for t.ID == "" || ids[t.ID] || t.ID == t.Label {
		if t.ID, err = newTokenID(); err != nil {
			return t, err
		}
	}
	if err := validTokenID(t.ID); err != nil {
		return t, err
	}
	if len(lines) == 0 {
		lines = append(lines, tokenFileHeader)
	}
	return t, writeLines(path, append(lines, t.line()))
}

// RevokeToken removes user's token whose label or id is labelOrID from the
// file at path, keeping every other line, and returns it. A name that
// matches two tokens (one's label is the other's id) is an error and
// changes nothing.
func RevokeToken(path, user, labelOrID string) (DeviceToken, error) {
	lines, err := readLines(path, false)
	if err != nil {
		return DeviceToken{}, err
	}
	var found []DeviceToken
	out := lines[:0:0]
	for _, l := range lines {
		t, ok, _ := parseTokenLine(l)
		if ok && t.User == user && (t.Label == labelOrID || t.ID == labelOrID) {
			found = append(found, t)
			continue
		}
		out = append(out, l)
	}
	switch {
	case len(found) == 0:
		return DeviceToken{}, fmt.Errorf("%w: user %s has none labelled %q or with that id in %s", ErrTokenNotFound, user, labelOrID, path)
	case len(found) > 1:
		desc := make([]string, len(found))
		for i, t := range found {
			desc[i] = fmt.Sprintf("label %q id %s", t.Label, t.ID)
		}
		return DeviceToken{}, fmt.Errorf("%q is ambiguous for user %s: it names %s; nothing revoked", labelOrID, user, strings.Join(desc, " and "))
	}
	return found[0], writeLines(path, out)
}

// RemoveUserTokens removes every line of user from the file at path (a
// missing file has none), valid or not, and returns how many there were. Used when the
// user goes: a user of the same name added later must not inherit them.
func RemoveUserTokens(path, user string) (int, error) {
	if strings.HasPrefix(user, "#") {
		return 0, nil // no such user can have a line; and comments stay
	}
	lines, err := readLines(path, true)
	if err != nil || len(lines) == 0 {
		return 0, err
	}
	out := lines[:0:0]
	n := 0
	for _, l := range lines {
		// Lines this dfs ignores go too: a later dfs may take them.
		if f := strings.Fields(l); len(f) > 0 && f[0] == user {
			n++
			continue
		}
		out = append(out, l)
	}
	if n == 0 {
		return 0, nil
	}
	return n, writeLines(path, out)
}
