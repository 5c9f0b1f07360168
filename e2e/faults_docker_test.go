//go:build docker

// The fault suite's containers (TestFaults, faults_test.go): each dfs node
// is laid out like a pod of the Helm chart. A sandbox container owns the
// node's network namespace (as a pod's pause container does): it is the
// one on the suite's bridge network, at a fixed address and under the
// node's DNS name (dfs-0, dfs-1, ...), and runs nothing but an idle
// redis-server that listens on no TCP port (the Redis image is the only
// one at hand that holds a long-running program besides dfs). The node's Redis
// (with its own volume for the append-only file) and its dfs container
// (with its own volume for /data) run in that namespace (--network
// container:...), so either can be killed, restarted or replaced while
// the other keeps its network, as a pod's containers can. dfs gets the
// chart's environment contract: DFS_BOOTSTRAP_EXPECT with DFS_PEERS,
// DFS_ADVERTISE_URL (the DNS name) and DFS_RAFT_ADVERTISE (the node's IP,
// as the chart's pod IP).
//
// Everything the suite creates is named <prefix><name> with a per-run
// random prefix and carries the label dfs.e2e=faults, so that leftovers of
// a run that could not clean up (a SIGKILLed test binary) are removed by
// the next run before it starts.
//
// A node's /data is not a docker volume but a size-limited tmpfs the test
// process mounts on the host (faultsDataRoot/<prefix><node>) and binds into
// the dfs container: the disk-full nemesis fills it from the host, which a
// volume on the host's big disk would not allow. Those mounts are swept
// like the containers: at the end, on failure, on SIGINT, and by the next
// run (everything mounted under faultsDataRoot).
//
// dfs reaches its Redis through a delaying proxy (e2e/faulttool proxy) in
// the sandbox, on 127.0.0.1:6380: the redis-latency nemesis slows it down.
// netem on the namespace's lo would do the same without a proxy, but this
// kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set).

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	faultsLabel = "dfs.e2e=faults"
	// The suite's networks. Fixed subnets so that a node reconnected after
	// a partition gets its address back (Raft knows peers by address).
	// faultsSubnet2 holds the minority of a 3/2 split.
	faultsSubnet  = "10.213.0.0/24"
	faultsSubnet2 = "10.213.1.0/24"

	// faultsDataSize is each node's /data tmpfs: the workload's content
	// (uploads up to 24 MiB), the Raft log and snapshots fit comfortably,
	// and so do the old versions a follower keeps: content pushed to it
	// stays pinned for 5 minutes whatever --gc-grace says (pushPinTTL), and
	// a 5-node run reached 496 MiB on followers (the leader: a few MiB)
	// within 4 minutes on 512 MiB. It is host memory only as far as it is
	// used.
	faultsDataSize = 1 << 30
	// faultsDataSource names the suite's tmpfs mounts (the source column
	// of /proc/self/mountinfo).
	faultsDataSource = "dfsf-data"
	// dfsUID owns /data in the dfs image (Dockerfile: USER 65532).
	dfsUID = 65532
	// The delaying proxy in front of each node's Redis, and the file that
	// sets its delay (the sandbox's own /dev/shm).
	redisProxyAddr = "127.0.0.1:6380"
	redisDelayFile = "/dev/shm/redis-delay"
)

// faultsDataRoot holds every node's /data mount, of this run and of
// killed runs (swept at the next start).
var faultsDataRoot = filepath.Join(os.TempDir(), "dfs-e2e-faults")

