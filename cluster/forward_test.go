package cluster_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testcluster"
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
