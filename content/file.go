package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// File is an open object. It implements io.Reader, io.Seeker, io.ReaderAt
// and io.Closer.
//
// # Verify on read
//
// A File never returns a byte it has not checked, whatever the access
// pattern (sequential, Seek and Read as a Range request does, ReadAt): it
// reads the whole BlockSize block that holds the requested position into
// a pooled buffer, checks it, and serves from the buffer. An object of at
// most one block is checked against its SHA-256 name; a larger one against
// its block sums (see sums.go), and a block that fails them gets the whole
// object re-hashed first (Check), since the sidecar may be the damaged
// part. A block that is really corrupt makes the read return 0 bytes and
// an error wrapping ErrCorrupt, after all the good bytes before it, and
// the object is moved out of objects/ (quarantined), so that the next Open
// misses it and content replication fetches a good copy. The error is
// sticky for Read; ReadAt returns it for the blocks concerned.
//
// Objects without block sums (stored by an earlier version, or whose
// sidecar was lost) keep the older check until the scrubber writes their
// sums: while such a handle is read sequentially from offset 0 the bytes
// are hashed as they pass, and the Read that reaches the end checks the
// SHA-256, withholding the last chunk on a mismatch so that a streamed
// response comes up short. Seeking to 0 restarts that hash; seeking
// anywhere else, and ReadAt, read such an object unverified.
//
// A File holds one BlockSize buffer from its first Read until Close. It is
// not safe for concurrent use, except ReadAt.
type File struct {
	s    *Store
	f    *os.File // nil for the virtual empty object
	info fs.FileInfo
	hash string
	size int64
	pos  int64
	err  error // sticky corruption error

	// Objects with block sums, or of at most one block.
	small     bool     // verified by SHA-256 of its only block
	sc        *sidecar // block sums; nil for small and legacy objects
	confirmed bool     // a block mismatch already had the object re-hashed
	buf       *[]byte  // pooled block buffer, nil until needed
	blk       int64    // the block buf holds, -1 for none
	blen      int      // its length

	// Legacy objects (no block sums): see File.
	legacy bool
	sum    hash.Hash // nil when not verifying
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
	file := &File{s: s, f: f, info: fi, hash: h, size: fi.Size(), blk: -1}
	if file.size <= BlockSize {
		file.small = true
		return file, nil
	}
	sc, err := s.openSums(h, file.size)
	if errors.Is(err, ErrCorrupt) {
		// The sums do not describe an object of this size: the object was
		// truncated or extended, or the sidecar is damaged. Only a full
		// re-hash tells which; it quarantines a bad object.
		if _, cerr := s.Check(context.Background(), h, nil); cerr != nil {
			f.Close()
			return nil, fmt.Errorf("content: open %s: %w", h, cerr)
		}
		sc, err = s.openSums(h, file.size)
	}
	switch {
	case err == nil && sc != nil:
		file.sc = sc
	case err == nil || errors.Is(err, ErrCorrupt):
		// No usable sums (an object from before block sums): the legacy
		// check until the scrubber writes them.
		file.legacy, file.sum = true, sha256.New()
	default:
		f.Close()
		return nil, err
	}
	return file, nil
}

// Size returns the object's size in bytes (as found on disk when opened).
// Callers that know the expected size (metastore.Inode.Size) should treat a
// difference as corruption.
func (f *File) Size() int64 { return f.size }

// Hash returns the object's hash.
func (f *File) Hash() string { return f.hash }

// Legacy reports whether the object has no block sums, so that only a full
// sequential read is verified, at its end (see File).
func (f *File) Legacy() bool { return f.legacy }

// Read implements io.Reader, verifying as described on File.
func (f *File) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.f == nil {
		return 0, io.EOF
	}
	if f.legacy {
		return f.readLegacy(p)
	}
	if f.pos >= f.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	k := f.pos / BlockSize
	if f.blk != k {
		if err := f.load(k); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*f.buf)[f.pos-k*BlockSize:f.blen])
	f.pos += int64(n)
	return n, nil
}

// Prime reads and checks the block at the current position, so that a
// corrupt start of the object is found before a caller commits to serving
// it (a response's status line). The next Read serves from it.
func (f *File) Prime() error {
	if f.err != nil {
		return f.err
	}
	if f.f == nil || f.legacy || f.pos >= f.size {
		return nil
	}
	if k := f.pos / BlockSize; f.blk != k {
		return f.load(k)
	}
	return nil
}

// load reads block k into the buffer and checks it. A block that fails its
// sum has the object re-hashed once (see File); a corrupt block sets the
// sticky error.
func (f *File) load(k int64) error {
	if f.buf == nil {
		f.buf = blockBufs.Get().(*[]byte)
	}
	f.blk = -1
	n, err := f.readBlock(*f.buf, k, f.sc)
	if errors.Is(err, ErrCorrupt) && f.sc != nil && !f.confirmed {
		f.confirmed = true
		sc, cerr := f.s.confirm(f.hash, f.size, err)
		if cerr != nil {
			f.err = cerr
			return cerr
		}
		f.sc.close()
		f.sc = sc
		n, err = f.readBlock(*f.buf, k, f.sc)
	}
	if err != nil && !errors.Is(err, ErrCorrupt) && errors.Is(err, syscall.EIO) {
		// A block the device cannot read is as lost as a corrupt one:
		// the object is set aside like one, so that its readers continue
		// from a peer's copy (read repair) and the fresh copy lands on
		// other sectors, instead of every read of it failing until the
		// scrubber comes by.
		err = fmt.Errorf("%w: %s: block %d unreadable: %w", ErrCorrupt, f.hash, k, err)
	}
	if errors.Is(err, ErrCorrupt) {
		f.s.quarantine(f.hash, f.info, err)
		f.err = err
	}
	if err != nil {
		return err
	}
	f.blk, f.blen = k, n
	return nil
}

