package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

const (
	joinID   = "n4"
	joinAddr = "127.0.0.1:7004"
	joinURL  = "http://n4.example:8080"
)

var joinBody = `{"id": "` + joinID + `", "raft_addr": "` + joinAddr + `", "url": "` + joinURL + `/"}`

// TestJoinOnTheLeader runs POST /cluster/join on the leader n1: who becomes
// a voter, what the member table gets, and how refusals map to statuses.
func TestJoinOnTheLeader(t *testing.T) {
	member := metastore.Member{ID: joinID, URL: joinURL, RaftAddr: joinAddr}
	voter := func(addr string) replication.Server {
		return replication.Server{ID: joinID, Address: addr, Suffrage: "Voter"}
	}
	tests := []struct {
		name      string
		body      string
		header    map[string]string
		servers   []replication.Server // besides n1
		members   []metastore.Member
		checkPeer error
		addVoter  error

		want        int
		wantResp    cluster.JoinResponse
		wantChecked bool // CheckPeer was asked about joinAddr
		wantAdded   []replication.Server
		wantMembers []metastore.Member
		wantMsg     string // in the error
	}{
		{name: "a new node becomes a voter and a member", body: joinBody, header: withSecret(),
			want: http.StatusOK, wantResp: cluster.JoinResponse{Leader: selfID, AddedVoter: true, UpdatedMember: true},
			wantChecked: true, wantAdded: []replication.Server{voter(joinAddr)}, wantMembers: []metastore.Member{member}},
		{name: "a current voter and member: nothing changes", body: joinBody, header: withSecret(),
			servers: []replication.Server{voter(joinAddr)}, members: []metastore.Member{member},
			want: http.StatusOK, wantResp: cluster.JoinResponse{Leader: selfID}, wantMembers: []metastore.Member{member}},
		{name: "a voter at a new address is updated", body: joinBody, header: withSecret(),
			servers: []replication.Server{voter("127.0.0.1:6004")},
			members: []metastore.Member{{ID: joinID, URL: joinURL, RaftAddr: "127.0.0.1:6004"}},
			want:    http.StatusOK, wantResp: cluster.JoinResponse{Leader: selfID, AddedVoter: true, UpdatedMember: true},
			wantChecked: true, wantAdded: []replication.Server{voter(joinAddr)}, wantMembers: []metastore.Member{member}},
		{name: "a voter with a new URL only gets a new member entry", body: joinBody, header: withSecret(),
			servers: []replication.Server{voter(joinAddr)},
			members: []metastore.Member{{ID: joinID, URL: "http://old.example:8080", RaftAddr: joinAddr}},
			want:    http.StatusOK, wantResp: cluster.JoinResponse{Leader: selfID, UpdatedMember: true},
			wantMembers: []metastore.Member{member}},
		{name: "a Raft transport failing mutual TLS: 403", body: joinBody, header: withSecret(),
			checkPeer: fmt.Errorf("replication: raft transport at %s refused this node: %w: remote error: tls: bad certificate", joinAddr, replication.ErrPeerTLS),
			want:      http.StatusForbidden, wantChecked: true, wantMsg: "failed mutual TLS with the cluster CA"},
		{name: "a Raft transport the leader cannot reach: 503", body: joinBody, header: withSecret(),
			checkPeer: fmt.Errorf("replication: dial %s: connection refused", joinAddr),
			want:      http.StatusServiceUnavailable, wantChecked: true, wantMsg: "cannot reach the Raft transport at " + joinAddr},
		{name: "leadership lost while adding the voter: 503", body: joinBody, header: withSecret(),
			addVoter: fmt.Errorf("replication: add voter %s: %w", joinID, replication.ErrNotLeader),
			want:     http.StatusServiceUnavailable, wantChecked: true, wantMsg: "add voter"},
		{name: "no id: 400", body: `{"raft_addr": "` + joinAddr + `", "url": "` + joinURL + `"}`, header: withSecret(),
			want: http.StatusBadRequest, wantMsg: "no id"},
		{name: "a Raft address without a port: 400", body: `{"id": "n4", "raft_addr": "n4", "url": "` + joinURL + `"}`, header: withSecret(),
			want: http.StatusBadRequest, wantMsg: "raft_addr"},
		{name: "a URL that is not http(s): 400", body: `{"id": "n4", "raft_addr": "` + joinAddr + `", "url": "ftp://n4"}`, header: withSecret(),
			want: http.StatusBadRequest, wantMsg: "want http://host:port"},
		{name: "an unknown field: 400", body: `{"id": "n4", "raft_addr": "` + joinAddr + `", "url": "` + joinURL + `", "voter": true}`, header: withSecret(),
			want: http.StatusBadRequest, wantMsg: "unknown field"},
		{name: "no secret: 401", body: joinBody, want: http.StatusUnauthorized},
		{name: "a wrong secret: 403", body: joinBody, header: map[string]string{clusterauth.Header: "nope"}, want: http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRaft()
			f.setLeader(selfID)
			f.servers = append(f.servers, tc.servers...)
			for _, m := range tc.members {
				f.members.put(m)
			}
			f.checkPeer, f.addVoter = tc.checkPeer, tc.addVoter
			c := newUnitCluster(t, f, nil)
			mux := http.NewServeMux()
			c.Routes(mux)
			node := serve(t, mux)

			got := do(t, http.MethodPost, node.URL+"/cluster/join", tc.body, tc.header)
			if got.status != tc.want {
				t.Fatalf("status %d %q, want %d", got.status, got.body, tc.want)
			}
			if got.status == http.StatusOK {
				var resp cluster.JoinResponse
				if err := json.Unmarshal([]byte(got.body), &resp); err != nil || resp != tc.wantResp {
					t.Errorf("answer %q (%v), want %+v", got.body, err, tc.wantResp)
				}
			} else if tc.wantMsg != "" {
				if msg, _, _ := errorOf(t, got); !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("error %q lacks %q", msg, tc.wantMsg)
				}
			}
			if ra := got.header.Get("Retry-After"); (got.status == http.StatusServiceUnavailable) != (ra == "1") {
				t.Errorf("status %d with Retry-After %q", got.status, ra)
			}
			_, _, checked, added, proposed := f.asked()
			if wantChecked := tc.wantChecked; wantChecked != slices.Equal(checked, []string{joinAddr}) {
				t.Errorf("CheckPeer asked about %q, want %s asked: %v", checked, joinAddr, wantChecked)
			}
			if !slices.Equal(added, tc.wantAdded) {
				t.Errorf("added voters %+v, want %+v", added, tc.wantAdded)
			}
			ms, _ := f.members.Members(t.Context())
			if !slices.Equal(ms, tc.wantMembers) {
				t.Errorf("member table %+v, want %+v", ms, tc.wantMembers)
			}
			// An entry is proposed only when the table lacks it.
			wantProposals := 0
			if tc.wantResp.UpdatedMember {
				wantProposals = 1
			}
			if len(proposed) != wantProposals {
				t.Fatalf("%d proposals, want %d", len(proposed), wantProposals)
			}
			if wantProposals == 1 && (proposed[0].Op != fsm.OpMember || proposed[0].Member == nil || *proposed[0].Member != member) {
				t.Errorf("proposed %+v, want %s of %+v", proposed[0], fsm.OpMember, member)
			}
		})
	}
}

