package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dfs-project/dfs/cluster"
)

// verify.go, diff.go and report.go compare replicas (dfs cluster verify). Every node digests its
// own state (digest.go); Replicas asks all of them for a digest at one
// applied index and, where digests differ, streams the differing nodes'
// entries beside the reference node's and merges them in stream order, so
// the differences are named (node, path, field, both values) while the
// verifier holds two entries at a time, whatever the namespace's size.

// Options tunes Replicas. Zero values take the defaults shown.
type Options struct {
	// Deep makes every node re-hash every object it holds (slow: it reads
	// all content) instead of checking presence and size. A node moves
	// a corrupt object it finds to its quarantine and fetches a good copy
	// from a peer.
	Deep bool
	// Attempts bounds how often Replicas asks again when the nodes do not
	// answer at one common applied index (writes going on). Default 5.
	Attempts int
	// RetryDelay is the pause between attempts. Default 1s.
	RetryDelay time.Duration
	// CallTimeout bounds each read-index and node-info call. Digest calls
	// are bounded by ctx only: a deep digest takes as long as reading
	// every object does. Default 10s.
	CallTimeout time.Duration
	// MaxDifferences bounds how many differences are named. Default 1000.
	MaxDifferences int
	// MaxPaths bounds how many referencing paths are named per missing or
	// corrupt content hash. Default 10.
	MaxPaths int
	// Progress, if set, is told what Replicas does, one line per call;
	// calls never overlap.
	Progress func(msg string)
	// Names maps node URLs to member IDs (from /cluster/status), to name
	// the nodes that do not answer; without it they go by URL.
	Names map[string]string
}

func (o *Options) setDefaults() {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.MaxDifferences <= 0 {
		o.MaxDifferences = 1000
	}
	if o.MaxPaths <= 0 {
		o.MaxPaths = 10
	}
}

// errMoved is returned while comparing when a node applied another entry:
// the attempt is void.
var errMoved = errors.New("cluster: a node applied another log entry during the comparison")

// Replicas compares the replicated state of the nodes at urls (their HTTP
// base URLs): it learns the leader's read index, asks every node for its
// digest at that index or later (GET /cluster/digest?min-index=N), and,
// when all answer at one applied index, names every difference between
// them. When they answer at different indexes (writes going on) it tries
// again, up to opt.Attempts times, and then reports Inconclusive rather
// than a difference it cannot prove. A node that cannot be reached is in
// the report with its error and makes it not consistent. The error is
// non-nil only when urls is empty or ctx ends.
func Replicas(ctx context.Context, c *cluster.Client, urls []string, opt Options) (Report, error) {
	opt.setDefaults()
	urls = cluster.UniqueURLs(urls)
	if len(urls) == 0 {
		return Report{}, errors.New("cluster: verify: no node URLs")
	}
	v := &verifier{cc: c, c: NewClient(c), opt: opt, urls: urls, missingSeen: map[string]map[string]int{}}
	var rep Report
	for attempt := 1; attempt <= opt.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return rep, fmt.Errorf("cluster: verify: %w", ctx.Err())
			case <-time.After(opt.RetryDelay):
			}
		}
		var retry bool
		rep, retry = v.attempt(ctx)
		rep.Attempts, rep.Deep = attempt, opt.Deep
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("cluster: verify: %w", err)
		}
		if !retry {
			return rep, nil
		}
		v.progress("attempt %d of %d inconclusive: %s", attempt, opt.Attempts, rep.Reason)
	}
	rep.Inconclusive = true
	rep.Reason = fmt.Sprintf("the nodes never held still at one applied index in %d attempts (writes going on?): %s", opt.Attempts, rep.Reason)
	return rep, nil
}

type verifier struct {
	cc   *cluster.Client // read indexes and node reports
	c    *Client         // digests and entries
	opt  Options
	urls []string
	// missingSeen counts, per node URL, the digests that listed a hash as
	// missing. Content committed a moment ago may not have reached a
	// node yet (it is fetched after the entry applies), so missing
	// content counts as a difference only once two digests, a retry
	// delay apart, both lack it.
	missingSeen map[string]map[string]int
	progressMu  sync.Mutex // serialises opt.Progress
}

