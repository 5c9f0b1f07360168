//go:build docker

// The compose cluster (../compose.yaml) run in Docker: `make e2e`
// builds the images (dfs:dev from bin/dfs, dfs-redis:dev from this
// machine's redis-server) and runs this test. It fails, never skips, when
// Docker, compose or the images are missing: the build tag is the opt-in.

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/dfs-project/dfs/internal/testport"
)

// dockerStatus is the part of GET /cluster/status the test reads.
type dockerStatus struct {
	Leader      string `json:"leader"`
	CommitIndex uint64 `json:"commit_index"`
	Nodes       []struct {
		ID           string `json:"id"`
		Role         string `json:"role"`
		Voter        bool   `json:"voter"`
		AppliedIndex uint64 `json:"applied_index"`
		Lag          int64  `json:"lag"`
	} `json:"nodes"`
}

// dockerCluster is one compose project started from ../compose.yaml.
type dockerCluster struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose", with -p and -f
	env     []string // the process environment plus the compose variables
	ports   map[string]int
	http    *http.Client

	downOnce sync.Once
}

func TestDockerCompose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startDockerCluster(ctx, t)

	// All three nodes ready, one leader, three voters, seen from every node.
	for _, id := range []string{"dfs-1", "dfs-2", "dfs-3"} {
		c.waitReady(ctx, id, 2*time.Minute)
	}
	leader := c.waitLeader(ctx, []string{"dfs-1", "dfs-2", "dfs-3"}, "", 30*time.Second)
	t.Logf("leader: %s", leader)

	// Writes through node 2 (a follower forwards them), reads through 1 and 3.
	big := make([]byte, 3<<20+17)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	small := []byte("hello from the compose cluster\n")
	c.do(ctx, "dfs-2", "MKCOL", "/docs/", nil, http.StatusCreated)
	c.do(ctx, "dfs-2", http.MethodPut, "/docs/big.bin", big, http.StatusCreated)
	c.do(ctx, "dfs-2", http.MethodPut, "/docs/hello.txt", small, http.StatusCreated)
	for _, id := range []string{"dfs-1", "dfs-3"} {
		c.expectFile(ctx, id, "/docs/big.bin", big)
		c.expectFile(ctx, id, "/docs/hello.txt", small)
		listing := c.do(ctx, id, "PROPFIND", "/docs/", nil, http.StatusMultiStatus)
		for _, want := range []string{"/docs/big.bin", "/docs/hello.txt", fmt.Sprintf("<D:getcontentlength>%d<", len(big))} {
			if !strings.Contains(string(listing), want) {
				t.Fatalf("PROPFIND /docs/ through %s lacks %q:\n%s", id, want, listing)
			}
		}
	}

	// Kill the leader's container: the two others elect a new leader, which
	// takes a write (through either survivor) within a bound.
	killed := leader
	c.docker(ctx, "kill", c.container(ctx, killed))
	var survivors []string
	for _, id := range []string{"dfs-1", "dfs-2", "dfs-3"} {
		if id != killed {
			survivors = append(survivors, id)
		}
	}
	start := time.Now()
	after := []byte("written while " + killed + " was down\n")
	c.putWithin(ctx, survivors[1], "/docs/after.txt", after, 30*time.Second)
	newLeader := c.waitLeader(ctx, survivors, killed, 30*time.Second)
	t.Logf("%s killed: %s leads, a write went through after %v", killed, newLeader, time.Since(start).Round(time.Millisecond))
	c.expectFile(ctx, survivors[0], "/docs/after.txt", after)

	// Restart it: it rejoins with its volumes, catches up and serves
	// everything, including what was written while it was down.
	c.docker(ctx, "start", c.container(ctx, killed))
	c.waitReady(ctx, killed, 90*time.Second)
	c.expectFile(ctx, killed, "/docs/after.txt", after)
	c.expectFile(ctx, killed, "/docs/big.bin", big)
	c.waitConverged(ctx, 60*time.Second)
}

