//go:build docker

// The fault suite's checker: a watch on every node's Raft role and term
// during the run (at most one leader per term), and the final check after
// the last heal: every key of every client read from every node against the
// key's model, and the nodes compared with each other by verify.Replicas
// (the Go API of `dfs cluster verify`, with package cluster's client: the
// one place the e2e package uses product packages, since comparing nodes
// is that command's job).

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/verify"
)

// termWatch polls every node's own report (GET /cluster/node) and records
// which node claimed leadership in which term.
type termWatch struct {
	nodes []*faultNode
	http  *http.Client

	mu      sync.Mutex
	leaders map[uint64]map[string]bool // term -> nodes that reported leading in it
}

func newTermWatch(nodes []*faultNode) *termWatch {
	return &termWatch{nodes: nodes, http: &http.Client{Timeout: time.Second}, leaders: map[uint64]map[string]bool{}}
}

// run polls every node every 150 ms until ctx ends, each node on its own
// so that one that does not answer (killed, cut off, not started) does not
// slow the others' polling down.
func (w *termWatch) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range w.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(150 * time.Millisecond)
			defer tick.Stop()
			for {
				var rep nodeReport
				if err := getJSON(ctx, w.http, n.url+"/cluster/node", &rep); err == nil && rep.Role == "leader" {
					w.mu.Lock()
					if w.leaders[rep.Term] == nil {
						w.leaders[rep.Term] = map[string]bool{}
					}
					w.leaders[rep.Term][rep.ID] = true
					w.mu.Unlock()
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (w *termWatch) termsSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.leaders)
}

// violations counts the terms with more than one leader.
func (w *termWatch) violations() int {
	return len(w.report())
}

func (w *termWatch) report() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for term, ls := range w.leaders {
		if len(ls) > 1 {
			var ids []string
			for id := range ls {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			out = append(out, fmt.Sprintf("split brain: term %d had leaders %v", term, ids))
		}
	}
	return out
}

// readState reads a key's state from one node, retrying reads that told
// nothing (503 while a node catches up) for a while.
func readState(ctx context.Context, hc *http.Client, base, key string) (string, error) {
	var state string
	err := pollUntil(ctx, 30*time.Second, func() error {
		var ok bool
		var err error
		switch {
		case strings.HasSuffix(key, "#prop"):
			state, ok, err = readProp(ctx, hc, base, strings.TrimSuffix(key, "#prop"))
		case strings.HasSuffix(key, "/"):
			state, ok, err = statCollection(ctx, hc, base, key)
		default:
			state, ok, err = readFile(ctx, hc, base, key)
		}
		if !ok {
			return fmt.Errorf("read %s: %v", key, err)
		}
		return nil
	})
	return state, err
}

// checkFinal reads every key of every client and every shared register
// path from every member and compares the members' namespaces. It returns
// the members `dfs cluster verify` finds different or cannot compare.
func (r *faultRun) checkFinal(ctx context.Context, sum *faultSummary) []string {
	t := r.t
	divergent := map[string]bool{}
	all := append(append([]*faultClient{}, r.clients...), r.probe, r.xfer)
	keys := 0
	for _, c := range all {
		for key, m := range c.keys {
			keys++
			seen := map[string][]string{} // state -> nodes
			for _, n := range r.members {
				st, err := readState(ctx, r.check, n.url, key)
				if err != nil {
					t.Errorf("final read of %s on %s: %v", key, n.name, err)
					sum.lost++
					continue
				}
				seen[st] = append(seen[st], n.name)
				switch m.classify(st) {
				case "":
				case "stale":
					sum.lost++
					t.Errorf("lost: %s on %s holds %.19s, but the acknowledged history allows only %v", key, n.name, st, keysOf(m.possible()))
				case "failed":
					sum.failedSeen++
					t.Errorf("a failed write is visible: %s on %s holds %.19s", key, n.name, st)
				default:
					sum.partial++
					t.Errorf("partial or foreign content: %s on %s holds %.19s, allowed %v", key, n.name, st, keysOf(m.possible()))
				}
			}
			if len(seen) > 1 {
				t.Errorf("nodes disagree on %s: %v", key, seen)
				// The nodes in the smaller groups are the divergent ones.
				best := 0
				for _, ns := range seen {
					best = max(best, len(ns))
				}
				for _, ns := range seen {
					if len(ns) < best {
						for _, n := range ns {
							divergent[n] = true
						}
					}
				}
			}
		}
	}
	// The shared register paths: read from every member, these reads join
	// the history the linearizability check takes (checkShared).
	for _, p := range r.shared.regs {
		keys++
		seen := map[string][]string{}
		for _, n := range r.members {
			start := time.Now()
			st, err := readState(ctx, r.check, n.url, p)
			if err != nil {
				t.Errorf("final read of %s on %s: %v", p, n.name, err)
				continue
			}
			r.hist.add(faultOp{Client: "check", Node: n.name, Kind: "GET", Path: p, State: st, Start: start, End: time.Now(), Outcome: opOK, Status: 200})
			seen[st] = append(seen[st], n.name)
		}
		if len(seen) > 1 {
			t.Errorf("nodes disagree on %s: %v", p, seen)
			best := 0
			for _, ns := range seen {
				best = max(best, len(ns))
			}
			for _, ns := range seen {
				if len(ns) < best {
					for _, n := range ns {
						divergent[n] = true
					}
				}
			}
		}
	}
	t.Logf("final check: %d keys read from %d nodes", keys, len(r.members))

	// Nothing exists that no client created (a half-done MOVE or COPY, a
	// failed upload's leftover): the leader's whole namespace against the
	// keys the clients used.
	l, err := r.leader(ctx)
	if err != nil {
		t.Errorf("no leader for the final comparison: %v", err)
		sum.divergent = len(r.members)
		var all []string
		for _, n := range r.members {
			all = append(all, n.name)
		}
		return all
	}
	ref, err := r.namespace(ctx, l)
	if err != nil {
		t.Errorf("namespace of %s: %v", l.name, err)
	}
	known := map[string]bool{"/": true, "/fc-reg": true, "/fc-shared": true, r.shared.lockPath: true}
	for _, p := range r.shared.regs {
		known[p] = true
	}
	for _, c := range all {
		known[strings.TrimSuffix(c.root(), "/")] = true
		for key := range c.keys {
			known[strings.TrimSuffix(strings.TrimSuffix(key, "#prop"), "/")] = true
		}
	}
	for href := range ref {
		if !known[href] {
			t.Errorf("%s exists on the leader but no client ever created it", href)
			sum.partial++
		}
	}

	// Every node against the others, namespace, properties, locks, members
	// and content (re-hashed): the product's own `dfs cluster verify`.
	bad := r.verify(ctx)
	for _, n := range bad {
		divergent[n] = true
	}
	sum.divergent = len(divergent)
	return bad
}

