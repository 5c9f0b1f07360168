//go:build docker

// The fault suite's nemesis: one fault per cycle, healed within the cycle,
// then a bounded wait until every member is ready under one leader. Faults
// that take the leader away measure the failover time: from the fault to
// the first write acknowledged through a surviving node (necessarily by a
// new leader: the old one is dead, frozen or cut off).

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type faultRunConfig struct {
	size, cycles         int
	index                int // the cluster's place in the run (0: 3 nodes, 1: 5 nodes)
	seed                 uint64
	duration, healWindow time.Duration
	dfsImage, redisImage string
	kinds                []string // the fault kinds to run; empty: all (but those awaiting a fix)
	awaitingFix          bool     // also run faultsAwaitingFix
}

// defaultCycles is the default profile's number of cycles per cluster
// size: every kind once in an order drawn from the seed, then a second
// pass, also drawn from the seed, until the count is reached.
var defaultCycles = map[int]int{3: 24, 5: 22}

// faultRun is one cluster's run: its containers, workload, history and
// findings.
type faultRun struct {
	t       *testing.T
	c       *faultCluster
	rnd     *rand.Rand
	hist    *faultHistory
	clients []*faultClient // the workload, one per initial node
	probe   *faultClient   // failover probe writes
	xfer    *faultClient   // the multi-MiB uploads a fault kills mid-stream
	shared  *faultShared   // the register paths and the lock target all clients share
	epoch   time.Time      // the start of the run: history times are relative to it
	members []*faultNode   // the nodes that belong to the cluster now
	terms   *termWatch
	check   *http.Client

	failovers []time.Duration

	// storeTurns counts each store fault's runs: they alternate between
	// the leader and a follower, starting with the leader when parity is
	// 0 (the 3-node run) and with a follower when it is 1.
	storeTurns map[string]int
	parity     int
	note       string // what the current cycle's fault adds to its log line
}