// startDockerCluster starts ../compose.yaml as a new project on free
// 127.0.0.1 ports, with a fresh cluster secret, and registers its removal
// (containers, network and volumes) for the end of the test, whatever the
// outcome, and for SIGINT/SIGTERM.
func startDockerCluster(ctx context.Context, t *testing.T) *dockerCluster {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("the Docker daemon is not reachable (docker info: %v):\n%s", err, out)
	}
	composeCmd := dockerComposeCommand(ctx, t)
	dfsImage := envOr("DFS_E2E_IMAGE", envOr("DFS_IMAGE", "dfs:dev"))
	redisImage := envOr("DFS_E2E_REDIS_IMAGE", envOr("DFS_REDIS_IMAGE", "dfs-redis:dev"))
	if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", dfsImage, redisImage).CombinedOutput(); err != nil {
		t.Fatalf("images %s and %s are needed (make images builds them): %v\n%s", dfsImage, redisImage, err, out)
	}
	composeFile, err := filepath.Abs("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}

	suffix := make([]byte, 4)
	secret := make([]byte, 24)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	project := "dfs-e2e-" + hex.EncodeToString(suffix)
	envFile := filepath.Join(t.TempDir(), "dfs.env")
	if err := os.WriteFile(envFile, []byte("DFS_CLUSTER_SECRET="+hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &dockerCluster{
		t:       t,
		compose: append(composeCmd, "-p", project, "-f", composeFile),
		ports:   map[string]int{},
		http:    &http.Client{Timeout: 30 * time.Second},
		env: append(os.Environ(),
			"DFS_IMAGE="+dfsImage, "DFS_REDIS_IMAGE="+redisImage,
			"DFS_ENV_FILE="+envFile, "DFS_BIND=127.0.0.1"),
	}
	for i, id := range []string{"dfs-1", "dfs-2", "dfs-3"} {
		c.ports[id] = freePort(t)
		c.env = append(c.env, fmt.Sprintf("DFS_PORT_%d=%d", i+1, c.ports[id]))
	}

	// Removal first, so that a failure anywhere below still removes
	// whatever part of the project exists.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopWatch := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "%v: removing compose project %s\n", s, project)
			c.down()
			os.Exit(1)
		case <-stopWatch:
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			c.logs()
		}
		c.down()
		signal.Stop(sigs)
		close(stopWatch)
	})

	t.Logf("compose project %s, HTTP ports %v", project, c.ports)
	c.run(ctx, 3*time.Minute, "up", "-d")
	return c
}

// dockerComposeCommand finds Compose: the docker CLI plugin (v2) or the
// standalone docker-compose (v1 or v2).
func dockerComposeCommand(ctx context.Context, t *testing.T) []string {
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if exec.CommandContext(ctx, "docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("Docker Compose is needed: neither `docker compose` nor `docker-compose` works")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func freePort(t *testing.T) int { return testport.Port(t) }

// run runs a compose command and fails the test if it fails.
func (c *dockerCluster) run(ctx context.Context, timeout time.Duration, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.compose[0], append(c.compose[1:], args...)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", strings.Join(c.compose, " "), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// down removes the project's containers, network and volumes. It runs on
// its own context: the test's may be over.
func (c *dockerCluster) down() {
	c.downOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.compose[0], append(c.compose[1:], "down", "-v", "--remove-orphans", "--timeout", "10")...)
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			c.t.Errorf("compose down: %v\n%s", err, out)
		}
	})
}

// logs prints the end of every container's log (after a failure).
func (c *dockerCluster) logs() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.compose[0], append(c.compose[1:], "logs", "--no-color", "--tail", "60")...)
	cmd.Env = c.env
	out, _ := cmd.CombinedOutput()
	c.t.Logf("compose logs:\n%s", out)
}

func (c *dockerCluster) docker(ctx context.Context, args ...string) {
	c.t.Helper()
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// container returns the ID of a service's container (a dfs node's dfs-N).
func (c *dockerCluster) container(ctx context.Context, service string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.run(ctx, time.Minute, "ps", "-q", service))
	if id == "" || strings.ContainsAny(id, " \n") {
		c.t.Fatalf("container of service %s: %q", service, id)
	}
	return id
}

func (c *dockerCluster) url(node, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", c.ports[node], path)
}

