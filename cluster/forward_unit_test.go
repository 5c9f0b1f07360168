package cluster_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
)

// seen is what a fake leader (or the local handler) was sent.
type seen struct {
	mu   sync.Mutex
	reqs []seenReq
}

type seenReq struct {
	method, path, host, body string
	header                   http.Header
}

func (s *seen) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, seenReq{r.Method, r.URL.Path, r.Host, string(b), r.Header.Clone()})
}

func (s *seen) all() []seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenReq(nil), s.reqs...)
}

// TestForwardWrites runs the Forward wrapper of node n1 against a fake
// leader n2 (an httptest server): which requests are served locally, which
// are proxied to the leader and with what, and what the client gets when
// there is no leader to forward to.
func TestForwardWrites(t *testing.T) {
	tests := []struct {
		name    string
		leader  string // "self", "self-behind" (elected, not caught up), "n2" or "" (none known)
		n2URL   string // n2's URL in the member table: "up" (the fake leader), "dead", or "" (none)
		method  string
		header  map[string]string
		want    int
		wantBy  string // served by "local", "leader" or "" (neither)
		wantMsg string // in the body of a 503
	}{
		{name: "the leader serves a write itself", leader: "self", n2URL: "up", method: http.MethodPut,
			want: http.StatusOK, wantBy: "local"},
		{name: "a new leader that has not applied its predecessor's entries refuses writes", leader: "self-behind",
			n2URL: "up", method: http.MethodPut,
			want: http.StatusServiceUnavailable, wantMsg: "still applying earlier writes"},
		{name: "a new leader not caught up still serves reads", leader: "self-behind", n2URL: "up", method: http.MethodGet,
			want: http.StatusOK, wantBy: "local"},
		{name: "a follower serves a read itself", leader: "n2", n2URL: "up", method: http.MethodGet,
			want: http.StatusOK, wantBy: "local"},
		{name: "a follower serves PROPFIND itself", leader: "n2", n2URL: "up", method: "PROPFIND",
			want: http.StatusOK, wantBy: "local"},
		{name: "a follower forwards PUT to the leader", leader: "n2", n2URL: "up", method: http.MethodPut,
			want: http.StatusCreated, wantBy: "leader"},
		{name: "a follower forwards MOVE to the leader", leader: "n2", n2URL: "up", method: "MOVE",
			header: map[string]string{"Destination": "http://dav.example/dir/g.txt"},
			want:   http.StatusCreated, wantBy: "leader"},
		{name: "no leader known: 503", leader: "", n2URL: "up", method: http.MethodPut,
			want: http.StatusServiceUnavailable, wantMsg: "no leader is known right now"},
		{name: "the leader has no URL in the member table: 503", leader: "n2", n2URL: "", method: http.MethodDelete,
			want: http.StatusServiceUnavailable, wantMsg: "no leader is known right now"},
		{name: "the leader does not answer: 503", leader: "n2", n2URL: "dead", method: "MKCOL",
			want: http.StatusServiceUnavailable, wantMsg: "the leader could not be reached"},
		{name: "a forwarded write that reaches a follower is not forwarded again", leader: "n2", n2URL: "up",
			method: http.MethodPut, header: withSecret(cluster.ForwardedByHeader, "n3"),
			want: http.StatusServiceUnavailable, wantMsg: "was forwarded the request as leader but does not lead"},
		{name: "the forwarded marker without the secret counts for nothing", leader: "n2", n2URL: "up",
			method: http.MethodPut, header: map[string]string{cluster.ForwardedByHeader: "n3"},
			want: http.StatusCreated, wantBy: "leader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var atLeader, atLocal seen
			leader := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				atLeader.record(r)
				w.Header().Set("X-Served-By", "n2")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "created by the leader")
			}))
			f := newFakeRaft()
			switch tc.leader {
			case "self":
				f.setLeader(selfID)
			case "self-behind":
				f.setLeader(selfID)
				f.behind = true
			default:
				f.setLeader(tc.leader)
			}
			switch tc.n2URL {
			case "up":
				f.members.put(metastore.Member{ID: "n2", URL: leader.URL + "/", RaftAddr: "n2.raft:7000"})
			case "dead":
				f.members.put(metastore.Member{ID: "n2", URL: deadURL(t), RaftAddr: "n2.raft:7000"})
			}
			c := newUnitCluster(t, f, nil)
			node := serve(t, c.Forward(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				atLocal.record(r)
				io.WriteString(w, "served by n1")
			}), nil))

			start := time.Now()
			got := do(t, tc.method, node.URL+"/dir/f.txt", "hello", tc.header)
			took := time.Since(start)

			if got.status != tc.want {
				t.Fatalf("status %d %q, want %d", got.status, got.body, tc.want)
			}
			local, remote := atLocal.all(), atLeader.all()
			switch tc.wantBy {
			case "local":
				if len(local) != 1 || len(remote) != 0 || got.body != "served by n1" {
					t.Fatalf("served locally %d times, by the leader %d times, body %q: want local once", len(local), len(remote), got.body)
				}
			case "leader":
				if len(local) != 0 || len(remote) != 1 {
					t.Fatalf("served locally %d times, by the leader %d times: want the leader once", len(local), len(remote))
				}
				r := remote[0]
				u, _ := url.Parse(node.URL)
				switch {
				case got.body != "created by the leader" || got.header.Get("X-Served-By") != "n2":
					t.Errorf("the leader's answer was not passed through: body %q, X-Served-By %q", got.body, got.header.Get("X-Served-By"))
				case r.method != tc.method || r.path != "/dir/f.txt" || r.body != "hello":
					t.Errorf("the leader got %s %s %q, want %s /dir/f.txt \"hello\"", r.method, r.path, r.body, tc.method)
				case r.host != u.Host:
					t.Errorf("the leader got Host %q, want the client's %q", r.host, u.Host)
				case r.header.Get(cluster.ForwardedByHeader) != selfID:
					t.Errorf("the leader got %s %q, want %q", cluster.ForwardedByHeader, r.header.Get(cluster.ForwardedByHeader), selfID)
				case r.header.Get(clusterauth.Header) != unitSecret:
					t.Errorf("the leader got no cluster secret (%q)", r.header.Get(clusterauth.Header))
				case r.header.Get("X-Forwarded-For") == "":
					t.Error("the leader got no X-Forwarded-For")
				}
				for k, v := range tc.header {
					if k != cluster.ForwardedByHeader && k != clusterauth.Header && r.header.Get(k) != v {
						t.Errorf("the leader got %s %q, want %q unchanged", k, r.header.Get(k), v)
					}
				}
			default:
				if len(local)+len(remote) != 0 {
					t.Fatalf("served locally %d times, by the leader %d times: want neither", len(local), len(remote))
				}
				if ra := got.header.Get("Retry-After"); ra != "1" {
					t.Errorf("Retry-After %q, want 1", ra)
				}
				if !strings.Contains(got.body, tc.wantMsg) {
					t.Errorf("body %q lacks %q", got.body, tc.wantMsg)
				}
			}
			// Waiting for a leader is bounded by LeaderWait; nothing else
			// here waits at all.
			if limit := unitLeaderWait + 2*time.Second; took > limit {
				t.Errorf("took %s, want under %s", took, limit)
			}
			if tc.leader == "" && took < unitLeaderWait {
				t.Errorf("answered after %s: it should wait up to LeaderWait (%s) for a leader", took, unitLeaderWait)
			}
		})
	}
}

