package server_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/internal/testcluster"
	"github.com/dfs-project/dfs/server"
)

// scrape fetches a node's /metrics and parses the text format.
func scrape(t *testing.T, n *testcluster.Node) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	r := do(t, http.MethodGet, n.URL()+"/metrics", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return families, r.body
}

// value returns the value of the family's sample whose labels include
// labels (name=value pairs), failing if there is none.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf := families[name]
	if mf == nil {
		t.Fatalf("metric family %s missing", name)
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		default:
			t.Fatalf("metric family %s has type %s", name, mf.GetType())
		}
	}
	t.Fatalf("metric family %s has no sample with labels %v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	n := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true})
	testcluster.WaitConverged(t, []*testcluster.Node{n}, "n1")

	const secretName = "quarterly-report-draft.txt"
	if r := do(t, http.MethodPut, n.URL()+"/"+secretName, nil, bytes.NewReader([]byte("hello"))); r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, n.URL()+"/"+secretName, nil, nil); r.status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	// A method outside the fixed set must not become a label value.
	do(t, "BREW", n.URL()+"/pot", nil, nil)

	families, body := scrape(t, n)

	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "dfs_raft_term", "dfs_raft_commit_index", "dfs_raft_applied_index",
		"dfs_metastore_applied_index", "dfs_content_backlog_files", "dfs_content_backlog_bytes",
		"dfs_webdav_requests_total", "dfs_webdav_request_duration_seconds"} {
		if families[name] == nil {
			t.Errorf("metric family %s missing", name)
		}
	}
	if t.Failed() {
		t.Fatalf("/metrics:\n%s", body)
	}
	if v := value(t, families, "dfs_raft_leader"); v != 1 {
		t.Errorf("dfs_raft_leader = %v, want 1 on the only node", v)
	}
	if v := value(t, families, "dfs_raft_voters"); v != 1 {
		t.Errorf("dfs_raft_voters = %v, want 1", v)
	}
	if v := value(t, families, "dfs_raft_term"); v < 1 {
		t.Errorf("dfs_raft_term = %v, want ≥ 1", v)
	}
	commit := value(t, families, "dfs_raft_commit_index")
	applied := value(t, families, "dfs_raft_applied_index")
	meta := value(t, families, "dfs_metastore_applied_index")
	if meta < 1 || meta > applied || applied > commit {
		t.Errorf("indexes: metastore %v, raft applied %v, commit %v: want 1 ≤ metastore ≤ applied ≤ commit", meta, applied, commit)
	}
	if v := value(t, families, "dfs_content_backlog_files"); v != 0 {
		t.Errorf("dfs_content_backlog_files = %v, want 0", v)
	}
	if v := value(t, families, "dfs_webdav_requests_total", "method", "PUT", "code", "201"); v < 1 {
		t.Errorf(`dfs_webdav_requests_total{method="PUT",code="201"} = %v, want ≥ 1`, v)
	}
	if v := value(t, families, "dfs_webdav_requests_total", "method", "GET", "code", "200"); v < 1 {
		t.Errorf(`dfs_webdav_requests_total{method="GET",code="200"} = %v, want ≥ 1`, v)
	}
	if v := value(t, families, "dfs_webdav_requests_total", "method", "OTHER"); v < 1 {
		t.Errorf(`dfs_webdav_requests_total{method="OTHER"} = %v, want ≥ 1`, v)
	}
	if v := value(t, families, "dfs_webdav_request_duration_seconds", "method", "PUT"); v < 1 {
		t.Errorf(`dfs_webdav_request_duration_seconds{method="PUT"} counts %v requests, want ≥ 1`, v)
	}
	if strings.Contains(body, "BREW") || strings.Contains(body, secretName) {
		t.Errorf("/metrics shows a client-chosen method or a file name:\n%s", body)
	}
	// The node API itself is not WebDAV: scraping does not count as a request.
	again, _ := scrape(t, n)
	for _, m := range again["dfs_webdav_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "method" && lp.GetValue() == http.MethodGet && m.GetCounter().GetValue() != 1 {
				t.Errorf("GET requests counted %v after one WebDAV GET and two scrapes", m.GetCounter().GetValue())
			}
		}
	}
}

// TestAuthMetrics: /metrics counts what the authentication gate decided,
// every result from zero, and never names a user.
func TestAuthMetrics(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	for name, pw := range map[string]string{"alice": "alice-pw", "auditor": "auditor-pw"} {
		hash, err := auth.HashPassword(pw, bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.SetUser(users, name, hash); err != nil {
			t.Fatal(err)
		}
	}
	n := testcluster.Start(t, server.Config{ID: "n1", Bootstrap: true,
		Auth: auth.Options{HtpasswdFile: users, ReadOnlyUsers: []string{"auditor"}}})
	testcluster.WaitConverged(t, []*testcluster.Node{n}, "n1")

	before, _ := scrape(t, n)
	for _, r := range auth.Results() {
		if v := value(t, before, "dfs_auth_requests_total", "result", string(r)); v != 0 {
			t.Errorf(`dfs_auth_requests_total{result=%q} = %v before any request, want 0`, r, v)
		}
	}

	cred := func(user, pw string) map[string]string {
		return map[string]string{"Authorization": auth.FormatBasic(user, pw)}
	}
	requests := []struct {
		method string
		header map[string]string
		status int
	}{
		{http.MethodGet, nil, http.StatusUnauthorized},
		{http.MethodGet, map[string]string{"Authorization": "Basic !!!"}, http.StatusUnauthorized},
		{http.MethodGet, cred("alice", "guess"), http.StatusUnauthorized},
		{http.MethodGet, cred("mallory", "guess"), http.StatusUnauthorized},
		{"PROPFIND", cred("alice", "alice-pw"), http.StatusMultiStatus},
		{http.MethodDelete, cred("auditor", "auditor-pw"), http.StatusForbidden},
	}
	for _, rq := range requests {
		if r := do(t, rq.method, n.URL()+"/", rq.header, nil); r.status != rq.status {
			t.Fatalf("%s with %v: %d, want %d: %s", rq.method, rq.header, r.status, rq.status, r.body)
		}
	}

	after, body := scrape(t, n)
	want := map[auth.Result]float64{
		auth.ResultChallenged: 1, auth.ResultMalformed: 1, auth.ResultFailed: 2,
		auth.ResultOK: 1, auth.ResultReadOnly: 1, auth.ResultForwarded: 0,
	}
	for r, w := range want {
		if v := value(t, after, "dfs_auth_requests_total", "result", string(r)); v != w {
			t.Errorf(`dfs_auth_requests_total{result=%q} = %v, want %v`, r, v, w)
		}
	}
	for _, name := range []string{"alice", "auditor", "mallory"} {
		if strings.Contains(body, name) {
			t.Errorf("/metrics names user %q:\n%s", name, body)
		}
	}
}
