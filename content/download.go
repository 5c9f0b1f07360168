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
	"time"
)

// Download is a resumable transfer of one object from elsewhere (a peer)
// into dir/partial/<hash>. A node that lacks content fetches it into a
// Download; if the transfer breaks, the bytes received so far stay in the
// partial file, and the next Resume of the same hash continues after them
// (an HTTP Range request), even after a restart. Nothing in partial/ is
// trusted: Commit makes the download an object only if all of its bytes
// hash to the name it was started under, and discards it otherwise, so a
// corrupt peer, a truncated or stale partial file, or a crash mid-write can
// cost a re-transfer but never produce a wrong object.
//
// At most one Download per hash is open in a Store (Resume fails with
// ErrBusy otherwise). A Download is not safe for concurrent use.
type Download struct {
	s    *Store
	h    string
	path string
	hashingFile
}

// Resume opens the download of h: it creates dir/partial/<h>, or continues
// the one left by an earlier Download, in which case Offset is the number
// of bytes already there. Continuing re-reads those bytes once to restore
// the running hash: a local sequential read costs far less than fetching
// them again.
func (s *Store) Resume(ctx context.Context, h string) (*Download, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.downloads[h] {
		s.mu.Unlock()
		return nil, fmt.Errorf("content: resume %s: %w", h, ErrBusy)
	}
	s.downloads[h] = true
	s.mu.Unlock()

	d := &Download{s: s, h: h, path: filepath.Join(s.partial, h),
		hashingFile: hashingFile{sum: sha256.New(), sums: summer{dir: s.tmp}}}
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		s.endDownload(h)
		return nil, fmt.Errorf("content: open partial download %s: %w", h, err)
	}
	d.f = f
	if err := d.rehash(ctx); err != nil {
		if ctx.Err() != nil {
			d.Close()
			return nil, fmt.Errorf("content: resume %s: %w", h, err)
		}
		// An unreadable partial file is worth nothing: start over.
		s.log.Warn().Err(err).Str("hash", h).Msg("cannot read partial download; starting it over")
		if err := d.Restart(); err != nil {
			d.Discard()
			return nil, err
		}
	}
	if d.n > 0 {
		s.log.Debug().Str("hash", h).Int64("offset", d.n).Msg("resuming download")
	}
	return d, nil
}

// rehash hashes the bytes already in the partial file, block sums included
// (they are not kept with a partial file), and leaves the file offset at
// their end.
func (d *Download) rehash(ctx context.Context) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(io.MultiWriter(d.sum, sumsWriter{&d.sums}), ctxReader{ctx: ctx, r: d.f}, *bp)
	d.n, d.flushed = n, n
	if err != nil {
		return fmt.Errorf("read partial download: %w", err)
	}
	return nil
}

func (s *Store) endDownload(h string) {
	s.mu.Lock()
	delete(s.downloads, h)
	s.mu.Unlock()
}

// Hash returns the hash the download must produce.
func (d *Download) Hash() string { return d.h }

// Offset returns how many bytes the download holds: where the transfer
// continues.
func (d *Download) Offset() int64 { return d.n }

// Write appends p to the download.
func (d *Download) Write(p []byte) (int, error) { return d.write(p, "write partial download") }

// Restart empties the download, for a source that cannot continue where
// it stopped (a peer that ignores the Range request) or a partial file that
// turned out to be useless.
func (d *Download) Restart() error {
	if d.done {
		return errWriterDone
	}
	if err := d.f.Truncate(0); err != nil {
		d.err = fmt.Errorf("content: truncate partial download: %w", err)
		return d.err
	}
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		d.err = fmt.Errorf("content: rewind partial download: %w", err)
		return d.err
	}
	d.sum.Reset()
	d.sums.reset()
	d.n, d.flushed, d.err = 0, 0, nil
	return nil
}

