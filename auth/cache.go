package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers credentials that passed bcrypt recently, so a
// WebDAV client that sends Basic on every request costs one bcrypt per TTL,
// not one per request. Entries are keyed by user and a keyed hash of the
// password (HMAC-SHA256 under a random per-process key: a memory dump does
// not hold anything a fast offline guess could be checked against), and
// belong to one generation of the user and token files: a reload of either
// voids them all.
type verifiedCache struct {
	ttl time.Duration
	cap int
	now func() time.Time
	key []byte

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	user string
	sum  [sha256.Size]byte
}

// generation identifies the credentials in force: the loads of the
// htpasswd file and of the device-token file. A verification remembered
// under one generation says nothing about the next.
type generation struct {
	users, tokens uint64
}

type cacheEntry struct {
	gen     generation
	expires time.Time
}

func newVerifiedCache(ttl time.Duration, capacity int, now func() time.Time) *verifiedCache {
	key := make([]byte, 32)
	// crypto/rand.Read never fails on supported platforms (it panics
	// rather than return short).
	_, _ = rand.Read(key)
	return &verifiedCache{ttl: ttl, cap: capacity, now: now, key: key, entries: map[cacheKey]cacheEntry{}}
}

func (c *verifiedCache) keyOf(user, password string) cacheKey {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(password))
	k := cacheKey{user: user}
	m.Sum(k.sum[:0])
	return k
}

// ok reports whether user and password were verified under generation gen
// less than a TTL ago.
func (c *verifiedCache) ok(user, password string, gen generation) bool {
	if c.ttl <= 0 {
		return false
	}
	k := c.keyOf(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[k]
	if !found {
		return false
	}
	if e.gen != gen || !c.now().Before(e.expires) {
		delete(c.entries, k)
		return false
	}
	return true
}

// add remembers a successful verification under generation gen.
func (c *verifiedCache) add(user, password string, gen generation) {
	if c.ttl <= 0 {
		return
	}
	k := c.keyOf(user, password)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.cap {
		for key, e := range c.entries {
			if e.gen != gen || !now.Before(e.expires) {
				delete(c.entries, key)
			}
		}
		// Still full of live entries: start over rather than grow; the
		// cost is one bcrypt per active client.
		if len(c.entries) >= c.cap {
			clear(c.entries)
		}
	}
	c.entries[k] = cacheEntry{gen: gen, expires: now.Add(c.ttl)}
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