// TestForwardWaitsForALeader: a write that arrives while no leader is known
// is forwarded once one is elected within LeaderWait, not refused.
func TestForwardWaitsForALeader(t *testing.T) {
	var atLeader seen
	leader := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atLeader.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	f := newFakeRaft()
	f.members.put(metastore.Member{ID: "n2", URL: leader.URL, RaftAddr: "n2.raft:7000"})
	c := newUnitCluster(t, f, func(cfg *cluster.Config) { cfg.LeaderWait = 5 * time.Second })
	node := serve(t, c.Forward(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a write reached the follower's own handler")
	}), nil))
	time.AfterFunc(100*time.Millisecond, func() { f.setLeader("n2") })
	got := do(t, http.MethodDelete, node.URL+"/f.txt", "", nil)
	if got.status != http.StatusNoContent || len(atLeader.all()) != 1 {
		t.Fatalf("status %d %q, the leader served %d requests: want 204 from the leader", got.status, got.body, len(atLeader.all()))
	}
}

// syncBuffer is a log the server writes from its connection goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestForwardEarlyAnswerWhileBodyArrives: the leader answers a forwarded
// upload before reading its body (507 for lack of room, 412, 413), and the
// client sends the rest of its body only after it has that answer. The
// follower's copy of the body to the leader was still reading the client's
// body when its handler returned; net/http then finished the body itself,
// started watching the connection after it, and its read of the next
// request met that watch: "http: panic serving ...: invalid concurrent
// Body.Read call" in the node's log, and the client's kept-alive
// connection closed under its next request. The handler must not return
// while anything still reads the body.
func TestForwardEarlyAnswerWhileBodyArrives(t *testing.T) {
	leader := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refused before the body is read, as the leader's PUT does
		// when the announced size does not fit.
		w.WriteHeader(http.StatusInsufficientStorage)
		io.WriteString(w, "no room")
	}))
	f := newFakeRaft()
	f.setLeader("n2")
	f.members.put(metastore.Member{ID: "n2", URL: leader.URL + "/", RaftAddr: "n2.raft:7000"})
	c := newUnitCluster(t, f, nil)
	var serverLog syncBuffer
	node := httptest.NewUnstartedServer(c.Forward(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served by n1")
	}), nil))
	node.Config.ErrorLog = log.New(&serverLog, "", 0)
	node.Start()
	t.Cleanup(node.Close)

	conn, err := net.Dial("tcp", node.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	// More than net/http discards for a handler that did not read a body
	// (256 KiB), so the leader answers at once; the rest, sent after the
	// answer, less than that, so the follower's server reads it to its
	// end after the handler.
	const first, rest = 200 << 10, 200 << 10
	fmt.Fprintf(conn, "PUT /big.bin HTTP/1.1\r\nHost: dav.example\r\nContent-Length: %d\r\n\r\n", first+rest)
	if _, err := conn.Write(make([]byte, first)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("upload: %d %q, want the leader's 507", resp.StatusCode, b)
	}
	if _, err := conn.Write(make([]byte, rest)); err != nil {
		t.Fatalf("sending the rest of the body after the answer: %v", err)
	}
	// The next request on the same connection. net/http may rightly close
	// it instead, when more of the body was left unread after the handler
	// than it discards (how much the copy to the leader had read when the
	// answer came is a matter of timing); then the request goes on a new
	// connection, and the server's log is what tells the bug apart.
	fmt.Fprintf(conn, "GET /f.txt HTTP/1.1\r\nHost: dav.example\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		if l := serverLog.String(); strings.Contains(l, "panic") {
			t.Fatalf("the follower's server panicked:\n%s", l)
		}
		t.Logf("the server closed the connection after the upload (%v); the next request goes on a new one", err)
		resp, err = http.Get(node.URL + "/f.txt")
		if err != nil {
			t.Fatalf("the next request: %v\nserver log:\n%s", err, serverLog.String())
		}
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "served by n1" {
		t.Fatalf("the next request: %d %q, want 200 from n1", resp.StatusCode, b)
	}
	if l := serverLog.String(); strings.Contains(l, "panic") {
		t.Fatalf("the follower's server panicked:\n%s", l)
	}
}
