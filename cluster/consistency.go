package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dfs-project/dfs/replication"
)

// Consistent wraps the WebDAV handler: with ReadLeader, a GET, HEAD or
// PROPFIND is served only once this node has applied every write the
// leader had committed when the read arrived (see CatchUp); if that takes
// longer than ReadTimeout the read gets 503 with Retry-After. With
// ReadLocal, and for every other method, it is the handler itself.
func (c *Cluster) Consistent(next http.Handler) http.Handler {
	if c.cfg.ReadConsistency == ReadLocal {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, "PROPFIND":
		default:
			next.ServeHTTP(w, r)
			return
		}
		if err := c.CatchUp(r.Context()); err != nil {
			if r.Context().Err() != nil {
				return // the client went away
			}
			c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("read not served: cannot catch up with the leader")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "dfs: this node cannot confirm it has the latest committed state (no leader, or catching up); retry", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CatchUp returns once this node has applied every entry the leader had
// committed when CatchUp was called, or an error after ReadTimeout. It
// costs one read index (a leader barrier, plus one round trip to the leader
// on a follower) shared by every CatchUp that arrives while the previous
// read index is in flight.
func (c *Cluster) CatchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
	defer cancel()
	idx, err := c.reads.wait(ctx)
	if err != nil {
		return err
	}
	if err := c.raft.WaitApplied(ctx, idx); err != nil {
		return fmt.Errorf("cluster: catch up to read index %d: %w", idx, err)
	}
	return nil
}

// ReadIndex returns a read index taken after the call: every write the
// leader had committed when ReadIndex was called is at or below it (compare
// it with the metastore's applied index). Unlike CatchUp it does not wait for
// this node to apply it, so a caller can tell how far behind it is. Bounded
// by ReadTimeout; concurrent callers share one call, as in CatchUp.
func (c *Cluster) ReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
	defer cancel()
	return c.reads.wait(ctx)
}

// fetchReadIndex obtains the leader's read index: locally on the leader,
// with GET /cluster/readindex on a follower. It retries while leadership
// moves, until ctx ends.
func (c *Cluster) fetchReadIndex(ctx context.Context) (uint64, error) {
	var last error
	for {
		if c.raft.IsLeader() {
			idx, err := c.raft.ReadIndex(ctx)
			if err == nil {
				return idx, nil
			}
			if !errors.Is(err, replication.ErrNotLeader) && !errors.Is(err, replication.ErrOutcomeUnknown) {
				// Not a leadership change but this node's own store
				// failing (a stalled or lost Redis): waiting would only
				// hold the reader; it gets 503 within the store's timeout.
				return 0, fmt.Errorf("cluster: read index: %w", err)
			}
			last = err
		} else {
			id, u, err := c.LeaderURL(ctx)
			switch {
			case err != nil:
				last = err
			case id == c.cfg.ID:
				last = errors.New("leadership is changing")
			default:
				idx, err := c.client.ReadIndex(ctx, u)
				if err == nil {
					return idx, nil
				}
				last = err
				if code := statusCode(err); code != 0 && code != http.StatusMisdirectedRequest && code != http.StatusServiceUnavailable {
					return 0, fmt.Errorf("cluster: read index from %s: %w", id, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster: read index: %w (last error: %w)", ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// batcher shares one read-index call among concurrent readers. A reader
// that arrives while a call is in flight waits for the next call, which
// starts when the current one ends: its index is always taken after the
// reader arrived, which is what makes the read linearizable, and there is
// at most one call in flight per node.
type batcher struct {
	ctx     context.Context // ends when the node closes
	timeout time.Duration   // bounds each call
	fetch   func(context.Context) (uint64, error)

	mu      sync.Mutex
	next    *batch // readers waiting for the next call; nil if none
	running bool   // a goroutine is calling fetch
}

type batch struct {
	done  chan struct{}
	index uint64
	err   error
}

func newBatcher(ctx context.Context, timeout time.Duration, fetch func(context.Context) (uint64, error)) *batcher {
	return &batcher{ctx: ctx, timeout: timeout, fetch: fetch}
}

// wait returns a read index taken after wait was called.
func (b *batcher) wait(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &batch{done: make(chan struct{})}
	}
	bt := b.next
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.index, bt.err
	case <-ctx.Done():
		return 0, fmt.Errorf("cluster: wait for read index: %w", ctx.Err())
	}
}

// run makes calls while readers wait for one, then exits.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		bt := b.next
		b.next = nil
		if bt == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
		bt.index, bt.err = b.fetch(ctx)
		cancel()
		close(bt.done)
	}
}
