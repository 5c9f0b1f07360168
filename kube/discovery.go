package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// Resolver resolves host names; *net.Resolver (net.DefaultResolver) is one,
// tests use a map.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// StatefulSetDNS names the pods of a StatefulSet behind its headless
// Service: pod i is <StatefulSet>-<i>.<Service>.<Namespace>.svc.<Domain>.
// With publishNotReadyAddresses on the Service, a pod's name resolves as
// soon as it has an IP, before it is ready, which forming a cluster needs.
type StatefulSetDNS struct {
	StatefulSet string
	Service     string // the headless Service
	Namespace   string
	Domain      string // the cluster domain; default cluster.local
	Scheme      string // default http
	Port        int    // the HTTP port (--http-addr)
}

// Host returns pod i's DNS name.
func (d StatefulSetDNS) Host(i int) string {
	domain := d.Domain
	if domain == "" {
		domain = "cluster.local"
	}
	return fmt.Sprintf("%s-%d.%s.%s.svc.%s", d.StatefulSet, i, d.Service, d.Namespace, domain)
}

// URL returns pod i's HTTP base URL, its --advertise-url.
func (d StatefulSetDNS) URL(i int) string {
	scheme := d.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(d.Host(i), strconv.Itoa(d.Port))
}

// PeerURLs returns the URLs of pods 0..n-1: the --peers of a cluster of n
// nodes formed with --bootstrap-expect n.
func (d StatefulSetDNS) PeerURLs(n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = d.URL(i)
	}
	return urls
}

// WaitResolvable waits until host resolves and returns its addresses,
// retrying every interval (default 1s) until ctx ends. An IP address
// returns at once. A pod's own DNS record appears a moment after the pod
// gets its IP; waiting turns that race into a short delay instead of a
// failed start.
func WaitResolvable(ctx context.Context, r Resolver, host string, interval time.Duration, log zerolog.Logger) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{host}, nil
	}
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		addrs, err := r.LookupHost(ctx, host)
		if err == nil && len(addrs) > 0 {
			if attempt > 0 {
				log.Info().Str("host", host).Strs("addrs", addrs).Dur("waited", time.Since(start)).Msg("name resolves")
			}
			return addrs, nil
		}
		if err == nil {
			err = errors.New("no addresses")
		}
		if attempt%10 == 0 {
			log.Info().Err(err).Str("host", host).Msg("waiting for the name to resolve")
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("kube: %s does not resolve: %w (last error: %w)", host, ctx.Err(), err)
		case <-t.C:
		}
	}
}
