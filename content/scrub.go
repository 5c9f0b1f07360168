package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// CheckResult is what Check found about one object.
type CheckResult struct {
	// Size is how many bytes the object had.
	Size int64
	// SumsWritten is set when the object was right but its block sums
	// were missing or did not match it, and Check wrote them.
	SumsWritten bool
}

// Check re-hashes the whole object h and compares it with its name, and
// its block sums with its bytes. A corrupt object is quarantined (see
// Verify) and the error wraps ErrCorrupt; an absent one gives ErrNotFound.
// A right object whose sums are missing or wrong (an object from before
// block sums, a damaged or torn sidecar) gets them rewritten.
//
// throttle, if not nil, is called before each chunk of at most 256 KiB is
// read with the chunk's size, so that a scrub keeps to its rate; its error
// stops the check. Memory use is one copy buffer.
func (s *Store) Check(ctx context.Context, h string, throttle func(ctx context.Context, n int) error) (CheckResult, error) {
	if err := checkHash(h); err != nil {
		return CheckResult{}, err
	}
	if h == EmptyHash {
		return CheckResult{}, nil
	}
	f, err := os.Open(s.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return CheckResult{}, fmt.Errorf("content: check %s: %w", h, ErrNotFound)
		}
		return CheckResult{}, fmt.Errorf("content: check %s: %w", h, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return CheckResult{}, fmt.Errorf("content: check %s: %w", h, err)
	}
	if !fi.Mode().IsRegular() {
		return CheckResult{}, fmt.Errorf("content: check %s: %w: not a regular file", h, ErrCorrupt)
	}

	// The sums on disk, compared block by block as the new ones are made.
	old, err := s.openSums(h, fi.Size())
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return CheckResult{}, err
	}
	defer old.close()
	sumsOK := old != nil
	// While the sums match the sidecar, nothing is written; at the first
	// mismatch the new sidecar starts with the sums that matched.
	m := summer{dir: s.tmp, dry: sumsOK}
	defer m.discard()
	m.onBlock = func(k int64, sum uint32) {
		if !sumsOK {
			return
		}
		if want, err := old.sum(k); err == nil && want == sum {
			return
		}
		sumsOK, m.dry = false, false
		for j := range k {
			want, err := old.sum(j)
			if err != nil {
				m.err = err
				return
			}
			m.put(want)
		}
	}

	sum := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return CheckResult{}, fmt.Errorf("content: check %s: %w", h, err)
		}
		if throttle != nil {
			if err := throttle(ctx, len(buf)); err != nil {
				return CheckResult{}, fmt.Errorf("content: check %s: %w", h, err)
			}
		}
		r, rerr := f.Read(buf)
		sum.Write(buf[:r])
		m.write(buf[:r])
		n += int64(r)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return CheckResult{}, fmt.Errorf("content: check %s: read: %w", h, rerr)
		}
	}
	res := CheckResult{Size: n}
	var cause error
	switch got := hex.EncodeToString(sum.Sum(nil)); {
	case n == 0:
		cause = fmt.Errorf("%w: %s: empty file", ErrCorrupt, h)
	case got != h:
		cause = fmt.Errorf("%w: %s: %d bytes hash to %s", ErrCorrupt, h, n, got)
	}
	if cause != nil {
		s.quarantine(h, fi, cause)
		return res, cause
	}
	tmp, err := m.finish()
	if err != nil || tmp == "" || sumsOK {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
		return res, err
	}
	written, err := s.replaceSums(h, fi, tmp)
	if written {
		s.log.Info().Str("hash", h).Bool("had_sums", old != nil).Msg("wrote block sums of a verified object")
	}
	res.SumsWritten = written
	return res, err
}

// replaceSums installs the sidecar tmp for the object h if h still names
// the file fi (not deleted or replaced since it was checked), so that no
// sidecar outlives its object.
func (s *Store) replaceSums(h string, fi fs.FileInfo, tmp string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := os.Lstat(s.path(h))
	if err != nil || !os.SameFile(cur, fi) {
		_ = os.Remove(tmp)
		return false, nil
	}
	if err := s.installSumsLocked(tmp, h); err != nil {
		return false, err
	}
	return true, nil
}

// Verify re-hashes the whole object h and returns nil if its bytes match
// its name, or an error wrapping ErrCorrupt or ErrNotFound. A corrupt
// object is moved to dir/corrupt/: serving it is never right, and taking it
// out of objects/ makes Has report it missing, so that replication repair
// fetches a good copy with Put rather than deduplicating against it.
// Missing or wrong block sums of a right object are rewritten (Check).
func (s *Store) Verify(ctx context.Context, h string) error {
	_, err := s.Check(ctx, h, nil)
	return err
}

// Walk calls fn for every object in the store (the virtual empty object
// excluded), one fan-out directory after the other, in directory order.
// An error from fn stops it.
func (s *Store) Walk(ctx context.Context, fn func(b Blob) error) error {
	err := s.walk(ctx, func(h string, fi fs.FileInfo) error {
		return fn(Blob{Hash: h, Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("content: walk: %w", err)
	}
	return nil
}
