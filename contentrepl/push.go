package contentrepl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/quota"
)

// pushPath is where followers receive pushed content.
const pushPath = "/cluster/content"

// pushReply is a follower's answer to a push: what it stored.
type pushReply struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Write stores everything r yields and returns its hash and size, pinned
// until Unpin (the caller unpins once the entry referencing the hash is
// applied or abandoned).
//
// With WriteAckMajority the body is streamed into the local store and, at
// the same time, to every follower. It returns once the local copy is
// fsynced and enough followers replied with the same hash and size to make
// a majority; otherwise the error wraps ErrNoQuorum and the content is
// left unpinned for garbage collection. Memory stays bounded by the
// per-follower buffer (ContentConfig.PushBuffer), whatever the file size.
// With WriteAckLeader only the local store is written.
func (c *Content) Write(ctx context.Context, r io.Reader) (string, int64, error) {
	if c.cfg.WriteAck == WriteAckLeader {
		return c.writeLocal(ctx, r)
	}
	peers, err := c.peers(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrNoQuorum, err)
	}
	quorum := c.quorum(len(peers))
	if 1+len(peers) < quorum {
		return "", 0, fmt.Errorf("%w: %d copies needed, only %d peers known", ErrNoQuorum, quorum, len(peers))
	}
	if len(peers) == 0 {
		return c.writeLocal(ctx, r)
	}
	return c.push(ctx, r, peers, quorum)
}

func (c *Content) writeLocal(ctx context.Context, r io.Reader) (string, int64, error) {
	b, err := c.store.Put(ctx, r)
	if err != nil {
		return "", 0, fmt.Errorf("replication: store content: %w", err)
	}
	return b.Hash, b.Size, nil
}

// pushResult is the outcome of the push to one follower.
type pushResult struct {
	peer Peer
	blob content.Blob
	err  error
}

// push is Write's majority path.
func (c *Content) push(ctx context.Context, r io.Reader, peers []Peer, quorum int) (hash string, size int64, err error) {
	need := max(quorum-1, 0) // follower copies needed
	w, err := c.store.NewWriter()
	if err != nil {
		return "", 0, fmt.Errorf("replication: store content: %w", err)
	}
	defer w.Abort()

	// The pushes run in their own context: once the write succeeded,
	// followers beyond the majority may still be receiving, and the
	// request's end must not cut them off (AckTimeout bounds them).
	pctx, cancelPushes := context.WithCancel(context.WithoutCancel(ctx))
	t := newTee(c, need)
	results := make(chan pushResult, len(peers))
	for _, p := range peers {
		ps := t.add(pctx, p)
		go func() { results <- c.pushTo(ps) }()
	}
	defer func() {
		if err != nil {
			t.abort(err)
			cancelPushes()
		}
	}()

	for {
		if err := ctx.Err(); err != nil {
			return "", 0, fmt.Errorf("replication: upload: %w", err)
		}
		ck := c.getChunk()
		n, rerr := fill(r, ck.buf)
		if n > 0 {
			ck.buf = ck.buf[:n]
			if _, err := w.Write(ck.buf); err != nil {
				c.putChunk(ck)
				return "", 0, fmt.Errorf("replication: store content: %w", err)
			}
			if err := t.write(ctx, ck); err != nil {
				return "", 0, err
			}
		} else {
			c.putChunk(ck)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", 0, fmt.Errorf("replication: read upload: %w", rerr)
		}
	}
	// Followers see the end of the body only now, after every byte reached
	// the local writer: a follower never commits an upload the leader
	// failed to read completely.
	t.close()
	time.AfterFunc(c.cfg.AckTimeout, cancelPushes)
	b, err := w.Commit()
	if err != nil {
		return "", 0, fmt.Errorf("replication: store content: %w", err)
	}
	matches, failures, err := c.awaitAcks(ctx, results, len(peers), need, b)
	if err != nil || 1+matches < quorum {
		// Nothing will reference this content: delete it now rather than
		// leave it to the sweep.
		_ = c.store.Unpin(b.Hash)
		c.release(context.WithoutCancel(ctx), b.Hash)
		if err == nil {
			err = fmt.Errorf("%w: %d of %d copies (%s)", ErrNoQuorum, 1+matches, quorum, strings.Join(failures, "; "))
			if ns := t.noSpaceErr(); ns != nil {
				err = fmt.Errorf("%w: %w", err, ns)
			}
		}
		return "", 0, err
	}
	if len(failures) > 0 {
		c.log.Warn().Str("hash", b.Hash).Strs("failures", failures).
			Msg("content pushed to a majority; the other followers will fetch it")
	}
	return b.Hash, b.Size, nil
}