// dockerRun runs the docker CLI, bounded by timeout, and returns its
// combined output.
func dockerRun(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// faultNode is one dfs node: its three containers and two volumes.
type faultNode struct {
	name    string // the node's ID and DNS name: dfs-0, dfs-1, ...
	ip      string // on the main network
	sandbox string // container owning the network namespace
	redis   string // the node's Redis, and its volume
	dfs     string // the dfs container
	data    string // its /data: a tmpfs mounted on the host, bound into the container
	url     string // http://<ip>:8080, reachable from the test process

	// partitioned is where the node's namespace is attached: "" (the main
	// network), "none" (no network) or "minority" (the second network).
	partitioned string
}

// faultCluster is one set of nodes on the suite's private networks.
type faultCluster struct {
	t      *testing.T
	prefix string
	net    string // main network
	net2   string // the minority's network during a 3/2 split
	secret string
	dfsImg string
	redImg string
	expect int          // --bootstrap-expect: the initial size
	peers  []string     // --peers: the initial nodes' URLs by DNS name
	nodes  []*faultNode // every node this cluster may run (dfs-0 ... dfs-4), started or not
	http   *http.Client
	extra  []string // extra dfs server flags for every node
	// dfsMemory and redisMemory are docker run --memory limits of the
	// containers ("": none), e.g. the Helm chart's.
	dfsMemory, redisMemory string
	cleanMu                sync.Mutex
	cleaned                bool

	panicMu sync.Mutex
	panics  int // lines of dfs logs that report a panic (scanPanics)
}

// newFaultCluster removes leftovers of earlier runs, creates the networks
// and registers the removal of everything this run creates (end of test,
// failure, SIGINT/SIGTERM). It starts no node.
func newFaultCluster(ctx context.Context, t *testing.T, size int, dfsImg, redImg string) *faultCluster {
	t.Helper()
	if _, err := dockerRun(ctx, 30*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Fatalf("the Docker daemon is needed: %v", err)
	}
	if _, err := dockerRun(ctx, 30*time.Second, "image", "inspect", "--format", "{{.Id}}", dfsImg, redImg); err != nil {
		t.Fatalf("images %s and %s are needed (make images IMAGE=%s REDIS_IMAGE=%s builds them): %v", dfsImg, redImg, dfsImg, redImg, err)
	}
	removeFaultLeftovers(ctx, t)

	rnd := make([]byte, 4)
	secret := make([]byte, 24)
	_, _ = rand.Read(rnd)
	_, _ = rand.Read(secret)
	c := &faultCluster{
		t: t, prefix: "dfsf-" + hex.EncodeToString(rnd) + "-",
		secret: hex.EncodeToString(secret), dfsImg: dfsImg, redImg: redImg,
		expect: size,
		http:   &http.Client{Timeout: 5 * time.Second},
		extra: []string{
			// Snapshots and log compaction every few hundred entries, so
			// that restarts, whole-node kills (Redis loses its last
			// second) and joins go through snapshots, not only log replay.
			"--raft-snapshot-threshold", "256", "--raft-snapshot-interval", "5s", "--raft-trailing-logs", "128",
			// Log segments small enough that compaction deletes some in a
			// run (only whole segments are deleted; the default 64 MiB
			// would never fill, and raft-wal preallocates each on the
			// tmpfs): a follower cut off long enough (partition-long)
			// must then install a snapshot.
			"--raft-wal-segment-size", "65536",
			// Garbage collection in every run, with a short grace: it races
			// with uploads, content fetches and snapshot installs, and
			// bounds the old versions on the nodes' small /data.
			"--gc-interval", "10s", "--gc-grace", "30s",
		},
	}
	c.net, c.net2 = c.prefix+"net", c.prefix+"minority"

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "%v: removing the fault suite's containers, networks and volumes (%s*)\n", s, c.prefix)
			c.remove()
			os.Exit(1)
		case <-stop:
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.remove()
		signal.Stop(sigs)
		close(stop)
	})

	for _, n := range []struct{ name, subnet string }{{c.net, faultsSubnet}, {c.net2, faultsSubnet2}} {
		if _, err := dockerRun(ctx, time.Minute, "network", "create", "--driver", "bridge", "--subnet", n.subnet,
			"--label", faultsLabel, n.name); err != nil {
			t.Fatal(err)
		}
	}
	for i := range max(size, 5) {
		name := fmt.Sprintf("dfs-%d", i)
		n := &faultNode{name: name, ip: nodeIP(i), sandbox: c.prefix + name + "-sandbox", redis: c.prefix + name + "-redis", dfs: c.prefix + name,
			data: filepath.Join(faultsDataRoot, c.prefix+name)}
		n.url = "http://" + n.ip + ":8080"
		c.nodes = append(c.nodes, n)
		if i < size {
			c.peers = append(c.peers, "http://"+name+":8080")
		}
	}
	return c
}

