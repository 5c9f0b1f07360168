package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RefCounter reports how many inodes reference a content hash.
// metastore.Reader satisfies it.
type RefCounter interface {
	RefCount(ctx context.Context, hash string) (int64, error)
}

// Stats summarises one Collect.
type Stats struct {
	Scanned    int64 // objects looked at
	Removed    int64 // objects deleted
	BytesFreed int64 // their total size
	Young      int64 // kept: modified within the grace period
	Pinned     int64 // kept: pinned
	Referenced int64 // kept: referenced by an inode
	Partials   int64 // abandoned partial downloads removed (see PrunePartials)
}

// outcome is what tryDelete decided for one object.
type outcome int

const (
	removed outcome = iota
	keptYoung
	keptPinned
	keptReferenced
	gone // already absent, or being decided by a concurrent Collect/Release
)

// Why deletion is race free
//
// The danger is deleting an object that is, or is about to become,
// referenced. tryDelete reads the reference count without holding s.mu
// (a RefCounter may be a network round trip to Redis) and then deletes
// under s.mu. The protocol that makes this safe:
//
//  1. Whoever introduces a reference to hash H on this node (an upload, a
//     replica arriving for a pending entry) holds a pin on H from before the
//     entry referencing H is proposed or applied until after it is applied
//     (or abandoned). Commit returns the blob already pinned, atomically
//     with the rename (both under s.mu), so there is no unpinned window
//     between "bytes are there" and "bytes are pinned".
//  2. tryDelete, under s.mu, skips H if it is pinned and otherwise marks it
//     as being deleted. Any Pin or Commit of H cancels the mark.
//  3. It reads RefCount(H) without s.mu.
//  4. Under s.mu again, it deletes only if the count was 0, H is not
//     pinned and the mark was not cancelled.
//
// Take a reference that becomes visible in the metastore at time T, with H
// pinned from P1 < T to P2 > T. If P2 precedes step 2, T precedes step 3,
// so the count read there is not 0. If the pin is held at step 2, H is
// skipped. If P1 falls between steps 2 and 4, the mark is cancelled. If P1
// follows step 4, H was deleted before anyone relied on it, and that
// Commit (which runs under s.mu, after the deletion) renames a fresh copy
// into place, so a committed and pinned object is always present. A bare
// Pin after step 4 fails with ErrNotFound rather than protecting nothing.
//
// Release (the state machine's fast path when a count drops to 0) needs no
// grace period: a concurrent upload or replica of the same bytes is pinned
// by rule 1 before its entry can apply. Collect keeps a grace period
// anyway, as a safety net for holders that unpin early (a replica that
// arrives and is unpinned before its entry applies on this node) and
// because Commit of existing bytes refreshes the object's mtime: an object
// written within the grace period is never collected. The mtime is
// re-checked under s.mu right before deletion.

// tryDelete deletes the object h if it is unreferenced, unpinned and (when
// minAge > 0) was last written at least minAge ago.
func (s *Store) tryDelete(ctx context.Context, refs RefCounter, h string, minAge time.Duration) (outcome, int64, error) {
	s.mu.Lock()
	if s.pins[h] > 0 {
		s.mu.Unlock()
		return keptPinned, 0, nil
	}
	if s.deleting[h] != nil {
		s.mu.Unlock()
		return gone, 0, nil
	}
	mark := &deletion{}
	s.deleting[h] = mark
	s.mu.Unlock()

	n, rerr := refs.RefCount(ctx, h)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.deleting, h)
	switch {
	case rerr != nil:
		return 0, 0, fmt.Errorf("content: reference count of %s: %w", h, rerr)
	case n != 0:
		return keptReferenced, 0, nil
	case mark.cancelled || s.pins[h] > 0:
		return keptPinned, 0, nil
	}
	p := s.path(h)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return gone, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("content: stat object %s: %w", h, err)
	}
	if minAge > 0 && time.Since(fi.ModTime()) < minAge {
		return keptYoung, 0, nil
	}
	// Release only: the sweep runs once the node has caught up, so every
	// entry that referenced content before a restart is applied by then.
	if mt := fi.ModTime(); minAge == 0 && mt.Before(s.opened) && time.Since(mt) < s.pinWindow {
		return keptPinned, 0, nil // may have been pinned by the previous process
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return gone, 0, nil
		}
		return 0, 0, fmt.Errorf("content: remove object %s: %w", h, err)
	}
	s.removeSumsLocked(h)
	s.log.Debug().Str("hash", h).Int64("size", fi.Size()).Msg("object removed")
	return removed, fi.Size(), nil
}

