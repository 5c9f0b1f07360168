package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// Users is the user set of an htpasswd file, re-read when the file changes
// on disk (see Watch). It is safe for concurrent use.
type Users struct {
	path string
	log  zerolog.Logger

	mu      sync.RWMutex
	entries Entries
	gen     uint64 // counts successful loads; verifications cached under an older one are void
	stat    os.FileInfo
	dummy   []byte // bcrypt hash of a random password at the file's usual cost
	dummyAt int    // cost of dummy
}

// OpenUsers reads the htpasswd file at path. The first read must succeed:
// a node that cannot read its user file does not start. Lines that are not
// bcrypt entries are logged as warnings, naming the line, and ignored.
func OpenUsers(path string, log zerolog.Logger) (*Users, error) {
	u := &Users{path: path, log: log.With().Str("htpasswd", path).Logger()}
	if _, err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Path is the htpasswd file's path.
func (u *Users) Path() string { return u.path }

// Lookup returns name's bcrypt hash and the generation of the user set it
// comes from.
func (u *Users) Lookup(name string) (hash []byte, gen uint64, ok bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	hash, ok = u.entries[name]
	return hash, u.gen, ok
}

// Has reports whether name is a user.
func (u *Users) Has(name string) bool {
	_, _, ok := u.Lookup(name)
	return ok
}

// Len is the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.entries)
}

// Generation counts successful loads of the file.
func (u *Users) Generation() uint64 {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.gen
}

// Dummy is a bcrypt hash no password matches, at the cost most entries
// use: checking an unknown user's password against it takes as long as
// checking a real user's, so timing does not tell who exists.
func (u *Users) Dummy() []byte {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.dummy
}

// Reload re-reads the file if it changed since the last successful read
// (path, not an open descriptor, is checked: a Kubernetes Secret update
// swaps a symlink). A file that became unreadable, or holds no valid entry
// but invalid lines, keeps the previous user set and returns the error.
func (u *Users) Reload() (changed bool, err error) {
	u.mu.RLock()
	prev := u.stat
	u.mu.RUnlock()
	b, after, err := readIfChanged(u.path, prev)
	if err != nil {
		return false, fmt.Errorf("htpasswd %s: %w", u.path, err)
	}
	if b == nil {
		return false, nil
	}
	entries, problems, err := ParseHtpasswd(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("htpasswd %s: %w", u.path, err)
	}
	for _, p := range problems {
		u.log.Warn().Int("line", p.Line).Str("user", p.User).Str("problem", p.Reason).Msg("htpasswd line ignored")
	}
	if len(entries) == 0 && len(problems) > 0 {
		return false, fmt.Errorf("htpasswd %s: no valid bcrypt entry in %d lines with problems", u.path, len(problems))
	}
	if len(entries) == 0 {
		u.log.Warn().Msg("htpasswd file has no users: nobody can use the WebDAV API")
	}
	cost := usualCost(entries)
	u.mu.RLock()
	dummy, dummyAt := u.dummy, u.dummyAt
	u.mu.RUnlock()
	if dummy == nil || dummyAt != cost {
		if dummy, err = newDummy(cost); err != nil {
			return false, err
		}
	}
	u.mu.Lock()
	u.entries, u.stat, u.dummy, u.dummyAt = entries, after, dummy, cost
	u.gen++
	u.mu.Unlock()
	u.log.Info().Int("users", len(entries)).Int("ignored_lines", len(problems)).Msg("htpasswd loaded")
	return true, nil
}

// Watch re-reads the file whenever it changes, checking every interval,
// until ctx ends. A failed read is logged as an error and the last good
// user set stays in force.
func (u *Users) Watch(ctx context.Context, interval time.Duration) {
	watchFile(ctx, interval, u.log, u.Reload,
		"htpasswd not reloaded; the last good user set stays in force", "htpasswd readable again")
}

// usualCost is the bcrypt cost most entries use (bcrypt.DefaultCost for an
// empty set).
func usualCost(entries Entries) int {
	count := map[int]int{}
	best, bestN := bcrypt.DefaultCost, 0
	for _, h := range entries {
		c, err := bcrypt.Cost(h)
		if err != nil {
			continue
		}
		count[c]++
		if n := count[c]; n > bestN || (n == bestN && c > best) {
			best, bestN = c, n
		}
	}
	return best
}

func newDummy(cost int) ([]byte, error) {
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	// 32 random bytes are within bcrypt's 72-byte limit.
	h, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return h, nil
}