// request sends one request to a node's published port.
func (c *dockerCluster) request(ctx context.Context, node, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(node, path), rd)
	if err != nil {
		return 0, nil, err
	}
	if method == "PROPFIND" {
		req.Header.Set("Depth", "1")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// do sends a request and fails the test unless it gets the wanted status.
func (c *dockerCluster) do(ctx context.Context, node, method, path string, body []byte, want int) []byte {
	c.t.Helper()
	code, data, err := c.request(ctx, node, method, path, body)
	if err != nil || code != want {
		c.t.Fatalf("%s %s through %s: %d %v, want %d\n%.500s", method, path, node, code, err, want, data)
	}
	return data
}

func (c *dockerCluster) expectFile(ctx context.Context, node, path string, want []byte) {
	c.t.Helper()
	got := c.do(ctx, node, http.MethodGet, path, nil, http.StatusOK)
	if !bytes.Equal(got, want) {
		c.t.Fatalf("GET %s through %s: %d bytes that differ from the %d written", path, node, len(got), len(want))
	}
}

// poll calls f every 250 ms until it returns nil or the bound passes.
func (c *dockerCluster) poll(ctx context.Context, bound time.Duration, what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.t.Fatalf("%s: not within %v: %v", what, bound, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *dockerCluster) waitReady(ctx context.Context, node string, bound time.Duration) {
	c.t.Helper()
	c.poll(ctx, bound, node+" ready", func() error {
		code, body, err := c.request(ctx, node, http.MethodGet, "/readyz", nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz %d %s", code, bytes.TrimSpace(body))
		}
		return err
	})
}

func (c *dockerCluster) status(ctx context.Context, node string) (dockerStatus, error) {
	var st dockerStatus
	code, body, err := c.request(ctx, node, http.MethodGet, "/cluster/status", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("/cluster/status on %s: %d %s", node, code, body)
	}
	return st, json.Unmarshal(body, &st)
}

// waitLeader waits until every node in nodes reports the same leader, other
// than notLeader, among three voters of which exactly one is leading
// (the killed node shows as unreachable), and returns it.
func (c *dockerCluster) waitLeader(ctx context.Context, nodes []string, notLeader string, bound time.Duration) string {
	c.t.Helper()
	var leader string
	c.poll(ctx, bound, "one leader seen by "+strings.Join(nodes, ", "), func() error {
		leader = ""
		for _, n := range nodes {
			st, err := c.status(ctx, n)
			if err != nil {
				return err
			}
			voters, leaders := 0, 0
			for _, m := range st.Nodes {
				if m.Voter {
					voters++
				}
				if m.Role == "leader" {
					leaders++
				}
			}
			switch {
			case st.Leader == "" || st.Leader == notLeader:
				return fmt.Errorf("%s reports leader %q", n, st.Leader)
			case leader != "" && st.Leader != leader:
				return fmt.Errorf("leaders disagree: %s and %s", leader, st.Leader)
			case voters != 3 || leaders != 1:
				return fmt.Errorf("%s reports %d voters and %d leaders, want 3 and 1: %+v", n, voters, leaders, st.Nodes)
			}
			leader = st.Leader
		}
		return nil
	})
	return leader
}

// putWithin retries a PUT (503s and refused connections while no leader is
// known) until it is acknowledged, failing after bound.
func (c *dockerCluster) putWithin(ctx context.Context, node, path string, body []byte, bound time.Duration) {
	c.t.Helper()
	c.poll(ctx, bound, "PUT "+path+" through "+node, func() error {
		code, data, err := c.request(ctx, node, http.MethodPut, path, body)
		if err == nil && code != http.StatusCreated && code != http.StatusNoContent {
			err = fmt.Errorf("%d %s", code, bytes.TrimSpace(data))
		}
		return err
	})
}

// waitConverged waits until all three nodes are followers or the leader,
// voters, and have applied the same index.
func (c *dockerCluster) waitConverged(ctx context.Context, bound time.Duration) {
	c.t.Helper()
	c.poll(ctx, bound, "three nodes converged", func() error {
		st, err := c.status(ctx, "dfs-1")
		if err != nil {
			return err
		}
		if len(st.Nodes) != 3 {
			return fmt.Errorf("%d nodes: %+v", len(st.Nodes), st.Nodes)
		}
		for _, m := range st.Nodes {
			if !m.Voter || (m.Role != "leader" && m.Role != "follower") || m.Lag != 0 || m.AppliedIndex != st.Nodes[0].AppliedIndex {
				return fmt.Errorf("not converged: %+v", st.Nodes)
			}
		}
		return nil
	})
}
