package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

// TestForwardAbandonedWhenLeaderChanges: a write a follower forwarded to the
// leader, still unanswered when another node becomes leader, gets 503 from
// the follower at once instead of waiting for the old leader (which, cut
// off by a partition or frozen, might never answer: found by the fault
// suite, where writes through healthy nodes stalled until the partition
// healed). The upload here never finishes, so only the leader change can
// end it.
func TestForwardAbandonedWhenLeaderChanges(t *testing.T) {
	nodes, leader := startJoined(t)
	follower := testcluster.Followers(nodes, leader)[0]

	body, feed := io.Pipe()
	defer feed.Close()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPut, follower.URL()+"/never-finished.bin", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 20
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers <- answer{status: resp.StatusCode, body: string(b)}
	}()
	// Part of the body reaches the leader: the request is in flight there.
	if _, err := feed.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case a := <-answers:
		t.Fatalf("answered before the leader changed: %+v", a)
	default:
	}

	if err := leader.Node().TransferLeadership(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answers:
		if a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "leader changed") {
			t.Fatalf("after the leader changed: %d %q %v, want 503 saying the leader changed", a.status, a.body, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarded write still waits for the old leader 10 s after the leader changed")
	}
}

// TestForwardFailureKeepsConnectionUsable: a follower that cannot reach the
// leader answers a write with 503 without reading its body, and the
// client's keep-alive connection must stay usable for the next request;
// a client waiting for 100 Continue gets the 503 without sending its body.
// net/http's server panics on the next request of such a connection when
// the handler enabled full duplex and left the body unread (golang/go
// #68560), so the client's next request met a reset connection (found by
// TestNoLeaderAnswers503: a PROPFIND after a refused PUT).
func TestForwardFailureKeepsConnectionUsable(t *testing.T) {
	// n1 advertises the URL of a front that the test closes later: n1
	// keeps leading, but the follower can no longer reach it.
	httpAddr := testcluster.FreeAddr(t)
	front := httptest.NewServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: httpAddr}))
	defer front.Close()
	n1 := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true, HTTPAddr: httpAddr, Advertise: front.URL})
	testcluster.WaitConverged(t, []*testcluster.Node{n1}, "n1")
	n2 := testcluster.Start(t, server.Config{ID: "n2", Join: []string{n1.URL()}})
	testcluster.WaitConverged(t, []*testcluster.Node{n1, n2}, "n1", "n2")
	front.Close()

	tr := &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var conns atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if !ci.Reused {
			conns.Add(1)
		}
	}}
	send := func(method, path string, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctxT(t), trace), method, n2.URL()+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s on a kept-alive connection: %v", method, path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for i := range 50 {
		if got := send(http.MethodPut, fmt.Sprintf("/f%d.txt", i), strings.NewReader("x")); got != http.StatusServiceUnavailable {
			t.Fatalf("PUT through a follower that cannot reach the leader: %d, want 503", got)
		}
		if got := send(http.MethodGet, "/healthz", nil); got != http.StatusOK {
			t.Fatalf("GET /healthz after the refused PUT: %d", got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the client needed %d connections for 100 requests, want 1: the follower closed kept-alive connections", n)
	}

	// A client that waits for 100 Continue before sending its body gets
	// the 503 at once: the follower must not wait for a body that the
	// client only sends after the go-ahead (here 30 s, past the client's
	// own 10 s limit).
	etr := &http.Transport{ExpectContinueTimeout: 30 * time.Second}
	defer etr.CloseIdleConnections()
	eclient := &http.Client{Transport: etr, Timeout: 10 * time.Second}
	for i := range 3 {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPut, fmt.Sprintf("%s/e%d.txt", n2.URL(), i), strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Expect", "100-continue")
		resp, err := eclient.Do(req)
		if err != nil {
			t.Fatalf("PUT with Expect: 100-continue through a follower that cannot reach the leader: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("PUT with Expect: 100-continue: %d, want 503", resp.StatusCode)
		}
	}
}
