// Package quota owns a dfs node's storage accounting: the cluster-wide
// quota (the logical bytes of all files, which the state machine counts in
// the metadata store, see metastore.Reader.UsedBytes), the data volume's
// low-water mark (the free space a node always keeps), and the
// reservations of uploads in progress, so that uploads that each fit
// alone cannot together overshoot the quota unnoticed.
//
// The checks here are the early ones: they let the WebDAV layer refuse an
// upload with 507 before reading its body, or stop it while it streams.
// They are not the authority. The leader puts the quota in force into
// every put and copy log entry, and the state machine refuses an entry
// that would exceed it, the same way on every node (package fsm), so two
// uploads that raced past these checks still cannot both commit.
package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// ErrNoSpace is wrapped by every refusal for lack of room: the quota is
// used up or the data volume is at its low-water mark. The HTTP layer
// answers 507 Insufficient Storage with the error's text.
var ErrNoSpace = errors.New("insufficient storage")

// Defaults of the low-water mark: a volume keeps the smaller of 1 GiB and
// 5% of its size free. 1 GiB leaves Raft's log, snapshots and the
// metadata store room to work on a big volume; 5% keeps a small test
// volume usable.
const (
	DefaultMinFreeBytes   = 1 << 30
	DefaultMinFreePercent = 5.0
)

// step is how far ahead an upload of unknown size reserves quota, and how
// often a streaming upload checks the volume's free space: small enough
// that a stopped upload overshoots by little, large enough that the checks
// (a metadata read, a statfs) cost nothing next to the bytes.
const step = 4 << 20

// Usage reports the cluster's usage; metastore.Reader satisfies it.
type Usage interface {
	UsedBytes(ctx context.Context) (int64, error)
}

// Config configures a Space.
type Config struct {
	// Dir is a directory on the node's data volume.
	Dir string
	// QuotaBytes is the cluster-wide quota (0: none).
	QuotaBytes int64
	// MinFreeBytes and MinFreePercent set the low-water mark: the smaller
	// of the two is kept free on the data volume. 0 in either turns the
	// mark off.
	MinFreeBytes   int64
	MinFreePercent float64
}

// Space is one node's storage accounting. It is safe for concurrent use.
type Space struct {
	cfg    Config
	usage  Usage
	diskOK bool // statfs works here

	mu       sync.Mutex
	reserved int64 // quota held by uploads in progress
}

// New returns a Space. Where free space cannot be read (statfs is not
// available), the low-water mark is not enforced; DiskChecked says so.
func New(cfg Config, usage Usage) (*Space, error) {
	switch {
	case cfg.QuotaBytes < 0:
		return nil, fmt.Errorf("quota: the quota must not be negative (got %d)", cfg.QuotaBytes)
	case cfg.MinFreeBytes < 0:
		return nil, fmt.Errorf("quota: the minimum free bytes must not be negative (got %d)", cfg.MinFreeBytes)
	case cfg.MinFreePercent < 0 || cfg.MinFreePercent > 100 || math.IsNaN(cfg.MinFreePercent):
		return nil, fmt.Errorf("quota: the minimum free percentage must be between 0 and 100 (got %v)", cfg.MinFreePercent)
	case usage == nil:
		return nil, errors.New("quota: New needs a usage source")
	}
	s := &Space{cfg: cfg, usage: usage}
	if _, _, err := statfs(cfg.Dir); err == nil {
		s.diskOK = true
	} else if !errors.Is(err, errors.ErrUnsupported) {
		return nil, err
	}
	return s, nil
}

// Quota returns the cluster-wide quota in bytes (0: none).
func (s *Space) Quota() int64 { return s.cfg.QuotaBytes }

// DiskChecked reports whether the low-water mark is enforced.
func (s *Space) DiskChecked() bool { return s.diskOK }

// Disk returns the volume's free bytes and its low-water mark.
func (s *Space) Disk() (free, lowWater int64, err error) {
	free, total, err := statfs(s.cfg.Dir)
	if err != nil {
		return 0, 0, err
	}
	low := min(s.cfg.MinFreeBytes, int64(float64(total)*s.cfg.MinFreePercent/100))
	return free, low, nil
}

// Available returns the cluster's usage and the bytes a client may still
// write through this node: the quota left, and no more than this node's
// free space above its low-water mark; never negative. ok is false when
// there is no limit to report (no quota and no free-space reading).
func (s *Space) Available(ctx context.Context) (used, avail int64, ok bool, err error) {
	used, err = s.usage.UsedBytes(ctx)
	if err != nil {
		return 0, 0, false, fmt.Errorf("quota: %w", err)
	}
	avail = math.MaxInt64
	if s.diskOK {
		free, low, err := s.Disk()
		if err != nil {
			return 0, 0, false, err
		}
		avail, ok = free-low, true
	}
	if q := s.cfg.QuotaBytes; q > 0 {
		avail, ok = min(avail, q-used), true
	}
	return used, max(avail, 0), ok, nil
}

