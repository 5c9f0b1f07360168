package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

// TestScrubEndpoint: POST /cluster/scrub needs the cluster secret, starts
// a pass that /cluster/node and /metrics then report, and answers 409 on a
// node whose scrubber is disabled.
func TestScrubEndpoint(t *testing.T) {
	n := testcluster.Start(t, server.Config{ID: "node1", Bootstrap: true,
		Scrub: server.ScrubConfig{Rate: 64 << 20, Interval: time.Hour}})
	testcluster.WaitConverged(t, []*testcluster.Node{n}, "node1")
	off := testcluster.Start(t, server.Config{ID: "off", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{off}, "off")
	secret := map[string]string{clusterauth.Header: testcluster.Secret}

	cases := []struct {
		name   string
		node   *testcluster.Node
		header map[string]string
		want   int
	}{
		{"no secret", n, nil, http.StatusUnauthorized},
		{"wrong secret", n, map[string]string{clusterauth.Header: "nope"}, http.StatusForbidden},
		{"disabled", off, secret, http.StatusConflict},
		{"started", n, secret, http.StatusAccepted},
	}
	var until int64
	for _, tc := range cases {
		r := do(t, http.MethodPost, tc.node.URL()+"/cluster/scrub", tc.header, nil)
		if r.status != tc.want || r.body == "" {
			t.Fatalf("%s: POST /cluster/scrub = %d %q, want %d with a body", tc.name, r.status, r.body, tc.want)
		}
		if tc.want == http.StatusAccepted {
			var resp cluster.ScrubResponse
			if err := json.Unmarshal([]byte(r.body), &resp); err != nil || resp.UntilPass < 1 {
				t.Fatalf("POST /cluster/scrub answer %q: %v", r.body, err)
			}
			until = resp.UntilPass
		}
	}

	var info cluster.NodeInfo
	testcluster.Eventually(t, 30*time.Second, "the requested scrub pass", func() (bool, string) {
		r := do(t, http.MethodGet, n.URL()+"/cluster/node", nil, nil)
		info = cluster.NodeInfo{}
		if err := json.Unmarshal([]byte(r.body), &info); err != nil || info.Scrub == nil {
			return false, r.body
		}
		return info.Scrub.Passes >= until, r.body
	})
	if !info.Scrub.Enabled || info.Scrub.LastEnd.IsZero() || info.Scrub.LastError != "" {
		t.Fatalf("scrub report after a pass: %+v", *info.Scrub)
	}
	families, _ := scrape(t, n)
	if got := value(t, families, "dfs_scrub_passes_total"); got < float64(until) {
		t.Fatalf("dfs_scrub_passes_total = %v, want at least %d", got, until)
	}
	if st := off.Status(t); len(st.Nodes) != 1 || st.Nodes[0].Scrub == nil || st.Nodes[0].Scrub.Enabled {
		t.Fatalf("status of a node without scrubber: %+v", st.Nodes)
	}
}
