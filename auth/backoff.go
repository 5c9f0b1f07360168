package auth

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// BackoffConfig shapes the delay repeated failures earn. The zero value of
// each field takes the default named beside it.
type BackoffConfig struct {
	// Free is how many recent failures cost nothing (default 3): a
	// mistyped password is not punished.
	Free int
	// Base is the delay after the first failure beyond Free (default
	// 250ms); each further failure doubles it.
	Base time.Duration
	// Max caps the delay (default 4s).
	Max time.Duration
	// HalfLife is how fast failures are forgotten (default 1m): the
	// failure count halves every HalfLife without a new failure.
	HalfLife time.Duration
	// Capacity bounds the number of clients and users remembered (default
	// 10000); beyond it the least recently failed is forgotten.
	Capacity int
}

func (c BackoffConfig) withDefaults() BackoffConfig {
	if c.Free <= 0 {
		c.Free = 3
	}
	if c.Base <= 0 {
		c.Base = 250 * time.Millisecond
	}
	if c.Max <= 0 {
		c.Max = 4 * time.Second
	}
	if c.Max < c.Base {
		c.Max = c.Base
	}
	if c.HalfLife <= 0 {
		c.HalfLife = time.Minute
	}
	if c.Capacity <= 0 {
		c.Capacity = 10000
	}
	return c
}

// Backoff counts recent authentication failures per key (a client IP, a
// user name) and turns them into a delay. It only ever delays: nothing an
// attacker does can stop a correct password from succeeding once the delay
// has passed. Memory is bounded by Capacity. Safe for concurrent use.
type Backoff struct {
	cfg BackoffConfig
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   list.List // of *failures, most recently failed first
}

type failures struct {
	key   string
	score float64 // decayed failure count at last
	last  time.Time
}

// NewBackoff returns a Backoff; now is its clock (time.Now if nil).
func NewBackoff(cfg BackoffConfig, now func() time.Time) *Backoff {
	if now == nil {
		now = time.Now
	}
	return &Backoff{cfg: cfg.withDefaults(), now: now, byKey: map[string]*list.Element{}}
}

// decayed is f's failure count as of t.
func (b *Backoff) decayed(f *failures, t time.Time) float64 {
	age := t.Sub(f.last)
	if age <= 0 {
		return f.score
	}
	return f.score * math.Exp2(-float64(age)/float64(b.cfg.HalfLife))
}

// Delay is how long the next attempt for key waits before its password is
// checked.
func (b *Backoff) Delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byKey[key]
	if !ok {
		return 0
	}
	return b.delayFor(b.decayed(e.Value.(*failures), b.now()))
}

// Fail records a failure for key and returns its failure count.
func (b *Backoff) Fail(key string) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if e, ok := b.byKey[key]; ok {
		f := e.Value.(*failures)
		f.score, f.last = b.decayed(f, t)+1, t
		b.lru.MoveToFront(e)
		return f.score
	}
	for b.lru.Len() >= b.cfg.Capacity {
		oldest := b.lru.Back()
		delete(b.byKey, oldest.Value.(*failures).key)
		b.lru.Remove(oldest)
	}
	b.byKey[key] = b.lru.PushFront(&failures{key: key, score: 1, last: t})
	return 1
}

// Len is the number of keys remembered.
func (b *Backoff) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// delayFor maps a failure count to a delay: nothing while it is at most
// Free, then Base, doubling per further failure, capped at Max. The
// decayed count is rounded, so the few seconds a delayed client waits do
// not take a failure off, while a client that pauses for a while gets its
// free attempts back.
func (b *Backoff) delayFor(score float64) time.Duration {
	over := int(math.Round(score)) - b.cfg.Free - 1
	if over < 0 {
		return 0
	}
	if over >= 62 {
		return b.cfg.Max
	}
	d := b.cfg.Base << over
	if d <= 0 || d > b.cfg.Max {
		return b.cfg.Max
	}
	return d
}