func (v *verifier) progress(format string, args ...any) {
	if v.opt.Progress != nil {
		v.progressMu.Lock()
		defer v.progressMu.Unlock()
		v.opt.Progress(fmt.Sprintf(format, args...))
	}
}

// attempt runs one round; retry says the result is void (the nodes did not
// hold still) and Reason says why.
func (v *verifier) attempt(ctx context.Context) (rep Report, retry bool) {
	rep = Report{Differences: []Difference{}}
	index, leaderURL := v.targetIndex(ctx)
	rep.AppliedIndex = index
	v.progress("asking %d nodes for a digest at index %d or later", len(v.urls), index)

	rep.Nodes = make([]NodeDigest, len(v.urls))
	digests := make([]*Digest, len(v.urls))
	busy := make([]bool, len(v.urls))
	var wg sync.WaitGroup
	for i, u := range v.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			d, err := v.c.Digest(ctx, u, v.opt.Deep, index)
			nd := &rep.Nodes[i]
			nd.URL, nd.ID = u, v.opt.Names[u]
			if err != nil {
				nd.Error = err.Error()
				code := statusCode(err)
				nd.Unreachable = code == 0
				busy[i] = code == http.StatusServiceUnavailable
				v.progress("%s: %v", u, err)
				return
			}
			d.URL = u // where this verifier reaches it, whatever it advertises
			digests[i] = &d
			nd.ID, nd.AppliedIndex, nd.NamespaceDigest, nd.ContentDigest = d.ID, d.AppliedIndex, d.NamespaceDigest, d.ContentDigest
			nd.Entries, nd.ContentObjects, nd.MissingCount, nd.CorruptCount = d.Entries, d.ContentObjects, d.MissingCount, d.CorruptCount
			v.progress("%s (%s): digest at index %d in %s", d.ID, u, d.AppliedIndex, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()

	// Missing content is counted in every answer, usable or not.
	unconfirmed, fetching := "", ""
	for i, d := range digests {
		if d == nil {
			continue
		}
		seen := v.missingSeen[v.urls[i]]
		if seen == nil {
			seen = map[string]int{}
			v.missingSeen[v.urls[i]] = seen
		}
		for _, h := range d.Missing {
			seen[h]++
			if seen[h] < 2 && unconfirmed == "" {
				unconfirmed = fmt.Sprintf("%s lacks %d objects; checking again whether they arrive", d.ID, d.MissingCount)
			}
		}
		if d.Fetching > 0 && fetching == "" {
			fetching = fmt.Sprintf("%s lacks %d objects and is still fetching %d of them", d.ID, d.MissingCount, d.Fetching)
		}
	}

	// Only nodes at one applied index can be compared.
	var answered []int
	indexes := map[uint64]bool{}
	for i, d := range digests {
		if d != nil {
			answered = append(answered, i)
			indexes[d.AppliedIndex] = true
		}
	}
	for i, b := range busy {
		if b {
			return rep, v.void(&rep, "%s did not give a digest: %s", rep.Nodes[i].name(), rep.Nodes[i].Error)
		}
	}
	if len(indexes) > 1 {
		var at []string
		for _, i := range answered {
			at = append(at, fmt.Sprintf("%s at %d", rep.Nodes[i].ID, rep.Nodes[i].AppliedIndex))
		}
		return rep, v.void(&rep, "the nodes answered at different applied indexes (%s)", strings.Join(at, ", "))
	}
	formats := map[int]bool{}
	for _, i := range answered {
		formats[digests[i].Format] = true
	}
	if len(formats) > 1 {
		rep.Inconclusive = true
		rep.Reason = "the nodes digest their state in different formats (different dfs versions): they cannot be compared"
		return rep, false
	}
	if fetching != "" {
		return rep, v.void(&rep, "%s", fetching)
	}
	if unconfirmed != "" {
		return rep, v.void(&rep, "%s", unconfirmed)
	}
	if len(answered) > 0 {
		rep.AppliedIndex = digests[answered[0]].AppliedIndex
	}

	// The reference is one of the largest group of equal digests; the
	// leader's group wins a tie, then the order of urls.
	groups := map[string][]int{}
	for _, i := range answered {
		groups[digests[i].NamespaceDigest] = append(groups[digests[i].NamespaceDigest], i)
	}
	ref := -1
	for _, i := range answered {
		g := groups[digests[i].NamespaceDigest]
		switch {
		case ref < 0, len(g) > len(groups[digests[ref].NamespaceDigest]):
			ref = i
		case len(g) == len(groups[digests[ref].NamespaceDigest]) && v.urls[i] == leaderURL:
			ref = i
		}
	}
	if ref >= 0 {
		rep.Reference = digests[ref].ID
		for _, i := range answered {
			if digests[i].NamespaceDigest == digests[ref].NamespaceDigest {
				continue
			}
			v.progress("%s differs from %s: comparing their entries", digests[i].ID, digests[ref].ID)
			err := v.diffNamespace(ctx, &rep, digests[ref], digests[i])
			if errors.Is(err, errMoved) {
				return rep, v.void(&rep, "%v", err)
			}
			if err != nil {
				rep.Nodes[i].Error = err.Error()
			}
		}
	}
	for _, i := range answered {
		d := digests[i]
		if d.MissingCount+d.CorruptCount == 0 {
			continue
		}
		err := v.diffContent(ctx, &rep, d)
		if errors.Is(err, errMoved) {
			return rep, v.void(&rep, "%v", err)
		}
		if err != nil {
			rep.Nodes[i].Error = err.Error()
		}
	}

	var failed []string
	for _, n := range rep.Nodes {
		if n.Error != "" {
			failed = append(failed, n.name())
		}
	}
	switch {
	case len(rep.Differences) > 0:
		rep.Reason = fmt.Sprintf("%d differences at applied index %d", len(rep.Differences), rep.AppliedIndex)
		if rep.Truncated {
			rep.Reason = fmt.Sprintf("more than %d differences at applied index %d", len(rep.Differences), rep.AppliedIndex)
		}
	case len(failed) > 0:
		rep.Reason = "no usable digest from " + strings.Join(failed, ", ")
	default:
		rep.Consistent = true
	}
	if len(rep.Differences) > 0 && len(failed) > 0 {
		rep.Reason += "; no usable digest from " + strings.Join(failed, ", ")
	}
	return rep, false
}

// void marks an attempt whose nodes did not hold still.
func (v *verifier) void(rep *Report, format string, args ...any) bool {
	rep.Reason = fmt.Sprintf(format, args...)
	rep.Differences = []Difference{}
	rep.Truncated = false
	return true
}

// targetIndex returns the index to compare at: the leader's read index
// (every write acknowledged before Replicas began is at or below it), or,
// with no leader answering, the highest applied index a node reports. All
// nodes are asked at once: without a leader each waits for one up to its
// read timeout.
func (v *verifier) targetIndex(ctx context.Context) (index uint64, leaderURL string) {
	rctx, cancel := context.WithTimeout(ctx, v.opt.CallTimeout)
	defer cancel() // the slower answers are not needed
	type answer struct {
		index uint64
		url   string
		ok    bool
	}
	answers := make(chan answer, len(v.urls))
	for _, u := range v.urls {
		go func() {
			idx, err := v.cc.ReadIndex(rctx, u)
			var e *cluster.Error
			if err != nil && errors.As(err, &e) && e.StatusCode == http.StatusMisdirectedRequest && e.LeaderURL != "" {
				u = strings.TrimRight(e.LeaderURL, "/")
				idx, err = v.cc.ReadIndex(rctx, u)
			}
			answers <- answer{idx, u, err == nil}
		}()
	}
	for range v.urls {
		if a := <-answers; a.ok {
			return a.index, a.url
		}
	}
	for _, u := range v.urls {
		nctx, cancel := context.WithTimeout(ctx, v.opt.CallTimeout)
		info, err := v.cc.Node(nctx, u)
		cancel()
		if err == nil && info.AppliedIndex > index {
			index = info.AppliedIndex
		}
	}
	v.progress("no leader gave a read index; comparing at the highest applied index reported, %d", index)
	return index, ""
}