// removeFaultLeftovers removes every container, network, volume and data
// mount an earlier run left behind (found by label, and under
// faultsDataRoot).
func removeFaultLeftovers(ctx context.Context, t *testing.T) {
	t.Helper()
	if ids, _ := dockerRun(ctx, time.Minute, "ps", "-aq", "--filter", "label="+faultsLabel); ids != "" {
		t.Logf("removing %d containers left by an earlier run", len(strings.Fields(ids)))
		if _, err := dockerRun(ctx, 2*time.Minute, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := dockerRun(ctx, time.Minute, "network", "ls", "-q", "--filter", "label="+faultsLabel); ids != "" {
		if _, err := dockerRun(ctx, time.Minute, append([]string{"network", "rm"}, strings.Fields(ids)...)...); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := dockerRun(ctx, time.Minute, "volume", "ls", "-q", "--filter", "label="+faultsLabel); ids != "" {
		if _, err := dockerRun(ctx, time.Minute, append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := unmountData(faultsDataRoot); err != nil {
		t.Fatalf("data mounts left by an earlier run: %v", err)
	}
}

// dataMounts returns the suite's tmpfs mount points at or under dir.
func dataMounts(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		// ID parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 || g[0] != "tmpfs" || g[1] != faultsDataSource {
			continue
		}
		if mp := f[4]; mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

// unmountData unmounts the suite's data mounts at or under dir and removes
// dir. The containers using them are gone by then; a lazy unmount still
// lets go of one a dying container holds.
func unmountData(dir string) error {
	mps, err := dataMounts(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// mountData gives the node an empty, size-limited /data unless it has one.
func (c *faultCluster) mountData(n *faultNode) error {
	if mps, err := dataMounts(n.data); err != nil || len(mps) > 0 {
		return err
	}
	if err := os.MkdirAll(n.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	opts := fmt.Sprintf("size=%d,uid=%d,gid=%d,mode=0750", faultsDataSize, dfsUID, dfsUID)
	if err := syscall.Mount(faultsDataSource, n.data, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mount a tmpfs on %s (the suite runs as root): %w", n.data, err)
	}
	return nil
}

// remove removes everything with this run's prefix. It runs on its own
// context: the test's may be over.
func (c *faultCluster) remove() {
	c.cleanMu.Lock()
	defer c.cleanMu.Unlock()
	if c.cleaned {
		return
	}
	c.cleaned = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	if ids, _ := dockerRun(ctx, time.Minute, "ps", "-aq", "--filter", "name="+c.prefix, "--filter", "label="+faultsLabel); ids != "" {
		if _, err := dockerRun(ctx, 2*time.Minute, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if ids, _ := dockerRun(ctx, time.Minute, "volume", "ls", "-q", "--filter", "name="+c.prefix); ids != "" {
		if _, err := dockerRun(ctx, time.Minute, append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range c.nodes {
		errs = append(errs, unmountData(n.data))
	}
	for _, n := range []string{c.net, c.net2} {
		if _, err := dockerRun(ctx, time.Minute, "network", "rm", n); err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "fault suite cleanup: %v\n", err)
	}
}

func (c *faultCluster) dumpLogs() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range c.nodes {
		if out, err := dockerRun(ctx, 20*time.Second, "logs", "--tail", "40", n.dfs); err == nil {
			c.t.Logf("--- %s (last 40 log lines)\n%s", n.name, out)
		}
		// What the node said about its metadata store, over the whole run.
		if out, err := dockerRun(ctx, 20*time.Second, "logs", n.dfs); err == nil {
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, `"component":"fsm"`) && !strings.Contains(l, "snapshot taken") {
					lines = append(lines, l)
				}
			}
			if len(lines) > 0 {
				c.t.Logf("--- %s: its state machine's log lines other than snapshots (last 30 of %d)\n%s",
					n.name, len(lines), strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	}
}

// nodeIP is the fixed address of node i on the main network.
func nodeIP(i int) string { return fmt.Sprintf("10.213.0.%d", 10+i) }

// addNode creates and starts node i's containers, volume and data mount.
// They are created if missing: starting a node whose volume and data were
// removed gives an empty node.
func (c *faultCluster) addNode(ctx context.Context, i int) error {
	n := c.nodes[i]
	name := n.name
	n.partitioned = ""
	if err := c.mountData(n); err != nil {
		return err
	}
	tool, err := buildFaultTool()
	if err != nil {
		return err
	}
	// The sandbox: an idle redis-server on no TCP port (only a socket
	// nobody uses, as it exits when it listens nowhere), nothing on disk.
	if _, err := dockerRun(ctx, 2*time.Minute, "run", "-d", "--name", n.sandbox, "--label", faultsLabel,
		"--network", c.net, "--ip", n.ip, "--network-alias", name, "--hostname", name,
		"--mount", "type=tmpfs,destination=/data", c.redImg,
		"--port", "0", "--unixsocket", "/dev/shm/sandbox.sock", "--appendonly", "no", "--save", ""); err != nil {
		return err
	}
	// The Redis proxy lives with the namespace, not with Redis or dfs:
	// either can be killed or replaced under it.
	if _, err := dockerRun(ctx, time.Minute, "cp", tool, n.sandbox+":/faulttool"); err != nil {
		return err
	}
	if _, err := dockerRun(ctx, time.Minute, "exec", "-d", n.sandbox, "/faulttool", "proxy", redisProxyAddr, "127.0.0.1:6379", redisDelayFile); err != nil {
		return err
	}
	if err := c.startRedis(ctx, n); err != nil {
		return err
	}
	args := []string{"run", "-d", "--name", n.dfs, "--label", faultsLabel}
	args = append(args, memoryArgs(c.dfsMemory)...)
	args = append(args, "--network", "container:"+n.sandbox, "-v", n.data+":/data",
		"-e", "DFS_ID="+name,
		"-e", "DFS_HTTP_ADDR=:8080",
		"-e", "DFS_RAFT_ADDR=0.0.0.0:7000",
		"-e", "DFS_ADVERTISE_URL=http://"+name+":8080",
		"-e", "DFS_RAFT_ADVERTISE="+n.ip+":7000",
		"-e", fmt.Sprintf("DFS_BOOTSTRAP_EXPECT=%d", c.expect),
		"-e", "DFS_PEERS="+strings.Join(c.peers, ","),
		"-e", "DFS_CLUSTER_SECRET="+c.secret,
		"-e", "DFS_REDIS_URL=redis://"+redisProxyAddr+"/0",
		"-e", "DFS_LOG_FORMAT=json",
		"-e", "DFS_ADDR=http://127.0.0.1:8080",
		c.dfsImg, "server")
	args = append(args, c.extra...)
	_, err = dockerRun(ctx, 2*time.Minute, args...)
	return err
}

// startRedis creates the node's Redis container in its sandbox's network
// namespace (and its volume, if missing: a fresh volume is an empty Redis)
// and waits until it answers.
func (c *faultCluster) startRedis(ctx context.Context, n *faultNode) error {
	if _, err := dockerRun(ctx, time.Minute, "volume", "create", "--label", faultsLabel, n.redis); err != nil {
		return err
	}
	args := append([]string{"run", "-d", "--name", n.redis, "--label", faultsLabel}, memoryArgs(c.redisMemory)...)
	args = append(args, "--network", "container:"+n.sandbox, "-v", n.redis+":/data", c.redImg,
		"--bind", "127.0.0.1", "--port", "6379", "--protected-mode", "yes", "--save", "")
	if _, err := dockerRun(ctx, 2*time.Minute, args...); err != nil {
		return err
	}
	// Redis must accept connections before dfs opens its store.
	if err := c.waitRedis(ctx, n); err != nil {
		return fmt.Errorf("%s: Redis not up: %w", n.name, err)
	}
	return nil
}

// redisCLI runs redis-cli in the node's Redis container.
func (c *faultCluster) redisCLI(ctx context.Context, n *faultNode, args ...string) (string, error) {
	return dockerRun(ctx, 20*time.Second, append([]string{"exec", n.redis, "/usr/local/bin/redis-cli"}, args...)...)
}

// removeNode removes a node's containers and, if wipe, its volume and
// data. The dfs container's log is scanned for panics first.
func (c *faultCluster) removeNode(ctx context.Context, n *faultNode, wipe bool) error {
	c.scanPanics(ctx, n)
	if _, err := dockerRun(ctx, time.Minute, "rm", "-f", n.dfs, n.redis, n.sandbox); err != nil {
		return err
	}
	if wipe {
		if _, err := dockerRun(ctx, time.Minute, "volume", "rm", n.redis); err != nil {
			return err
		}
		return unmountData(n.data)
	}
	return nil
}

// removeMember runs `dfs cluster remove ID` with the product CLI inside
// another node's container (its environment holds the secret).
func (c *faultCluster) removeMember(ctx context.Context, via *faultNode, id string) error {
	_, err := dockerRun(ctx, 45*time.Second, "exec", via.dfs, "/dfs", "cluster", "remove", "--timeout", "30s", id)
	return err
}

// isolate detaches a node's namespace from the main network.
func (c *faultCluster) isolate(ctx context.Context, n *faultNode) error {
	if n.partitioned != "" {
		return nil
	}
	if _, err := dockerRun(ctx, time.Minute, "network", "disconnect", c.net, n.sandbox); err != nil {
		return err
	}
	n.partitioned = "none"
	return nil
}

// toMinority moves a node to the minority network, where it keeps its DNS
// name: nodes moved there reach each other's HTTP API by name, and nothing
// on the main network reaches them.
func (c *faultCluster) toMinority(ctx context.Context, n *faultNode) error {
	if err := c.isolate(ctx, n); err != nil {
		return err
	}
	if _, err := dockerRun(ctx, time.Minute, "network", "connect", "--alias", n.name, c.net2, n.sandbox); err != nil {
		return err
	}
	n.partitioned = "minority"
	return nil
}

// heal puts a node back on the main network with its address and name.
func (c *faultCluster) heal(ctx context.Context, n *faultNode) error {
	switch n.partitioned {
	case "":
		return nil
	case "minority":
		if _, err := dockerRun(ctx, time.Minute, "network", "disconnect", c.net2, n.sandbox); err != nil {
			return err
		}
	}
	if _, err := dockerRun(ctx, time.Minute, "network", "connect", "--ip", n.ip, "--alias", n.name, c.net, n.sandbox); err != nil {
		return err
	}
	n.partitioned = ""
	return nil
}

// pollUntil calls f every 200 ms until it returns nil, or returns its last
// error once bound has passed or ctx ends.
func pollUntil(ctx context.Context, bound time.Duration, f func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", bound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// memoryArgs are the docker run flags of a memory limit ("": none). Swap
// is limited alike, so the limit is one of memory, not of memory + swap.
func memoryArgs(limit string) []string {
	if limit == "" {
		return nil
	}
	return []string{"--memory", limit, "--memory-swap", limit}
}