// nodeReport is the part of GET /cluster/node the suite reads.
type nodeReport struct {
	ID             string `json:"id"`
	Role           string `json:"role"`
	Leader         string `json:"leader"`
	Term           uint64 `json:"term"`
	CommitIndex    uint64 `json:"commit_index"`
	AppliedIndex   uint64 `json:"applied_index"`
	ContentBacklog struct {
		Files int `json:"files"`
	} `json:"content_backlog"`
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %.200s", url, resp.StatusCode, body)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

// runFaults starts a cluster, runs the workload and the nemesis, heals,
// checks, and returns what it found.
func runFaults(ctx context.Context, t *testing.T, cfg faultRunConfig) (sum faultSummary) {
	r := &faultRun{
		t: t, rnd: rand.New(rand.NewPCG(cfg.seed, 0x6e656d)), hist: &faultHistory{},
		check:      &http.Client{Timeout: 30 * time.Second},
		storeTurns: map[string]int{}, parity: cfg.index % 2,
	}
	r.c = newFaultCluster(ctx, t, cfg.size, cfg.dfsImage, cfg.redisImage)
	start := time.Now()
	for i := range cfg.size {
		if err := r.c.addNode(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.members = append(r.members, r.c.nodes[i])
	}
	if err := r.waitHealthy(ctx, 3*time.Minute); err != nil {
		t.Fatalf("the %d-node cluster did not form: %v", cfg.size, err)
	}
	t.Logf("%d nodes formed a cluster in %v (prefix %s)", cfg.size, time.Since(start).Round(time.Millisecond), r.c.prefix)

	r.terms = newTermWatch(r.c.nodes)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); r.terms.run(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }()

	r.epoch = time.Now()
	r.hist.epoch = r.epoch
	r.shared = newFaultShared(r.epoch, 4)
	for i := range cfg.size {
		c := newFaultClient(fmt.Sprintf("c%d", i), r.c.nodes[i], cfg.seed*131+uint64(i)+1, r.hist, 30*time.Second)
		c.shared = r.shared
		if err := c.setup(ctx); err != nil {
			t.Fatalf("client %s setup: %v", c.id, err)
		}
		r.clients = append(r.clients, c)
	}
	r.probe = newFaultClient("probe", r.c.nodes[0], cfg.seed*131+101, r.hist, 5*time.Second)
	r.xfer = newFaultClient("xfer", r.c.nodes[0], cfg.seed*131+102, r.hist, 90*time.Second)
	for _, c := range []*faultClient{r.probe, r.xfer} {
		if err := c.setup(ctx); err != nil {
			t.Fatalf("client %s setup: %v", c.id, err)
		}
	}
	if err := r.setupShared(ctx); err != nil {
		t.Fatal(err)
	}

	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range r.clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(wctx) }()
	}

	faults := r.faultList(cfg.size)
	switch {
	case len(cfg.kinds) > 0:
		faults = slices.DeleteFunc(faults, func(f fault) bool { return !slices.Contains(cfg.kinds, f.name) })
		if len(faults) == 0 {
			t.Fatalf("-faults.kinds %v selects no fault kind of the %d-node run", cfg.kinds, cfg.size)
		}
	case !cfg.awaitingFix:
		var out []string
		faults = slices.DeleteFunc(faults, func(f fault) bool {
			if _, ok := faultsAwaitingFix[f.name]; ok {
				out = append(out, f.name)
				return true
			}
			return false
		})
		byBug := map[string][]string{}
		for _, name := range out {
			byBug[faultsAwaitingFix[name]] = append(byBug[faultsAwaitingFix[name]], name)
		}
		for bug, names := range byBug {
			t.Logf("NOT RUN, awaiting a fix in dfs (-faults.awaiting-fix runs them): %v: %s", names, bug)
		}
	}
	cycles := cfg.cycles
	if cycles == 0 {
		cycles = max(len(faults), defaultCycles[cfg.size])
	}
	order := r.rnd.Perm(len(faults))
	done := 0
	runStart := time.Now()
	lastHeal := time.Now()
	broken := false
	for i := range cycles {
		if cfg.duration > 0 && time.Since(runStart) > cfg.duration {
			t.Logf("-faults.duration %v reached after %d cycles", cfg.duration, done)
			break
		}
		if ctx.Err() != nil {
			t.Errorf("out of time after %d cycles", done)
			break
		}
		f := faults[order[i%len(faults)]]
		if i > 0 && i%len(faults) == 0 {
			order = r.rnd.Perm(len(faults))
			f = faults[order[0]]
		}
		cstart := time.Now()
		acked, unknown, internal := r.hist.count(opOK), r.hist.count(opUnknown), r.hist.unknownCount("500")
		r.note = ""
		failover, err := f.run(ctx)
		lastHeal = time.Now()
		if err != nil {
			t.Errorf("cycle %d (%s): %v", i+1, f.name, err)
			broken = true
			break
		}
		if err := r.waitHealthy(ctx, 2*time.Minute); err != nil {
			t.Errorf("cycle %d (%s): the cluster did not recover: %v", i+1, f.name, err)
			broken = true
			break
		}
		done++
		msg := r.note
		if u := r.hist.count(opUnknown) - unknown; u > 0 {
			msg += fmt.Sprintf(", %d unknown outcomes", u)
			if i := r.hist.unknownCount("500") - internal; i > 0 {
				msg += fmt.Sprintf(" (%d of them 500)", i)
			}
		}
		if failover > 0 {
			r.failovers = append(r.failovers, failover)
			msg += fmt.Sprintf(", failover %v", failover.Round(time.Millisecond))
		}
		t.Logf("cycle %d/%d %-24s at %6.1fs, %5.1fs, %d ops acknowledged meanwhile%s, terms seen %d, split-brain %d",
			i+1, cycles, f.name, cstart.Sub(r.epoch).Seconds(), time.Since(cstart).Seconds(), r.hist.count(opOK)-acked, msg, r.terms.termsSeen(), r.terms.violations())
	}
	if broken {
		if err := r.healAll(ctx); err != nil {
			t.Errorf("heal after the failed cycle: %v", err)
		}
		lastHeal = time.Now()
	}

	// Healing: cfg.healWindow after the last fault healed, under the
	// workload, every member must be ready (and later pass verify).
	unhealed := r.checkHealed(ctx, lastHeal, cfg.healWindow)
	stopWork()
	wg.Wait()
	sum = faultSummary{cycles: done, failovers: r.failovers}
	// Also when the cluster cannot be checked.
	defer func() {
		sum.unhealed = len(unhealed)
		for _, n := range r.members {
			r.c.scanPanics(ctx, n)
		}
		sum.panics = r.c.panics
		r.logUnknowns()
	}()
	if err := r.healAll(ctx); err != nil {
		t.Errorf("final heal: %v", err)
	}
	if err := r.waitHealthy(ctx, 3*time.Minute); err != nil {
		t.Errorf("after the final heal the cluster did not recover: %v", err)
		sum.divergent = len(r.members) // nothing can be compared
		for _, n := range r.members {
			unhealed[n.name] = true
		}
		sum.acked = r.hist.count(opOK)
		return sum
	}
	if err := r.waitConverged(ctx, 3*time.Minute); err != nil {
		t.Errorf("after the final heal the nodes did not converge: %v", err)
	}
	stopWatch()
	<-watchDone
	for _, n := range r.checkFinal(ctx, &sum) {
		unhealed[n] = true
	}
	r.checkShared(&sum)
	sum.acked = r.hist.count(opOK)
	sum.stale += r.hist.stale
	sum.partial += r.hist.partial
	sum.failedSeen += r.hist.failedSeen
	sum.falseAnswers += r.hist.falseAnswers
	sum.splitBrain = r.terms.violations()
	for _, v := range r.hist.violations {
		t.Error(v)
	}
	for _, v := range r.terms.report() {
		t.Error(v)
	}
	t.Logf("history: %d operations, %d acknowledged, %d failed, %d unknown",
		len(r.hist.ops), r.hist.count(opOK), r.hist.count(opFailed), r.hist.count(opUnknown))
	return sum
}

