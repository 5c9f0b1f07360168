// Package e2e tests dfs from the outside: real `dfs server` processes on
// real sockets, driven by real WebDAV clients (litmus, rclone, cadaver,
// net/http). Nothing here reaches into the node's packages.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testredis"
)

// dfsBin is the binary under test, built once by TestMain.
var dfsBin string

func TestMain(m *testing.M) {
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
	log     *bytes.Buffer
	exited  chan struct{}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
	dataDir := t.TempDir()
	httpAddr := freeAddr(t)
	args := []string{"server", "--id", "n1", "--data-dir", dataDir, "--http-addr", httpAddr,
		"--raft-addr", freeAddr(t), "--bootstrap"}
	if st == redisStore {
		args = append(args, "--redis-url", testredis.Start(t))
	}
	args = append(args, extra...)
	n := &node{URL: "http://" + httpAddr + "/", DataDir: dataDir, log: &bytes.Buffer{}, exited: make(chan struct{})}
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
			t.Logf("dfs node log:\n%s", n.log.String())
		}
	})
	n.waitReady(t, 30*time.Second)
	return n
}

func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
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
			t.Fatalf("dfs exited before becoming ready:\n%s", n.log.String())
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
	t.Fatalf("dfs not ready after %s:\n%s", timeout, n.log.String())
}

// do sends one request and returns the response with its body read.
func do(t testing.TB, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
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
