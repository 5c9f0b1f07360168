package contentrepl

import (
	"context"
	"sync"
	"time"
)

// rateLimiter is a token bucket shared by the background fetches, so that
// catch-up of a new node does not saturate the disk and network that
// client requests need. It lets a caller run into debt and then makes it
// wait the debt off, which keeps the long-term rate exact with any chunk
// size.
type rateLimiter struct {
	rate  float64 // bytes per second; 0: unlimited
	burst float64
	mu    sync.Mutex
	avail float64
	last  time.Time
}

func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return &rateLimiter{}
	}
	r := float64(bytesPerSec)
	// A burst of a tenth of a second (at least one chunk) keeps the
	// traffic smooth.
	burst := max(r/10, chunkSize)
	return &rateLimiter{rate: r, burst: burst, avail: burst, last: time.Now()}
}

// wait takes n bytes from the bucket, sleeping off any debt.
func (l *rateLimiter) wait(ctx context.Context, n int) error {
	if l.rate == 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.avail = min(l.burst, l.avail+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.avail -= float64(n)
	debt := -l.avail
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(debt / l.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
