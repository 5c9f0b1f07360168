//go:build docker

// The fault suite's workload and history. Each client is bound to one node
// (its own http.Client) and owns a key space (/fc-<client>/...), so every
// key has a single writer that issues one operation at a time: the checker
// reasons per key, without a linearizability search over all clients.
// Besides, all clients share a few register paths (/fc-reg/r<i>), whose
// history porcupine checks for linearizability after the run, and one
// exclusive lock target (/fc-shared/locked) they contend for (faultShared).
//
// Per key the client keeps a model of the states the key may be in:
//
//	cur      the states the acknowledged history (and the client's own
//	         observations) allow: one state, or a few after a MOVE/COPY
//	         whose source was uncertain;
//	unknown  the effects of operations whose outcome is unknown (timeouts,
//	         broken connections, 5xx): any of them may take effect at any
//	         time after it was sent, so they stay possible for good;
//	failed   effects of operations that definitely failed (4xx);
//	ever     every state ever written to the key.
//
// A read (GET, PROPFIND) must observe a state in cur ∪ unknown; it then
// becomes the only known state. An observation outside that set but in
// ever is a stale read (the key went back in time); outside ever it is a
// partial or foreign body. States are "absent", "dir", "sha256:<hex>" and,
// for the property key, "prop:<n>".

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// faultOp is one operation of the history.
type faultOp struct {
	Client, Node, Kind string
	Path, Dest         string
	State              string // the state it writes (PUT: the version's hash)
	Start, End         time.Time
	Outcome            outcome
	Status             int
	Err                string
}

// faultHistory is every operation of a run, and the violations found while
// it ran.
type faultHistory struct {
	mu           sync.Mutex
	ops          []faultOp
	violations   []string
	stale        int
	partial      int
	failedSeen   int
	falseAnswers int

	// Why outcomes were unknown: counts and a few examples per cause.
	unknownWhy     map[string]int
	unknownSamples map[string][]string

	versions map[string]bool // every content state a client made, before sending it

	epoch time.Time // the run's start: violations say when they were found, from it and in UTC (as the nodes' logs)
}

func (h *faultHistory) noteVersion(state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.versions == nil {
		h.versions = map[string]bool{}
	}
	h.versions[state] = true
}

// unknownCount is how many outcomes were unknown for the cause.
func (h *faultHistory) unknownCount(cause string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unknownWhy[cause]
}

// noteUnknown records why an operation's outcome is unknown: a 5xx (one
// that reports a panic is a false answer: the node claims an internal
// failure it should not have), a broken connection, a timeout.
func (h *faultHistory) noteUnknown(what string, status int, detail string) {
	cause := "other"
	switch {
	case status >= 500 && strings.Contains(strings.ToLower(detail), "panic"):
		cause = "5xx-panic"
		h.violation(&h.falseAnswers, "false answer: %s answered %d reporting a panic: %.300s", what, status, detail)
	case status >= 500:
		cause = strconv.Itoa(status)
	case status > 0:
		cause = strconv.Itoa(status)
	case strings.Contains(detail, "context canceled"):
		cause = "cancelled (the workload's end)"
	case strings.Contains(detail, "EOF"), strings.Contains(detail, "connection reset"), strings.Contains(detail, "broken pipe"):
		cause = "connection broken (EOF, reset)"
	case strings.Contains(detail, "deadline exceeded"), strings.Contains(detail, "Timeout"), strings.Contains(detail, "timeout"):
		cause = "timeout"
	case strings.Contains(detail, "connection refused"):
		cause = "connection refused"
	case strings.Contains(detail, "no route to host"), strings.Contains(detail, "network is unreachable"):
		cause = "unreachable"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unknownWhy == nil {
		h.unknownWhy, h.unknownSamples = map[string]int{}, map[string][]string{}
	}
	h.unknownWhy[cause]++
	if len(h.unknownSamples[cause]) < 3 {
		h.unknownSamples[cause] = append(h.unknownSamples[cause], fmt.Sprintf("%s: %.200s", what, detail))
	}
}

// newestAckedPuts returns the acknowledged PUTs, newest first.
func (h *faultHistory) newestAckedPuts() []faultOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []faultOp
	for i := len(h.ops) - 1; i >= 0; i-- {
		if op := h.ops[i]; op.Kind == "PUT" && op.Outcome == opOK {
			out = append(out, op)
		}
	}
	return out
}

