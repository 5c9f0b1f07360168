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
	"sync"
)

// copyBufSize bounds the memory one upload, verification or read copy uses.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// parallelHashMin is the chunk size from which Write hashes concurrently
// with writing; below it a goroutine hand-off costs more than it saves.
const parallelHashMin = 64 << 10

// writebackChunk is how much a Writer accumulates before it starts
// writeback of it (see startWriteback).
const writebackChunk = 8 << 20

// errWriterDone is returned when a Writer is used after Commit or Abort.
var errWriterDone = errors.New("content: writer already committed or aborted")

// Writer streams one object into a temp file, hashing and counting the
// bytes as they pass. Commit makes it an object; Abort throws it away.
// A Writer is not safe for concurrent use.
type Writer struct {
	s *Store
	hashingFile
}

// hashingFile is a file written while its SHA-256 is computed: the shared
// core of Writer (an upload) and Download (a fetch from a peer).
type hashingFile struct {
	f       *os.File
	sum     hash.Hash
	sums    summer // block sums, for the sidecar
	n       int64
	flushed int64 // bytes handed to startWriteback
	err     error // first write error: a failed write poisons the file
	done    bool
}

// write appends p, hashing it, and hands full chunks to the kernel's
// writeback early so the final fsync has less to do.
func (h *hashingFile) write(p []byte, what string) (int, error) {
	if h.done {
		return 0, errWriterDone
	}
	if h.err != nil {
		return 0, h.err
	}
	if err := injected(FaultWrite, h.f.Name()); err != nil {
		h.err = fmt.Errorf("content: %s: %w", what, err)
		return 0, h.err
	}
	n, err := hashWrite(h.f, h.sum, p)
	h.sums.write(p[:n])
	h.n += int64(n)
	if h.n-h.flushed >= writebackChunk {
		startWriteback(h.f, h.flushed, h.n-h.flushed)
		h.flushed = h.n
	}
	if err != nil {
		h.err = fmt.Errorf("content: %s: %w", what, err)
		return n, h.err
	}
	return n, nil
}

// NewWriter starts a new object in the temp directory.
func (s *Store) NewWriter() (*Writer, error) {
	f, err := os.CreateTemp(s.tmp, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("content: create temp file: %w", err)
	}
	return &Writer{s: s, hashingFile: hashingFile{f: f, sum: sha256.New(), sums: summer{dir: s.tmp}}}, nil
}

// Write appends p to the object.
func (w *Writer) Write(p []byte) (int, error) { return w.write(p, "write temp file") }

// Size returns how many bytes have been written so far.
func (w *Writer) Size() int64 { return w.n }

// Abort removes the temp file. It is a no-op after Commit or Abort, so
// callers can always defer it.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.discard()
}

func (w *Writer) discard() {
	w.sums.discard()
	name := w.f.Name()
	w.f.Close()
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Harmless beyond the disk space: the next Open removes it.
		w.s.log.Warn().Err(err).Str("file", name).Msg("cannot remove temp file")
	}
}

// Commit makes the written bytes a durable object and returns it pinned:
// the caller owns one pin and must Unpin it once the metadata entry that
// references the hash is applied or abandoned. If Commit fails, nothing is
// left behind and no pin is held.
func (w *Writer) Commit() (Blob, error) {
	if w.done {
		return Blob{}, errWriterDone
	}
	w.done = true
	if w.err != nil {
		w.discard()
		return Blob{}, w.err
	}
	b := Blob{Hash: hex.EncodeToString(w.sum.Sum(nil)), Size: w.n}
	if b.Size == 0 {
		w.discard() // the empty object is virtual
		return b, nil
	}
	// The data must be on disk before the rename can make it visible,
	// otherwise a crash could leave a complete-looking name over
	// missing blocks.
	err := injected(FaultSync, w.f.Name())
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.discard()
		return Blob{}, fmt.Errorf("content: fsync temp file: %w", err)
	}
	if err := w.f.Close(); err != nil {
		w.discard()
		return Blob{}, fmt.Errorf("content: close temp file: %w", err)
	}
	tmp := w.f.Name()
	dst := w.s.path(b.Hash)
	sums, err := w.sums.finish()
	if err != nil {
		w.discard()
		return Blob{}, err
	}

	dropTemp, err := w.s.install(tmp, dst, b, sums)
	if dropTemp {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			w.s.log.Warn().Err(rerr).Str("file", tmp).Msg("cannot remove temp file")
		}
	}
	if err != nil {
		return Blob{}, err
	}
	// Always fsync the fan-out directory, even when the object already
	// existed: the writer that renamed it there may not have fsynced yet,
	// and our caller is about to rely on it surviving a crash.
	if err := SyncDir(filepath.Dir(dst)); err != nil {
		_ = w.s.Unpin(b.Hash)
		return Blob{}, err
	}
	w.s.log.Debug().Str("hash", b.Hash).Int64("size", b.Size).Msg("object committed")
	return b, nil
}

