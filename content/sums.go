package content

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Block sums
//
// An object's name (its SHA-256) can only be checked once all of its bytes
// were read, which is too late for a reader that has already sent them.
// So every object larger than one block has a sidecar, dir/sums/ab/<hash>,
// with the CRC-32C (Castagnoli) of each BlockSize block of the object, and
// File checks a block against its sum before it returns any byte of it.
//
// Why these choices:
//   - CRC-32C runs at memory speed (SSE4.2 and ARMv8 have an instruction
//     for it), so checking every block costs a GET less than hashing it
//     with SHA-256 did. It is not a cryptographic hash, and need not be:
//     it guards against a disk or a filesystem damaging bytes at rest
//     (every burst of up to 32 flipped bits is caught, anything else with
//     probability 1-2^-32 per block), while the SHA-256 name still protects
//     every transfer between nodes and every scrub.
//   - BlockSize (64 KiB) bounds what one reader holds (one pooled block)
//     and what a Range request reads beyond what it asked for (under two
//     blocks), while the sidecar stays at 1/16384 of the object.
//   - Objects of at most one block have no sidecar: File checks their
//     SHA-256 when it reads their only block, which is exact and saves a
//     second file per small upload.
//   - The sidecar is a cache of facts about the bytes, not a source of
//     truth: sums are a function of the hash, so any sidecar written for an
//     object of that hash is right for every good copy. A block that does
//     not match its sum therefore first gets the whole object re-hashed
//     (Check): if the SHA-256 still matches the name, the sidecar was the
//     damaged part and is rewritten; only otherwise is the object
//     quarantined. A damaged sidecar costs a re-hash, never good content.
//     This is also why the sidecar is written without fsync: after a crash
//     it may be torn, and a torn sidecar is caught like a damaged one.
//
// Writers (uploads and downloads from peers) compute the sums as the bytes
// pass and rename the sidecar into place just before the object, under the
// same lock, so an object written by this version never exists without
// its sums. Deleting or quarantining an object deletes its sidecar under
// that lock too. A sidecar can only outlive its object through a crash
// between the two renames or an object file removed by hand; it is a few
// bytes, and right for any later copy of that hash, which replaces it. Objects stored by earlier versions, or whose sidecar was lost,
// keep the old check (SHA-256 at the end of a sequential read) until Check
// (the scrubber) re-hashes them and writes their sidecar.
//
// Format: one big-endian uint32 CRC-32C per block, then a 16-byte
// trailer: the magic "dfsb", the block size (uint32) and the object size
// (uint64), all big-endian.

// BlockSize is the unit in which File verifies reads.
const BlockSize = 64 << 10

