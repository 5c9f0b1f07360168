package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/metastore"
)

// This file compares replicas (dfs cluster verify). Every node digests its
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

// Report is the outcome of Replicas.
type Report struct {
	// Consistent is true only when every node answered at one applied
	// index with the same namespace digest and holds all its content.
	Consistent bool `json:"consistent"`
	// Inconclusive is true when the nodes never answered at one common
	// applied index (live writes, a node catching up) within the
	// attempts: nothing can be said about divergence.
	Inconclusive bool `json:"inconclusive"`
	// Reason says in one sentence why the report is not consistent.
	Reason string `json:"reason,omitempty"`
	// AppliedIndex is the index the nodes were compared at (the last one
	// tried when inconclusive).
	AppliedIndex uint64 `json:"applied_index"`
	// Reference is the ID of the node the others were compared with: one
	// of the largest group of nodes with equal namespace digests.
	Reference   string       `json:"reference,omitempty"`
	Deep        bool         `json:"deep"`
	Attempts    int          `json:"attempts"`
	Nodes       []NodeDigest `json:"nodes"`
	Differences []Difference `json:"differences"`
	Truncated   bool         `json:"differences_truncated,omitempty"`
}

// NodeDigest is one node in a Report.
type NodeDigest struct {
	ID              string `json:"id"`
	URL             string `json:"url"`
	AppliedIndex    uint64 `json:"applied_index"`
	NamespaceDigest string `json:"namespace_digest"`
	ContentDigest   string `json:"content_digest"`
	Entries         int64  `json:"entries"`
	ContentObjects  int64  `json:"content_objects"`
	MissingCount    int64  `json:"missing_count"`
	CorruptCount    int64  `json:"corrupt_count"`
	// Error says why the node gave no usable digest (unreachable, refused,
	// not caught up); empty when it did.
	Error string `json:"error,omitempty"`
	// Unreachable is set when the node could not be reached at all.
	Unreachable bool `json:"unreachable,omitempty"`
}

func (n *NodeDigest) name() string {
	if n.ID != "" {
		return n.ID
	}
	return n.URL
}

// Difference kinds.
const (
	DiffMissing        = "missing"         // the reference has the entry, the node does not
	DiffExtra          = "extra"           // the node has an entry the reference does not
	DiffField          = "field"           // both have the entry; one field differs
	DiffContentMissing = "content_missing" // the node lacks referenced content
	DiffContentCorrupt = "content_corrupt" // the node's copy has the wrong size or bytes
	DiffDigest         = "digest"          // digests differ but the entries compare equal field by field
)

// Difference is one way a node differs from the reference node.
type Difference struct {
	Kind      string `json:"kind"`
	Node      string `json:"node"`
	Reference string `json:"reference,omitempty"`
	// Entry names what differs: a path, "lock <token>" or "member <id>".
	Entry          string `json:"entry,omitempty"`
	Field          string `json:"field,omitempty"`
	ReferenceValue string `json:"reference_value,omitempty"`
	NodeValue      string `json:"node_value,omitempty"`
	// Hash and Paths name content a node lacks or holds damaged, and the
	// node's paths that reference it (at most MaxPaths).
	Hash  string   `json:"hash,omitempty"`
	Paths []string `json:"paths,omitempty"`
}

// String says what differs in one line.
func (d Difference) String() string {
	switch d.Kind {
	case DiffMissing:
		return fmt.Sprintf("%s: %s is missing (present on %s)", d.Node, d.Entry, d.Reference)
	case DiffExtra:
		return fmt.Sprintf("%s: %s exists there only (not on %s)", d.Node, d.Entry, d.Reference)
	case DiffField:
		return fmt.Sprintf("%s: %s: %s is %s, on %s %s", d.Node, d.Entry, d.Field, quoteValue(d.NodeValue), d.Reference, quoteValue(d.ReferenceValue))
	case DiffContentMissing, DiffContentCorrupt:
		what := "missing"
		if d.Kind == DiffContentCorrupt {
			what = "corrupt"
		}
		paths := "no path found"
		if len(d.Paths) > 0 {
			paths = "used by " + strings.Join(d.Paths, ", ")
		}
		return fmt.Sprintf("%s: content %s is %s (%s)", d.Node, d.Hash, what, paths)
	}
	return fmt.Sprintf("%s: namespace digest differs from %s's, but no entry does (an entry field this verifier does not know?)", d.Node, d.Reference)
}

