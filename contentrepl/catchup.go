package contentrepl

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/metastore"
)

// Catch-up
//
// The queue holds the referenced hashes this node lacks, each once, at
// most MaxPending of them: a node that is new or was down for long may
// lack millions of files, and the namespace scan that finds them waits for
// room rather than holding them all in memory. Workers take hashes in
// order of discovery; a hash that failed waits for an exponential back-off
// before its next attempt, and is dropped once nothing references it any
// more (deleted while we tried).
//
// CaughtUp is true while no scan is pending or running, one has finished
// since start (or the last Rescan), and nothing in the queue is waiting to
// be fetched. It is deliberately not a latch: a node that joins by
// replaying the leader's log (no snapshot) finishes its first scan on an
// empty namespace, and learns what it lacks only from the entries it then
// applies; it must not count as caught up until it has fetched that too.
// In steady state with WriteAckMajority the queue stays empty (followers
// hold the content before its entry commits), so readiness does not flap
// with writes; with WriteAckLeader, or after a follower was dropped from a
// push, it is false while that node really lacks committed content.
// Hashes that no peer has at all (every peer answered 404) do not hold it
// back: nothing this node could wait for would bring them, and that loss
// is the writer's (see WriteAckLeader), not this node's lag.

// item is one hash in the catch-up queue.
type item struct {
	hash        string
	size        int64
	attempts    int
	due         time.Time
	unavailable bool // the last attempt found no peer with it
	index       int  // in the retry heap; -1 when not there
}

type pendingQueue struct {
	mu      sync.Mutex
	items   map[string]*item
	fresh   []*item   // due now, in discovery order
	retry   retryHeap // failed, by due time
	bytes   int64
	blocked int           // items that hold CaughtUp back (not unavailable)
	changed chan struct{} // closed and replaced on every change

	rescan       chan struct{} // a token asks the scan loop for a scan
	scanPending  bool          // a scan was asked for and has not started
	scanning     bool
	scanComplete bool // a scan finished since the last Rescan
}

func (q *pendingQueue) init() {
	q.items = make(map[string]*item)
	q.changed = make(chan struct{})
	q.rescan = make(chan struct{}, 1)
}

func (q *pendingQueue) signalLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *pendingQueue) requestScanLocked() {
	q.scanPending = true
	select {
	case q.rescan <- struct{}{}:
	default:
	}
	q.signalLocked()
}

func (q *pendingQueue) caughtUpLocked() bool {
	return q.scanComplete && !q.scanning && !q.scanPending && q.blocked == 0
}

// addLocked queues a hash unless it is queued already or the queue is
// full. It reports whether the hash is (now) queued.
func (q *pendingQueue) addLocked(hash string, size int64, limit int) bool {
	if q.items[hash] != nil {
		return true
	}
	if len(q.items) >= limit {
		return false
	}
	it := &item{hash: hash, size: size, index: -1}
	q.items[hash] = it
	q.fresh = append(q.fresh, it)
	q.bytes += size
	q.blocked++
	q.signalLocked()
	return true
}

// removeLocked takes a finished (fetched, present or unneeded) hash out.
func (q *pendingQueue) removeLocked(it *item) {
	if q.items[it.hash] != it {
		return
	}
	delete(q.items, it.hash)
	q.bytes -= it.size
	if !it.unavailable {
		q.blocked--
	}
	q.signalLocked()
}

// Notify tells the replicator that a committed entry references hash: if
// it is not here, it is queued for fetching. It never blocks (the state
// machine calls it on its apply path); when the queue is full, a scan
// later finds the hash instead.
func (c *Content) Notify(hash string, size int64) {
	if !content.ValidHash(hash) || c.store.Has(hash) {
		return
	}
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.addLocked(hash, size, c.cfg.MaxPending) {
		if !q.scanPending {
			c.log.Warn().Int("max_pending", c.cfg.MaxPending).Msg("catch-up queue full; a rescan will find the rest")
		}
		q.requestScanLocked()
	}
}

// Rescan asks for a scan of the whole namespace for content this node
// lacks (Run does one at start; the state machine's restore hook asks for
// one after a snapshot restore). CaughtUp is false until it has finished
// and everything it found is fetched. It does not block.
func (c *Content) Rescan() {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.scanComplete = false
	q.requestScanLocked()
}

// Backlog returns how many files, and how many bytes, this node knows it
// lacks and has queued. During a scan it counts what the scan found so far
// (at most MaxPending files).
func (c *Content) Backlog() (files int, bytes int64) {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return len(c.q.items), c.q.bytes
}

// Fetching reports whether this node is still working to get hash: it is
// queued and not known to be on no peer, or a scan that may queue it is
// pending or running. Replica verification tells content on its way
// from content lost with it.
func (c *Content) Fetching(hash string) bool {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if it := q.items[hash]; it != nil {
		return !it.unavailable
	}
	return q.scanPending || q.scanning
}

// CaughtUp reports whether this node has all the content its namespace
// references, as far as it knows: a scan finished since start (or the
// last Rescan) and no fetch is outstanding (see "Catch-up"). /readyz uses
// it.
func (c *Content) CaughtUp() bool {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return c.q.caughtUpLocked()
}

