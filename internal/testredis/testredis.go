// Package testredis starts a real redis-server for tests. Redis-backed code
// in dfs is tested against the actual server, never a fake, because the
// behaviour that matters (MULTI/EXEC semantics, Lua, SCAN, encodings,
// timeouts) is exactly what fakes get subtly wrong.
//
// Each Start call gets its own server on a unix socket in a private
// temporary directory, with persistence off, so tests are isolated from each
// other and from any Redis already running on the machine.
package testredis

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for the server to answer PING.
// Generous because CI machines under -race can be slow to fork.
const startTimeout = 15 * time.Second

// maxSocketPath keeps the socket path under the sun_path limit (108 bytes on
// Linux, 104 on macOS) with room to spare.
const maxSocketPath = 100

// Start launches redis-server on a unix socket, waits until it answers PING
// and returns a URL for it ("unix:///…/redis.sock?db=0") suitable for
// redis.ParseURL. The server is killed when the test and its subtests end.
//
// A missing redis-server is a test failure, not a skip: CI installs it, and
// a silently skipped suite would hide the Redis code paths entirely.
func Start(t testing.TB) (url string) {
	t.Helper()

	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testredis: redis-server not found on PATH; install it (e.g. apt-get install redis-server) to run these tests: %v", err)
	}

	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	if len(sock) > maxSocketPath {
		// Long test names (or a long TMPDIR) give long TempDir paths, and a
		// unix socket path that does not fit sun_path fails to bind.
		short, err := os.MkdirTemp("", "testredis")
		if err != nil {
			t.Fatalf("testredis: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sock = filepath.Join(short, "redis.sock")
	}

	logPath := filepath.Join(dir, "redis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(bin,
		"--port", "0",
		"--unixsocket", sock,
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("testredis: start %s: %v", bin, err)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// Kill targets only the process started here, by its PID.
		_ = cmd.Process.Kill()
		<-exited
	})

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("testredis: redis-server exited before answering PING (%v); log:\n%s", waitErr, readLog(logPath))
		default:
		}
		err := ping(sock)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: redis-server did not answer PING within %v: %v; log:\n%s", startTimeout, err, readLog(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "unix://" + sock + "?db=0"
}

// ping speaks just enough RESP to check readiness, so this package does not
// depend on a Redis client library.
func ping(sock string) error {
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server still loading answers -LOADING; only +PONG means ready.
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(bytes.TrimSpace(b))
}