// Collect walks objects/ and deletes every object that no inode references
// (refs.RefCount is 0), that is not pinned and that was last written more
// than grace ago, and the partial downloads nobody appended to for grace.
// It returns what it did so far along with any error; a RefCounter error
// stops it, since deciding without counts is unsafe.
func (s *Store) Collect(ctx context.Context, refs RefCounter, grace time.Duration) (Stats, error) {
	start := time.Now()
	var st Stats
	n, perr := s.PrunePartials(grace)
	st.Partials = n
	if perr != nil {
		s.log.Warn().Err(perr).Msg("pruning partial downloads failed")
	}
	err := s.walk(ctx, func(h string, fi fs.FileInfo) error {
		st.Scanned++
		// Pre-filter on the walk's stat so young objects cost no RefCount;
		// tryDelete re-checks under the lock.
		if time.Since(fi.ModTime()) < grace {
			st.Young++
			return nil
		}
		out, size, err := s.tryDelete(ctx, refs, h, grace)
		if err != nil {
			return err
		}
		switch out {
		case removed:
			st.Removed++
			st.BytesFreed += size
		case keptYoung:
			st.Young++
		case keptPinned:
			st.Pinned++
		case keptReferenced:
			st.Referenced++
		}
		return nil
	})
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Error().Err(err)
		err = fmt.Errorf("content: collect: %w", err)
	}
	ev.Int64("scanned", st.Scanned).Int64("removed", st.Removed).Int64("bytes_freed", st.BytesFreed).
		Int64("young", st.Young).Int64("pinned", st.Pinned).Int64("referenced", st.Referenced).
		Int64("partials", st.Partials).Dur("took", time.Since(start)).Msg("garbage collection")
	return st, err
}

// Release deletes the object h right away if it is still unreferenced and
// unpinned. The state machine calls it when the reference count of h drops
// to 0. See "Why deletion is race free" for why no grace period is needed.
// It reports whether the object was deleted.
func (s *Store) Release(ctx context.Context, refs RefCounter, h string) (bool, error) {
	if err := checkHash(h); err != nil {
		return false, err
	}
	if h == EmptyHash {
		return false, nil
	}
	out, _, err := s.tryDelete(ctx, refs, h, 0)
	if err != nil {
		return false, fmt.Errorf("content: release: %w", err)
	}
	return out == removed, nil
}

// walkBatch bounds the directory entries held in memory during a walk.
const walkBatch = 1024

// walk calls fn for every object under objects/ (the virtual empty object
// excluded), one fan-out directory at a time. Files whose name is not a
// valid hash in the right fan-out directory are logged and left alone: they
// are not ours, and they can never be opened.
func (s *Store) walk(ctx context.Context, fn func(h string, fi fs.FileInfo) error) error {
	for i := 0; i < 256; i++ {
		fan := fmt.Sprintf("%02x", i)
		d, err := os.Open(filepath.Join(s.objects, fan))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open fan-out directory: %w", err)
		}
		err = s.walkDir(ctx, d, fan, fn)
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) walkDir(ctx context.Context, d *os.File, fan string, fn func(h string, fi fs.FileInfo) error) error {
	for {
		ents, rerr := d.ReadDir(walkBatch)
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := e.Name()
			if !ValidHash(h) || h[:2] != fan || !e.Type().IsRegular() {
				s.log.Warn().Str("file", filepath.Join(fan, h)).Msg("stray file in objects directory")
				continue
			}
			if h == EmptyHash {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the directory was read
			}
			if err != nil {
				return fmt.Errorf("stat object %s: %w", h, err)
			}
			if err := fn(h, fi); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read fan-out directory %s: %w", fan, rerr)
		}
	}
}
