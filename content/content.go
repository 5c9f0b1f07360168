// Package content owns the bytes of every file a dfs node stores: an
// immutable, content-addressed object store on the local filesystem, keyed
// by the lowercase hex SHA-256 of the content (metastore.Inode.Hash).
//
// # Layout
//
//	dir/LOCK               flock(2)ed while a Store is open: one owner per dir
//	dir/objects/ab/abcd…   one complete object, named by its full hash
//	dir/sums/ab/abcd…      its block sums, for objects over one block (see sums.go)
//	dir/tmp/               uploads in progress (same filesystem as objects/)
//	dir/partial/<hash>     resumable downloads from peers (see Download)
//	dir/corrupt/           objects that failed verification, kept for forensics
//
// # Crash safety
//
// An object only ever appears under objects/ by rename(2) of a temp file that
// was written completely and fsynced, and Commit fsyncs the fan-out
// directory before it reports success. A kill -9 at any point therefore
// leaves either nothing or a complete object under objects/; the half
// written temp files it may leave in tmp/ are removed by the next Open.
// Files in partial/ survive restarts on purpose, so that a download resumes
// where it stopped; they are never trusted: a download becomes an object
// only after all of its bytes hash to its name.
// Deletions are not fsynced: a deletion lost in a crash resurrects garbage,
// which the next Collect removes again.
//
// # Verification
//
// No read returns a byte that was not checked first. Every object over one
// 64 KiB block has a sidecar under dir/sums/ with the CRC-32C of each
// block, written with the object by uploads and downloads; File reads the
// whole block holding a position, checks it (objects of one block against
// their SHA-256 name), and serves from it, so Range requests and ReadAt
// are checked as well as full reads. Per-block CRC-32C rather than a
// per-block SHA-256 or a Merkle tree: it runs at memory speed, guards
// against what damages bytes at rest, and the SHA-256 name stays the
// ground truth that every transfer and every Check re-computes. A block
// that fails its sum gets the whole object re-hashed before anything is
// quarantined, because the sidecar may be the damaged part. Objects
// without a sidecar (stored before block sums) keep the older check, at
// the end of a full sequential read, until Check writes their sums. See
// sums.go for the format and the reasoning, and Check for the scrub.
//
// # Hashes are the only names
//
// Every entry point validates the hash strictly (64 characters of [0-9a-f])
// before it builds a path from it, so no client input can name a file
// outside the data directory.
//
// # The empty content
//
// EmptyHash is virtual: Has reports it present, Open returns an empty File
// and Commit of zero bytes returns it, without any file on disk. Nothing can
// be lost, corrupted or collected, and no node needs to replicate it.
//
// # Pins and garbage collection
//
// An object that no inode references yet (an upload whose metadata entry is
// not applied yet) is protected by a pin, a per-hash in-memory counter.
// Commit returns its blob pinned; the holder calls Unpin once the entry
// referencing the hash is applied (or abandoned). Collect and Release
// delete an object only if the metastore's reference count is 0 and it is
// not pinned; see gc.go for why that is race free.
package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// EmptyHash is the SHA-256 of zero bytes.
const EmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// HashLen is the length of a hash string: hex SHA-256.
const HashLen = 64

var (
	// ErrNotFound is wrapped when an object is not in the store.
	ErrNotFound = errors.New("content: object not found")
	// ErrCorrupt is wrapped when an object's bytes do not hash to its name.
	ErrCorrupt = errors.New("content: object corrupt")
	// ErrInvalidHash is wrapped when a string is not 64 lowercase hex digits.
	ErrInvalidHash = errors.New("content: invalid hash")
	// ErrNotPinned is wrapped by Unpin when the hash holds no pin.
	ErrNotPinned = errors.New("content: hash not pinned")
	// ErrLocked is wrapped by Open when another Store holds the directory.
	ErrLocked = errors.New("content: directory in use by another store")
	// ErrBusy is wrapped by Resume when another Download of the same hash
	// is open.
	ErrBusy = errors.New("content: download of this hash already in progress")
)

// Blob names one stored object.
type Blob struct {
	Hash string // lowercase hex SHA-256 of the content
	Size int64  // bytes
}

// Store is a content-addressed object store rooted at one directory. It is
// safe for concurrent use.
type Store struct {
	dir     string
	objects string
	sums    string
	tmp     string
	partial string
	corrupt string
	log     zerolog.Logger
	lock    *os.File // holds the flock on dir/LOCK

	// mu serialises everything that decides whether an object exists:
	// pinning, the rename in Commit, deletion and quarantine. Holding it
	// makes "check pin, then delete" and "rename, then pin" atomic with
	// respect to each other. It is never held across I/O on content bytes
	// or across calls to a RefCounter.
	mu       sync.Mutex
	pins     map[string]int64
	deleting map[string]*deletion
	// downloads holds the hashes whose partial file a Download has open:
	// one writer per partial file.
	downloads map[string]bool

	// opened is when this Store was opened; pinWindow is how long a pin
	// taken by the previous process could have lasted (see
	// KeepPinnedAcrossRestart).
	opened    time.Time
	pinWindow time.Duration
}