// isVersion tells whether a content state is one a client made (and may
// have sent), or the shared lock target's.
func (h *faultHistory) isVersion(state string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.versions[state] {
		return true
	}
	for _, op := range h.ops {
		if op.Kind == "PUT" && op.State == state {
			return true
		}
	}
	return false
}

// regOps returns the operations on the given paths as the register
// checker takes them, times relative to epoch.
func (h *faultHistory) regOps(paths []string, epoch time.Time) []regOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []regOp
	for _, op := range h.ops {
		if !slices.Contains(paths, op.Path) {
			continue
		}
		out = append(out, regOp{Client: op.Client, Node: op.Node, Path: op.Path, Kind: op.Kind, Value: op.State,
			Status: op.Status, Outcome: op.Outcome, Call: op.Start.Sub(epoch), Return: op.End.Sub(epoch)})
	}
	return out
}

func (h *faultHistory) add(op faultOp) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *faultHistory) violation(kind *int, format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kind != nil {
		*kind++
	}
	if len(h.violations) < 200 {
		now := time.Now()
		h.violations = append(h.violations, fmt.Sprintf("[%+.3fs, %s] ", now.Sub(h.epoch).Seconds(), now.UTC().Format("15:04:05.000Z"))+fmt.Sprintf(format, args...))
	}
}

func (h *faultHistory) count(o outcome) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.Outcome == o {
			n++
		}
	}
	return n
}

// keyModel is one key's possible states (see the file comment).
type keyModel struct {
	cur, unknown, failed, ever map[string]bool
}

func newKeyModel(initial string) *keyModel {
	return &keyModel{
		cur: map[string]bool{initial: true}, unknown: map[string]bool{},
		failed: map[string]bool{}, ever: map[string]bool{initial: true},
	}
}

// possible is cur ∪ unknown.
func (m *keyModel) possible() map[string]bool {
	p := make(map[string]bool, len(m.cur)+len(m.unknown))
	for s := range m.cur {
		p[s] = true
	}
	for s := range m.unknown {
		p[s] = true
	}
	return p
}

// apply records a write's effect: states, any of which it may have set.
func (m *keyModel) apply(o outcome, states map[string]bool) {
	for s := range states {
		m.ever[s] = true
	}
	switch o {
	case opOK:
		m.cur = states
	case opUnknown:
		for s := range states {
			m.unknown[s] = true
		}
	case opFailed:
		for s := range states {
			m.failed[s] = true
		}
	}
}

// classify says what observing s means: "" (allowed), "stale", "failed"
// (the effect of a failed operation) or "partial".
func (m *keyModel) classify(s string) string {
	switch {
	case m.cur[s] || m.unknown[s]:
		return ""
	case m.failed[s]:
		return "failed"
	case m.ever[s]:
		return "stale"
	default:
		return "partial"
	}
}

func one(s string) map[string]bool { return map[string]bool{s: true} }

// faultShared is what the workload clients share: register paths that
// every client PUTs, GETs, PROPFINDs and DELETEs concurrently (checked for
// linearizability once the run is over, faults_linear_test.go), and one
// exclusive lock target they all try to LOCK, whose grants are checked for
// two holders at once.
type faultShared struct {
	epoch    time.Time // times in grants are relative to it
	regs     []string
	lockPath string

	mu     sync.Mutex
	grants []lockGrant
}