// checkShared judges the shared paths' history: each register path's
// operations for linearizability (porcupine), acknowledged writes that
// reads prove were not applied, and exclusive locks held twice at once.
func (r *faultRun) checkShared(sum *faultSummary) {
	t := r.t
	ops := r.hist.regOps(r.shared.regs, r.epoch)
	start := time.Now()
	results := checkRegisters(ops, time.Minute, visualizationDir("dfs-faults-"+r.c.prefix))
	for _, res := range results {
		switch res.Result {
		case porcupine.Illegal:
			sum.notLinearizable++
			t.Errorf("not linearizable: the history of %s (%d operations, %d pending at infinity; times from the run's start); visualization: %s\n%s",
				res.Path, res.Ops, res.Pending, res.Visualization, res.Explanation)
		case porcupine.Unknown:
			sum.inconclusive++
			t.Logf("linearizability of %s: inconclusive, porcupine ran out of time (%d operations, %d pending at infinity)", res.Path, res.Ops, res.Pending)
		}
	}
	t.Logf("linearizability: %d register paths, %d operations, checked in %v: %d not linearizable, %d inconclusive",
		len(results), len(ops), time.Since(start).Round(time.Millisecond), sum.notLinearizable, sum.inconclusive)
	for _, v := range falseWrites(ops) {
		r.hist.violation(&r.hist.falseAnswers, "%s", v)
	}
	grants := r.shared.allGrants()
	for _, v := range doubleGrants(r.shared.lockPath, grants) {
		r.hist.violation(&r.hist.falseAnswers, "%s", v)
	}
	t.Logf("exclusive locks: %d granted on %s", len(grants), r.shared.lockPath)
}

// verify runs verify.Replicas (deep: every node re-hashes its content) over
// the members and returns the nodes it finds different or cannot compare.
func (r *faultRun) verify(ctx context.Context) []string {
	var urls []string
	for _, n := range r.members {
		urls = append(urls, n.url)
	}
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rep, err := verify.Replicas(vctx, cluster.NewClient(r.c.secret, nil), urls, verify.Options{Deep: true, Attempts: 10})
	if err != nil {
		r.t.Errorf("cluster verify: %v", err)
		return []string{"verify"}
	}
	r.t.Logf("cluster verify: consistent %v at index %d over %d nodes (reference %s, %d attempts)",
		rep.Consistent, rep.AppliedIndex, len(rep.Nodes), rep.Reference, rep.Attempts)
	if rep.Consistent {
		return nil
	}
	r.t.Errorf("cluster verify: not consistent: %s (inconclusive %v)", rep.Reason, rep.Inconclusive)
	bad := map[string]bool{}
	for _, d := range rep.Differences {
		r.t.Errorf("cluster verify: %s", d)
		bad[d.Node] = true
	}
	for _, nd := range rep.Nodes {
		if nd.Error != "" {
			r.t.Errorf("cluster verify: %s (%s): %s", nd.ID, nd.URL, nd.Error)
			bad[nd.ID] = true
		}
	}
	if len(bad) == 0 { // inconclusive: nothing proven either way, but not a pass
		return []string{"inconclusive"}
	}
	var out []string
	for n := range bad {
		out = append(out, n)
	}
	return out
}

// namespace is a node's PROPFIND Depth: infinity of / (allprop, without
// lockdiscovery, whose timeout counts down), with each file's content hash
// read by GET added as the property "sha256".
func (r *faultRun) namespace(ctx context.Context, n *faultNode) (props, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PROPFIND", n.url+"/", strings.NewReader(
		`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Depth", "infinity")
	resp, err := r.check.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusMultiStatus {
		return nil, fmt.Errorf("PROPFIND / Depth infinity: %d %.300s", resp.StatusCode, body.String())
	}
	got, _ := parseMultistatus(r.t, []byte(body.String()))
	for href, m := range got {
		delete(m, "DAV: lockdiscovery")
		if strings.Contains(m["DAV: resourcetype"], "collection") {
			continue
		}
		st, err := readState(ctx, r.check, n.url, href)
		if err != nil {
			return nil, err
		}
		m["sha256"] = st
	}
	return got, nil
}

// visualizationDir is where illegal histories' visualizations go: a
// directory that outlives the test (its path is logged).
func visualizationDir(prefix string) string {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return ""
	}
	return dir
}