// fill reads into buf until it is full or r ends. Unlike io.ReadFull it
// passes on only r's own errors: io.EOF is the end of the body, while an
// io.ErrUnexpectedEOF from r (a client that went away mid-body) must fail
// the upload, never complete a truncated file.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// awaitAcks collects follower replies until need of them match b, all of
// them are in, or ctx ends.
func (c *Content) awaitAcks(ctx context.Context, results <-chan pushResult, n, need int, b content.Blob) (matches int, failures []string, err error) {
	for got := 0; got < n && matches < need; got++ {
		select {
		case res := <-results:
			switch {
			case res.err != nil:
				failures = append(failures, fmt.Sprintf("%s: %v", res.peer.ID, res.err))
			case res.blob != b:
				failures = append(failures, fmt.Sprintf("%s: stored %s (%d bytes), leader %s (%d bytes)",
					res.peer.ID, res.blob.Hash, res.blob.Size, b.Hash, b.Size))
			default:
				matches++
			}
		case <-ctx.Done():
			return matches, failures, fmt.Errorf("replication: wait for follower copies: %w", ctx.Err())
		}
	}
	return matches, failures, nil
}

// pushTo streams ps's share of the upload to its peer and returns what the
// peer stored.
func (c *Content) pushTo(ps *peerStream) (res pushResult) {
	res.peer = ps.peer
	defer func() { ps.t.finish(ps, res.err) }()
	req, err := http.NewRequestWithContext(ps.ctx, http.MethodPost, ps.peer.URL+pushPath, ps)
	if err != nil {
		res.err = fmt.Errorf("build push request: %w", err)
		return res
	}
	req.ContentLength = -1 // chunked: the size is known only at the end
	req.Header.Set("Content-Type", "application/octet-stream")
	clusterauth.Set(req, c.cfg.Secret)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		if reason := ps.t.dropReason(ps); reason != nil && !errors.Is(reason, errBodyClosed) {
			err = reason // the tee cancelled the request: say why
		}
		res.err = fmt.Errorf("push: %w", err)
		return res
	}
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusInsufficientStorage {
		why := strings.TrimPrefix(snippet(resp.Body), quota.ErrNoSpace.Error()+": ")
		res.err = fmt.Errorf("push: %w", &quota.NoSpaceError{Msg: fmt.Sprintf("follower %s refused the content: %s", ps.peer.ID, why), Disk: true})
		return res
	}
	if resp.StatusCode != http.StatusOK {
		res.err = fmt.Errorf("push: %s: %s", resp.Status, snippet(resp.Body))
		return res
	}
	var rep pushReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&rep); err != nil {
		res.err = fmt.Errorf("push: decode reply: %w", err)
		return res
	}
	res.blob = content.Blob{Hash: rep.Hash, Size: rep.Size}
	return res
}

// chunk is one piece of an upload, shared by every peerStream queue it is in
// and returned to the pool when the last of them has sent it.
type chunk struct {
	buf  []byte
	full *[]byte // the pooled buffer buf slices
	refs int     // peerStreams still holding it; guarded by the tee's mutex
}

func (c *Content) getChunk() *chunk {
	p := c.chunks.Get().(*[]byte)
	return &chunk{buf: (*p)[:chunkSize], full: p}
}

func (c *Content) putChunk(ck *chunk) { c.chunks.Put(ck.full) }

var (
	errFellBehind = errors.New("follower fell behind the upload by more than the push buffer")
	errStalled    = errors.New("follower made no progress")
	errBodyClosed = errors.New("push request closed before the end of the body")
)

// tee fans one upload out to the followers. The leader (write) waits until
// need followers have room within the pacing limit (half the buffer), and
// for the others only within a budget (see Laggards); it drops any
// follower that would exceed the hard limit (the whole buffer). Followers
// that keep up at about the same speed therefore all stay in; one that is
// much slower, or stuck, is dropped once it is a buffer behind, and
// fetches the content after the entry applies.
type tee struct {
	c        *Content
	need     int
	pace     int64
	hard     int64
	stall    time.Duration
	start    time.Time
	mu       sync.Mutex
	streams  []*peerStream // one per follower
	alive    int
	closed   bool          // the body ended: followers see EOF when drained
	aborted  bool          // the upload failed: every follower is dropped
	waiting  bool          // the leader waits in write for progress
	progress chan struct{} // closed and replaced on progress while waiting
	noSpace  error         // the first follower that failed for lack of room
}

// noSpaceErr returns the first follower failure for lack of room, or nil.
func (t *tee) noSpaceErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.noSpace
}