func newFaultShared(epoch time.Time, nregs int) *faultShared {
	s := &faultShared{epoch: epoch, lockPath: "/fc-shared/locked"}
	for i := range nregs {
		s.regs = append(s.regs, fmt.Sprintf("/fc-reg/r%d", i))
	}
	return s
}

func (s *faultShared) grant(g lockGrant) {
	s.mu.Lock()
	s.grants = append(s.grants, g)
	s.mu.Unlock()
}

func (s *faultShared) allGrants() []lockGrant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.grants)
}

// faultClient is one WebDAV client bound to one node.
type faultClient struct {
	id     string
	node   *faultNode
	http   *http.Client
	rnd    *rand.Rand
	seed   uint64
	hist   *faultHistory
	keys   map[string]*keyModel
	seq    uint64 // versions written
	prop   int    // last property value sent
	files  []string
	dirs   []string
	shared *faultShared // nil for the probe and upload clients

	// stable are the paths that exist from the setup on and that nothing
	// deletes (the client's root, lock target and property file, and the
	// shared collections and lock target); set when the workload starts.
	// An answer that says one of them, or the parent collection of a
	// request's target, does not exist is false.
	stable map[string]bool

	opTimeout time.Duration
}

func newFaultClient(id string, n *faultNode, seed uint64, h *faultHistory, opTimeout time.Duration) *faultClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     10 * time.Second,
	}
	c := &faultClient{
		id: id, node: n, http: &http.Client{Transport: tr}, rnd: rand.New(rand.NewPCG(seed, 0x0fa17)),
		seed: seed, hist: h, keys: map[string]*keyModel{}, opTimeout: opTimeout,
	}
	for i := range 6 {
		c.files = append(c.files, fmt.Sprintf("/fc-%s/f%d", id, i))
	}
	for i := range 2 {
		c.dirs = append(c.dirs, fmt.Sprintf("/fc-%s/d%d/", id, i))
	}
	for _, k := range append(append([]string{}, c.files...), c.dirs...) {
		c.keys[k] = newKeyModel(stAbsent)
	}
	return c
}

func (c *faultClient) root() string     { return "/fc-" + c.id + "/" }
func (c *faultClient) lockPath() string { return c.root() + "locked" }
func (c *faultClient) propPath() string { return c.root() + "props" }
func (c *faultClient) propKey() string  { return c.propPath() + "#prop" }

// version returns the content of the client's next version: deterministic
// from the seed and the version number, so its SHA-256 is known before it
// is sent.
func (c *faultClient) version(size int64) (seed uint64, state string) {
	c.seq++
	seed = c.seed<<20 ^ c.seq
	h := sha256.New()
	_, _ = io.Copy(h, newGenReader(seed, size))
	state = "sha256:" + hex.EncodeToString(h.Sum(nil))
	c.hist.noteVersion(state)
	return seed, state
}

// send performs one request and classifies its outcome. ok lists the
// statuses that acknowledge it, failed those that say it was not done;
// anything else, and every transport error, is unknown.
func (c *faultClient) send(ctx context.Context, method, path string, body io.Reader, size int64, hdr map[string]string, ok, failed []int) (outcome, *http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.node.url+path, body)
	if err != nil {
		return opFailed, nil, nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	what := method + " " + path + " via " + c.node.name
	resp, err := c.http.Do(req)
	if err != nil {
		c.hist.noteUnknown(what, 0, err.Error())
		return opUnknown, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		c.hist.noteUnknown(what, 0, err.Error())
		return opUnknown, resp, nil, err
	}
	c.checkRefusal(what, method, path, hdr["Destination"], resp.StatusCode, data)
	for _, s := range ok {
		if resp.StatusCode == s {
			return opOK, resp, data, nil
		}
	}
	for _, s := range failed {
		if resp.StatusCode == s {
			return opFailed, resp, data, nil
		}
	}
	c.hist.noteUnknown(what, resp.StatusCode, string(bytes.TrimSpace(data)))
	return opUnknown, resp, data, nil
}

