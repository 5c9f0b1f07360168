package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedFetch is a read-index source whose calls the test releases one by
// one; call i answers index 100+i.
type gatedFetch struct {
	calls   atomic.Int32
	started chan int
	release chan error
}

func newGatedFetch() *gatedFetch {
	return &gatedFetch{started: make(chan int, 100), release: make(chan error)}
}

func (g *gatedFetch) fetch(ctx context.Context) (uint64, error) {
	i := int(g.calls.Add(1))
	g.started <- i
	select {
	case err := <-g.release:
		return uint64(100 + i), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func TestBatcherReadersArrivingDuringACallWaitForTheNext(t *testing.T) {
	g := newGatedFetch()
	b := newBatcher(context.Background(), 10*time.Second, g.fetch)

	first := make(chan uint64, 1)
	go func() {
		i, err := b.wait(context.Background())
		if err != nil {
			t.Error(err)
		}
		first <- i
	}()
	<-g.started // call 1 in flight

	const late = 20
	var wg sync.WaitGroup
	got := make([]uint64, late)
	for i := range late {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err := b.wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = idx
		}()
	}
	// Let the late readers queue up behind call 1.
	waitFor(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.next != nil
	})
	time.Sleep(20 * time.Millisecond)
	g.release <- nil // call 1 answers
	if i := <-first; i != 101 {
		t.Fatalf("first reader got %d, want 101", i)
	}
	<-g.started // call 2, for every late reader
	g.release <- nil
	wg.Wait()
	for i, idx := range got {
		if idx != 102 {
			t.Fatalf("late reader %d got %d: its index must come from a call started after it arrived (102)", i, idx)
		}
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d calls for %d readers, want 2", n, late+1)
	}
}

func TestBatcherErrorsAndCancellation(t *testing.T) {
	tests := []struct {
		name    string
		fail    error
		cancel  bool
		wantErr error
	}{
		{"the call fails", errors.New("no leader"), false, nil},
		{"the reader gives up", nil, true, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatedFetch()
			b := newBatcher(context.Background(), 10*time.Second, g.fetch)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := b.wait(ctx)
				errc <- err
			}()
			<-g.started
			if tc.cancel {
				cancel()
				if err := <-errc; !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				g.release <- nil // the call still ends, with nobody waiting
			} else {
				g.release <- tc.fail
				if err := <-errc; !errors.Is(err, tc.fail) {
					t.Fatalf("got %v, want %v", err, tc.fail)
				}
			}
			// The batcher is idle again and serves the next reader.
			go func() { <-g.started; g.release <- nil }()
			if i, err := b.wait(context.Background()); err != nil || i != 102 {
				t.Fatalf("next reader: %d, %v", i, err)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"bootstrap alone", Config{}, ""},
		{"join", Config{Join: []string{"http://a:8080"}, Secret: "s"}, ""},
		{"join needs a secret", Config{Join: []string{"http://a:8080"}}, "--cluster-secret"},
		{"join URL", Config{Join: []string{"a:8080"}, Secret: "s"}, "http://host:port"},
		{"expect", Config{BootstrapExpect: 3, Peers: []string{"http://a", "http://b", "http://c"}, Secret: "s"}, ""},
		{"expect, peers without self", Config{BootstrapExpect: 3, Peers: []string{"http://a", "http://b/"}, Secret: "s"}, ""},
		{"expect needs peers", Config{BootstrapExpect: 3, Secret: "s"}, "--peers"},
		{"too few peers", Config{BootstrapExpect: 3, Peers: []string{"http://a", "http://a/"}, Secret: "s"}, "1 distinct"},
		{"too many peers", Config{BootstrapExpect: 2, Peers: []string{"http://a", "http://b", "http://c"}, Secret: "s"}, "3 distinct"},
		{"peers without expect", Config{Peers: []string{"http://a"}, Secret: "s"}, "only used with"},
		{"join and expect", Config{BootstrapExpect: 1, Peers: []string{"http://a"}, Join: []string{"http://a"}, Secret: "s"}, "exclude"},
		{"negative expect", Config{BootstrapExpect: -1}, "positive"},
		{"consistency", Config{ReadConsistency: "strong"}, "read consistency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