func newTee(c *Content, need int) *tee {
	return &tee{c: c, need: need, pace: c.cfg.PushBuffer / 2, hard: c.cfg.PushBuffer,
		stall: c.cfg.PushStall, start: time.Now(), progress: make(chan struct{})}
}

// peerStream is the push of an upload to one peer (a follower): its share
// of the upload, the queue of chunks not yet sent, read by the HTTP client
// as the push request's body.
type peerStream struct {
	t        *tee
	peer     Peer
	ctx      context.Context
	cancel   context.CancelFunc
	queue    []*chunk
	off      int           // bytes of queue[0] already sent
	buffered int64         // bytes queued and not sent
	waited   time.Duration // how long the leader waited while it lagged
	err      error         // set when dropped: the body read fails with it
	live     bool
	avail    chan struct{} // a token when data was queued or the body ended
}

func (t *tee) add(ctx context.Context, p Peer) *peerStream {
	sctx, cancel := context.WithCancel(ctx)
	ps := &peerStream{t: t, peer: p, ctx: sctx, cancel: cancel, live: true, avail: make(chan struct{}, 1)}
	t.mu.Lock()
	t.streams = append(t.streams, ps)
	t.alive++
	t.mu.Unlock()
	return ps
}

// signalLocked wakes the leader if it waits for progress.
func (t *tee) signalLocked() {
	if t.waiting {
		t.waiting = false
		close(t.progress)
		t.progress = make(chan struct{})
	}
}

// dropLocked takes ps out of the upload: its body read fails with err, its
// request is cancelled and its queued chunks are released.
func (t *tee) dropLocked(ps *peerStream, err error) {
	if !ps.live {
		return
	}
	ps.live = false
	ps.err = err
	if t.noSpace == nil && errors.Is(err, quota.ErrNoSpace) {
		t.noSpace = err
	}
	t.alive--
	for _, ck := range ps.queue {
		t.releaseLocked(ck)
	}
	ps.queue, ps.off, ps.buffered = nil, 0, 0
	ps.cancel()
	t.signalLocked()
}

// logDrop reports a follower leaving an upload that goes on without it.
// Failures once the body has ended are reported by Write instead.
func (t *tee) logDrop(ps *peerStream, err error) {
	if !t.closed && !t.aborted {
		t.c.log.Info().Str("peer", ps.peer.ID).Err(err).Msg("follower dropped from an upload; it will fetch the content later")
	}
}

func (t *tee) releaseLocked(ck *chunk) {
	ck.refs--
	if ck.refs == 0 {
		t.c.putChunk(ck)
	}
}

// Laggards
//
// A follower the majority does not need is not dropped the moment it is
// slower than the others: on a busy machine followers of equal speed
// drift apart by megabytes over a large upload, and dropping one would
// make it fetch the whole file again later. The leader waits for such a
// follower too, within a budget of lagGrace plus a lagShare of the
// upload's duration so far: a follower up to that much slower than the
// others paces the upload and receives it; a stuck or much slower one
// exhausts the budget, falls a whole buffer behind and is dropped.
const (
	lagGrace = time.Second
	lagShare = 10 // 1/10: 10% of the elapsed time
)

// write queues ck for every live follower; the tee owns ck afterwards. It
// waits while fewer than need followers have room within the pacing limit
// (at most PushStall without progress), or while a follower the majority
// does not need lags within its budget (see Laggards), and fails with
// ErrNoQuorum when fewer than need followers are left.
func (t *tee) write(ctx context.Context, ck *chunk) error {
	n := int64(len(ck.buf))
	var lagging []*peerStream
	t.mu.Lock()
	for {
		if t.alive < t.need {
			ns := t.noSpace
			t.mu.Unlock()
			t.c.putChunk(ck)
			err := fmt.Errorf("%w: %d of %d follower copies still possible", ErrNoQuorum, t.alive, t.need)
			if ns != nil {
				// Followers refused for lack of room: the client gets
				// 507, not a 503 that invites a retry.
				err = fmt.Errorf("%w: %w", err, ns)
			}
			return err
		}
		ready := 0
		lagging = lagging[:0]
		budget := time.Duration(math.MaxInt64)
		allowed := lagGrace + time.Since(t.start)/lagShare
		for _, ps := range t.streams {
			switch {
			case !ps.live:
			case ps.buffered+n <= t.pace:
				ready++
			default:
				lagging = append(lagging, ps)
				if ps.waited < allowed {
					budget = min(budget, allowed-ps.waited)
				}
			}
		}
		limit := t.stall // needed followers: wait for any progress
		if ready >= t.need {
			if budget == math.MaxInt64 {
				break // nobody lagging, or out of budget
			}
			limit = budget
		}
		t.waiting = true
		ch := t.progress
		t.mu.Unlock()
		began := time.Now()
		timer := time.NewTimer(limit)
		timedOut := false
		select {
		case <-ch:
		case <-ctx.Done():
			timer.Stop()
			t.c.putChunk(ck)
			return fmt.Errorf("replication: upload: %w", ctx.Err())
		case <-timer.C:
			timedOut = true
		}
		timer.Stop()
		waited := time.Since(began)
		t.mu.Lock()
		for _, ps := range lagging {
			ps.waited += waited
			if timedOut && ready < t.need && ps.live && ps.buffered+n > t.pace {
				err := fmt.Errorf("%w for %v", errStalled, t.stall)
				t.logDrop(ps, err)
				t.dropLocked(ps, err)
			}
		}
	}
	for _, ps := range t.streams {
		if !ps.live {
			continue
		}
		if ps.buffered+n > t.hard {
			t.logDrop(ps, errFellBehind)
			t.dropLocked(ps, errFellBehind)
			continue
		}
		ck.refs++
		ps.queue = append(ps.queue, ck)
		ps.buffered += n
		select {
		case ps.avail <- struct{}{}:
		default:
		}
	}
	if ck.refs == 0 {
		t.c.putChunk(ck)
	}
	t.mu.Unlock()
	return nil
}