// checkRefusal counts an answer that says a stable path does not exist
// (404), or that the parent collection of the target (or of a COPY's or
// MOVE's destination) does not (409), when that collection is stable: the
// history proves it exists, so the refusal is a false answer.
func (c *faultClient) checkRefusal(what, method, p, dest string, status int, body []byte) {
	if c.stable == nil {
		return
	}
	parent := func(p string) string { return path.Dir(strings.TrimSuffix(p, "/")) + "/" }
	switch {
	case status == http.StatusNotFound && c.stable[p]:
		c.hist.violation(&c.hist.falseAnswers, "false answer: %s answered 404 although %s exists from the setup on: %.200s", what, p, bytes.TrimSpace(body))
	case status == http.StatusConflict && method != "UNLOCK" && c.stable[parent(p)]:
		c.hist.violation(&c.hist.falseAnswers, "false answer: %s answered 409 although its parent %s exists from the setup on: %.200s", what, parent(p), bytes.TrimSpace(body))
	case status == http.StatusConflict && dest != "" && c.stable[parent(strings.TrimPrefix(dest, c.node.url))]:
		c.hist.violation(&c.hist.falseAnswers, "false answer: %s answered 409 although the destination's parent %s exists from the setup on: %.200s", what, parent(strings.TrimPrefix(dest, c.node.url)), bytes.TrimSpace(body))
	}
}

// noteRead records why a read told nothing.
func (c *faultClient) noteRead(what string, err error) {
	if err == nil {
		return
	}
	status := 0
	// readFile and propfind0 report an answer as "<METHOD> <path>: <status> ...".
	if _, rest, ok := strings.Cut(err.Error(), ": "); ok {
		if n, err := strconv.Atoi(strings.SplitN(rest, " ", 2)[0]); err == nil {
			status = n
		}
	}
	c.hist.noteUnknown(what+" via "+c.node.name, status, err.Error())
}

// record adds an operation to the history.
func (c *faultClient) record(kind, path, dest, state string, start time.Time, o outcome, resp *http.Response, err error) faultOp {
	op := faultOp{Client: c.id, Node: c.node.name, Kind: kind, Path: path, Dest: dest, State: state,
		Start: start, End: time.Now(), Outcome: o}
	if resp != nil {
		op.Status = resp.StatusCode
	}
	if err != nil {
		op.Err = err.Error()
	}
	c.hist.add(op)
	return op
}

// put writes a new version of path.
func (c *faultClient) put(ctx context.Context, path string, size int64, counter *atomic.Int64) outcome {
	seed, state := c.version(size)
	start := time.Now()
	o, resp, _, err := c.send(ctx, http.MethodPut, path, newGenReader(seed, size), size, nil,
		[]int{http.StatusCreated, http.StatusNoContent}, []int{http.StatusConflict, http.StatusPreconditionFailed, http.StatusLocked})
	c.record("PUT", path, "", state, start, o, resp, err)
	c.keys[path].apply(o, one(state))
	if counter != nil && o == opOK {
		counter.Add(1)
	}
	return o
}

// observe checks a read's state against the key's model.
func (c *faultClient) observe(key, state, what string) {
	m := c.keys[key]
	switch m.classify(state) {
	case "":
		m.cur = one(state)
	case "stale":
		c.hist.violation(&c.hist.stale, "stale read: %s on %s by %s: %s, possible %v", what, c.node.name, c.id, state, keysOf(m.possible()))
	case "failed":
		c.hist.violation(&c.hist.failedSeen, "a failed write is visible: %s on %s by %s: %s", what, c.node.name, c.id, state)
	default:
		c.hist.violation(&c.hist.partial, "partial or foreign content: %s on %s by %s: %s, possible %v", what, c.node.name, c.id, state, keysOf(m.possible()))
	}
}

