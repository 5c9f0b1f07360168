package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DeviceTokens is the device passwords of a token file, re-read when the
// file changes on disk (see Watch), as Users is for the htpasswd file. It
// is safe for concurrent use.
//
// A missing file holds no tokens, at start and later: enabling the option
// before the first `dfs user token add` works, and a file (or Secret key)
// that goes away revokes everything. Failing that way grants nothing. A file
// that exists but cannot be read or holds only broken lines keeps the last
// good set, as for htpasswd.
type DeviceTokens struct {
	path string
	log  zerolog.Logger

	mu     sync.RWMutex
	byUser map[string][]DeviceToken
	n      int
	gen    uint64      // counts loads (including "the file is gone"); a new one voids remembered verifications
	stat   os.FileInfo // nil: not loaded, or the file is missing
}

// OpenDeviceTokens reads the token file at path. An existing file must be
// readable and valid for the node to start; a missing one is an empty set.
func OpenDeviceTokens(path string, log zerolog.Logger) (*DeviceTokens, error) {
	d := &DeviceTokens{path: path, log: log.With().Str("device_tokens", path).Logger()}
	if _, err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the token file's path.
func (d *DeviceTokens) Path() string { return d.path }

// Generation counts loads of the file.
func (d *DeviceTokens) Generation() uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.gen
}

// Len is the number of tokens in force.
func (d *DeviceTokens) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.n
}

// Match returns user's token that password is, expired or not (the caller
// decides with its clock). Only passwords with TokenPrefix are hashed; each
// of the user's tokens is compared in constant time.
func (d *DeviceTokens) Match(user, password string) (DeviceToken, bool) {
	if !strings.HasPrefix(password, TokenPrefix) {
		return DeviceToken{}, false
	}
	sum := sha256.Sum256([]byte(password))
	d.mu.RLock()
	defer d.mu.RUnlock()
	var found DeviceToken
	ok := false
	// No early exit: the time taken depends on how many tokens the user
	// has, never on which one (if any) matched.
	for _, t := range d.byUser[user] {
		if t.matches(sum) && !ok {
			found, ok = t, true
		}
	}
	return found, ok
}

// Reload re-reads the file if it changed since the last successful read.
func (d *DeviceTokens) Reload() (changed bool, err error) {
	d.mu.RLock()
	prev, loaded := d.stat, d.gen > 0
	d.mu.RUnlock()
	b, after, err := readIfChanged(d.path, prev)
	if errors.Is(err, fs.ErrNotExist) {
		if loaded && prev == nil {
			return false, nil // still missing
		}
		d.set(nil, nil)
		d.log.Info().Msg("device-token file does not exist: no device passwords until it does")
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("device tokens %s: %w", d.path, err)
	}
	if b == nil {
		return false, nil
	}
	tokens, problems, err := ParseTokens(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("device tokens %s: %w", d.path, err)
	}
	for _, p := range problems {
		d.log.Warn().Int("line", p.Line).Str("user", p.User).Str("problem", p.Reason).Msg("device-token line ignored")
	}
	if len(tokens) == 0 && len(problems) > 0 {
		return false, fmt.Errorf("device tokens %s: no valid token in %d lines with problems", d.path, len(problems))
	}
	d.set(tokens, after)
	d.log.Info().Int("tokens", len(tokens)).Int("ignored_lines", len(problems)).Msg("device tokens loaded")
	return true, nil
}

func (d *DeviceTokens) set(tokens []DeviceToken, st os.FileInfo) {
	byUser := map[string][]DeviceToken{}
	for _, t := range tokens {
		byUser[t.User] = append(byUser[t.User], t)
	}
	d.mu.Lock()
	d.byUser, d.n, d.stat = byUser, len(tokens), st
	d.gen++
	d.mu.Unlock()
}

// Watch re-reads the file whenever it changes, checking every interval,
// until ctx ends. A failed read is logged as an error and the last good
// set stays in force; a revoked token stops working within an interval.
func (d *DeviceTokens) Watch(ctx context.Context, interval time.Duration) {
	watchFile(ctx, interval, d.log, d.Reload,
		"device tokens not reloaded; the last good set stays in force", "device-token file readable again")
}
