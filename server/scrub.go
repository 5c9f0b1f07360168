package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/contentrepl"
)

// ScrubConfig configures the node's content scrubber (docs/scrub.md).
type ScrubConfig struct {
	// Rate caps how many bytes per second a pass reads; 0 disables the
	// scrubber (no passes, POST /cluster/scrub answers 409). Reads repair
	// corrupt content whatever this says.
	Rate int64
	// Interval is the time from the start of one pass to the start of the
	// next (default 24h). The first pass starts once the node is ready
	// after it started.
	Interval time.Duration
}

const (
	defaultScrubInterval = 24 * time.Hour
	// scrubReadyPoll is how often a due pass asks whether the node is
	// ready.
	scrubReadyPoll = 2 * time.Second
)

// scrubber runs the scrub passes of one node and keeps their report for
// /cluster/status and /metrics.
type scrubber struct {
	s       *Server
	cfg     ScrubConfig
	lim     *rate.Limiter
	trigger chan struct{} // a token asks for a pass now

	mu        sync.Mutex
	running   bool
	passes    int64
	lastStart time.Time
	lastEnd   time.Time
	lastErr   string
	last      contentrepl.ScrubStats
	current   contentrepl.ScrubStats
	done      contentrepl.ScrubStats // all completed passes
}

func newScrubber(s *Server, cfg ScrubConfig) *scrubber {
	if cfg.Interval <= 0 {
		cfg.Interval = defaultScrubInterval
	}
	sc := &scrubber{s: s, cfg: cfg, trigger: make(chan struct{}, 1)}
	if cfg.Rate > 0 {
		// A tenth of a second of burst keeps the disk load smooth.
		sc.lim = rate.NewLimiter(rate.Limit(cfg.Rate), int(max(cfg.Rate/10, 64<<10)))
	}
	return sc
}

func (sc *scrubber) enabled() bool { return sc.lim != nil }

// throttle waits until n more bytes may be read.
func (sc *scrubber) throttle(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, sc.lim.Burst())
		if err := sc.lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// run starts passes until ctx ends: one once the node is ready after
// start, then every Interval, and whenever one is asked for.
func (sc *scrubber) run(ctx context.Context) {
	if !sc.enabled() {
		sc.s.log.Warn().Msg("content scrubber disabled (--scrub-rate 0): corrupt or lost content is only found when read")
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-sc.trigger:
		}
		if !sc.waitReady(ctx) {
			return
		}
		// This pass covers every request made until now (see request).
		select {
		case <-sc.trigger:
		default:
		}
		start := time.Now()
		sc.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		timer.Reset(max(0, time.Until(start.Add(sc.cfg.Interval))))
	}
}

// waitReady waits until the node is ready: before that, content whose
// entry is not applied yet looks missing, and catch-up is fetching anyway.
func (sc *scrubber) waitReady(ctx context.Context) bool {
	for {
		problems := sc.s.readiness(ctx)
		if len(problems) == 0 {
			return true
		}
		sc.s.log.Debug().Strs("problems", problems).Msg("scrub pass waits: node not ready")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(scrubReadyPoll):
		}
	}
}

func (sc *scrubber) pass(ctx context.Context) {
	sc.mu.Lock()
	sc.running = true
	sc.current = contentrepl.ScrubStats{}
	sc.mu.Unlock()
	log := sc.s.log.With().Str("component", "scrub").Logger()
	log.Info().Int64("rate", sc.cfg.Rate).Msg("scrub pass started")
	start := time.Now()
	st, err := sc.s.content.Scrub(ctx, sc.throttle, func(st contentrepl.ScrubStats) {
		sc.mu.Lock()
		sc.current = st
		sc.mu.Unlock()
	})
	end := time.Now()

	sc.mu.Lock()
	sc.running = false
	sc.current = contentrepl.ScrubStats{}
	sc.done.Add(st)
	if ctx.Err() == nil {
		sc.passes++
		sc.lastStart, sc.lastEnd, sc.last = start, end, st
		sc.lastErr = ""
		if err != nil {
			sc.lastErr = err.Error()
		}
	}
	sc.mu.Unlock()

	ev := log.Info()
	switch {
	case ctx.Err() != nil:
		ev = log.Info().Str("stopped", "node shutting down")
	case err != nil:
		ev = log.Error().Err(err)
	case st.Unrepaired > 0:
		ev = log.Error()
	case st.Corrupt+st.Missing > 0:
		ev = log.Warn()
	}
	ev.Int64("objects", st.Objects).Int64("bytes", st.Bytes).Int64("corrupt", st.Corrupt).
		Int64("missing", st.Missing).Int64("sums_rewritten", st.SumsRewritten).
		Int64("repaired", st.Repaired).Int64("unrepaired", st.Unrepaired).
		Dur("took", end.Sub(start)).Msg("scrub pass done")
}