// setupShared creates the shared register collection and the shared lock
// target (through the probe client, before any fault).
func (r *faultRun) setupShared(ctx context.Context) error {
	return pollUntil(ctx, 2*time.Minute, func() error {
		for _, p := range []string{"/fc-reg/", "/fc-shared/"} {
			start := time.Now()
			o, resp, _, err := r.probe.send(ctx, "MKCOL", p, nil, 0, nil, []int{http.StatusCreated}, []int{http.StatusMethodNotAllowed})
			r.probe.record("MKCOL", p, "", stDir, start, o, resp, err)
			if o == opUnknown {
				return fmt.Errorf("MKCOL %s: %v", p, err)
			}
		}
		start := time.Now()
		body := "the shared lock target"
		o, resp, _, err := r.probe.send(ctx, http.MethodPut, r.shared.lockPath, strings.NewReader(body), int64(len(body)), nil,
			[]int{http.StatusCreated, http.StatusNoContent}, nil)
		r.probe.record("PUT", r.shared.lockPath, "", fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body))), start, o, resp, err)
		if o != opOK {
			return fmt.Errorf("PUT %s: %v %v", r.shared.lockPath, resp, err)
		}
		return nil
	})
}

// checkHealed waits until window after lastHeal, then asks every
// member's /readyz (for up to 10 s, to let a single slow probe pass): the
// members that do not answer 200 are unhealed, and their answers are
// logged.
func (r *faultRun) checkHealed(ctx context.Context, lastHeal time.Time, window time.Duration) map[string]bool {
	holdUntil(ctx, lastHeal, window)
	unhealed := map[string]bool{}
	for _, n := range r.members {
		var last string
		err := pollUntil(ctx, 10*time.Second, func() error {
			status, body := r.readyz(ctx, n)
			if status == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", status, body)
			return errors.New(last)
		})
		if err != nil {
			unhealed[n.name] = true
			logs, _ := dockerRun(ctx, 20*time.Second, "logs", "--tail", "20", n.dfs)
			r.t.Errorf("unhealed: %s is not ready %v after the last fault healed: /readyz says %s; its last log lines:\n%s",
				n.name, time.Since(lastHeal).Round(time.Second), last, logs)
		}
	}
	r.t.Logf("healing: %d of %d members ready at the end of the heal window", len(r.members)-len(unhealed), len(r.members))
	return unhealed
}

