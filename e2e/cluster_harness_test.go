package e2e

// The cluster harness: several real `dfs server` processes forming one
// cluster on loopback, each with its own data directory and (for the Redis
// variant) its own real redis-server, as in a StatefulSet with a Redis
// sidecar per pod.

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testredis"
)

// clusterSecret is the --cluster-secret every test cluster shares.
const clusterSecret = "e2e-cluster-secret-7f3a9c"

// tcluster is a running cluster of dfs processes. nodes[i] is the current
// process of node i (restarts replace it); a node's ID is "node<i+1>".
type tcluster struct {
	t     testing.TB
	st    store
	nodes []*node
	hc    *http.Client // for the harness's own status calls: short timeouts
}

// nodeView is GET /cluster/node: a node's report on itself.
type nodeView struct {
	ID             string `json:"id"`
	URL            string `json:"url"`
	Role           string `json:"role"`
	Leader         string `json:"leader"`
	Term           uint64 `json:"term"`
	CommitIndex    uint64 `json:"commit_index"`
	AppliedIndex   uint64 `json:"applied_index"`
	ContentBacklog struct {
		Files int   `json:"files"`
		Bytes int64 `json:"bytes"`
	} `json:"content_backlog"`
}

// clusterView is GET /cluster/status.
type clusterView struct {
	Leader      string `json:"leader"`
	LeaderURL   string `json:"leader_url"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	Nodes       []struct {
		ID             string  `json:"id"`
		URL            string  `json:"url"`
		Role           string  `json:"role"`
		AppliedIndex   uint64  `json:"applied_index"`
		Lag            *uint64 `json:"lag"`
		RaftAddr       string  `json:"raft_addr"`
		Voter          bool    `json:"voter"`
		ContentBacklog struct {
			Files int   `json:"files"`
			Bytes int64 `json:"bytes"`
		} `json:"content_backlog"`
		Error string `json:"error"`
	} `json:"nodes"`
}

func nodeID(i int) string { return fmt.Sprintf("node%d", i+1) }

// clusterSpecs returns the specs of n nodes that form one cluster with
// --bootstrap-expect n and --peers listing all of them, each with its own
// data directory, free loopback ports and, for the Redis variant, its own
// redis-server. extra is appended to every node's flags.
func clusterSpecs(t testing.TB, n int, st store, extra ...string) []nodeSpec {
	t.Helper()
	specs := make([]nodeSpec, n)
	urls := make([]string, n)
	for i := range specs {
		specs[i] = nodeSpec{ID: nodeID(i), DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t)}
		urls[i] = "http://" + specs[i].HTTPAddr
		if st == redisStore {
			specs[i].RedisURL = testredis.Start(t)
		}
	}
	for i := range specs {
		specs[i].Extra = append([]string{"--cluster-secret", clusterSecret,
			"--bootstrap-expect", strconv.Itoa(n), "--peers", strings.Join(urls, ",")}, extra...)
	}
	return specs
}

// startCluster starts n nodes at once that form a new cluster with
// --bootstrap-expect (no node is special), waits until every one is ready
// and they agree on a leader. Every process is stopped when the test ends.
func startCluster(t testing.TB, n int, st store, extra ...string) *tcluster {
	t.Helper()
	c := &tcluster{t: t, st: st, hc: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	for _, spec := range clusterSpecs(t, n, st, extra...) {
		c.nodes = append(c.nodes, launchNode(t, spec, false))
	}
	start := time.Now()
	c.waitAllReady(t, 60*time.Second)
	c.leader(t)
	c.waitMembers(t, n)
	t.Logf("cluster of %d nodes (%s store) formed and ready in %s", n, st, time.Since(start).Round(time.Millisecond))
	return c
}

// waitAllReady waits until every running node answers /readyz with 200.
func (c *tcluster) waitAllReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	for _, n := range c.running() {
		c.waitReady(t, n, timeout)
	}
}

// waitReady waits until n answers /readyz with 200. Unlike node.waitReady
// every probe has a timeout, so a paused peer cannot hang it.
func (c *tcluster) waitReady(t testing.TB, n *node, timeout time.Duration) {
	t.Helper()
	var last string
	ok := poll(timeout, func() bool {
		select {
		case <-n.exited:
			t.Fatalf("%s exited before becoming ready:\n%s", n.spec.ID, n.logText())
		default:
		}
		status, body, err := c.get(n, "readyz")
		last = fmt.Sprintf("%d %s %v", status, strings.TrimSpace(string(body)), err)
		return err == nil && status == http.StatusOK
	})
	if !ok {
		t.Fatalf("%s not ready after %s (last /readyz: %s)", n.spec.ID, timeout, last)
	}
}

// poll calls cond every 25ms until it holds (true) or timeout passes (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// get sends GET to one of n's node API paths ("readyz", "cluster/node").
func (c *tcluster) get(n *node, path string) (int, []byte, error) {
	resp, err := c.hc.Get(n.URL + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *tcluster) nodeView(n *node) (nodeView, error) {
	var v nodeView
	status, b, err := c.get(n, "cluster/node")
	if err != nil {
		return v, err
	}
	if status != http.StatusOK {
		return v, fmt.Errorf("GET %scluster/node: %d %s", n.URL, status, b)
	}
	return v, json.Unmarshal(b, &v)
}

func (c *tcluster) status(n *node) (clusterView, error) {
	var v clusterView
	status, b, err := c.get(n, "cluster/status")
	if err != nil {
		return v, err
	}
	if status != http.StatusOK {
		return v, fmt.Errorf("GET %scluster/status: %d %s", n.URL, status, b)
	}
	return v, json.Unmarshal(b, &v)
}

// running returns the nodes whose process runs and is not paused.
func (c *tcluster) running() []*node {
	var out []*node
	for _, n := range c.nodes {
		select {
		case <-n.exited:
		default:
			if !n.paused {
				out = append(out, n)
			}
		}
	}
	return out
}

func (c *tcluster) index(n *node) int {
	for i, m := range c.nodes {
		if m == n {
			return i
		}
	}
	c.t.Fatalf("node %s is not (any more) in the cluster", n.spec.ID)
	return -1
}

// leaderAmong waits until the given nodes agree on one leader among them,
// which reports itself as leader, and returns its index in c.nodes.
func (c *tcluster) leaderAmong(t testing.TB, nodes []*node, timeout time.Duration) int {
	t.Helper()
	var last []string
	leader := -1
	ok := poll(timeout, func() bool {
		last = last[:0]
		leader = -1
		var id string
		leaders := 0
		for _, n := range nodes {
			v, err := c.nodeView(n)
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", n.spec.ID, err))
				return false
			}
			last = append(last, fmt.Sprintf("%s: role %s, leader %q, term %d", n.spec.ID, v.Role, v.Leader, v.Term))
			if v.Leader == "" || (id != "" && v.Leader != id) {
				return false
			}
			id = v.Leader
			if v.Role == "leader" {
				leaders++
				if v.ID != id {
					return false
				}
				leader = c.index(n)
			}
		}
		return leaders == 1 && leader >= 0
	})
	if !ok {
		t.Fatalf("no single leader agreed on by %d nodes within %s: %s", len(nodes), timeout, strings.Join(last, "; "))
	}
	return leader
}

// leader waits until every running node agrees on one leader and returns
// its index in c.nodes.
func (c *tcluster) leader(t testing.TB) int {
	t.Helper()
	return c.leaderAmong(t, c.running(), 30*time.Second)
}

// followers returns the running nodes other than the leader.
func (c *tcluster) followers(t testing.TB) []*node {
	t.Helper()
	l := c.nodes[c.leader(t)]
	var out []*node
	for _, n := range c.running() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// waitMembers waits until /cluster/status on every running node lists n
// voters, each with a URL, none unreachable.
func (c *tcluster) waitMembers(t testing.TB, n int) {
	t.Helper()
	var last string
	ok := poll(30*time.Second, func() bool {
		for _, nd := range c.running() {
			v, err := c.status(nd)
			if err != nil {
				last = err.Error()
				return false
			}
			b, _ := json.Marshal(v)
			last = nd.spec.ID + ": " + string(b)
			voters := 0
			for _, ns := range v.Nodes {
				if ns.URL == "" || ns.Role == "unreachable" || ns.Role == "" {
					return false
				}
				if ns.Voter {
					voters++
				}
			}
			if voters != n || len(v.Nodes) != n {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the cluster does not list %d reachable voters with URLs: %s", n, last)
	}
}

// pause stops n with SIGSTOP: its process keeps its sockets, which accept
// connections and buffer bytes but never answer, as across a partition.
func (n *node) pause(t testing.TB) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", n.spec.ID, err)
	}
	n.paused = true
}

// resume continues a paused node with SIGCONT.
func (n *node) resume(t testing.TB) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", n.spec.ID, err)
	}
	n.paused = false
}

// terminate sends SIGTERM (a graceful shutdown: a leader hands leadership
// over first) and waits for the process to exit.
func (n *node) terminate(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(45 * time.Second):
		t.Fatalf("%s did not exit within 45s of SIGTERM", n.spec.ID)
	}
}

// restartNode restarts node i on its data directory, addresses and store
// (killing it first if it runs) and waits until it is ready.
func (c *tcluster) restartNode(t testing.TB, i int) *node {
	t.Helper()
	c.nodes[i].kill(t)
	c.nodes[i] = launchNode(t, c.nodes[i].spec, false)
	c.waitReady(t, c.nodes[i], 60*time.Second)
	return c.nodes[i]
}

// clusterListing is a normalized PROPFIND Depth: infinity of / (allprop)
// through one node: every href with its properties, lockdiscovery and
// quota (which follow the clock and the disk) aside.
func clusterListing(d *dav) props {
	d.t.Helper()
	got := d.listing()
	for _, m := range got {
		delete(m, "DAV: quota-available-bytes")
		delete(m, "DAV: quota-used-bytes")
	}
	return got
}

// isCollection tells a collection's properties from a file's.
func isCollection(p map[string]string) bool {
	return strings.Contains(p["DAV: resourcetype"], "collection")
}

// waitConverged waits until the given nodes (all running nodes if none are
// given) have applied the same Raft index as the leader, have no content
// backlog and hold every file's content on their own disk, and checks they
// list the same namespace with the same properties and serve every file
// with the same bytes. A comparison that finds a difference is repeated (at
// most 5 times, after waiting for the indexes again): a write the cluster
// was still finishing, e.g. one a client gave up on, may land in between.
// It returns the namespace's files, path to SHA-256.
func (c *tcluster) waitConverged(t *testing.T, nodes ...*node) map[string]string {
	t.Helper()
	if len(nodes) == 0 {
		nodes = c.running()
	}
	start := time.Now()
	leader := c.nodes[c.leaderAmong(t, nodes, 30*time.Second)]
	var files map[string]string
	var entries int
	var problems []string
	for attempt := 1; attempt <= 5; attempt++ {
		c.waitApplied(t, leader, nodes)
		files, entries, problems = c.compare(t, leader, nodes)
		if len(problems) == 0 {
			break
		}
		t.Logf("comparison %d: nodes differ, comparing again: %s", attempt, strings.Join(problems, "; "))
	}
	if len(problems) > 0 {
		t.Fatalf("nodes did not converge: %s", strings.Join(problems, "\n  "))
	}
	// Every node holds every file's content on its own disk: content
	// replication has copied it, not only fetched it on demand. An object
	// is named by its SHA-256 (objects checks each one hashes to its name).
	var missing []string
	ok := poll(60*time.Second, func() bool {
		missing = missing[:0]
		for _, n := range nodes {
			have := objects(t, n)
			for href, h := range files {
				if _, ok := have[h]; !ok {
					missing = append(missing, n.spec.ID+":"+href)
				}
			}
		}
		return len(missing) == 0
	})
	if !ok {
		sort.Strings(missing)
		t.Fatalf("content still missing from nodes' disks after 60s: %q", missing)
	}
	t.Logf("%d nodes converged: %d entries, %d files (took %s)", len(nodes), entries, len(files), time.Since(start).Round(time.Millisecond))
	return files
}

// waitApplied waits until every node has applied what the leader has and
// has no content backlog.
func (c *tcluster) waitApplied(t *testing.T, leader *node, nodes []*node) {
	t.Helper()
	var last string
	ok := poll(60*time.Second, func() bool {
		lv, err := c.nodeView(leader)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, n := range nodes {
			v, err := c.nodeView(n)
			if err != nil {
				last = err.Error()
				return false
			}
			if v.AppliedIndex != lv.AppliedIndex || v.ContentBacklog.Files != 0 {
				last = fmt.Sprintf("%s: applied %d (leader %s: %d), content backlog %d files",
					n.spec.ID, v.AppliedIndex, leader.spec.ID, lv.AppliedIndex, v.ContentBacklog.Files)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("nodes did not catch up within 60s: %s", last)
	}
}

// compare lists the namespace through the leader and reads every file from
// it, then checks every other node lists the same and serves the same
// bytes. It returns the files (path to SHA-256), the number of entries
// and what differs.
func (c *tcluster) compare(t *testing.T, leader *node, nodes []*node) (map[string]string, int, []string) {
	t.Helper()
	var problems []string
	ld := newDAV(t, leader)
	want := clusterListing(ld)
	files := map[string]string{}
	for href, p := range want {
		if !isCollection(p) {
			status, h, size, _ := ld.get(href)
			if status != http.StatusOK || strconv.FormatInt(size, 10) != p["DAV: getcontentlength"] {
				problems = append(problems, fmt.Sprintf("GET %s on the leader %s: status %d, %d bytes; PROPFIND says %s bytes",
					href, leader.spec.ID, status, size, p["DAV: getcontentlength"]))
			}
			files[href] = h
		}
	}
	for _, n := range nodes {
		if n == leader {
			continue
		}
		d := newDAV(t, n)
		for _, line := range listingDiff(want, clusterListing(d)) {
			problems = append(problems, fmt.Sprintf("%s beside the leader %s: %s", n.spec.ID, leader.spec.ID, line))
		}
		for href, h := range files {
			status, got, _, _ := d.get(href)
			if status != http.StatusOK || got != h {
				problems = append(problems, fmt.Sprintf("GET %s on %s: status %d, sha256 %.16s; the leader %s serves %.16s",
					href, n.spec.ID, status, got, leader.spec.ID, h))
			}
		}
	}
	sort.Strings(problems)
	return files, len(want), problems
}

// listingDiff describes how got differs from want.
func listingDiff(want, got props) []string {
	var lines []string
	for href, w := range want {
		g, ok := got[href]
		switch {
		case !ok:
			lines = append(lines, "missing "+href)
		case !reflect.DeepEqual(w, g):
			lines = append(lines, fmt.Sprintf("differs %s: %v, want %v", href, g, w))
		}
	}
	for href := range got {
		if _, ok := want[href]; !ok {
			lines = append(lines, "extra "+href)
		}
	}
	sort.Strings(lines)
	return lines
}

// versionData returns n pseudo-random bytes determined by all 64 bits of
// seed (randData uses only 16), so distinct versions never share content.
func versionData(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	key[31] = 0xd5
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// treeHashes maps a local tree's files to "/"+prefix+relative path and
// hex SHA-256, as waitConverged reports them.
func treeHashes(t *testing.T, root, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rel, h := range treeDigest(t, root) {
		out["/"+prefix+rel] = hex.EncodeToString(h[:])
	}
	return out
}

// subset fails unless every entry of want is in got with the same value.
func subset(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var bad []string
	for k, v := range want {
		if got[k] != v {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("%s: %d files missing or different: %q", what, len(bad), bad)
	}
}

// dirSize sums the sizes of the regular files under root.
func dirSize(t testing.TB, root string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// keys returns a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
