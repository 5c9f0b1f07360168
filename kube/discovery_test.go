package kube

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestStatefulSetDNS(t *testing.T) {
	tests := []struct {
		name string
		d    StatefulSetDNS
		n    int
		want []string
	}{
		{"defaults", StatefulSetDNS{StatefulSet: "dfs", Service: "dfs-headless", Namespace: "storage", Port: 8080}, 3,
			[]string{
				"http://dfs-0.dfs-headless.storage.svc.cluster.local:8080",
				"http://dfs-1.dfs-headless.storage.svc.cluster.local:8080",
				"http://dfs-2.dfs-headless.storage.svc.cluster.local:8080",
			}},
		{"custom domain and scheme", StatefulSetDNS{StatefulSet: "fs", Service: "fs-h", Namespace: "x", Domain: "corp.internal", Scheme: "https", Port: 443}, 1,
			[]string{"https://fs-0.fs-h.x.svc.corp.internal:443"}},
		{"none", StatefulSetDNS{StatefulSet: "dfs", Service: "h", Namespace: "n", Port: 1}, 0, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.PeerURLs(tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("PeerURLs(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

// mapResolver resolves names from a map that a test may fill in later,
// like a pod's record appearing in the cluster DNS.
type mapResolver struct {
	mu      sync.Mutex
	hosts   map[string][]string
	lookups int
}

func (r *mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func (r *mapResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = addrs
}

func TestWaitResolvable(t *testing.T) {
	const host = "dfs-1.dfs-headless.storage.svc.cluster.local"
	tests := []struct {
		name      string
		host      string
		known     map[string][]string
		appear    bool // the record appears while waiting
		want      []string
		wantErr   bool
		noLookups bool
	}{
		{"resolves at once", host, map[string][]string{host: {"10.1.0.7"}}, false, []string{"10.1.0.7"}, false, false},
		{"an IP needs no lookup", "10.1.0.8", map[string][]string{}, false, []string{"10.1.0.8"}, false, true},
		{"waits until the record appears", host, map[string][]string{}, true, []string{"10.1.0.9"}, false, false},
		{"gives up when the context ends", host, map[string][]string{}, false, nil, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &mapResolver{hosts: tc.known}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tc.appear {
				time.AfterFunc(30*time.Millisecond, func() { r.set(tc.host, "10.1.0.9") })
			}
			got, err := WaitResolvable(ctx, r, tc.host, 5*time.Millisecond, zerolog.Nop())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want it to wrap the context's error", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("addrs = %v, want %v", got, tc.want)
			}
			if tc.noLookups && r.lookups > 0 {
				t.Errorf("%d lookups for an IP address", r.lookups)
			}
		})
	}
}
