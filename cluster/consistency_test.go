package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

// fakeLeaderReadIndex is a leader n2 whose GET /cluster/readindex answers
// with status and body; it counts the calls and checks the secret.
type fakeLeaderReadIndex struct {
	calls     atomic.Int32
	badSecret atomic.Int32
}

func (l *fakeLeaderReadIndex) serve(t *testing.T, status int, body string) string {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/cluster/readindex" {
			t.Errorf("the leader got %s %s, want GET /cluster/readindex", r.Method, r.URL.Path)
		}
		l.calls.Add(1)
		if r.Header.Get(clusterauth.Header) != unitSecret {
			l.badSecret.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})).URL
}

// TestConsistentReads runs the Consistent wrapper of node n1: which
// requests wait for a read index, where the read index comes from, and
// what a read gets when none can be had.
func TestConsistentReads(t *testing.T) {
	tests := []struct {
		name        string
		consistency cluster.Consistency
		leader      string // "self", "n2" (the fake leader) or ""
		// n2 answers GET /cluster/readindex with status and body.
		n2Status int
		n2Body   string
		// leaderReadIndex, if set, is the local read index on the leader.
		leaderReadIndex func(context.Context) (uint64, error)
		applied         uint64
		method          string

		want           int
		wantReadIndex  int      // calls of the local Raft's ReadIndex
		wantN2Calls    string   // n2's read index calls: "0", "1" or "2+"
		wantWaited     []uint64 // WaitApplied's indexes
		wantRetryAfter bool
		slow           bool // answered only after ReadTimeout
	}{
		{name: "local consistency serves reads at once, leader or not", consistency: cluster.ReadLocal,
			leader: "", method: http.MethodGet, want: http.StatusOK, wantN2Calls: "0"},
		{name: "writes pass through without a read index", leader: "", method: http.MethodPut,
			want: http.StatusOK, wantN2Calls: "0"},
		{name: "OPTIONS passes through without a read index", leader: "", method: http.MethodOptions,
			want: http.StatusOK, wantN2Calls: "0"},
		{name: "on the leader a read waits for the local read index", leader: "self", applied: 12,
			leaderReadIndex: func(context.Context) (uint64, error) { return 12, nil },
			method:          http.MethodGet, want: http.StatusOK, wantReadIndex: 1, wantN2Calls: "0", wantWaited: []uint64{12}},
		{name: "on a follower HEAD asks the leader for the read index", leader: "n2", applied: 9,
			n2Status: http.StatusOK, n2Body: `{"index": 9}`,
			method: http.MethodHead, want: http.StatusOK, wantN2Calls: "1", wantWaited: []uint64{9}},
		{name: "on a follower PROPFIND asks the leader for the read index", leader: "n2", applied: 30,
			n2Status: http.StatusOK, n2Body: `{"index": 21}`,
			method: "PROPFIND", want: http.StatusOK, wantN2Calls: "1", wantWaited: []uint64{21}},
		{name: "no leader: 503 after ReadTimeout", leader: "", method: http.MethodGet,
			want: http.StatusServiceUnavailable, wantN2Calls: "0", wantRetryAfter: true, slow: true},
		{name: "the leader's read index keeps failing: 503 after ReadTimeout", leader: "self",
			leaderReadIndex: func(context.Context) (uint64, error) {
				return 0, fmt.Errorf("barrier: %w", replication.ErrOutcomeUnknown)
			},
			method: http.MethodGet, want: http.StatusServiceUnavailable, wantReadIndex: -1, wantN2Calls: "0",
			wantRetryAfter: true, slow: true},
		{name: "a leader that stepped down (421) is asked again until ReadTimeout", leader: "n2",
			n2Status: http.StatusMisdirectedRequest, n2Body: `{"error": "not the leader"}`,
			method: http.MethodGet, want: http.StatusServiceUnavailable, wantN2Calls: "2+", wantRetryAfter: true, slow: true},
		{name: "a leader refusing the secret (403) fails the read at once", leader: "n2",
			n2Status: http.StatusForbidden, n2Body: `{"error": "wrong secret"}`,
			method: http.MethodGet, want: http.StatusServiceUnavailable, wantN2Calls: "1", wantRetryAfter: true},
		{name: "the read index not applied within ReadTimeout: 503", leader: "self", applied: 4,
			leaderReadIndex: func(context.Context) (uint64, error) { return 5, nil },
			method:          http.MethodGet, want: http.StatusServiceUnavailable, wantReadIndex: 1, wantN2Calls: "0",
			wantWaited: []uint64{5}, wantRetryAfter: true, slow: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRaft()
			f.apply(tc.applied)
			f.setReadIndex(tc.leaderReadIndex)
			var n2 fakeLeaderReadIndex
			if tc.n2Status != 0 {
				f.members.put(metastore.Member{ID: "n2", URL: n2.serve(t, tc.n2Status, tc.n2Body), RaftAddr: "n2.raft:7000"})
			}
			switch tc.leader {
			case "self":
				f.setLeader(selfID)
			default:
				f.setLeader(tc.leader)
			}
			c := newUnitCluster(t, f, func(cfg *cluster.Config) { cfg.ReadConsistency = tc.consistency })
			var served atomic.Int32
			node := serve(t, c.Consistent(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				w.WriteHeader(http.StatusOK)
			})))

			start := time.Now()
			got := do(t, tc.method, node.URL+"/f.txt", "", nil)
			took := time.Since(start)

			if got.status != tc.want {
				t.Fatalf("status %d %q, want %d", got.status, got.body, tc.want)
			}
			wantServed := int32(0)
			if tc.want == http.StatusOK {
				wantServed = 1
			}
			if got := served.Load(); got != wantServed {
				t.Errorf("the handler ran %d times, want %d", got, wantServed)
			}
			calls, waited, _, _, _ := f.asked()
			switch {
			case tc.wantReadIndex >= 0 && calls != tc.wantReadIndex:
				t.Errorf("the local read index was asked %d times, want %d", calls, tc.wantReadIndex)
			case tc.wantReadIndex < 0 && calls < 2:
				t.Errorf("the local read index was asked %d times, want retries", calls)
			}
			switch n := n2.calls.Load(); {
			case tc.wantN2Calls == "2+" && n < 2, tc.wantN2Calls != "2+" && fmt.Sprint(n) != tc.wantN2Calls:
				t.Errorf("the leader was asked for its read index %d times, want %s", n, tc.wantN2Calls)
			}
			if n2.badSecret.Load() != 0 {
				t.Error("a read index call to the leader lacked the cluster secret")
			}
			if !slices.Equal(waited, tc.wantWaited) {
				t.Errorf("waited for indexes %v, want %v", waited, tc.wantWaited)
			}
			if ra := got.header.Get("Retry-After"); tc.wantRetryAfter != (ra == "1") {
				t.Errorf("Retry-After %q, want it: %v", ra, tc.wantRetryAfter)
			}
			if tc.want == http.StatusServiceUnavailable && !strings.Contains(got.body, "cannot confirm it has the latest committed state") {
				t.Errorf("503 body %q does not say why", got.body)
			}
			switch {
			case tc.slow && took < unitReadTimeout:
				t.Errorf("answered after %s, before ReadTimeout (%s)", took, unitReadTimeout)
			case !tc.slow && took >= unitReadTimeout:
				t.Errorf("took %s, want an answer before ReadTimeout (%s)", took, unitReadTimeout)
			}
		})
	}
}

