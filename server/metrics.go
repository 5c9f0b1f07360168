package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dfs-project/dfs/auth"
)

// metrics is a node's Prometheus registry, served at GET /metrics. Each
// Server has its own (several nodes share one process in tests), and the
// default global registry is never touched. Labels carry methods and
// status codes only: never a path or a file name.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	auth     *prometheus.CounterVec
}

// webdavMethods are the method label values; any other method counts as
// "OTHER", so a client cannot grow the label set.
var webdavMethods = map[string]bool{
	http.MethodOptions: true, http.MethodGet: true, http.MethodHead: true,
	http.MethodPut: true, http.MethodDelete: true, http.MethodPost: true,
	"MKCOL": true, "COPY": true, "MOVE": true, "PROPFIND": true,
	"PROPPATCH": true, "LOCK": true, "UNLOCK": true,
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfs_webdav_requests_total",
			Help: "WebDAV requests this node served, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dfs_webdav_request_duration_seconds",
			Help: "Time to serve a WebDAV request, body included, by method.",
			// Up to 5 minutes: uploads and downloads of large files stream.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"method"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfs_auth_requests_total",
			Help: "Requests the authentication gate decided on, by result: ok, forwarded (a user another node " +
				"authenticated), challenged (no credentials), malformed, failed (wrong user name or password), " +
				"read_only_refused. A rising failed count is someone guessing passwords.",
		}, []string{"result"}),
	}
	// Every result shows from the start, at 0: an alert on a rate needs
	// the series before the first failure.
	for _, r := range auth.Results() {
		m.auth.WithLabelValues(string(r))
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.duration,
		m.auth,
		nodeCollector{s: s},
		scrubCollector{sc: s.scrub},
	)
	return m
}

// observe is webdav.Config.Observe.
func (m *metrics) observe(method string, status int, _ int64, d time.Duration) {
	if !webdavMethods[method] {
		method = "OTHER"
	}
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

// authResult is auth.Config.Observe.
func (m *metrics) authResult(r auth.Result) { m.auth.WithLabelValues(string(r)).Inc() }

// handler serves the registry in the Prometheus exposition formats. A
// metric that cannot be read (the metadata store is down) is left out and
// logged; the rest is still served.
func (m *metrics) handler(s *Server) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      newStdLogger(s.log),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

var (
	descLeader = prometheus.NewDesc("dfs_raft_leader",
		"1 if this node is the Raft leader, 0 otherwise.", nil, nil)
	descTerm = prometheus.NewDesc("dfs_raft_term",
		"The node's current Raft term.", nil, nil)
	descCommit = prometheus.NewDesc("dfs_raft_commit_index",
		"The node's Raft commit index.", nil, nil)
	descRaftApplied = prometheus.NewDesc("dfs_raft_applied_index",
		"The last Raft log index this node applied (no-ops and barriers included).", nil, nil)
	descMetaApplied = prometheus.NewDesc("dfs_metastore_applied_index",
		"The last log index applied to this node's metadata store (commands only).", nil, nil)
	descVoters = prometheus.NewDesc("dfs_raft_voters",
		"Voters in the latest Raft configuration.", nil, nil)
	descBacklogFiles = prometheus.NewDesc("dfs_content_backlog_files",
		"Files whose content this node still has to fetch from peers.", nil, nil)
	descBacklogBytes = prometheus.NewDesc("dfs_content_backlog_bytes",
		"Bytes of content this node still has to fetch from peers.", nil, nil)
)

// nodeCollector reads the node's state when Prometheus scrapes: no
// goroutine polls it in between.
type nodeCollector struct{ s *Server }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descTerm, descCommit, descRaftApplied,
		descMetaApplied, descVoters, descBacklogFiles, descBacklogBytes} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Status fills the Raft fields before it reads anything that can fail.
	st, err := c.s.node.Status(ctx)
	leader := 0.0
	if c.s.node.IsLeader() {
		leader = 1
	}
	gauge(descLeader, leader)
	gauge(descTerm, float64(st.Term))
	gauge(descCommit, float64(st.CommitIndex))
	gauge(descRaftApplied, float64(st.RaftAppliedIndex))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descMetaApplied, err)
	} else {
		gauge(descMetaApplied, float64(st.AppliedIndex))
	}
	gauge(descVoters, float64(c.s.node.Voters()))
	files, bytes := c.s.content.Backlog()
	gauge(descBacklogFiles, float64(files))
	gauge(descBacklogBytes, float64(bytes))
}