// readFile GETs a file and returns its state; ok is false when the read
// told nothing (503, transport error, a body cut short).
func readFile(ctx context.Context, hc *http.Client, base, path string) (state string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return stAbsent, true, nil
	case http.StatusOK:
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil {
			return "", false, err
		}
		if resp.ContentLength >= 0 && n != resp.ContentLength {
			return "", false, fmt.Errorf("GET %s: %d of %d bytes", path, n, resp.ContentLength)
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), true, nil
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", false, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
}

// propfind0 asks for one property of path (PROPFIND Depth 0) and returns
// the status and at most 1 MiB of the answer.
func propfind0(ctx context.Context, hc *http.Client, base, path, prop string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PROPFIND", base+path, strings.NewReader(
		`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>`+prop+`</D:prop></D:propfind>`))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Depth", "0")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// statCollection tells whether a collection exists (PROPFIND Depth 0).
func statCollection(ctx context.Context, hc *http.Client, base, path string) (state string, ok bool, err error) {
	status, body, err := propfind0(ctx, hc, base, path, `<D:resourcetype/>`)
	if err != nil {
		return "", false, err
	}
	switch status {
	case http.StatusNotFound:
		return stAbsent, true, nil
	case http.StatusMultiStatus:
		if bytes.Contains(body, []byte("collection")) {
			return stDir, true, nil
		}
		return "file", true, nil
	default:
		return "", false, fmt.Errorf("PROPFIND %s: %d", path, status)
	}
}

// readProp reads the client's property (PROPFIND Depth 0 of the props file).
func readProp(ctx context.Context, hc *http.Client, base, path string) (state string, ok bool, err error) {
	status, body, err := propfind0(ctx, hc, base, path, `<F:v xmlns:F="`+propNS+`"/>`)
	if err != nil || status != http.StatusMultiStatus {
		return "", false, fmt.Errorf("PROPFIND %s: %d %v", path, status, err)
	}
	var ms struct {
		Propstats []struct {
			Prop struct {
				V *struct {
					Text string `xml:",chardata"`
				} `xml:"urn:dfs-faults: v"`
			} `xml:"DAV: prop"`
			Status string `xml:"DAV: status"`
		} `xml:"DAV: response>propstat"`
	}
	if err := xml.Unmarshal(body, &ms); err != nil {
		return "", false, fmt.Errorf("PROPFIND %s: %w", path, err)
	}
	for _, ps := range ms.Propstats {
		if ps.Prop.V != nil && strings.Contains(ps.Status, " 200 ") {
			return "prop:" + strings.TrimSpace(ps.Prop.V.Text), true, nil
		}
	}
	return stAbsent, true, nil
}

// setup creates the client's collection, its lock target and its property
// file, retrying until each is acknowledged (before any fault).
func (c *faultClient) setup(ctx context.Context) error {
	return pollUntil(ctx, 2*time.Minute, func() error {
		start := time.Now()
		o, resp, _, err := c.send(ctx, "MKCOL", c.root(), nil, 0, nil, []int{http.StatusCreated}, []int{http.StatusMethodNotAllowed})
		c.record("MKCOL", c.root(), "", stDir, start, o, resp, err)
		if o == opUnknown {
			return fmt.Errorf("MKCOL %s: %v", c.root(), err)
		}
		for _, p := range []string{c.lockPath(), c.propPath()} {
			if _, ok := c.keys[p]; !ok {
				c.keys[p] = newKeyModel(stAbsent)
			}
			if c.keys[p].cur[stAbsent] {
				if c.put(ctx, p, 100, nil) != opOK {
					return fmt.Errorf("PUT %s not acknowledged", p)
				}
			}
		}
		c.keys[c.propKey()] = newKeyModel(stAbsent)
		return nil
	})
}