// install puts the fsynced temp file tmp in place as dst and pins the hash,
// under s.mu so that no deletion can slip between the two: once install
// returns, the object is present and pinned. The block sums in the temp
// file sums ("" for none) go in first, so that the object never appears
// without them; they also replace the sums of an object that is already
// there (sums depend only on the hash, and these were computed from bytes
// known good). It reports whether the temp file is left over and must be
// removed. An object already there is replaced too: see below.
func (s *Store) install(tmp, dst string, b Blob, sums string) (dropTemp bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sums != "" {
		if err := s.installSumsLocked(sums, b.Hash); err != nil {
			return true, err
		}
	}
	fi, err := os.Lstat(dst)
	switch {
	case err == nil && (!fi.Mode().IsRegular() || fi.Size() != b.Size):
		s.log.Error().Str("hash", b.Hash).Int64("size", b.Size).Int64("found_size", fi.Size()).
			Str("mode", fi.Mode().String()).Msg("replacing corrupt object with fresh upload")
	case err == nil:
		// Probably the same bytes, but not certainly: a copy that rotted
		// in place keeps its size, and an upload or a push acknowledged
		// over it would count a bad copy toward the majority. The fresh
		// copy is fsynced and known good, so it replaces the old one
		// (rename is atomic; readers keep their open inode) and its new
		// mtime restarts Collect's grace period.
	case !errors.Is(err, fs.ErrNotExist):
		s.removeSumsLocked(b.Hash)
		return true, fmt.Errorf("content: stat object %s: %w", b.Hash, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.removeSumsLocked(b.Hash)
			return true, fmt.Errorf("content: rename temp file to object %s: %w", b.Hash, err)
		}
		// The fan-out directory is gone (Open creates all of them, so
		// someone removed it): create it durably and retry once.
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			s.removeSumsLocked(b.Hash)
			return true, fmt.Errorf("content: create fan-out directory: %w", err)
		}
		if err := SyncDir(s.objects); err != nil {
			s.removeSumsLocked(b.Hash)
			return true, err
		}
		if err := os.Rename(tmp, dst); err != nil {
			s.removeSumsLocked(b.Hash)
			return true, fmt.Errorf("content: rename temp file to object %s: %w", b.Hash, err)
		}
	}
	s.pinLocked(b.Hash)
	return false, nil
}

// Put stores everything r yields and returns the blob, pinned as by Commit.
// It checks ctx between chunks, so a cancelled upload stops promptly and
// leaves nothing behind. Memory use is bounded by one copy buffer.
func (s *Store) Put(ctx context.Context, r io.Reader) (Blob, error) {
	w, err := s.NewWriter()
	if err != nil {
		return Blob{}, err
	}
	defer w.Abort()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// ctxReader also hides any WriterTo of r, so io.CopyBuffer really goes
	// through our bounded buffer instead of handing w one huge slice.
	if _, err := io.CopyBuffer(w, ctxReader{ctx: ctx, r: r}, *bp); err != nil {
		return Blob{}, fmt.Errorf("content: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Blob{}, fmt.Errorf("content: put: %w", err)
	}
	return w.Commit()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
