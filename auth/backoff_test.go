package auth

import (
	"fmt"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestBackoffDelays(t *testing.T) {
	c := newClock()
	b := NewBackoff(BackoffConfig{Free: 3, Base: 250 * time.Millisecond, Max: 4 * time.Second, HalfLife: time.Minute}, c.now)
	// Delay before attempt n+1, after n failures in a row.
	want := []time.Duration{0, 0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for n, w := range want {
		if got := b.Delay("k"); got != w {
			t.Fatalf("after %d failures: delay %s, want %s", n, got, w)
		}
		b.Fail("k")
	}
	if b.Delay("other") != 0 {
		t.Fatal("another key is delayed")
	}
}

func TestBackoffDecays(t *testing.T) {
	c := newClock()
	b := NewBackoff(BackoffConfig{Free: 3, Base: 250 * time.Millisecond, Max: 4 * time.Second, HalfLife: time.Minute}, c.now)
	for range 8 {
		b.Fail("k")
	}
	tests := []struct {
		after time.Duration
		want  time.Duration
	}{
		{0, 4 * time.Second},                  // 8 failures
		{30 * time.Second, time.Second},       // 5.7
		{time.Minute, 250 * time.Millisecond}, // 4
		{75 * time.Second, 0},                 // 3.4: free again
		{3 * time.Minute, 0},                  // 1
	}
	start := c.t
	for _, tt := range tests {
		c.t = start.Add(tt.after) // Delay changes nothing: the clock may go back and forth
		if got := b.Delay("k"); got != tt.want {
			t.Errorf("%s after 8 failures: delay %s, want %s", tt.after, got, tt.want)
		}
	}
	// A failure after decay counts on top of what is left.
	c.t = start.Add(time.Minute) // 4 left
	b.Fail("k")                  // 5
	if got := b.Delay("k"); got != 500*time.Millisecond {
		t.Errorf("a failure after decay: delay %s, want 500ms", got)
	}
}

func TestBackoffBoundedMemory(t *testing.T) {
	c := newClock()
	b := NewBackoff(BackoffConfig{Free: 1, Base: time.Second, Max: time.Second, HalfLife: time.Hour, Capacity: 100}, c.now)
	for range 3 {
		b.Fail("victim")
	}
	for i := range 1000 {
		c.advance(time.Millisecond)
		b.Fail(fmt.Sprintf("spray-%d", i))
		if i == 50 && b.Delay("victim") != time.Second {
			t.Fatal("victim forgotten before the table was full")
		}
	}
	if b.Len() != 100 {
		t.Fatalf("%d keys remembered, want the capacity 100", b.Len())
	}
	if b.Delay("victim") != 0 {
		t.Fatal("the least recently failed key was not evicted")
	}
}
