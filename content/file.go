package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// File is an open object. It implements io.Reader, io.Seeker, io.ReaderAt
// and io.Closer.
//
// # Verify on read
//
// While the handle is read sequentially from offset 0, the bytes are hashed
// as they pass. The Read that reaches the end of the object checks the hash
// (and the byte count): on a mismatch it returns 0 bytes and an error
// wrapping ErrCorrupt instead of the last chunk, so a response being
// streamed (io.Copy until EOF, or io.CopyN of Size bytes as
// http.ServeContent does) comes up short and the client sees a broken
// transfer rather than a complete corrupt file. A corrupt object is also
// moved out of objects/ (see Store.Verify).
//
// Seeking to offset 0 restarts verification from scratch; seeking to the
// current position changes nothing; seeking anywhere else turns it off for
// the handle until the next seek to 0. Restarting at 0 is what keeps full
// GETs through http.ServeContent verified: it seeks to the end to learn the
// size (and may read 512 bytes to sniff a type) and then seeks back to 0.
// Range requests, and ReadAt, read part of the object and cannot be
// verified: a hash covers all the bytes or nothing. Those rely on the
// scrubber (Store.Verify).
//
// A File is not safe for concurrent use, except ReadAt.
type File struct {
	s    *Store
	f    *os.File // nil for the virtual empty object
	info fs.FileInfo
	hash string
	size int64
	pos  int64
	sum  hash.Hash // nil when not verifying
	err  error     // sticky corruption error
}

// Open opens the object h for reading.
func (s *Store) Open(h string) (*File, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	if h == EmptyHash {
		return &File{s: s, hash: h}, nil
	}
	f, err := os.Open(s.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("content: open %s: %w", h, ErrNotFound)
		}
		return nil, fmt.Errorf("content: open %s: %w", h, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content: stat %s: %w", h, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("content: open %s: %w: not a regular file", h, ErrCorrupt)
	}
	if fi.Size() == 0 {
		// Only EmptyHash has no bytes, and it never reaches the disk. Catch
		// this here: a reader copying Size() bytes would never call Read.
		f.Close()
		err := fmt.Errorf("%w: %s: empty file", ErrCorrupt, h)
		s.quarantine(h, fi, err)
		return nil, fmt.Errorf("content: open: %w", err)
	}
	return &File{s: s, f: f, info: fi, hash: h, size: fi.Size(), sum: sha256.New()}, nil
}

// Size returns the object's size in bytes (as found on disk when opened).
// Callers that know the expected size (metastore.Inode.Size) should treat a
// difference as corruption.
func (f *File) Size() int64 { return f.size }

// Hash returns the object's hash.
func (f *File) Hash() string { return f.hash }

// Read implements io.Reader, verifying as described on File.
func (f *File) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.f == nil {
		return 0, io.EOF
	}
	n, err := f.f.Read(p)
	if f.sum != nil {
		f.sum.Write(p[:n])
		if end := f.pos + int64(n); end >= f.size || err == io.EOF {
			if verr := f.check(end); verr != nil {
				f.err = verr
				return 0, verr // withhold the last chunk: see File
			}
			f.sum = nil // verified; nothing left to hash
		}
	}
	f.pos += int64(n)
	return n, err
}

// check compares what was read from offset 0 to end with the object's name.
func (f *File) check(end int64) error {
	var err error
	if end != f.size {
		err = fmt.Errorf("%w: %s: read %d bytes, file had %d when opened", ErrCorrupt, f.hash, end, f.size)
	} else if got := hex.EncodeToString(f.sum.Sum(nil)); got != f.hash {
		err = fmt.Errorf("%w: %s: content hashes to %s", ErrCorrupt, f.hash, got)
	} else {
		return nil
	}
	f.s.quarantine(f.hash, f.info, err)
	return err
}

// Seek implements io.Seeker. See File for its effect on verification.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.size + offset
	default:
		return 0, fmt.Errorf("content: seek %s: invalid whence %d", f.hash, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("content: seek %s: negative position %d", f.hash, abs)
	}
	if f.f != nil {
		if _, err := f.f.Seek(abs, io.SeekStart); err != nil {
			return 0, fmt.Errorf("content: seek %s: %w", f.hash, err)
		}
	}
	switch {
	case abs == 0:
		if f.sum == nil {
			f.sum = sha256.New()
		} else {
			f.sum.Reset()
		}
	case abs != f.pos:
		f.sum = nil
	}
	f.pos = abs
	return abs, nil
}

// ReadAt implements io.ReaderAt. It does not verify and does not move the
// position used by Read.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.f == nil {
		if off < 0 {
			return 0, fmt.Errorf("content: read %s: negative offset", f.hash)
		}
		return 0, io.EOF
	}
	return f.f.ReadAt(p, off)
}

// Close implements io.Closer.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("content: close %s: %w", f.hash, err)
	}
	return nil
}

// Verify re-hashes the whole object h and returns nil if its bytes match
// its name, or an error wrapping ErrCorrupt or ErrNotFound. A corrupt
// object is moved to dir/corrupt/: serving it is never right, and taking it
// out of objects/ makes Has report it missing, so that replication repair
// fetches a good copy with Put rather than deduplicating against it.
func (s *Store) Verify(ctx context.Context, h string) error {
	f, err := s.Open(h)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.f == nil {
		return nil
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("content: verify %s: %w", h, err)
		}
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("content: verify: %w", err)
		}
	}
}

// quarantine moves the object h out of objects/ after corruption was found
// in the file described by fi. It only moves the file if h still names that
// same file: a concurrent Commit may have replaced it with a good copy.
func (s *Store) quarantine(h string, fi fs.FileInfo, cause error) {
	log := s.log.With().Str("hash", h).AnErr("cause", cause).Logger()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.path(h)
	cur, err := os.Lstat(p)
	if err != nil || fi == nil || !os.SameFile(cur, fi) {
		log.Error().Msg("corrupt object found; already replaced or removed")
		return
	}
	dst := filepath.Join(s.corrupt, h+"-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(p, dst); err != nil {
		log.Error().Err(err).Msg("corrupt object found; cannot move it to quarantine")
		return
	}
	log.Error().Str("moved_to", dst).Msg("corrupt object found and quarantined")
}