// request asks for a pass now and returns the number of the pass that
// covers the request: the next one to start (the one after the running
// one, if any).
func (sc *scrubber) request() int64 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	target := sc.passes + 1
	if sc.running {
		target++
	}
	select {
	case sc.trigger <- struct{}{}:
	default: // one is asked for already: it covers this request too
	}
	return target
}

// status is the scrub's report for /cluster/status.
func (sc *scrubber) status() *cluster.ScrubStatus {
	rr := sc.s.content.ReadRepairs()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	st := &cluster.ScrubStatus{
		Enabled: sc.enabled(), Rate: sc.cfg.Rate, Running: sc.running, Passes: sc.passes,
		LastStart: sc.lastStart, LastEnd: sc.lastEnd, LastError: sc.lastErr, Last: sc.last,
		Total:        sc.done,
		ReadRepaired: rr.Repaired, ReadUnrepaired: rr.Unrepaired,
	}
	if sc.running {
		cur := sc.current
		st.Current = &cur
		st.Total.Add(cur)
	}
	return st
}

// handleScrub answers POST /cluster/scrub: start a pass now. The route
// table (routes.go) puts the cluster secret in front of it.
func (sc *scrubber) handleScrub(w http.ResponseWriter, _ *http.Request) {
	if !sc.enabled() {
		cluster.WriteJSON(w, http.StatusConflict, map[string]string{
			"error": "the content scrubber is disabled on this node (--scrub-rate 0)"})
		return
	}
	cluster.WriteJSON(w, http.StatusAccepted, cluster.ScrubResponse{UntilPass: sc.request()})
}

var (
	descScrubPasses = prometheus.NewDesc("dfs_scrub_passes_total",
		"Content scrub passes completed since the node started.", nil, nil)
	descScrubRunning = prometheus.NewDesc("dfs_scrub_running",
		"1 while a content scrub pass runs.", nil, nil)
	descScrubLastEnd = prometheus.NewDesc("dfs_scrub_last_pass_end_timestamp_seconds",
		"When the last completed scrub pass ended (Unix time); absent before the first.", nil, nil)
	descScrubObjects = prometheus.NewDesc("dfs_scrub_objects_checked_total",
		"Objects the scrubber re-hashed.", nil, nil)
	descScrubBytes = prometheus.NewDesc("dfs_scrub_bytes_checked_total",
		"Bytes the scrubber re-hashed.", nil, nil)
	descScrubCorrupt = prometheus.NewDesc("dfs_scrub_corrupt_total",
		"Objects the scrubber found corrupt and quarantined.", nil, nil)
	descScrubMissing = prometheus.NewDesc("dfs_scrub_missing_total",
		"Referenced content the scrubber found missing on this node.", nil, nil)
	descScrubSums = prometheus.NewDesc("dfs_scrub_sums_rewritten_total",
		"Right objects whose missing or wrong block sums the scrubber rewrote.", nil, nil)
	descScrubRepaired = prometheus.NewDesc("dfs_scrub_repaired_total",
		"Corrupt or missing content the scrubber fetched again from a peer.", nil, nil)
	descScrubUnrepaired = prometheus.NewDesc("dfs_scrub_unrepaired_total",
		"Corrupt or missing content the scrubber found and no peer could provide.", nil, nil)
	descReadRepairs = prometheus.NewDesc("dfs_content_read_repairs_total",
		"Corrupt content met by reads, by outcome: repaired from a peer during the read, or not.", []string{"result"}, nil)
)

// scrubCollector reads the scrub report when Prometheus scrapes.
type scrubCollector struct{ sc *scrubber }

func (c scrubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScrubPasses, descScrubRunning, descScrubLastEnd, descScrubObjects,
		descScrubBytes, descScrubCorrupt, descScrubMissing, descScrubSums, descScrubRepaired,
		descScrubUnrepaired, descReadRepairs} {
		ch <- d
	}
}

func (c scrubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sc.status()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	running := 0.0
	if st.Running {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(descScrubRunning, prometheus.GaugeValue, running)
	if !st.LastEnd.IsZero() {
		ch <- prometheus.MustNewConstMetric(descScrubLastEnd, prometheus.GaugeValue, float64(st.LastEnd.UnixNano())/1e9)
	}
	counter(descScrubPasses, st.Passes)
	counter(descScrubObjects, st.Total.Objects)
	counter(descScrubBytes, st.Total.Bytes)
	counter(descScrubCorrupt, st.Total.Corrupt)
	counter(descScrubMissing, st.Total.Missing)
	counter(descScrubSums, st.Total.SumsRewritten)
	counter(descScrubRepaired, st.Total.Repaired)
	counter(descScrubUnrepaired, st.Total.Unrepaired)
	counter(descReadRepairs, st.ReadRepaired, "repaired")
	counter(descReadRepairs, st.ReadUnrepaired, "unrepaired")
}