// NoSpaceError is a refusal for lack of room; it wraps ErrNoSpace and
// its text says what ran out, for the client.
type NoSpaceError struct {
	Msg string
	// Disk is set when a data volume, not the quota, lacks room: RFC 4331
	// names the two cases DAV:sufficient-disk-space and
	// DAV:quota-not-exceeded.
	Disk bool
}

func (e *NoSpaceError) Error() string { return ErrNoSpace.Error() + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrNoSpace) hold.
func (e *NoSpaceError) Unwrap() error { return ErrNoSpace }

func noQuota(format string, args ...any) error {
	return &NoSpaceError{Msg: fmt.Sprintf(format, args...)}
}

func noDisk(format string, args ...any) error {
	return &NoSpaceError{Msg: fmt.Sprintf(format, args...), Disk: true}
}

// checkDisk refuses when writing size more bytes would take the volume
// below its low-water mark.
func (s *Space) checkDisk(size int64) error {
	if !s.diskOK {
		return nil
	}
	free, low, err := s.Disk()
	if err != nil {
		return err
	}
	if free-size < low {
		if size <= 0 {
			return noDisk("the data volume has %d bytes free, below its low-water mark of %d bytes", free, low)
		}
		return noDisk("%d more bytes would leave the data volume %d bytes free, below its low-water mark of %d bytes",
			size, free-size, low)
	}
	return nil
}

// Grant is an admitted upload. Its Reader counts the body and stops it
// when it outgrows what fits; Release returns the quota it holds.
type Grant struct {
	s        *Space
	quota    bool  // charged against the quota (false: a replica)
	replaced int64 // bytes of the file the upload replaces
	held     int64 // quota reserved in s.reserved
	n        int64 // body bytes read so far
	checked  int64 // body bytes at the last free-space check
}

// Admit decides whether an upload may start, before its body is read:
// size bytes (-1: unknown, as with a chunked body) replacing a file of
// replaced bytes (0 for a new file). An upload of known size reserves its
// growth of the usage against the quota until Release; one of unknown
// size reserves as it streams. The error wraps ErrNoSpace when the quota
// or the volume has no room.
func (s *Space) Admit(ctx context.Context, size, replaced int64) (*Grant, error) {
	if err := s.checkDisk(max(size, 0)); err != nil {
		return nil, err
	}
	g := &Grant{s: s, quota: s.cfg.QuotaBytes > 0, replaced: max(replaced, 0)}
	if g.quota && size >= 0 {
		if need := size - g.replaced; need > 0 {
			if err := g.reserve(ctx, need, need); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// AdmitReplica admits content pushed by the leader: only the low-water
// mark applies (the leader has charged the quota).
func (s *Space) AdmitReplica() (*Grant, error) {
	if err := s.checkDisk(0); err != nil {
		return nil, err
	}
	return &Grant{s: s}, nil
}

// reserve takes up to want and at least least bytes of quota.
func (g *Grant) reserve(ctx context.Context, want, least int64) error {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read under the lock: an upload releases its reservation only after
	// its entry has applied, so the usage read here already counts every
	// upload whose reservation is gone.
	used, err := s.usage.UsedBytes(ctx)
	if err != nil {
		return fmt.Errorf("quota: %w", err)
	}
	room := s.cfg.QuotaBytes - used - s.reserved
	if room < least {
		if g.n > 0 {
			return noQuota("quota %d bytes, used %d bytes, %d bytes reserved by uploads in progress; the upload outgrew it after %d bytes",
				s.cfg.QuotaBytes, used, s.reserved, g.n)
		}
		return noQuota("quota %d bytes, used %d bytes, %d bytes reserved by uploads in progress; this upload needs %d more bytes",
			s.cfg.QuotaBytes, used, s.reserved, least)
	}
	take := min(want, room)
	s.reserved += take
	g.held += take
	return nil
}

// Release returns the quota the upload holds. Call it once the entry that
// references the upload has applied (its bytes are then in the usage) or
// the upload has failed. It may be called more than once.
func (g *Grant) Release() {
	s := g.s
	s.mu.Lock()
	s.reserved -= g.held
	g.held = 0
	s.mu.Unlock()
}

// Reader returns r counted against the grant: a read that takes the body
// past the quota, or the volume below its low-water mark, fails with an
// error wrapping ErrNoSpace, and the bytes of that read are not passed on.
func (g *Grant) Reader(ctx context.Context, r io.Reader) io.Reader {
	return &meter{ctx: ctx, g: g, r: r}
}

type meter struct {
	ctx context.Context
	g   *Grant
	r   io.Reader
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n == 0 {
		return 0, err
	}
	if cerr := m.g.grow(m.ctx, int64(n)); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// grow accounts n more body bytes.
func (g *Grant) grow(ctx context.Context, n int64) error {
	g.n += n
	if g.quota {
		if short := g.n - g.replaced - g.held; short > 0 {
			if err := g.reserve(ctx, max(short, step), short); err != nil {
				return err
			}
		}
	}
	if g.s.diskOK && g.n-g.checked >= step {
		g.checked = g.n
		if err := g.s.checkDisk(step); err != nil {
			return err
		}
	}
	return nil
}
