// Package e2e tests dfs from the outside: real `dfs server` processes on
// real sockets, driven by real WebDAV clients (litmus, rclone, cadaver,
// net/http). Nothing here reaches into the node's packages, except the
// fault suite (faults_*.go), which compares nodes with verify.Replicas, the
// Go API of `dfs cluster verify`.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testlog"
	"github.com/dfs-project/dfs/internal/testport"
	"github.com/dfs-project/dfs/internal/testredis"
)

// dfsBin is the binary under test, built once by TestMain.
var dfsBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv(benchReferenceEnv); dir != "" {
		serveReference(dir) // this process is a benchmark's reference server (bench_test.go); never returns
	}
	dir, err := os.MkdirTemp("", "dfs-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dfsBin = filepath.Join(dir, "dfs")
	build := exec.Command("go", "build", "-o", dfsBin, "../cmd/dfs")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dfs:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one running dfs server process.
type node struct {
	URL     string // WebDAV base URL, ending in "/"
	DataDir string
	cmd     *exec.Cmd
	log     *testlog.Buffer // read it with logText while the process runs
	exited  chan struct{}

	spec nodeSpec // how the process was started; restart reuses it

	paused bool // SIGSTOPped by the test (pause); only the test goroutine touches it
}

// nodeSpec is what makes a node the same node across restarts: its data
// directory, its addresses (Raft state records the Raft address) and its
// metadata store.
type nodeSpec struct {
	ID       string // the node's --id; empty: n1
	DataDir  string
	HTTPAddr string
	RaftAddr string
	RedisURL string // empty: the embedded store
	Extra    []string
}

// freeAddr returns a loopback address with a port nobody listens on and no
// other node of this test process was given (package testport).
func freeAddr(t testing.TB) string { return testport.Addr(t) }

type store int

const (
	embedded store = iota
	redisStore
)

func (s store) String() string {
	if s == redisStore {
		return "redis"
	}
	return "embedded"
}

// startNode starts a bootstrapped single-node cluster and waits until it
// is ready. It is stopped when the test ends.
func startNode(t testing.TB, st store, extra ...string) *node {
	t.Helper()
	spec := nodeSpec{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t), Extra: extra}
	if st == redisStore {
		spec.RedisURL = testredis.Start(t)
	}
	return startNodeAt(t, spec, true)
}

// startNodeAt starts a dfs server process as spec says, with --bootstrap if
// bootstrap is set, and waits until it is ready. It is stopped when the
// test ends, and its log is printed if the test failed.
func startNodeAt(t testing.TB, spec nodeSpec, bootstrap bool) *node {
	t.Helper()
	n := launchNode(t, spec, bootstrap)
	n.waitReady(t, 30*time.Second)
	return n
}

// launchNode starts a dfs server process as spec says, with --bootstrap if
// bootstrap is set, without waiting for it to be ready (nodes forming a
// cluster together only turn ready once enough of them run). It is
// stopped when the test ends, and its log is printed if the test failed.
func launchNode(t testing.TB, spec nodeSpec, bootstrap bool) *node {
	t.Helper()
	if spec.ID == "" {
		spec.ID = "n1"
	}
	args := []string{"server", "--id", spec.ID, "--data-dir", spec.DataDir, "--http-addr", spec.HTTPAddr,
		"--raft-addr", spec.RaftAddr}
	if bootstrap {
		args = append(args, "--bootstrap")
	}
	if spec.RedisURL != "" {
		args = append(args, "--redis-url", spec.RedisURL)
	}
	args = append(args, spec.Extra...)
	n := &node{URL: "http://" + spec.HTTPAddr + "/", DataDir: spec.DataDir, log: &testlog.Buffer{},
		exited: make(chan struct{}), spec: spec}
	n.cmd = exec.Command(dfsBin, args...)
	n.cmd.Env = append(os.Environ(), "DFS_LOG_FORMAT=json", "DFS_LOG_LEVEL=info")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start dfs: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("dfs node log (%s):\n%s", strings.Join(args, " "), n.logText())
		}
	})
	return n
}

// kill sends SIGKILL (no shutdown of any kind) and waits for the process
// to be gone.
func (n *node) kill(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("dfs pid %d did not die after SIGKILL", n.cmd.Process.Pid)
	}
}

// restart starts the node again on the same data directory, addresses and
// store, killing it first if it still runs, and waits until it is ready.
func (n *node) restart(t testing.TB, bootstrap bool) *node {
	t.Helper()
	n.kill(t)
	return startNodeAt(t, n.spec, bootstrap)
}

// logText returns what the process has logged so far.
func (n *node) logText() string {
	return n.log.String()
}

func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGINT
	n.paused = false
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

func (n *node) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			t.Fatalf("dfs exited before becoming ready:\n%s", n.logText())
		default:
		}
		resp, err := http.Get(n.URL + "readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dfs not ready after %s:\n%s", timeout, n.logText())
}

func mustStatus(t testing.TB, resp *http.Response, body []byte, want ...int) {
	t.Helper()
	for _, w := range want {
		if resp.StatusCode == w {
			return
		}
	}
	t.Fatalf("%s %s: status %d, want %v; body: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, strings.TrimSpace(string(body)))
}