// readBlock reads block k into buf and checks it against sc (or the name,
// for a small object). It returns the block's length.
func (f *File) readBlock(buf []byte, k int64, sc *sidecar) (int, error) {
	off := k * BlockSize
	n := int(min(BlockSize, f.size-off))
	if err := injected(FaultRead, f.f.Name()); err != nil {
		return 0, fmt.Errorf("content: read %s at %d: %w", f.hash, off, err)
	}
	if m, err := f.f.ReadAt(buf[:n], off); m < n {
		if err == io.EOF {
			return 0, fmt.Errorf("%w: %s: file ends at byte %d, it had %d bytes when opened", ErrCorrupt, f.hash, off+int64(m), f.size)
		}
		return 0, fmt.Errorf("content: read %s at %d: %w", f.hash, off, err)
	}
	if f.small {
		if sum := sha256.Sum256(buf[:n]); hex.EncodeToString(sum[:]) != f.hash {
			return 0, fmt.Errorf("%w: %s: content hashes to %x", ErrCorrupt, f.hash, sum)
		}
		return n, nil
	}
	want, err := sc.sum(k)
	if err != nil {
		return 0, fmt.Errorf("content: %s: %w", f.hash, err)
	}
	if got := crc32.Checksum(buf[:n], castagnoli); got != want {
		return 0, fmt.Errorf("%w: %s: block %d (bytes %d-%d) has CRC-32C %08x, its sum is %08x",
			ErrCorrupt, f.hash, k, off, off+int64(n)-1, got, want)
	}
	return n, nil
}

// readLegacy is Read for an object without block sums: see File.
func (f *File) readLegacy(p []byte) (int, error) {
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

// Seek implements io.Seeker. It reads nothing: the next Read checks the
// block it lands in.
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
	if f.legacy {
		if _, err := f.f.Seek(abs, io.SeekStart); err != nil {
			return 0, fmt.Errorf("content: seek %s: %w", f.hash, err)
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
	}
	f.pos = abs
	return abs, nil
}

// ReadAt implements io.ReaderAt, checking every block it returns bytes of
// (see File). It does not move the position used by Read, and may run
// concurrently with other ReadAt calls.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("content: read %s: negative offset", f.hash)
	}
	if f.err != nil {
		return 0, f.err
	}
	if f.f == nil {
		return 0, io.EOF
	}
	if f.legacy {
		return f.f.ReadAt(p, off)
	}
	bp := blockBufs.Get().(*[]byte)
	defer blockBufs.Put(bp)
	sc := f.sc
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		if pos >= f.size {
			return done, io.EOF
		}
		k := pos / BlockSize
		n, err := f.readBlock(*bp, k, sc)
		if errors.Is(err, ErrCorrupt) && sc != nil && sc == f.sc {
			// Confirm with a full re-hash, as load does; the fresh sums
			// are only used by this call (ReadAt must not change f).
			fresh, cerr := f.s.confirm(f.hash, f.size, err)
			if cerr != nil {
				return done, cerr
			}
			defer fresh.close()
			sc = fresh
			n, err = f.readBlock(*bp, k, sc)
			if errors.Is(err, ErrCorrupt) {
				f.s.quarantine(f.hash, f.info, err)
			}
		} else if errors.Is(err, ErrCorrupt) {
			f.s.quarantine(f.hash, f.info, err)
		}
		if err != nil {
			return done, err
		}
		done += copy(p[done:], (*bp)[pos-k*BlockSize:n])
	}
	return done, nil
}

// Close implements io.Closer.
func (f *File) Close() error {
	if f.buf != nil {
		blockBufs.Put(f.buf)
		f.buf = nil
	}
	f.sc.close()
	f.sc = nil
	if f.f == nil {
		return nil
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("content: close %s: %w", f.hash, err)
	}
	return nil
}

// confirm re-hashes the object h after a block failed its sum (cause). If
// the object is right, the sums were wrong: Check rewrote them, and the
// fresh sums are returned. Otherwise Check quarantined it and the error
// wraps ErrCorrupt.
func (s *Store) confirm(h string, size int64, cause error) (*sidecar, error) {
	s.log.Warn().Err(cause).Str("hash", h).Msg("block failed its sum; re-hashing the whole object")
	if _, err := s.Check(context.Background(), h, nil); err != nil {
		return nil, err
	}
	sc, err := s.openSums(h, size)
	if err == nil && sc == nil {
		err = fmt.Errorf("%w: %s: block sums vanished after a re-hash", ErrCorrupt, h)
	}
	return sc, err
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
	s.removeSumsLocked(h)
	log.Error().Str("moved_to", dst).Msg("corrupt object found and quarantined")
}
