package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a local cluster of several dfs nodes for trying dfs out",
		Description: "Starts --nodes dfs server processes on this machine, each with its own data\n" +
			"directory under --dir and, when redis-server is on PATH, its own Redis (the\n" +
			"embedded store otherwise). Node i listens for WebDAV on --http-port+i and for\n" +
			"Raft on --raft-port+i, all on 127.0.0.1. The nodes form one cluster with\n" +
			"--bootstrap-expect; the command prints every node's URL and the leader, and\n" +
			"stops them all on Ctrl-C. Data stays in --dir, so running it again resumes\n" +
			"the same cluster.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 3, EnvVars: []string{"DFS_DEV_NODES"}, Usage: "how many nodes to start"},
			&cli.StringFlag{Name: "dir", Value: "./dfs-dev", EnvVars: []string{"DFS_DEV_DIR"}, Usage: "parent directory of the nodes' data directories"},
			&cli.IntFlag{Name: "http-port", Value: 8080, EnvVars: []string{"DFS_DEV_HTTP_PORT"}, Usage: "WebDAV port of the first node; node i uses this plus i"},
			&cli.IntFlag{Name: "raft-port", Value: 7000, EnvVars: []string{"DFS_DEV_RAFT_PORT"}, Usage: "Raft port of the first node; node i uses this plus i"},
			&cli.BoolFlag{Name: "embedded", EnvVars: []string{"DFS_DEV_EMBEDDED"}, Usage: "use the embedded metadata store even when redis-server is available"},
		},
		Action: runDev,
	}
}

// devProc is one child process of `dfs dev`.
type devProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func runDev(c *cli.Context) error {
	n := c.Int("nodes")
	if n < 1 || n > 9 {
		return fmt.Errorf("--nodes: want 1 to 9, got %d", n)
	}
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the dfs binary: %w", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := c.App.Writer

	secret, err := devSecret(dir)
	if err != nil {
		return err
	}
	redisBin, _ := exec.LookPath("redis-server")
	if c.Bool("embedded") {
		redisBin = ""
	}

	var procs []*devProc
	defer func() { stopAll(procs, out) }()

	urls := make([]string, n)
	for i := range n {
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", c.Int("http-port")+i)
	}
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		dataDir := filepath.Join(dir, name)
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return err
		}
		logPath := filepath.Join(dataDir, "dfs.log")
		args := []string{
			"--log-format", "json", "server",
			"--id", name,
			"--data-dir", dataDir,
			"--http-addr", strings.TrimPrefix(urls[i], "http://"),
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", c.Int("raft-port")+i),
			"--cluster-secret", secret,
		}
		if n == 1 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--bootstrap-expect", strconv.Itoa(n), "--peers", strings.Join(urls, ","))
		}
		if redisBin != "" {
			sock := filepath.Join(dataDir, "redis.sock")
			p, err := startProc(ctx, name+"-redis", filepath.Join(dataDir, "redis.log"), redisBin,
				"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
				"--dir", dataDir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
			if err != nil {
				return err
			}
			procs = append(procs, p)
			if err := waitForFile(ctx, sock, 10*time.Second); err != nil {
				return fmt.Errorf("%s: redis-server did not start (see %s): %w", name, filepath.Join(dataDir, "redis.log"), err)
			}
			args = append(args, "--redis-url", "unix://"+sock+"?db=0")
		}
		p, err := startProc(ctx, name, logPath, self, args...)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		store := "embedded store"
		if redisBin != "" {
			store = "Redis"
		}
		fmt.Fprintf(out, "started %s  %s  (%s, log %s)\n", name, urls[i], store, logPath)
	}

	fmt.Fprintf(out, "waiting for the cluster to form...\n")
	leader, err := waitForLeader(ctx, urls, procs, 60*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ndfs cluster of %d node(s) is up; leader: %s\n", n, leader)
	for i, u := range urls {
		fmt.Fprintf(out, "  node%d  %s/\n", i+1, u)
	}
	fmt.Fprintf(out, "\nmount any URL as a WebDAV network drive, or try:\n  curl -T README.md %s/\n  %s cluster status --addr %s\npress Ctrl-C to stop\n", urls[0], filepath.Base(self), urls[0])

	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nstopping...")
			return nil
		case <-anyDone(procs):
			for _, p := range procs {
				select {
				case <-p.done:
					return fmt.Errorf("%s exited unexpectedly: %v", p.name, p.cmd.ProcessState)
				default:
				}
			}
		}
	}
}

// devSecret keeps one random cluster secret per dev directory, so a
// restarted dev cluster still authenticates its nodes to each other.
func devSecret(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, "cluster-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

func startProc(ctx context.Context, name, logPath, bin string, args ...string) (*devProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: Ctrl-C in the terminal reaches `dfs dev` only, which
	// then stops its children in order (dfs nodes before their Redis).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &devProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stopAll stops dfs nodes first (they flush and hand leadership over), then
// their Redis servers.
func stopAll(procs []*devProc, out io.Writer) {
	var wg sync.WaitGroup
	for _, redis := range []bool{false, true} {
		for _, p := range procs {
			if strings.HasSuffix(p.name, "-redis") != redis {
				continue
			}
			wg.Add(1)
			go func(p *devProc) {
				defer wg.Done()
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(20 * time.Second):
					_ = p.cmd.Process.Kill()
					<-p.done
				}
			}(p)
		}
		wg.Wait()
	}
	if len(procs) > 0 {
		fmt.Fprintln(out, "all nodes stopped")
	}
}

func anyDone(procs []*devProc) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	for _, p := range procs {
		go func(p *devProc) {
			<-p.done
			once.Do(func() { close(ch) })
		}(p)
	}
	return ch
}

func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not appear within %s", path, timeout)
}

// waitForLeader polls the nodes' /cluster/status until one names a leader
// and every node is ready.
func waitForLeader(ctx context.Context, urls []string, procs []*devProc, timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			select {
			case <-p.done:
				return "", fmt.Errorf("%s exited while the cluster formed; see its log", p.name)
			default:
			}
		}
		leader, ready := "", 0
		for _, u := range urls {
			if resp, err := client.Get(u + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready++
				}
			}
			resp, err := client.Get(u + "/cluster/status")
			if err != nil {
				continue
			}
			var st struct {
				Leader string `json:"leader"`
			}
			err = json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&st)
			resp.Body.Close()
			if err == nil && st.Leader != "" {
				leader = st.Leader
			}
		}
		if leader != "" && ready == len(urls) {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return "", errors.New("the cluster did not form in time; see the nodes' logs")
}
