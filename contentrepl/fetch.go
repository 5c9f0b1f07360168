package contentrepl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/internal/clusterauth"
)

// fetchPath is the prefix under which nodes serve their content by hash.
const fetchPath = "/cluster/content/"

var (
	// errPeerMissing: the peer answered that it does not have the content.
	errPeerMissing = errors.New("peer does not have the content")
	// errNowhere: every peer answered errPeerMissing (or there are none).
	errNowhere = errors.New("no peer has the content")
	// errBadCopy: a peer's bytes did not hash to the name.
	errBadCopy = errors.New("peer sent content that does not match its hash")
)

// Open opens content by hash for reading; size is the size the metadata
// records. Content that is missing here, or found corrupt (wrong size,
// quarantined by an earlier read, a bad first block), is first fetched
// from a peer, once for all concurrent readers of the same hash. If no
// peer can provide it the error wraps ErrUnavailable: the caller answers
// 503, never 404 and never a partial body.
//
// Corruption found later, while the returned reader is read (content.File
// checks every block before it returns a byte of it), is repaired on the
// fly: see healingReader. The reader never returns a corrupt byte.
func (c *Content) Open(ctx context.Context, hash string, size int64) (io.ReadSeekCloser, error) {
	if !content.ValidHash(hash) {
		return nil, fmt.Errorf("replication: open content: %w: %.80q", content.ErrInvalidHash, hash)
	}
	for attempt := 0; ; attempt++ {
		f, err := c.openLocal(hash, size)
		if err == nil {
			// Check the first block now: if it is bad, a good copy can
			// still be fetched, or 503 answered, before a status line.
			err = f.Prime()
			if err == nil {
				return &healingReader{c: c, ctx: ctx, hash: hash, size: size, f: f}, nil
			}
			_ = f.Close()
		}
		corrupt := errors.Is(err, content.ErrCorrupt)
		if !errors.Is(err, content.ErrNotFound) && !corrupt {
			return nil, fmt.Errorf("replication: open content: %w", err)
		}
		if attempt > 0 {
			// Fetched and verified a moment ago, yet not there: something
			// local is wrong (a full disk cleaning up, a racing delete).
			return nil, fmt.Errorf("%w: %s: fetched, but cannot open it: %w", ErrUnavailable, hash, err)
		}
		if corrupt {
			c.log.Error().Str("hash", hash).Err(err).Msg("read met corrupt content; fetching a good copy from a peer")
		} else {
			c.log.Info().Str("hash", hash).Err(err).Msg("content not available locally; fetching it from a peer")
		}
		if err := c.fetch(ctx, hash, size, true); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("replication: fetch content %s: %w", hash, ctx.Err())
			}
			if corrupt {
				c.readUnrepaired.Add(1)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, hash, err)
		}
		if corrupt {
			c.readRepaired.Add(1)
		}
	}
}

// openLocal opens the local copy, treating a size that disagrees with the
// metadata as corruption (and quarantining the object, so that a good copy
// can replace it).
func (c *Content) openLocal(hash string, size int64) (*content.File, error) {
	f, err := c.store.Open(hash)
	if err != nil {
		return nil, err
	}
	if size >= 0 && f.Size() != size {
		_ = f.Close()
		cause := fmt.Errorf("%w: %s is %d bytes, the metadata says %d", content.ErrCorrupt, hash, f.Size(), size)
		if qerr := c.store.Quarantine(hash, cause); qerr != nil && !errors.Is(qerr, content.ErrNotFound) {
			c.log.Error().Err(qerr).Str("hash", hash).Msg("cannot quarantine an object of the wrong size")
		}
		return nil, cause
	}
	return f, nil
}

// fetchCall is one fetch of a hash, shared by everyone who needs it.
type fetchCall struct {
	done chan struct{}
	err  error
	// urgent is set when a reader waits for the fetch: the bandwidth cap
	// of background catch-up no longer applies to it.
	urgent atomic.Bool
}