// Commit checks the download and makes it a durable object, returned
// pinned as by Writer.Commit. If the bytes are not size long (size < 0:
// any length) or do not hash to the download's name, the partial file is
// removed and the error wraps ErrCorrupt: the source was bad, and
// continuing from its bytes would only produce the same mismatch. Either
// way the Download is finished.
//
// An existing object of the same size is kept as it is (see install):
// to replace an object known to be corrupt, Quarantine it first.
func (d *Download) Commit(size int64) (Blob, error) {
	if d.done {
		return Blob{}, errWriterDone
	}
	d.done = true
	defer d.s.endDownload(d.h)
	if d.err != nil {
		d.remove()
		return Blob{}, d.err
	}
	b := Blob{Hash: hex.EncodeToString(d.sum.Sum(nil)), Size: d.n}
	switch {
	case size >= 0 && b.Size != size:
		d.remove()
		return Blob{}, fmt.Errorf("content: download %s: %w: got %d bytes, want %d", d.h, ErrCorrupt, b.Size, size)
	case b.Hash != d.h:
		d.remove()
		return Blob{}, fmt.Errorf("content: download %s: %w: %d bytes hash to %s", d.h, ErrCorrupt, b.Size, b.Hash)
	case b.Size == 0:
		d.remove() // the empty object is virtual
		return b, nil
	}
	if err := d.f.Sync(); err != nil {
		d.remove()
		return Blob{}, fmt.Errorf("content: fsync partial download: %w", err)
	}
	if err := d.f.Close(); err != nil {
		d.remove()
		return Blob{}, fmt.Errorf("content: close partial download: %w", err)
	}
	dst := d.s.path(b.Hash)
	sums, err := d.sums.finish()
	if err != nil {
		d.remove()
		return Blob{}, err
	}
	dropTemp, err := d.s.install(d.path, dst, b, sums)
	if dropTemp {
		if rerr := os.Remove(d.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			d.s.log.Warn().Err(rerr).Str("file", d.path).Msg("cannot remove partial download")
		}
	}
	if err != nil {
		return Blob{}, err
	}
	if err := SyncDir(filepath.Dir(dst)); err != nil {
		_ = d.s.Unpin(b.Hash)
		return Blob{}, err
	}
	d.s.log.Debug().Str("hash", b.Hash).Int64("size", b.Size).Msg("download committed")
	return b, nil
}

// Close ends the Download and keeps the partial file, so that a later
// Resume continues after its bytes. It is a no-op after Commit or Discard.
func (d *Download) Close() error {
	if d.done {
		return nil
	}
	d.done = true
	defer d.s.endDownload(d.h)
	d.sums.discard() // Resume computes them again
	if d.err != nil {
		d.remove() // a failed write leaves an unknown tail
		return nil
	}
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("content: close partial download: %w", err)
	}
	return nil
}

// Discard ends the Download and removes the partial file. It is a no-op
// after Commit or Close, so callers can always defer it.
func (d *Download) Discard() {
	if d.done {
		return
	}
	d.done = true
	d.remove()
	d.s.endDownload(d.h)
}

func (d *Download) remove() {
	d.sums.discard()
	d.f.Close()
	if err := os.Remove(d.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.s.log.Warn().Err(err).Str("file", d.path).Msg("cannot remove partial download")
	}
}

// PrunePartials removes partial downloads that no Download has open and
// that nothing appended to for maxAge: transfers nobody resumed, typically
// of content deleted meanwhile. Collect calls it with its grace period.
func (s *Store) PrunePartials(maxAge time.Duration) (removed int64, err error) {
	ents, err := os.ReadDir(s.partial)
	if err != nil {
		return 0, fmt.Errorf("content: list partial downloads: %w", err)
	}
	for _, e := range ents {
		h := e.Name()
		if !ValidHash(h) || !e.Type().IsRegular() {
			s.log.Warn().Str("file", filepath.Join("partial", h)).Msg("stray file in partial directory")
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < maxAge {
			continue
		}
		s.mu.Lock()
		busy := s.downloads[h]
		if !busy {
			err = os.Remove(filepath.Join(s.partial, h))
		}
		s.mu.Unlock()
		switch {
		case busy || errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return removed, fmt.Errorf("content: remove partial download %s: %w", h, err)
		default:
			removed++
		}
	}
	return removed, nil
}

// Quarantine moves the object h out of objects/ into dir/corrupt/, for a
// caller that found it corrupt by its own means (a size that disagrees
// with the metadata). Afterwards Has reports h missing, so a good copy can
// be fetched and installed. It fails with ErrNotFound if h is absent.
func (s *Store) Quarantine(h string, cause error) error {
	if err := checkHash(h); err != nil {
		return err
	}
	if h == EmptyHash {
		return nil // virtual: cannot be corrupt
	}
	fi, err := os.Lstat(s.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content: quarantine %s: %w", h, ErrNotFound)
		}
		return fmt.Errorf("content: quarantine %s: %w", h, err)
	}
	s.quarantine(h, fi, cause)
	return nil
}

// sumsWriter feeds a summer as an io.Writer.
type sumsWriter struct{ m *summer }

func (w sumsWriter) Write(p []byte) (int, error) { w.m.write(p); return len(p), nil }

// hashWrite writes p to f and to sum. For large chunks it hashes
// concurrently with the write: SHA-256 runs at about the speed of a write
// to the page cache (~1.6 GB/s with SHA-NI), so overlapping them cut a
// 64 MiB Put from ~80 to ~56 ms (BenchmarkWrite64MiB). If the write falls
// short the hash covers bytes that are not in the file; callers then
// poison the object with the error.
func hashWrite(f *os.File, sum hash.Hash, p []byte) (int, error) {
	if len(p) < parallelHashMin {
		n, err := f.Write(p)
		sum.Write(p[:n]) // hash.Hash.Write never fails
		return n, err
	}
	done := make(chan struct{})
	go func() {
		sum.Write(p)
		close(done)
	}()
	n, err := f.Write(p)
	<-done
	return n, err
}