// close ends the body: followers read EOF once they have sent the rest.
func (t *tee) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, ps := range t.streams {
		select {
		case ps.avail <- struct{}{}:
		default:
		}
	}
}

// abort drops every follower, so that none of them receives a complete
// body: their requests fail and they store nothing.
func (t *tee) abort(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.aborted = true
	for _, ps := range t.streams {
		t.dropLocked(ps, fmt.Errorf("upload aborted: %w", err))
	}
}

// dropReason returns why ps was dropped, or nil.
func (t *tee) dropReason(ps *peerStream) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return ps.err
}

// finish records the end of ps's push.
func (t *tee) finish(ps *peerStream, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		ps.cancel() // releases the context; the request is complete
		return
	}
	if ps.live || errors.Is(ps.err, errBodyClosed) {
		t.logDrop(ps, err)
	}
	t.dropLocked(ps, err)
}

// Read implements io.Reader for the push request's body.
func (ps *peerStream) Read(p []byte) (int, error) {
	n := 0
	err := ps.next(func(b []byte) (int, error) {
		n = copy(p, b)
		return n, nil
	})
	return n, err
}

// WriteTo implements io.WriterTo, which the HTTP client uses to send the
// body: whole chunks go out as single writes (one chunk of the chunked
// encoding each) without a copy through an intermediate buffer.
func (ps *peerStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		err := ps.next(func(b []byte) (int, error) {
			n, err := w.Write(b)
			total += int64(n)
			return n, err
		})
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// next waits for queued bytes and hands the next run of them (the rest of
// the first chunk) to send, which reports how many it consumed. It returns
// io.EOF at the end of the body and the drop reason once ps is dropped.
// send runs without the lock; the chunk is held meanwhile, so a drop
// cannot recycle it under the writer.
func (ps *peerStream) next(send func([]byte) (int, error)) error {
	t := ps.t
	t.mu.Lock()
	for len(ps.queue) == 0 && ps.err == nil && !t.closed {
		t.mu.Unlock()
		select {
		case <-ps.avail:
		case <-ps.ctx.Done():
			return ps.ctx.Err()
		}
		t.mu.Lock()
	}
	switch {
	case ps.err != nil:
		err := ps.err
		t.mu.Unlock()
		return err
	case len(ps.queue) == 0:
		t.mu.Unlock()
		return io.EOF
	}
	ck, off := ps.queue[0], ps.off
	ck.refs++
	t.mu.Unlock()

	n, err := send(ck.buf[off:])

	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(ck)
	if ps.live && n > 0 {
		ps.off += n
		ps.buffered -= int64(n)
		if ps.off == len(ck.buf) {
			ps.queue[0] = nil
			ps.queue = ps.queue[1:]
			ps.off = 0
			t.releaseLocked(ck)
		}
		t.signalLocked()
	}
	return err
}

// Close implements io.Closer: the HTTP client closes the body when it is
// done with it. Closing before the end means the client gave up on it.
func (ps *peerStream) Close() error {
	t := ps.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps.live && (!t.closed || len(ps.queue) > 0) {
		// pushTo reports why, once the request returns.
		t.dropLocked(ps, errBodyClosed)
	}
	return nil
}