// Run scans the namespace for missing content and fetches it with
// FetchWorkers workers until ctx ends. Call it once per Content; when it
// returns, fetches still in flight (for readers too) are cancelled.
func (c *Content) Run(ctx context.Context) {
	defer c.stop()
	c.q.mu.Lock()
	if !c.q.scanComplete {
		c.q.requestScanLocked()
	}
	c.q.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1 + c.cfg.FetchWorkers)
	go func() { defer wg.Done(); c.scanLoop(ctx) }()
	for range c.cfg.FetchWorkers {
		go func() { defer wg.Done(); c.worker(ctx) }()
	}
	wg.Wait()
}

func (c *Content) scanLoop(ctx context.Context) {
	q := &c.q
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.rescan:
		}
		q.mu.Lock()
		q.scanPending = false
		q.scanning = true
		q.mu.Unlock()

		start := time.Now()
		files, missing, err := c.scan(ctx)

		q.mu.Lock()
		q.scanning = false
		if err == nil {
			q.scanComplete = true
		}
		q.signalLocked()
		q.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Error().Err(err).Msg("content scan failed; retrying in 5s")
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			q.mu.Lock()
			q.requestScanLocked()
			q.mu.Unlock()
			continue
		}
		files2, bytes := c.Backlog()
		c.log.Info().Int64("files", files).Int64("missing", missing).Int("backlog_files", files2).
			Int64("backlog_bytes", bytes).Dur("took", time.Since(start)).Msg("content scan done")
	}
}

// scan walks the namespace depth first and queues every referenced hash
// the store lacks. It returns how many files it saw and how many of them
// lacked content.
func (c *Content) scan(ctx context.Context) (files, missing int64, err error) {
	if c.cfg.Meta == nil {
		return 0, 0, nil
	}
	stack := []metastore.ID{metastore.RootID}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents, err := c.cfg.Meta.List(ctx, dir)
		if err != nil {
			return files, missing, fmt.Errorf("replication: scan: list inode %d: %w", dir, err)
		}
		for _, e := range ents {
			if e.Inode.IsDir() {
				stack = append(stack, e.Inode.ID)
				continue
			}
			files++
			h := e.Inode.Hash
			if !content.ValidHash(h) || c.store.Has(h) {
				continue
			}
			missing++
			if err := c.enqueueWait(ctx, h, e.Inode.Size); err != nil {
				return files, missing, err
			}
		}
	}
	return files, missing, nil
}

// enqueueWait queues a hash, waiting while the queue is full.
func (c *Content) enqueueWait(ctx context.Context, hash string, size int64) error {
	q := &c.q
	for {
		q.mu.Lock()
		ok := q.addLocked(hash, size, c.cfg.MaxPending)
		ch := q.changed
		q.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replication: scan: %w", ctx.Err())
		}
	}
}

// next returns the next hash to fetch, waiting until one is due.
func (c *Content) next(ctx context.Context) (*item, bool) {
	q := &c.q
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		for len(q.fresh) > 0 {
			it := q.fresh[0]
			q.fresh[0] = nil
			q.fresh = q.fresh[1:]
			if q.items[it.hash] == it {
				q.mu.Unlock()
				return it, true
			}
		}
		var wait <-chan time.Time
		if q.retry.Len() > 0 {
			top := q.retry[0]
			d := time.Until(top.due)
			if d <= 0 {
				heap.Pop(&q.retry)
				q.mu.Unlock()
				return top, true
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			wait = timer.C
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-ch:
		case <-wait:
		}
	}
}

func (c *Content) worker(ctx context.Context) {
	for {
		it, ok := c.next(ctx)
		if !ok {
			return
		}
		c.process(ctx, it)
	}
}

// process fetches one queued hash, or schedules its retry.
func (c *Content) process(ctx context.Context, it *item) {
	q := &c.q
	done := func() {
		q.mu.Lock()
		q.removeLocked(it)
		q.mu.Unlock()
	}
	if c.store.Has(it.hash) {
		done()
		return
	}
	if it.attempts > 0 && c.cfg.Meta != nil {
		n, err := c.cfg.Meta.RefCount(ctx, it.hash)
		if err == nil && n == 0 {
			c.log.Debug().Str("hash", it.hash).Msg("content no longer referenced; not fetching it")
			done()
			return
		}
	}
	err := c.fetch(ctx, it.hash, it.size, false)
	if err == nil {
		done()
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if ctx.Err() != nil {
		// Shutting down: put it back so Backlog stays truthful.
		q.fresh = append(q.fresh, it)
		return
	}
	it.attempts++
	nowhere := errors.Is(err, errNowhere)
	switch {
	case nowhere && !it.unavailable:
		q.blocked--
	case !nowhere && it.unavailable:
		q.blocked++
	}
	it.unavailable = nowhere
	backoff := min(time.Second<<min(it.attempts-1, 16), c.cfg.RetryMax)
	it.due = time.Now().Add(backoff)
	heap.Push(&q.retry, it)
	q.signalLocked()
	ev := c.log.Warn()
	if nowhere {
		ev = c.log.Error()
	}
	ev.Err(err).Str("hash", it.hash).Int64("size", it.size).Int("attempts", it.attempts).
		Dur("retry_in", backoff).Msg("cannot fetch content; will retry")
}

// retryHeap orders failed items by due time.
type retryHeap []*item

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *retryHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *retryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}