// TestJoinOnAFollower runs POST /cluster/join on the follower n1, whose
// leader n2 is a fake (an httptest server): the follower relays the join
// to the leader and passes its answer, refusals included, back; it never
// changes Raft itself.
func TestJoinOnAFollower(t *testing.T) {
	leaderAnswer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		name     string
		leader   string // "n2" or "" (none known)
		n2       string // n2's URL: "up" or "dead"
		noState  bool   // n1 holds no Raft state (never joined)
		header   map[string]string
		n2Status int
		n2Body   string

		want          int
		wantRelayed   bool
		wantResp      cluster.JoinResponse
		wantMsg       string
		wantLeader    string // named in the error body
		wantLeaderURL string
	}{
		{name: "relayed to the leader, whose answer comes back", leader: "n2", n2: "up", header: withSecret(),
			n2Status: http.StatusOK, n2Body: `{"leader": "n2", "added_voter": true, "updated_member": true}`,
			want: http.StatusOK, wantRelayed: true, wantResp: cluster.JoinResponse{Leader: "n2", AddedVoter: true, UpdatedMember: true}},
		{name: "the leader's TLS refusal comes back as 403", leader: "n2", n2: "up", header: withSecret(),
			n2Status: http.StatusForbidden, n2Body: `{"error": "join refused: the Raft transport at 127.0.0.1:7004 failed mutual TLS with the cluster CA"}`,
			want: http.StatusForbidden, wantRelayed: true, wantMsg: "failed mutual TLS with the cluster CA"},
		{name: "a leader that stepped down (421) comes back with its leader", leader: "n2", n2: "up", header: withSecret(),
			n2Status: http.StatusMisdirectedRequest, n2Body: `{"error": "not the leader", "leader": "n3", "leader_url": "http://n3.example:8080"}`,
			want: http.StatusMisdirectedRequest, wantRelayed: true, wantMsg: "not the leader", wantLeader: "n3", wantLeaderURL: "http://n3.example:8080"},
		{name: "the leader unreachable: 503", leader: "n2", n2: "dead", header: withSecret(),
			want: http.StatusServiceUnavailable, wantMsg: "is unreachable"},
		{name: "no leader known: 503", leader: "", n2: "up", header: withSecret(),
			want: http.StatusServiceUnavailable, wantMsg: "no leader known"},
		{name: "a node that never joined sends the joiner elsewhere: 503", leader: "n2", n2: "up", noState: true, header: withSecret(),
			want: http.StatusServiceUnavailable, wantMsg: "not a member of a cluster yet"},
		{name: "a join forwarded to a follower is not relayed again: 503", leader: "n2", n2: "up",
			header: withSecret(cluster.ForwardedByHeader, "n3"),
			want:   http.StatusServiceUnavailable, wantMsg: "no longer leads"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var atLeader seen
			status, body := tc.n2Status, tc.n2Body
			if status == 0 {
				status, body = http.StatusInternalServerError, `{"error": "the test did not expect a relay"}`
			}
			answer := leaderAnswer(status, body)
			n2 := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				atLeader.record(r)
				answer(w, r)
			})).URL
			if tc.n2 == "dead" {
				n2 = deadURL(t)
			}
			f := newFakeRaft()
			f.hasState = !tc.noState
			f.setLeader(tc.leader)
			f.members.put(metastore.Member{ID: "n2", URL: n2, RaftAddr: "n2.raft:7000"})
			c := newUnitCluster(t, f, nil)
			mux := http.NewServeMux()
			c.Routes(mux)
			node := serve(t, mux)

			got := do(t, http.MethodPost, node.URL+"/cluster/join", joinBody, tc.header)
			if got.status != tc.want {
				t.Fatalf("status %d %q, want %d", got.status, got.body, tc.want)
			}
			if got.status == http.StatusOK {
				var resp cluster.JoinResponse
				if err := json.Unmarshal([]byte(got.body), &resp); err != nil || resp != tc.wantResp {
					t.Errorf("answer %q (%v), want %+v", got.body, err, tc.wantResp)
				}
			} else {
				msg, leader, u := errorOf(t, got)
				if !strings.Contains(msg, tc.wantMsg) || leader != tc.wantLeader || u != tc.wantLeaderURL {
					t.Errorf("error %q naming leader %q at %q; want %q, leader %q at %q", msg, leader, u, tc.wantMsg, tc.wantLeader, tc.wantLeaderURL)
				}
			}
			if ra := got.header.Get("Retry-After"); (got.status == http.StatusServiceUnavailable) != (ra == "1") {
				t.Errorf("status %d with Retry-After %q", got.status, ra)
			}
			relayed := atLeader.all()
			if !tc.wantRelayed {
				if len(relayed) != 0 {
					t.Fatalf("relayed %d times, want never", len(relayed))
				}
			} else {
				if len(relayed) != 1 {
					t.Fatalf("relayed %d times, want once", len(relayed))
				}
				r := relayed[0]
				var req cluster.JoinRequest
				if err := json.Unmarshal([]byte(r.body), &req); err != nil {
					t.Fatalf("relayed body %q: %v", r.body, err)
				}
				// The follower relays the request as it understood it: the
				// URL without its trailing slash.
				want := cluster.JoinRequest{ID: joinID, RaftAddr: joinAddr, URL: joinURL}
				switch {
				case r.method != http.MethodPost || r.path != "/cluster/join":
					t.Errorf("relayed as %s %s, want POST /cluster/join", r.method, r.path)
				case req != want:
					t.Errorf("relayed %+v, want %+v", req, want)
				case r.header.Get(clusterauth.Header) != unitSecret:
					t.Errorf("relayed without the cluster secret")
				case r.header.Get(cluster.ForwardedByHeader) != selfID:
					t.Errorf("relayed with %s %q, want %q", cluster.ForwardedByHeader, r.header.Get(cluster.ForwardedByHeader), selfID)
				}
			}
			if _, _, checked, added, proposed := f.asked(); len(checked)+len(added)+len(proposed) != 0 {
				t.Errorf("the follower changed Raft itself: checked %v, added %v, proposed %v", checked, added, proposed)
			}
		})
	}
}