func quoteValue(s string) string {
	if s == "" {
		return "(none)"
	}
	return strconv.Quote(s)
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
	urls = dedupe(urls)
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

// add records a difference; false once MaxDifferences are recorded.
func (v *verifier) add(rep *Report, d Difference) bool {
	if len(rep.Differences) >= v.opt.MaxDifferences {
		rep.Truncated = true
		return false
	}
	rep.Differences = append(rep.Differences, d)
	return true
}

// diffNamespace merges the entry streams of ref and node (both at the
// same applied index) and records every difference.
func (v *verifier) diffNamespace(ctx context.Context, rep *Report, ref, node *Digest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := v.c.DigestEntries(ctx, ref.URL, ref.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer a.Close()
	b, err := v.c.DigestEntries(ctx, node.URL, node.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer b.Close()
	next := func(s *EntryStream) (*DigestEntry, error) {
		e, err := s.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	ea, err := next(a)
	if err != nil {
		return err
	}
	eb, err := next(b)
	if err != nil {
		return err
	}
	found := 0
	for ea != nil || eb != nil {
		var cmp int
		switch {
		case ea == nil:
			cmp = 1
		case eb == nil:
			cmp = -1
		default:
			cmp = compareEntries(ea, eb)
		}
		base := Difference{Node: node.ID, Reference: ref.ID}
		switch {
		case cmp < 0:
			base.Kind, base.Entry = DiffMissing, ea.Key()
			found++
			if !v.add(rep, base) {
				return nil
			}
		case cmp > 0:
			base.Kind, base.Entry = DiffExtra, eb.Key()
			found++
			if !v.add(rep, base) {
				return nil
			}
		default:
			for _, f := range diffFields(ea, eb) {
				d := base
				d.Kind, d.Entry, d.Field, d.ReferenceValue, d.NodeValue = DiffField, ea.Key(), f.name, f.ref, f.node
				found++
				if !v.add(rep, d) {
					return nil
				}
			}
		}
		if cmp <= 0 {
			if ea, err = next(a); err != nil {
				return err
			}
		}
		if cmp >= 0 {
			if eb, err = next(b); err != nil {
				return err
			}
		}
	}
	if found == 0 {
		v.add(rep, Difference{Kind: DiffDigest, Node: node.ID, Reference: ref.ID})
	}
	return nil
}

// diffContent names the missing and corrupt content of node d with the
// paths (on d) that reference it.
func (v *verifier) diffContent(ctx context.Context, rep *Report, d *Digest) error {
	paths := map[string][]string{}
	for _, h := range d.Missing {
		paths[h] = nil
	}
	for _, h := range d.Corrupt {
		paths[h] = nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := v.c.DigestEntries(ctx, d.URL, d.AppliedIndex)
	if err != nil {
		return movedOr(err)
	}
	defer s.Close()
	for {
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if ps, ok := paths[e.Hash]; ok && e.Kind == EntryPath && len(ps) < v.opt.MaxPaths {
			paths[e.Hash] = append(ps, e.Path)
		}
	}
	for _, h := range d.Missing {
		if !v.add(rep, Difference{Kind: DiffContentMissing, Node: d.ID, Hash: h, Paths: paths[h]}) {
			return nil
		}
	}
	for _, h := range d.Corrupt {
		if !v.add(rep, Difference{Kind: DiffContentCorrupt, Node: d.ID, Hash: h, Paths: paths[h]}) {
			return nil
		}
	}
	return nil
}

// movedOr turns a node's 409 (it is past the index asked for) into errMoved.
func movedOr(err error) error {
	if statusCode(err) == http.StatusConflict {
		return fmt.Errorf("%w: %w", errMoved, err)
	}
	return err
}

type fieldDiff struct{ name, ref, node string }

// diffFields lists the fields in which two entries with the same key differ.
func diffFields(a, b *DigestEntry) []fieldDiff {
	var out []fieldDiff
	cmp := func(name, x, y string) {
		if x != y {
			out = append(out, fieldDiff{name, x, y})
		}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch a.Kind {
	case EntryPath:
		cmp("type", a.Type, b.Type)
		cmp("size", num(a.Size), num(b.Size))
		cmp("hash", a.Hash, b.Hash)
		cmp("etag", a.ETag, b.ETag)
		cmp("content_type", a.ContentType, b.ContentType)
		cmp("created", num(a.Created), num(b.Created))
		cmp("modified", num(a.Modified), num(b.Modified))
		pa, pb := map[string]string{}, map[string]string{}
		var names []string
		for _, p := range a.Props {
			pa[p.Name] = p.Value
			names = append(names, p.Name)
		}
		for _, p := range b.Props {
			pb[p.Name] = p.Value
			names = append(names, p.Name)
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			cmp("prop "+n, pa[n], pb[n])
		}
	case EntryLock:
		la, lb := lockFields(a.Lock), lockFields(b.Lock)
		for i := range la {
			cmp(la[i][0], la[i][1], lb[i][1])
		}
	case EntryMember:
		ma, mb := metastore.Member{}, metastore.Member{}
		if a.Member != nil {
			ma = *a.Member
		}
		if b.Member != nil {
			mb = *b.Member
		}
		cmp("url", ma.URL, mb.URL)
		cmp("raft_addr", ma.RaftAddr, mb.RaftAddr)
	}
	return out
}

func lockFields(l *metastore.Lock) [][2]string {
	if l == nil {
		l = &metastore.Lock{}
	}
	depth, scope := "0", "exclusive"
	if l.Infinite {
		depth = "infinity"
	}
	if l.Shared {
		scope = "shared"
	}
	return [][2]string{
		{"root", l.Root}, {"depth", depth}, {"scope", scope}, {"owner", l.Owner},
		{"timeout", strconv.FormatInt(l.Timeout, 10)}, {"created", strconv.FormatInt(l.Created, 10)},
		{"expires", strconv.FormatInt(l.Expires, 10)}, {"principal", l.Principal},
	}
}

// Client asks nodes for their digests and entry streams (it needs the
// cluster secret).
type Client struct{ c *cluster.Client }

// NewClient returns a Client that calls nodes with c.
func NewClient(c *cluster.Client) *Client { return &Client{c: c} }

// Digest asks the node at base for its digest, once it has applied
// minIndex (0: at once); deep re-hashes all content.
func (c *Client) Digest(ctx context.Context, base string, deep bool, minIndex uint64) (Digest, error) {
	q := url.Values{}
	if deep {
		q.Set("deep", "1")
	}
	if minIndex > 0 {
		q.Set("min-index", strconv.FormatUint(minIndex, 10))
	}
	path := "/cluster/digest"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Digest
	err := c.c.Call(ctx, http.MethodGet, base, path, nil, &out)
	return out, err
}

// EntryStream reads GET /cluster/digest/entries line by line.
type EntryStream struct {
	body io.ReadCloser
	dec  *json.Decoder
	what string
	done bool
}

// DigestEntries opens the entry stream of the node at base for its state
// at index (0: its current state). A node already past index answers 409.
func (c *Client) DigestEntries(ctx context.Context, base string, index uint64) (*EntryStream, error) {
	path := "/cluster/digest/entries"
	if index > 0 {
		path += "?index=" + strconv.FormatUint(index, 10)
	}
	body, err := c.c.Stream(ctx, base, path)
	if err != nil {
		return nil, err
	}
	return &EntryStream{body: body, dec: json.NewDecoder(body), what: strings.TrimRight(base, "/") + path}, nil
}

// Next returns the next entry, io.EOF after the last one of a complete,
// settled stream, or an error: wrapping errMoved when the node applied an
// entry while streaming, otherwise a broken or failed stream.
func (s *EntryStream) Next() (DigestEntry, error) {
	if s.done {
		return DigestEntry{}, io.EOF
	}
	var e DigestEntry
	if err := s.dec.Decode(&e); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return DigestEntry{}, fmt.Errorf("cluster: %s: stream ended without its trailer: %w", s.what, err)
	}
	if e.Kind != entryEnd {
		return e, nil
	}
	s.done = true
	switch {
	case e.End == nil:
		return DigestEntry{}, fmt.Errorf("cluster: %s: trailer without content", s.what)
	case e.End.Error != "":
		return DigestEntry{}, fmt.Errorf("cluster: %s: the node failed: %s", s.what, e.End.Error)
	case !e.End.Settled:
		return DigestEntry{}, fmt.Errorf("%w: %s moved past %d while streaming", errMoved, s.what, e.End.AppliedIndex)
	}
	return DigestEntry{}, io.EOF
}

// Close ends the stream.
func (s *EntryStream) Close() error { return s.body.Close() }

// statusCode returns the HTTP status of a call's error, 0 if it has none
// (the node was not reached).
func statusCode(err error) int {
	var e *cluster.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// dedupe drops repeated node URLs (and trailing slashes).
func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		s = strings.TrimRight(s, "/")
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