const (
	sumsMagic   = "dfsb"
	trailerSize = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockBufs holds BlockSize buffers for readers.
var blockBufs = sync.Pool{New: func() any { b := make([]byte, BlockSize); return &b }}

// numBlocks is how many blocks an object of size bytes has.
func numBlocks(size int64) int64 { return (size + BlockSize - 1) / BlockSize }

// sumsPath returns where the sidecar of object h lives. h must be valid.
func (s *Store) sumsPath(h string) string {
	return filepath.Join(s.sums, h[:2], h)
}

// summer computes the block sums of bytes written in order and streams
// them to a temp file in dir/tmp/, created once the first block is
// complete, so that uploads of a single block never create one.
type summer struct {
	dir  string
	crc  uint32
	fill int64 // bytes of the current block seen so far
	n    int64 // bytes seen in all
	k    int64 // blocks emitted
	f    *os.File
	w    *bufio.Writer
	err  error
	// onBlock, if set, sees every block's sum (Check compares them with
	// the sidecar on disk).
	onBlock func(k int64, sum uint32)
	// dry computes sums without writing them: Check, while they match
	// the sidecar on disk, need not write a new one.
	dry bool
}

// write adds p to the sums.
func (m *summer) write(p []byte) {
	m.n += int64(len(p))
	for len(p) > 0 {
		take := min(int64(len(p)), BlockSize-m.fill)
		m.crc = crc32.Update(m.crc, castagnoli, p[:take])
		m.fill += take
		p = p[take:]
		if m.fill == BlockSize {
			m.emit()
		}
	}
}

// emit appends the sum of the current block.
func (m *summer) emit() {
	if m.onBlock != nil {
		m.onBlock(m.k, m.crc)
	}
	m.k++
	if !m.dry {
		m.put(m.crc)
	}
	m.crc, m.fill = 0, 0
}

// put appends one sum to the temp file, creating it first.
func (m *summer) put(sum uint32) {
	if m.err == nil && m.f == nil {
		m.f, m.err = os.CreateTemp(m.dir, "sums-*")
		if m.err == nil {
			m.w = bufio.NewWriterSize(m.f, 4<<10)
		}
	}
	if m.err == nil {
		m.err = binary.Write(m.w, binary.BigEndian, sum)
	}
}

// finish writes the last sum and the trailer and closes the temp file. It
// returns the file's name, or "" for an object of at most one block.
func (m *summer) finish() (string, error) {
	if m.n <= BlockSize {
		m.discard()
		return "", nil
	}
	if m.fill > 0 {
		m.emit()
	}
	if m.dry {
		return "", nil
	}
	if m.err == nil {
		var t [trailerSize]byte
		copy(t[:4], sumsMagic)
		binary.BigEndian.PutUint32(t[4:8], BlockSize)
		binary.BigEndian.PutUint64(t[8:], uint64(m.n))
		_, m.err = m.w.Write(t[:])
	}
	if m.err == nil {
		m.err = m.w.Flush()
	}
	if m.err == nil {
		m.err = m.f.Close()
	}
	if m.err != nil {
		m.discard()
		return "", fmt.Errorf("content: write block sums: %w", m.err)
	}
	name := m.f.Name()
	m.f = nil
	return name, nil
}

// reset forgets everything, for a download that starts over.
func (m *summer) reset() {
	m.discard()
	*m = summer{dir: m.dir, onBlock: m.onBlock}
}

// discard removes the temp file, if any.
func (m *summer) discard() {
	if m.f == nil {
		return
	}
	m.f.Close()
	_ = os.Remove(m.f.Name())
	m.f = nil
}

// sumsPage is how many sums a sidecar reads at once: one page of the
// sidecar, the sums of 64 MiB of object.
const sumsPage = 1024

// sidecar is an open sidecar file. It keeps the last page of sums it
// read, so a sequential read costs one sidecar read per 64 MiB rather
// than one per block. It is safe for concurrent use (File.ReadAt).
type sidecar struct {
	f      *os.File
	blocks int64

	mu   sync.Mutex
	page int64 // the page buf holds; -1 for none
	buf  [sumsPage * 4]byte
}

// openSums opens the sidecar of the object h of size bytes. It returns a
// nil sidecar and no error when there is none; ErrCorrupt when there is
// one that does not describe an object of this size (a damaged sidecar
// or a damaged object: Check tells which).
func (s *Store) openSums(h string, size int64) (*sidecar, error) {
	f, err := os.Open(s.sumsPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("content: open block sums of %s: %w", h, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content: stat block sums of %s: %w", h, err)
	}
	blocks := numBlocks(size)
	if fi.Size() != blocks*4+trailerSize {
		f.Close()
		return nil, fmt.Errorf("%w: %s: block sums file of %d bytes, an object of %d bytes needs %d",
			ErrCorrupt, h, fi.Size(), size, blocks*4+trailerSize)
	}
	sc := &sidecar{f: f, blocks: blocks, page: -1}
	// The sidecar of an object up to 64 MiB fits one page: read it all at
	// once, trailer included, so that checking a Range request costs one
	// sidecar read.
	var t [trailerSize]byte
	if blocks <= sumsPage {
		var all [sumsPage*4 + trailerSize]byte
		if _, err := f.ReadAt(all[:fi.Size()], 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("content: read block sums of %s: %w", h, err)
		}
		copy(sc.buf[:], all[:blocks*4])
		copy(t[:], all[blocks*4:fi.Size()])
		sc.page = 0
	} else if _, err := f.ReadAt(t[:], fi.Size()-trailerSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("content: read block sums of %s: %w", h, err)
	}
	if string(t[:4]) != sumsMagic || binary.BigEndian.Uint32(t[4:8]) != BlockSize ||
		int64(binary.BigEndian.Uint64(t[8:])) != size {
		f.Close()
		return nil, fmt.Errorf("%w: %s: block sums do not describe %d bytes in blocks of %d", ErrCorrupt, h, size, BlockSize)
	}
	return sc, nil
}

// sum returns the CRC-32C of block k.
func (sc *sidecar) sum(k int64) (uint32, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	page := k / sumsPage
	if sc.page != page {
		sc.page = -1
		n := min(sumsPage, sc.blocks-page*sumsPage) * 4
		if _, err := sc.f.ReadAt(sc.buf[:n], page*sumsPage*4); err != nil {
			return 0, fmt.Errorf("content: read block sums %d-%d: %w", page*sumsPage, page*sumsPage+n/4-1, err)
		}
		sc.page = page
	}
	i := (k - page*sumsPage) * 4
	return binary.BigEndian.Uint32(sc.buf[i : i+4]), nil
}

func (sc *sidecar) close() {
	if sc != nil {
		sc.f.Close()
	}
}

// installSumsLocked renames the sidecar tmp into place for h. s.mu is held.
func (s *Store) installSumsLocked(tmp, h string) error {
	dst := s.sumsPath(h)
	err := os.Rename(tmp, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o750); err == nil {
			err = os.Rename(tmp, dst)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("content: install block sums of %s: %w", h, err)
	}
	return nil
}

// removeSumsLocked removes the sidecar of h, if any. s.mu is held.
func (s *Store) removeSumsLocked(h string) {
	if err := os.Remove(s.sumsPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn().Err(err).Str("hash", h).Msg("cannot remove block sums")
	}
}