// KeepPinnedAcrossRestart makes Release keep objects written less than d
// before this Store was opened, until d after they were written: pins live
// in memory, and a follower that restarts between storing a pushed copy
// (pinned for d) and applying the entry that references it would otherwise
// let a replayed DELETE of the same content release the copy the leader
// counted in its majority. The sweep, with its grace period, collects them
// later if they stay unreferenced.
func (s *Store) KeepPinnedAcrossRestart(d time.Duration) {
	s.mu.Lock()
	s.pinWindow = d
	s.mu.Unlock()
}

// deletion marks a hash whose deletion is being decided without mu held
// (while its reference count is read). A pin taken meanwhile cancels it.
type deletion struct{ cancelled bool }

// Open opens (creating if needed) the store in dir. It takes an exclusive
// lock on the directory, removes temp files left by a crash and creates the
// 256 fan-out directories, so that Commit normally only has to fsync one.
func Open(dir string, log zerolog.Logger) (*Store, error) {
	s := &Store{
		dir:       dir,
		objects:   filepath.Join(dir, "objects"),
		sums:      filepath.Join(dir, "sums"),
		tmp:       filepath.Join(dir, "tmp"),
		partial:   filepath.Join(dir, "partial"),
		corrupt:   filepath.Join(dir, "corrupt"),
		log:       log.With().Str("component", "content").Str("dir", dir).Logger(),
		pins:      make(map[string]int64),
		deleting:  make(map[string]*deletion),
		downloads: make(map[string]bool),
		opened:    time.Now(),
	}
	for _, d := range []string{s.objects, s.sums, s.tmp, s.partial, s.corrupt} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("content: create %s: %w", d, err)
		}
	}
	lock, err := lockDir(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.init(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	// Only after taking the lock: the temp files of a live Store must not
	// be removed by a second one.
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("content: list temp files: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(s.tmp, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("content: remove leftover temp file: %w", err)
		}
		s.log.Info().Str("file", e.Name()).Msg("removed leftover temp file")
	}
	for i := 0; i < 256; i++ {
		for _, d := range []string{s.objects, s.sums} {
			if err := os.Mkdir(filepath.Join(d, fmt.Sprintf("%02x", i)), 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("content: create fan-out directory: %w", err)
			}
		}
	}
	// Make the directories themselves durable before any object is
	// committed into them.
	for _, d := range []string{s.objects, s.dir} {
		if err := SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the directory lock. The Store must not be used afterwards.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the descriptor releases the flock
	s.lock = nil
	if err != nil {
		return fmt.Errorf("content: release directory lock: %w", err)
	}
	return nil
}

// ValidHash reports whether h is 64 lowercase hex digits.
func ValidHash(h string) bool {
	if len(h) != HashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkHash(h string) error {
	if !ValidHash(h) {
		// %.80q bounds what a hostile client can put into our logs.
		return fmt.Errorf("%w: %.80q", ErrInvalidHash, h)
	}
	return nil
}

// path returns where the object h lives. h must be valid.
func (s *Store) path(h string) string {
	return filepath.Join(s.objects, h[:2], h)
}

// Has reports whether the object is in the store. An invalid hash is never
// present.
func (s *Store) Has(h string) bool {
	if !ValidHash(h) {
		return false
	}
	if h == EmptyHash {
		return true
	}
	fi, err := os.Lstat(s.path(h))
	return err == nil && fi.Mode().IsRegular()
}

// Pin protects an existing object from garbage collection until a matching
// Unpin. It fails with ErrNotFound if the object is absent, so that a
// successful Pin always protects bytes that are actually there.
func (s *Store) Pin(h string) error {
	if err := checkHash(h); err != nil {
		return err
	}
	if h == EmptyHash {
		return nil // virtual, never collected
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Lstat(s.path(h)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content: pin %s: %w", h, ErrNotFound)
		}
		return fmt.Errorf("content: pin %s: %w", h, err)
	}
	s.pinLocked(h)
	return nil
}

// pinLocked adds a pin and cancels a deletion being decided. s.mu is held.
func (s *Store) pinLocked(h string) {
	s.pins[h]++
	if d := s.deleting[h]; d != nil {
		d.cancelled = true
	}
}

// Unpin releases one pin taken by Pin or Commit.
func (s *Store) Unpin(h string) error {
	if err := checkHash(h); err != nil {
		return err
	}
	if h == EmptyHash {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pins[h]
	switch {
	case n <= 0:
		s.log.Error().Str("hash", h).Msg("unpin of a hash that is not pinned")
		return fmt.Errorf("content: unpin %s: %w", h, ErrNotPinned)
	case n == 1:
		delete(s.pins, h)
	default:
		s.pins[h] = n - 1
	}
	return nil
}

// Pins returns how many pins h holds.
func (s *Store) Pins(h string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[h]
}

// Usage walks objects/ and returns how many objects it holds and their
// total size. The virtual empty object is not counted.
func (s *Store) Usage() (objects, bytes int64, err error) {
	err = s.walk(context.Background(), func(h string, fi fs.FileInfo) error {
		objects++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("content: usage: %w", err)
	}
	return objects, bytes, nil
}

// SyncDir fsyncs a directory, making the creation, rename or removal of its
// entries durable. It is the one such helper in the tree: package
// replication uses it too, for the rename that completes a Raft log repair.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("content: open directory for fsync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("content: fsync directory %s: %w", dir, err)
	}
	return nil
}
