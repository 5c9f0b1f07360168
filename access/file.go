package access

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// File is the rules of a file, re-read when the file changes on disk (see
// Watch). It is safe for concurrent use.
type File struct {
	path string
	log  zerolog.Logger

	// rules is read on every request, so without a lock; mu only keeps
	// two reloads from interleaving.
	rules atomic.Pointer[Rules]
	mu    sync.Mutex
	stat  os.FileInfo // of the file the current rules came from
}

// OpenFile reads the rules file at path. The first read must succeed: a
// node that cannot read its rules does not start, rather than serve with
// none or with a guess.
func OpenFile(path string, log zerolog.Logger) (*File, error) {
	f := &File{path: path, log: log.With().Str("access_rules", path).Logger()}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the rules file's path.
func (f *File) Path() string { return f.path }

// Rules returns the rules in force. Hold on to them for the length of one
// request, so that a reload in between cannot answer half of it with old
// rules and half with new.
func (f *File) Rules() *Rules { return f.rules.Load() }

// Level is Rules().Level.
func (f *File) Level(user, p string) Level { return f.Rules().Level(user, p) }

// Below is Rules().Below.
func (f *File) Below(user, p string) []Boundary { return f.Rules().Below(user, p) }

// Reload re-reads the file if it changed since the last successful read
// (the path, not an open descriptor, is checked: a Kubernetes ConfigMap
// update swaps a symlink). A file that became unreadable or invalid keeps
// the previous rules and returns the error; a *ParseError in it names the
// line.
func (f *File) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("access rules %s: %w", f.path, err)
	}
	if f.stat != nil && sameStat(f.stat, before) {
		return false, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("access rules %s: %w", f.path, err)
	}
	// Written in place while we read it: take it on the next round, once
	// the writer is done.
	after, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("access rules %s: %w", f.path, err)
	}
	if !sameStat(before, after) {
		return false, fmt.Errorf("access rules %s: changed while being read; reading it again on the next check", f.path)
	}
	rules, err := Parse(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("access rules %s: %w", f.path, err)
	}
	f.rules.Store(rules)
	f.stat = after
	if len(rules.rules) == 0 && rules.def == None {
		f.log.Warn().Msg("access rules grant nothing: nobody can use the WebDAV API")
	}
	f.log.Info().Int("rules", len(rules.rules)).Stringer("default", rules.def).Msg("access rules loaded")
	return true, nil
}

// Watch re-reads the file whenever it changes, checking every interval,
// until ctx ends. A failed read is logged as an error, once per distinct
// failure, and the last good rules stay in force.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := f.Reload()
		switch {
		case err != nil && err.Error() != lastErr:
			f.log.Error().Err(err).Msg("access rules not reloaded; the last good rules stay in force")
			lastErr = err.Error()
		case err == nil && lastErr != "":
			f.log.Info().Msg("access rules readable again")
			lastErr = ""
		}
	}
}

// sameStat reports whether two stats of the path show the same file
// unchanged: same inode (a rename or a symlink swap changes it), size and
// modification time.
func sameStat(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