// run issues operations until ctx ends.
func (c *faultClient) run(ctx context.Context) {
	c.stable = map[string]bool{c.root(): true, c.lockPath(): true, c.propPath(): true}
	if c.shared != nil {
		c.stable["/fc-reg/"], c.stable["/fc-shared/"], c.stable[c.shared.lockPath] = true, true, true
	}
	for ctx.Err() == nil {
		o := c.step(ctx)
		pause := 20 * time.Millisecond
		if o == opUnknown {
			pause = 300 * time.Millisecond // a dead or cut-off node: do not spin
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (c *faultClient) pick(keys []string) string { return keys[c.rnd.IntN(len(keys))] }

// step issues one random operation and returns its outcome: one in five
// on the shared register paths, one in twenty on the shared lock, the rest
// on the client's own keys.
func (c *faultClient) step(ctx context.Context) outcome {
	if c.shared != nil {
		switch r := c.rnd.IntN(100); {
		case r < 20:
			return c.regStep(ctx)
		case r < 25:
			return c.sharedLock(ctx)
		}
	}
	r := c.rnd.IntN(100)
	switch {
	case r < 30: // PUT, new or overwrite; one in ten of 1 to 3 MiB
		size := int64(100 + c.rnd.IntN(64<<10))
		if c.rnd.IntN(10) == 0 {
			size = int64(1<<20 + c.rnd.IntN(2<<20))
		}
		return c.put(ctx, c.pick(c.files), size, nil)
	case r < 50: // GET
		p := c.pick(c.files)
		start := time.Now()
		st, ok, err := readFile(ctx, c.http, c.node.url, p)
		c.record("GET", p, "", st, start, map[bool]outcome{true: opOK, false: opUnknown}[ok], nil, err)
		if ok {
			c.observe(p, st, "GET "+p)
		} else {
			c.noteRead("GET "+p, err)
		}
		return map[bool]outcome{true: opOK, false: opUnknown}[ok]
	case r < 58: // DELETE a file
		p := c.pick(c.files)
		start := time.Now()
		o, resp, _, err := c.send(ctx, http.MethodDelete, p, nil, 0, nil, []int{http.StatusNoContent, http.StatusOK}, []int{http.StatusNotFound, http.StatusLocked})
		c.record("DELETE", p, "", stAbsent, start, o, resp, err)
		if o != opFailed { // a 404 says nothing new
			c.keys[p].apply(o, one(stAbsent))
		}
		return o
	case r < 72: // MOVE or COPY between two of the client's files
		src, dst := c.pick(c.files), c.pick(c.files)
		if src == dst {
			return opOK
		}
		kind := "COPY"
		if r < 65 {
			kind = "MOVE"
		}
		moved := c.keys[src].possible()
		delete(moved, stAbsent)
		start := time.Now()
		o, resp, _, err := c.send(ctx, kind, src, nil, 0, map[string]string{"Destination": c.node.url + dst, "Overwrite": "T"},
			[]int{http.StatusCreated, http.StatusNoContent}, []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed, http.StatusLocked})
		c.record(kind, src, dst, "", start, o, resp, err)
		if o != opFailed {
			c.keys[dst].apply(o, moved)
			if kind == "MOVE" {
				c.keys[src].apply(o, one(stAbsent))
			}
		}
		return o
	case r < 77: // MKCOL
		p := c.pick(c.dirs)
		start := time.Now()
		o, resp, _, err := c.send(ctx, "MKCOL", p, nil, 0, nil, []int{http.StatusCreated}, []int{http.StatusMethodNotAllowed, http.StatusConflict})
		c.record("MKCOL", p, "", stDir, start, o, resp, err)
		if o != opFailed {
			c.keys[p].apply(o, one(stDir))
		}
		return o
	case r < 81: // DELETE a collection
		p := c.pick(c.dirs)
		start := time.Now()
		o, resp, _, err := c.send(ctx, http.MethodDelete, p, nil, 0, map[string]string{"Depth": "infinity"}, []int{http.StatusNoContent, http.StatusOK}, []int{http.StatusNotFound})
		c.record("DELETE", p, "", stAbsent, start, o, resp, err)
		if o != opFailed { // a 404 says nothing new
			c.keys[p].apply(o, one(stAbsent))
		}
		return o
	case r < 86: // PROPFIND a collection
		p := c.pick(c.dirs)
		start := time.Now()
		st, ok, err := statCollection(ctx, c.http, c.node.url, p)
		c.record("PROPFIND", p, "", st, start, map[bool]outcome{true: opOK, false: opUnknown}[ok], nil, err)
		if ok {
			c.observe(p, st, "PROPFIND "+p)
		} else {
			c.noteRead("PROPFIND "+p, err)
		}
		return opOK
	case r < 91: // LOCK, then UNLOCK
		return c.lockUnlock(ctx)
	case r < 96: // PROPPATCH
		c.prop++
		state := fmt.Sprintf("prop:%d", c.prop)
		body := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:F="%s"><D:set><D:prop><F:v>%d</F:v></D:prop></D:set></D:propertyupdate>`, propNS, c.prop)
		start := time.Now()
		o, resp, data, err := c.send(ctx, "PROPPATCH", c.propPath(), strings.NewReader(body), int64(len(body)),
			map[string]string{"Content-Type": "application/xml"}, []int{http.StatusMultiStatus}, []int{http.StatusLocked, http.StatusForbidden, http.StatusConflict})
		if o == opOK && !bytes.Contains(data, []byte(" 200 ")) {
			o = opFailed // a 207 whose propstat is not 200: not done
		}
		c.record("PROPPATCH", c.propPath(), "", state, start, o, resp, err)
		c.keys[c.propKey()].apply(o, one(state))
		return o
	default: // PROPFIND the property
		start := time.Now()
		st, ok, err := readProp(ctx, c.http, c.node.url, c.propPath())
		c.record("PROPFIND", c.propPath(), "", st, start, map[bool]outcome{true: opOK, false: opUnknown}[ok], nil, err)
		if ok {
			c.observe(c.propKey(), st, "PROPFIND "+c.propPath())
		} else {
			c.noteRead("PROPFIND "+c.propPath(), err)
		}
		return opOK
	}
}

// lockUnlock takes an exclusive write lock on the client's lock target
// (which exists from setup on) and releases it. A lock left behind by an
// unknown outcome expires by its timeout.
func (c *faultClient) lockUnlock(ctx context.Context) outcome {
	body := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + c.id + `</D:owner></D:lockinfo>`
	start := time.Now()
	o, resp, data, err := c.send(ctx, "LOCK", c.lockPath(), strings.NewReader(body), int64(len(body)),
		map[string]string{"Content-Type": "application/xml", "Timeout": "Second-20"}, []int{http.StatusOK}, []int{http.StatusLocked})
	c.record("LOCK", c.lockPath(), "", "", start, o, resp, err)
	if o != opOK {
		return o
	}
	token := resp.Header.Get("Lock-Token")
	lockStart, timeout := start, parseTimeout(data, 20*time.Second)
	start = time.Now()
	o, resp, _, err = c.send(ctx, "UNLOCK", c.lockPath(), nil, 0, map[string]string{"Lock-Token": token},
		[]int{http.StatusNoContent}, []int{http.StatusConflict})
	op := c.record("UNLOCK", c.lockPath(), "", "", start, o, resp, err)
	c.checkUnlock(op, token, lockStart, timeout)
	return o
}

// checkUnlock counts an UNLOCK refused with 409 (the lock does not cover
// the resource) although the lock was granted and cannot have expired
// before the UNLOCK was answered: the lock was lost, or the answer is
// false. Only the client holds its token and nothing deletes the locked
// resources.
func (c *faultClient) checkUnlock(op faultOp, token string, lockStart time.Time, timeout time.Duration) {
	if op.Outcome == opFailed && op.Status == http.StatusConflict && op.End.Before(lockStart.Add(timeout)) {
		c.hist.violation(&c.hist.falseAnswers, "false answer: UNLOCK %s via %s answered 409 for lock %s, granted %v earlier with a timeout of %v",
			op.Path, op.Node, token, op.End.Sub(lockStart).Round(time.Millisecond), timeout)
	}
}

// regStep issues one operation on a shared register path: PUT (a new
// version, 100 B to 8 KiB), GET, PROPFIND or DELETE.
func (c *faultClient) regStep(ctx context.Context) outcome {
	p := c.pick(c.shared.regs)
	start := time.Now()
	switch r := c.rnd.IntN(100); {
	case r < 45:
		size := int64(100 + c.rnd.IntN(8<<10))
		seed, state := c.version(size)
		o, resp, _, err := c.send(ctx, http.MethodPut, p, newGenReader(seed, size), size, nil,
			[]int{http.StatusCreated, http.StatusNoContent}, []int{http.StatusConflict, http.StatusPreconditionFailed, http.StatusLocked})
		c.record("PUT", p, "", state, start, o, resp, err)
		return o
	case r < 85:
		st, ok, err := readFile(ctx, c.http, c.node.url, p)
		o := map[bool]outcome{true: opOK, false: opUnknown}[ok]
		c.record("GET", p, "", st, start, o, nil, err)
		if !ok {
			c.noteRead("GET "+p, err)
		}
		return o
	case r < 93:
		st, ok, err := statCollection(ctx, c.http, c.node.url, p)
		if st == "file" {
			st = stPresent
		}
		o := map[bool]outcome{true: opOK, false: opUnknown}[ok]
		c.record("PROPFIND", p, "", st, start, o, nil, err)
		if !ok {
			c.noteRead("PROPFIND "+p, err)
		}
		return o
	default:
		o, resp, _, err := c.send(ctx, http.MethodDelete, p, nil, 0, nil, []int{http.StatusNoContent, http.StatusOK}, []int{http.StatusNotFound})
		c.record("DELETE", p, "", stAbsent, start, o, resp, err)
		return o
	}
}

// sharedLock takes an exclusive write lock (timeout 10 s) on the shared
// lock target, holds it for 100 to 400 ms and releases it. Every granted
// lock is kept with when it was certainly held (doubleGrants checks that
// no two overlap). A lock whose LOCK outcome is unknown may block the
// others (423) until it expires.
func (c *faultClient) sharedLock(ctx context.Context) outcome {
	const timeout = 10 * time.Second
	p := c.shared.lockPath
	body := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + c.id + `</D:owner></D:lockinfo>`
	start := time.Now()
	o, resp, data, err := c.send(ctx, "LOCK", p, strings.NewReader(body), int64(len(body)),
		map[string]string{"Content-Type": "application/xml", "Timeout": "Second-10"}, []int{http.StatusOK}, []int{http.StatusLocked})
	op := c.record("LOCK", p, "", "", start, o, resp, err)
	if o != opOK {
		return o
	}
	epoch := c.shared.epoch
	g := lockGrant{Client: c.id, Node: c.node.name, Token: resp.Header.Get("Lock-Token"),
		Call: start.Sub(epoch), Return: op.End.Sub(epoch), Timeout: min(timeout, parseTimeout(data, timeout))}
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(100+c.rnd.IntN(300)) * time.Millisecond):
	}
	g.Release = time.Since(epoch)
	c.shared.grant(g)
	// Released even when the workload is over, so that no lock outlives it.
	start = time.Now()
	o, resp, _, err = c.send(context.WithoutCancel(ctx), "UNLOCK", p, nil, 0, map[string]string{"Lock-Token": g.Token},
		[]int{http.StatusNoContent}, []int{http.StatusConflict})
	uop := c.record("UNLOCK", p, "", "", start, o, resp, err)
	c.checkUnlock(uop, g.Token, op.Start, g.Timeout)
	return o
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if len(k) > 19 {
			k = k[:19]
		}
		out = append(out, k)
	}
	return out
}