// TestCatchUpWaitsForTheReadIndex: CatchUp returns only once this node has
// applied the read index taken after it was called, while ReadIndex
// returns that index without waiting.
func TestCatchUpWaitsForTheReadIndex(t *testing.T) {
	f := newFakeRaft()
	f.setLeader(selfID)
	f.apply(5)
	f.setReadIndex(func(context.Context) (uint64, error) { return 7, nil })
	c := newUnitCluster(t, f, func(cfg *cluster.Config) { cfg.ReadTimeout = 10 * time.Second })

	if idx, err := c.ReadIndex(context.Background()); err != nil || idx != 7 {
		t.Fatalf("ReadIndex = %d, %v; want 7 at once", idx, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.CatchUp(context.Background()) }()
	for _, applied := range []uint64{5, 6} {
		f.apply(applied)
		select {
		case err := <-done:
			t.Fatalf("CatchUp returned (%v) with %d applied, before the read index 7", err, applied)
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.apply(7)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("CatchUp: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CatchUp did not return once 7 was applied")
	}
	if _, waited, _, _, _ := f.asked(); !slices.Equal(waited, []uint64{7}) {
		t.Errorf("waited for %v, want [7]", waited)
	}

	// A caller that gives up gets its context's error.
	f.setReadIndex(func(context.Context) (uint64, error) { return 8, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.CatchUp(ctx); err == nil || ctx.Err() == nil {
		t.Fatalf("CatchUp with 8 never applied = %v, want the context's deadline", err)
	}
}

// TestReadIndexSharesOneRoundTrip: reads that arrive while a read index
// call is in flight share the next one, on the leader (one barrier) as on
// a follower (one GET /cluster/readindex), and each gets an index taken
// after it arrived.
func TestReadIndexSharesOneRoundTrip(t *testing.T) {
	for _, role := range []string{"leader", "follower"} {
		t.Run(role, func(t *testing.T) {
			// Every round trip blocks until the test releases it; round i
			// answers 100+i.
			var rounds atomic.Int32
			started := make(chan int, 10)
			release := make(chan struct{})
			roundTrip := func(ctx context.Context) (uint64, error) {
				i := int(rounds.Add(1))
				started <- i
				select {
				case <-release:
					return uint64(100 + i), nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			f := newFakeRaft()
			if role == "leader" {
				f.setLeader(selfID)
				f.setReadIndex(roundTrip)
			} else {
				leader := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					idx, err := roundTrip(r.Context())
					if err != nil {
						return
					}
					cluster.WriteJSON(w, http.StatusOK, cluster.ReadIndexResponse{Index: idx})
				}))
				f.members.put(metastore.Member{ID: "n2", URL: leader.URL, RaftAddr: "n2.raft:7000"})
				f.setLeader("n2")
			}
			c := newUnitCluster(t, f, func(cfg *cluster.Config) { cfg.ReadTimeout = 20 * time.Second })

			// A reader reports its index, or 0 on an error.
			read := func(out chan<- uint64) {
				idx, err := c.ReadIndex(t.Context())
				if err != nil {
					idx = 0
				}
				out <- idx
			}
			first := make(chan uint64, 1)
			go read(first)
			if i := <-started; i != 1 {
				t.Fatalf("round %d started first", i)
			}
			// Eight readers arrive while round 1 is in flight.
			const n = 8
			later := make(chan uint64, n)
			var arrived sync.WaitGroup
			for range n {
				arrived.Add(1)
				go func() {
					arrived.Done()
					read(later)
				}()
			}
			arrived.Wait()
			time.Sleep(200 * time.Millisecond) // let them all queue
			select {
			case i := <-started:
				t.Fatalf("round %d started while round 1 was in flight", i)
			default:
			}
			release <- struct{}{}
			if got := <-first; got != 101 {
				t.Errorf("the first reader got %d, want 101 (round 1)", got)
			}
			if i := <-started; i != 2 {
				t.Fatalf("round %d started after round 1, want 2", i)
			}
			release <- struct{}{}
			for range n {
				if got := <-later; got != 102 {
					t.Errorf("a reader that arrived during round 1 got %d, want 102 (round 2, which started after it arrived)", got)
				}
			}
			select {
			case i := <-started:
				t.Errorf("round %d started: %d readers should have cost two round trips", i, n+1)
			case <-time.After(100 * time.Millisecond):
			}
			if got := rounds.Load(); got != 2 {
				t.Errorf("%d round trips for %d readers, want 2", got, n+1)
			}
		})
	}
}

// TestReadIndexEndpoint: GET /cluster/readindex answers the leader's read
// index on the leader, and on a follower 421 naming the leader.
func TestReadIndexEndpoint(t *testing.T) {
	tests := []struct {
		name          string
		leader        string
		readIndex     func(context.Context) (uint64, error)
		header        map[string]string
		want          int
		wantIndex     uint64
		wantLeader    string
		wantLeaderURL string
	}{
		{name: "the leader answers its read index", leader: "self", header: withSecret(),
			readIndex: func(context.Context) (uint64, error) { return 42, nil }, want: http.StatusOK, wantIndex: 42},
		{name: "a follower names the leader", leader: "n2", header: withSecret(),
			want: http.StatusMisdirectedRequest, wantLeader: "n2", wantLeaderURL: "http://n2.example:8080"},
		{name: "a follower without a leader names none", leader: "", header: withSecret(),
			want: http.StatusMisdirectedRequest},
		{name: "the leader failing its read index: 503", leader: "self", header: withSecret(),
			readIndex: func(context.Context) (uint64, error) { return 0, replication.ErrNotLeader },
			want:      http.StatusServiceUnavailable},
		{name: "no secret: 401", leader: "self", want: http.StatusUnauthorized},
		{name: "wrong secret: 403", leader: "self", header: map[string]string{clusterauth.Header: "nope"}, want: http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRaft()
			f.setReadIndex(tc.readIndex)
			switch tc.leader {
			case "self":
				f.setLeader(selfID)
			default:
				f.setLeader(tc.leader)
			}
			f.members.put(metastore.Member{ID: "n2", URL: "http://n2.example:8080/", RaftAddr: "n2.raft:7000"})
			c := newUnitCluster(t, f, nil)
			mux := http.NewServeMux()
			c.Routes(mux)
			node := serve(t, mux)
			got := do(t, http.MethodGet, node.URL+"/cluster/readindex", "", tc.header)
			if got.status != tc.want {
				t.Fatalf("status %d %q, want %d", got.status, got.body, tc.want)
			}
			switch got.status {
			case http.StatusOK:
				var ri cluster.ReadIndexResponse
				if err := json.Unmarshal([]byte(got.body), &ri); err != nil || ri.Index != tc.wantIndex {
					t.Errorf("body %q (%v), want index %d", got.body, err, tc.wantIndex)
				}
			case http.StatusMisdirectedRequest:
				if _, leader, u := errorOf(t, got); leader != tc.wantLeader || u != tc.wantLeaderURL {
					t.Errorf("names leader %q at %q, want %q at %q", leader, u, tc.wantLeader, tc.wantLeaderURL)
				}
			case http.StatusServiceUnavailable:
				if got.header.Get("Retry-After") != "1" {
					t.Errorf("503 without Retry-After: 1")
				}
			}
		})
	}
}