// fetch makes sure hash is in the local store, downloading it from a peer
// if needed. Concurrent fetches of one hash share a single download, which
// runs on c.base so that it survives the caller that started it; ctx only
// bounds the wait.
func (c *Content) fetch(ctx context.Context, hash string, size int64, urgent bool) error {
	c.flightMu.Lock()
	call := c.flights[hash]
	if call == nil {
		if c.store.Has(hash) {
			c.flightMu.Unlock()
			return nil
		}
		call = &fetchCall{done: make(chan struct{})}
		c.flights[hash] = call
		go func() {
			call.err = c.download(c.base, hash, size, call)
			c.flightMu.Lock()
			delete(c.flights, hash)
			c.flightMu.Unlock()
			close(call.done)
		}()
	}
	if urgent {
		call.urgent.Store(true)
	}
	c.flightMu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// download fetches hash from the peers in order until one provides a
// verified copy. A transfer that breaks leaves its bytes in the partial
// download, and the next peer continues after them.
func (c *Content) download(ctx context.Context, hash string, size int64, call *fetchCall) error {
	start := time.Now()
	peers, err := c.peers(ctx)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return fmt.Errorf("%w: no peers", errNowhere)
	}
	var errs []error
	nowhere := true
	for _, p := range peers {
		err := c.fetchFrom(ctx, p, hash, size, call)
		if err == nil {
			// Referenced content is protected by its reference count;
			// content deleted meanwhile is garbage like any other.
			_ = c.store.Unpin(hash)
			c.log.Debug().Str("hash", hash).Int64("size", size).Str("peer", p.ID).
				Dur("took", time.Since(start)).Msg("content fetched")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errPeerMissing) {
			nowhere = false
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
		c.log.Debug().Str("hash", hash).Str("peer", p.ID).Err(err).Msg("fetch from peer failed; trying the next")
	}
	err = errors.Join(errs...)
	if nowhere {
		return fmt.Errorf("%w: %w", errNowhere, err)
	}
	return err
}

// fetchFrom downloads hash from one peer, continuing a partial download.
// If the bytes then fail verification and the download had resumed from
// an earlier transfer, the earlier bytes may be the bad ones: it starts
// over from this peer once.
func (c *Content) fetchFrom(ctx context.Context, p Peer, hash string, size int64, call *fetchCall) error {
	for attempt := 0; ; attempt++ {
		d, err := c.store.Resume(ctx, hash)
		if err != nil {
			return err
		}
		resumed := d.Offset()
		if err := c.transfer(ctx, p, d, size, call); err != nil {
			if cerr := d.Close(); cerr != nil {
				c.log.Warn().Err(cerr).Str("hash", hash).Msg("cannot close partial download")
			}
			return err
		}
		_, err = d.Commit(size)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, content.ErrCorrupt):
			return err
		case resumed > 0 && attempt == 0:
			c.log.Warn().Err(err).Str("hash", hash).Str("peer", p.ID).Int64("resumed_at", resumed).
				Msg("resumed download failed verification; fetching it whole")
		default:
			c.log.Error().Err(err).Str("hash", hash).Str("peer", p.ID).Msg("peer sent corrupt content; discarded")
			return fmt.Errorf("%w: %w", errBadCopy, err)
		}
	}
}

// transfer appends the peer's copy of d's object to d, from d's offset.
// It returns nil once the peer's body ended; Commit then decides whether
// the bytes are right.
func (c *Content) transfer(ctx context.Context, p Peer, d *content.Download, size int64, call *fetchCall) error {
	off := d.Offset()
	if size >= 0 && off > size {
		if err := d.Restart(); err != nil {
			return err
		}
		off = 0
	}
	if size > 0 && off == size {
		return nil // complete already (a crash before the commit)
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	watchdog := time.AfterFunc(c.cfg.IdleTimeout, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()
	fail := func(err error) error {
		if idle.Load() {
			return fmt.Errorf("no progress for %v: %w", c.cfg.IdleTimeout, err)
		}
		return err
	}

	req, err := http.NewRequestWithContext(tctx, http.MethodGet, p.URL+fetchPath+d.Hash(), nil)
	if err != nil {
		return fmt.Errorf("build fetch request: %w", err)
	}
	clusterauth.Set(req, c.cfg.Secret)
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return fail(fmt.Errorf("fetch: %w", err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if off > 0 { // the peer ignored the Range: take the whole body
			if err := d.Restart(); err != nil {
				return err
			}
			off = 0
		}
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			return fmt.Errorf("fetch: asked for bytes from %d, got Content-Range %q", off, resp.Header.Get("Content-Range"))
		}
	case http.StatusNotFound:
		return errPeerMissing
	case http.StatusRequestedRangeNotSatisfiable:
		// The peer's copy is shorter than what we hold: ours cannot be a
		// prefix of the right bytes if the peer's copy is right.
		if err := d.Restart(); err != nil {
			return err
		}
		return fmt.Errorf("fetch: range from %d not satisfiable", off)
	default:
		return fmt.Errorf("fetch: %s: %s", resp.Status, snippet(resp.Body))
	}

	var body io.Reader = resp.Body
	if size >= 0 {
		// One byte more than expected is enough for Commit to see a
		// peer sending too much.
		body = io.LimitReader(body, size-off+1)
	}
	bp := c.chunks.Get().(*[]byte)
	defer c.chunks.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			watchdog.Reset(c.cfg.IdleTimeout)
			if !call.urgent.Load() {
				if err := c.limiter.wait(tctx, n); err != nil {
					return fail(fmt.Errorf("fetch: %w", err))
				}
				watchdog.Reset(c.cfg.IdleTimeout) // waiting on the cap is not idling
			}
			if _, err := d.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fail(fmt.Errorf("fetch: read body at byte %d: %w", d.Offset(), rerr))
		}
	}
}

// rangeStart parses the first byte position of "bytes first-last/total".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}
