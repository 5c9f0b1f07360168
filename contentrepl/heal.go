package contentrepl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/dfs-project/dfs/content"
)

// Read repair
//
// content.File checks every block before it returns any byte of it, and
// quarantines the object when a block is corrupt. healingReader, what Open
// returns, turns that into a repair instead of a failed response: it
// fetches a good copy from a peer (the urgent path readers use, so the
// background bandwidth cap does not apply, and shared with every other
// reader of the hash), opens it, seeks to the same position and carries
// on. The client gets a complete, correct response, later than usual. If
// no peer has a good copy, the read fails (the response breaks off) and
// never returns corrupt bytes. Each reader repairs at most once: a second
// corrupt block right after a verified fetch means the local disk is
// failing, and retrying would only loop.

// ReadRepairs counts what read repair did since start.
type ReadRepairs struct {
	Repaired   int64 // corrupt content met by a read and replaced from a peer
	Unrepaired int64 // corrupt content met by a read that no peer could replace
}

// ReadRepairs returns the read repair counters.
func (c *Content) ReadRepairs() ReadRepairs {
	return ReadRepairs{Repaired: c.readRepaired.Load(), Unrepaired: c.readUnrepaired.Load()}
}

// readRepairCounters is embedded in Content.
type readRepairCounters struct {
	readRepaired   atomic.Int64
	readUnrepaired atomic.Int64
}

// healingReader reads content for a client and repairs it from a peer
// when the local copy turns out corrupt. It is not safe for concurrent
// use.
type healingReader struct {
	c        *Content
	ctx      context.Context // the request's: bounds the wait for a repair
	hash     string
	size     int64
	f        *content.File
	pos      int64
	repaired bool
	failed   error // sticky: the read cannot go on
}

func (r *healingReader) Read(p []byte) (int, error) {
	if r.failed != nil {
		return 0, r.failed
	}
	n, err := r.f.Read(p)
	r.pos += int64(n)
	if err != nil && errors.Is(err, content.ErrCorrupt) {
		if rerr := r.repair(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
		return r.Read(p)
	}
	return n, err
}

func (r *healingReader) Seek(offset int64, whence int) (int64, error) {
	if r.failed != nil {
		return 0, r.failed
	}
	pos, err := r.f.Seek(offset, whence)
	if err == nil {
		r.pos = pos
	}
	return pos, err
}

func (r *healingReader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// repair replaces the corrupt local copy (already quarantined by the File)
// with a peer's and reopens it at the current position. An object without
// block sums is only found corrupt at its end, after its bytes were
// returned: it is still repaired for the next reader, but this read fails.
func (r *healingReader) repair(cause error) error {
	log := r.c.log.With().Str("hash", r.hash).Int64("offset", r.pos).AnErr("cause", cause).Logger()
	legacy := r.f.Legacy()
	_ = r.f.Close()
	r.f = nil
	if r.repaired {
		r.c.readUnrepaired.Add(1)
		log.Error().Msg("content corrupt again right after a repair; failing the read")
		r.failed = fmt.Errorf("%w: %s: corrupt again after a repair: %w", ErrUnavailable, r.hash, cause)
		return r.failed
	}
	r.repaired = true
	log.Error().Msg("read met corrupt content; fetching a good copy from a peer and continuing")
	err := r.c.fetch(r.ctx, r.hash, r.size, true)
	var f *content.File
	if err == nil {
		f, err = r.c.openLocal(r.hash, r.size)
	}
	if err == nil {
		if _, err = f.Seek(r.pos, io.SeekStart); err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		r.c.readUnrepaired.Add(1)
		log.Error().Err(err).Msg("no good copy of corrupt content; the read fails")
		r.failed = fmt.Errorf("%w: %s: %w", ErrUnavailable, r.hash, err)
		return r.failed
	}
	if legacy {
		_ = f.Close()
		r.c.readRepaired.Add(1)
		log.Error().Msg("corrupt content without block sums was found at its end and repaired for later reads; this read fails")
		r.failed = fmt.Errorf("%w: %s: found corrupt at its end: %w", content.ErrCorrupt, r.hash, cause)
		return r.failed
	}
	r.f = f
	r.c.readRepaired.Add(1)
	log.Info().Msg("corrupt content repaired from a peer during a read")
	return nil
}