// logUnknowns logs why outcomes were unknown.
func (r *faultRun) logUnknowns() {
	r.hist.mu.Lock()
	defer r.hist.mu.Unlock()
	for _, cause := range slices.Sorted(maps.Keys(r.hist.unknownWhy)) {
		r.t.Logf("unknown outcomes: %d × %s, e.g. %q", r.hist.unknownWhy[cause], cause, r.hist.unknownSamples[cause])
	}
}

// reports asks every member for its own view (GET /cluster/node).
func (r *faultRun) reports(ctx context.Context) map[string]nodeReport {
	out := map[string]nodeReport{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range r.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep nodeReport
			if err := getJSON(ctx, r.c.http, n.url+"/cluster/node", &rep); err == nil {
				mu.Lock()
				out[n.name] = rep
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func (r *faultRun) member(name string) *faultNode {
	for _, n := range r.members {
		if n.name == name {
			return n
		}
	}
	return nil
}

// leader waits until the reachable members agree on a leader that is a
// member, and returns it.
func (r *faultRun) leader(ctx context.Context) (*faultNode, error) {
	var l *faultNode
	err := pollUntil(ctx, time.Minute, func() error {
		reps := r.reports(ctx)
		for name, rep := range reps {
			if rep.Role == "leader" {
				agree := 0
				for _, o := range reps {
					if o.Leader == name {
						agree++
					}
				}
				if agree > len(r.members)/2 {
					l = r.member(name)
					return nil
				}
			}
		}
		return fmt.Errorf("no leader agreed on: %+v", reps)
	})
	return l, err
}

// followers returns the members other than the leader.
func (r *faultRun) followers(l *faultNode) []*faultNode {
	var out []*faultNode
	for _, n := range r.members {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

func (r *faultRun) anyOf(ns []*faultNode) *faultNode { return ns[r.rnd.IntN(len(ns))] }

// waitHealthy waits until every member answers /readyz with 200, all agree
// on one leader, and the leader's configuration holds exactly the members
// as voters.
func (r *faultRun) waitHealthy(ctx context.Context, bound time.Duration) error {
	return pollUntil(ctx, bound, func() error {
		for _, n := range r.members {
			if err := getJSON(ctx, r.c.http, n.url+"/readyz", nil); err != nil {
				return fmt.Errorf("%s not ready: %w", n.name, err)
			}
		}
		reps := r.reports(ctx)
		leader := ""
		for _, n := range r.members {
			rep, ok := reps[n.name]
			switch {
			case !ok:
				return fmt.Errorf("%s does not report", n.name)
			case rep.Leader == "" || (leader != "" && rep.Leader != leader):
				return fmt.Errorf("leaders disagree: %+v", reps)
			}
			leader = rep.Leader
		}
		l := r.member(leader)
		if l == nil {
			return fmt.Errorf("leader %q is not a member", leader)
		}
		var st struct {
			Nodes []struct {
				ID    string `json:"id"`
				Voter bool   `json:"voter"`
			} `json:"nodes"`
		}
		if err := getJSON(ctx, r.c.http, l.url+"/cluster/status", &st); err != nil {
			return err
		}
		var voters, want []string
		for _, n := range st.Nodes {
			if n.Voter {
				voters = append(voters, n.ID)
			}
		}
		for _, n := range r.members {
			want = append(want, n.name)
		}
		slices.Sort(voters)
		if !slices.Equal(voters, want) {
			return fmt.Errorf("voters %v, want %v", voters, want)
		}
		return nil
	})
}

// waitConverged waits until every member has applied what the leader has
// and holds all content (no backlog).
func (r *faultRun) waitConverged(ctx context.Context, bound time.Duration) error {
	return pollUntil(ctx, bound, func() error {
		reps := r.reports(ctx)
		// The leader's applied index (the metastore's; Raft's commit index
		// also counts entries the store never sees, such as barriers).
		var applied uint64
		for _, rep := range reps {
			if rep.Role == "leader" {
				applied = rep.AppliedIndex
			}
		}
		for _, n := range r.members {
			rep, ok := reps[n.name]
			if !ok || applied == 0 || rep.AppliedIndex < applied || rep.ContentBacklog.Files > 0 {
				return fmt.Errorf("%s: applied %d of the leader's %d, backlog %d files (reported %v)", n.name, rep.AppliedIndex, applied, rep.ContentBacklog.Files, ok)
			}
		}
		return nil
	})
}

// healAll undoes whatever a failed cycle may have left: every member
// running, unpaused, with its Redis, and on the main network.
func (r *faultRun) healAll(ctx context.Context) error {
	var errs []error
	for _, n := range r.members {
		_, _ = dockerRun(ctx, time.Minute, "start", n.sandbox)
		if err := r.c.heal(ctx, n); err != nil {
			errs = append(errs, err)
		}
		_, _ = dockerRun(ctx, time.Minute, "unpause", n.dfs)
		if _, err := dockerRun(ctx, time.Minute, "start", n.redis); err != nil {
			// Removed by a redis-wipe that did not finish: a new, empty one.
			_, _ = dockerRun(ctx, time.Minute, "rm", "-f", n.redis)
			errs = append(errs, r.c.startRedis(ctx, n))
		}
		if _, err := dockerRun(ctx, time.Minute, "start", n.dfs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// failover PUTs small files through via until one is acknowledged, and
// returns the time from since to that acknowledgement.
func (r *faultRun) failover(ctx context.Context, via *faultNode, since time.Time) (time.Duration, error) {
	r.probe.node = via
	var acked atomic.Int64
	err := pollUntil(ctx, time.Minute, func() error {
		if r.probe.put(ctx, r.probe.pick(r.probe.files), 512, &acked) != opOK {
			return errors.New("no write acknowledged")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("failover through %s: %w", via.name, err)
	}
	return time.Since(since), nil
}

// holdUntil sleeps until since+d (faults last at least that long).
func holdUntil(ctx context.Context, since time.Time, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(since.Add(d))):
	}
}

// waitRedis waits until the node's Redis answers through the proxy dfs
// uses (which also shows the proxy is up).
func (c *faultCluster) waitRedis(ctx context.Context, n *faultNode) error {
	_, port, _ := strings.Cut(redisProxyAddr, ":")
	return pollUntil(ctx, 30*time.Second, func() error {
		_, err := dockerRun(ctx, 10*time.Second, "exec", n.redis, "/usr/local/bin/redis-cli", "-p", port, "ping")
		return err
	})
}

// xferStarted is an upload body that signals once a part of it was sent.
type xferStarted struct {
	io.Reader
	after int64
	sent  int64
	once  sync.Once
	ch    chan struct{}
}

func (x *xferStarted) Read(p []byte) (int, error) {
	n, err := x.Reader.Read(p)
	x.sent += int64(n)
	if x.sent >= x.after {
		x.once.Do(func() { close(x.ch) })
	}
	return n, err
}

// midTransfer starts a 24 MiB PUT through via and calls kill once 6 MiB
// of it are on their way; it returns when the upload has ended.
func (r *faultRun) midTransfer(ctx context.Context, via *faultNode, kill func() error) error {
	r.xfer.node = via
	const size = 24 << 20
	seed, state := r.xfer.version(size)
	path := r.xfer.pick(r.xfer.files)
	body := &xferStarted{Reader: newGenReader(seed, size), after: 6 << 20, ch: make(chan struct{})}
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		o, resp, _, err := r.xfer.send(ctx, http.MethodPut, path, body, size, nil,
			[]int{http.StatusCreated, http.StatusNoContent}, []int{http.StatusConflict, http.StatusPreconditionFailed, http.StatusLocked})
		r.xfer.record("PUT", path, "", state, start, o, resp, err)
		r.xfer.keys[path].apply(o, one(state))
		done <- o
	}()
	var kerr error
	select {
	case <-body.ch:
		kerr = kill()
	case o := <-done:
		return fmt.Errorf("the upload ended (%v) before 6 MiB were sent", o)
	case <-time.After(time.Minute):
		kerr = errors.New("6 MiB of the upload not sent within a minute")
	}
	select {
	case o := <-done:
		r.t.Logf("upload killed mid-stream through %s: %v", via.name, o)
	case <-time.After(2 * time.Minute):
		return errors.New("the upload did not end within 2 minutes")
	}
	return kerr
}

// fault is one kind of fault. run injects it, heals it and returns the
// failover time when it took the leader away (else 0).
type fault struct {
	name string
	run  func(ctx context.Context) (time.Duration, error)
}

func (r *faultRun) faultList(size int) []fault {
	kill := func(ctx context.Context, n *faultNode, wholeNode bool) error {
		args := []string{"kill", n.dfs}
		if wholeNode {
			args = append(args, n.redis)
		}
		_, err := dockerRun(ctx, time.Minute, args...)
		return err
	}
	restart := func(ctx context.Context, n *faultNode, wholeNode bool) error {
		if wholeNode {
			if _, err := dockerRun(ctx, time.Minute, "start", n.redis); err != nil {
				return err
			}
			if err := r.c.waitRedis(ctx, n); err != nil {
				return err
			}
		}
		_, err := dockerRun(ctx, time.Minute, "start", n.dfs)
		return err
	}
	// killLeader: kill -9 the leader (and its Redis), measure the
	// failover, start it again with the same volumes.
	killLeader := func(wholeNode bool) func(ctx context.Context) (time.Duration, error) {
		return func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			if err := kill(ctx, l, wholeNode); err != nil {
				return 0, err
			}
			fo, ferr := r.failover(ctx, r.anyOf(r.followers(l)), t0)
			holdUntil(ctx, t0, 3*time.Second)
			return fo, errors.Join(ferr, restart(ctx, l, wholeNode))
		}
	}
	// isolate: cut the nodes off (the minority) for 5 s; with the leader
	// among them, measure the failover.
	isolate := func(ctx context.Context, minority []*faultNode, toNet2 bool, l *faultNode) (time.Duration, error) {
		t0 := time.Now()
		var errs []error
		for _, n := range minority {
			var err error
			if toNet2 {
				err = r.c.toMinority(ctx, n)
			} else {
				err = r.c.isolate(ctx, n)
			}
			errs = append(errs, err)
		}
		var fo time.Duration
		if slices.Contains(minority, l) {
			var rest []*faultNode
			for _, n := range r.members {
				if !slices.Contains(minority, n) {
					rest = append(rest, n)
				}
			}
			var err error
			fo, err = r.failover(ctx, r.anyOf(rest), t0)
			errs = append(errs, err)
		}
		holdUntil(ctx, t0, 5*time.Second)
		for _, n := range minority {
			errs = append(errs, r.c.heal(ctx, n))
		}
		return fo, errors.Join(errs...)
	}

	fs := []fault{
		{"kill-leader", killLeader(false)},
		{"kill-leader-and-redis", killLeader(true)},
		{"kill-follower", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			f := r.anyOf(r.followers(l))
			t0 := time.Now()
			if err := kill(ctx, f, false); err != nil {
				return 0, err
			}
			holdUntil(ctx, t0, 3*time.Second)
			return 0, restart(ctx, f, false)
		}},
		{"pause-leader", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			if _, err := dockerRun(ctx, time.Minute, "pause", l.dfs); err != nil {
				return 0, err
			}
			fo, ferr := r.failover(ctx, r.anyOf(r.followers(l)), t0)
			holdUntil(ctx, t0, 4*time.Second) // the election timeout is 1 s
			_, uerr := dockerRun(ctx, time.Minute, "unpause", l.dfs)
			return fo, errors.Join(ferr, uerr)
		}},
		{"isolate-leader", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			return isolate(ctx, []*faultNode{l}, false, l)
		}},
		{"flapping-link", func(ctx context.Context) (time.Duration, error) {
			n := r.anyOf(r.members)
			for range 4 {
				if err := r.c.isolate(ctx, n); err != nil {
					return 0, err
				}
				time.Sleep(time.Duration(300+r.rnd.IntN(700)) * time.Millisecond)
				if err := r.c.heal(ctx, n); err != nil {
					return 0, err
				}
				time.Sleep(time.Duration(300+r.rnd.IntN(700)) * time.Millisecond)
			}
			return 0, nil
		}},
		{"graceful-restart", func(ctx context.Context) (time.Duration, error) {
			n := r.anyOf(r.members)
			_, err := dockerRun(ctx, 2*time.Minute, "restart", "-t", "40", n.dfs)
			return 0, err
		}},
		{"replace-empty", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			f := r.anyOf(r.followers(l))
			if err := r.c.removeNode(ctx, f, true); err != nil {
				return 0, err
			}
			if err := r.c.removeMember(ctx, l, f.name); err != nil {
				return 0, fmt.Errorf("dfs cluster remove %s: %w", f.name, err)
			}
			idx := slices.Index(r.c.nodes, f)
			return 0, r.c.addNode(ctx, idx)
		}},
		{"kill-leader-mid-upload", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			via := r.anyOf(r.followers(l))
			var t0 time.Time
			err = r.midTransfer(ctx, via, func() error {
				t0 = time.Now()
				return kill(ctx, l, false)
			})
			if t0.IsZero() {
				return 0, err
			}
			fo, ferr := r.failover(ctx, via, t0)
			holdUntil(ctx, t0, 3*time.Second)
			return fo, errors.Join(err, ferr, restart(ctx, l, false))
		}},
		{"kill-follower-mid-upload", func(ctx context.Context) (time.Duration, error) {
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			f := r.anyOf(r.followers(l))
			var t0 time.Time
			err = r.midTransfer(ctx, l, func() error {
				t0 = time.Now()
				return kill(ctx, f, false)
			})
			if !t0.IsZero() {
				holdUntil(ctx, t0, 3*time.Second)
				err = errors.Join(err, restart(ctx, f, false))
			}
			return 0, err
		}},
	}
	fs = append(fs, r.storeFaults()...)
	fs = append(fs, fault{"partition-long", r.partitionLong})
	if size == 3 {
		fs = append(fs,
			fault{"split-2-1", func(ctx context.Context) (time.Duration, error) {
				l, err := r.leader(ctx)
				if err != nil {
					return 0, err
				}
				return isolate(ctx, []*faultNode{r.anyOf(r.followers(l))}, false, l)
			}},
			fault{"scale-3-5-3", r.scale},
		)
	} else {
		fs = append(fs, fault{"split-3-2", func(ctx context.Context) (time.Duration, error) {
			// The old leader and one follower on their own network, where
			// they still reach each other's HTTP API by name.
			l, err := r.leader(ctx)
			if err != nil {
				return 0, err
			}
			return isolate(ctx, []*faultNode{l, r.anyOf(r.followers(l))}, true, l)
		}})
	}
	return fs
}

// scale adds two empty nodes (they join through --peers, as StatefulSet
// pods scaled up do), waits until all five are ready voters, then stops
// the two and removes them with `dfs cluster remove`.
func (r *faultRun) scale(ctx context.Context) (time.Duration, error) {
	base := len(r.members)
	added := []*faultNode{}
	for i := base; i < base+2; i++ {
		if err := r.c.addNode(ctx, i); err != nil {
			return 0, err
		}
		added = append(added, r.c.nodes[i])
		r.members = append(r.members, r.c.nodes[i])
	}
	if err := r.waitHealthy(ctx, 3*time.Minute); err != nil {
		return 0, fmt.Errorf("scaled up to %d: %w", len(r.members), err)
	}
	r.t.Logf("scaled up to %d voters", len(r.members))
	for _, n := range slices.Backward(added) {
		l, err := r.leader(ctx)
		if err != nil {
			return 0, err
		}
		if l == n {
			// Remove a follower only: hand leadership away by stopping it.
			if _, err := dockerRun(ctx, 2*time.Minute, "stop", "-t", "40", n.dfs); err != nil {
				return 0, err
			}
		}
		if err := r.c.removeNode(ctx, n, true); err != nil {
			return 0, err
		}
		r.members = slices.DeleteFunc(r.members, func(m *faultNode) bool { return m == n })
		if l == n {
			if l, err = r.leader(ctx); err != nil {
				return 0, err
			}
		}
		if err := r.c.removeMember(ctx, l, n.name); err != nil {
			return 0, fmt.Errorf("dfs cluster remove %s: %w", n.name, err)
		}
	}
	return 0, nil
}

// partitionLong cuts a follower off until the leader has compacted its log
// past the follower's last entry, so that on its return the follower must
// install a snapshot (garbage collection runs meanwhile, with the suite's
// short grace). The probe writes small files through the leader to get
// there sooner. The cycle fails unless the follower's log says it
// restored a snapshot after the partition began: the kind must prove what
// it claims.
func (r *faultRun) partitionLong(ctx context.Context) (time.Duration, error) {
	l, err := r.leader(ctx)
	if err != nil {
		return 0, err
	}
	f := r.anyOf(r.followers(l))
	var at uint64
	if rep, ok := r.reports(ctx)[f.name]; ok {
		at = rep.CommitIndex
	}
	t0 := time.Now()
	if err := r.c.isolate(ctx, f); err != nil {
		return 0, err
	}
	// Past the follower's index by the trailing logs (128), a snapshot
	// period (256) and a few 64 KiB log segments; then a snapshot interval
	// (5 s) more, for the snapshot and the compaction to happen.
	const ahead = 1200
	r.probe.node = l
	var acked atomic.Int64
	var werr error
	var reached, checked time.Time
	for deadline := t0.Add(3 * time.Minute); ; {
		if time.Now().After(deadline) || ctx.Err() != nil {
			werr = fmt.Errorf("the leader's commit index did not get %d past %d within 3 minutes (%v)", ahead, at, ctx.Err())
			break
		}
		// Back to back: each acknowledged PUT is one more log entry.
		r.probe.put(ctx, r.probe.pick(r.probe.files), 256, &acked)
		if reached.IsZero() && time.Since(checked) > 500*time.Millisecond {
			checked = time.Now()
			if rep, ok := r.reports(ctx)[l.name]; ok && rep.CommitIndex >= at+ahead {
				reached = time.Now()
			}
		}
		if !reached.IsZero() && time.Since(reached) > 6*time.Second {
			break
		}
	}
	herr := r.c.heal(ctx, f)
	if err := errors.Join(werr, herr); err != nil {
		return 0, err
	}
	var line string
	err = pollUntil(ctx, 2*time.Minute, func() error {
		out, err := dockerRun(ctx, 20*time.Second, "logs", "--since", t0.Format(time.RFC3339Nano), f.dfs)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "snapshot restored") {
				line = l
				return nil
			}
		}
		return errors.New("no \"snapshot restored\" in its log since the partition began")
	})
	r.note = fmt.Sprintf(", follower %s cut off for %v from commit index %d, %d probe writes acknowledged",
		f.name, time.Since(t0).Round(100*time.Millisecond), at, acked.Load())
	if err != nil {
		return 0, fmt.Errorf("%s did not install a snapshot after its partition: %w", f.name, err)
	}
	r.note += fmt.Sprintf(", then installed a snapshot: %.200s", line)
	return 0, nil
}