// TestJoinClient: cluster.Client.Join returns the leader's answer, and a
// refusal as *cluster.Error with the status, which is how a joining node
// tells a wrong secret (it stops retrying loudly) from a busy leader.
func TestJoinClient(t *testing.T) {
	f := newFakeRaft()
	f.setLeader(selfID)
	c := newUnitCluster(t, f, nil)
	mux := http.NewServeMux()
	c.Routes(mux)
	node := serve(t, mux)
	req := cluster.JoinRequest{ID: joinID, RaftAddr: joinAddr, URL: joinURL}

	resp, err := cluster.NewClient(unitSecret, nil).Join(t.Context(), node.URL, req)
	if want := (cluster.JoinResponse{Leader: selfID, AddedVoter: true, UpdatedMember: true}); err != nil || resp != want {
		t.Fatalf("Join = %+v, %v; want %+v", resp, err, want)
	}
	for _, tc := range []struct {
		secret string
		want   int
	}{{"", http.StatusUnauthorized}, {"nope", http.StatusForbidden}} {
		_, err := cluster.NewClient(tc.secret, nil).Join(t.Context(), node.URL, req)
		var ce *cluster.Error
		if !errors.As(err, &ce) || ce.StatusCode != tc.want {
			t.Errorf("Join with secret %q: %v, want *cluster.Error %d", tc.secret, err, tc.want)
		}
	}
}
