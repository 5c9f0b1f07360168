//go:build docker

// The fault suite's nemeses on a node's own stores (docs/faults.md): its
// Redis killed with -9 and restarted with its append-only file, or
// replaced by an empty one; FLUSHALL; CLIENT PAUSE longer than the node's
// Redis timeouts; and content object files deleted, flipped or truncated
// on its volume. Each kind alternates between the leader and a follower.
// A node whose metadata store lost data must notice and rebuild it from
// its own snapshot and log within seconds (fsm/heal.go), answering 503 on
// /readyz meanwhile; damaged content must never be served, and a scrub
// pass (`dfs cluster scrub`) must repair it from the peers.

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dfs-project/dfs/cluster"
)

// storeFaults are the nemeses on each node's own stores.
func (r *faultRun) storeFaults() []fault {
	c := r.c
	return []fault{
		r.storeFault("redis-kill", func(ctx context.Context, n *faultNode) error {
			// SIGKILL, then the same container and volume: Redis reloads
			// its append-only file (everysec: the last second may be gone).
			if _, err := dockerRun(ctx, time.Minute, "kill", n.redis); err != nil {
				return err
			}
			time.Sleep(2 * time.Second)
			if _, err := dockerRun(ctx, time.Minute, "start", n.redis); err != nil {
				return err
			}
			return c.waitRedis(ctx, n)
		}),
		r.storeFault("redis-wipe", func(ctx context.Context, n *faultNode) error {
			// SIGKILL, then a new Redis on a new, empty volume: every key
			// of the node's metadata is gone.
			if _, err := dockerRun(ctx, time.Minute, "kill", n.redis); err != nil {
				return err
			}
			if _, err := dockerRun(ctx, time.Minute, "rm", "-f", "-v", n.redis); err != nil {
				return err
			}
			if _, err := dockerRun(ctx, time.Minute, "volume", "rm", n.redis); err != nil {
				return err
			}
			time.Sleep(time.Second)
			return c.startRedis(ctx, n)
		}),
		r.storeFault("redis-flushall", func(ctx context.Context, n *faultNode) error {
			out, err := c.redisCLI(ctx, n, "FLUSHALL")
			if err == nil && out != "OK" {
				err = fmt.Errorf("FLUSHALL: %s", out)
			}
			return err
		}),
		r.storeFault("redis-pause", func(ctx context.Context, n *faultNode) error {
			// Every client of this Redis stalls for 6 s: twice go-redis's
			// 3 s read timeout.
			t0 := time.Now()
			out, err := c.redisCLI(ctx, n, "CLIENT", "PAUSE", "6000", "ALL")
			if err == nil && out != "OK" {
				err = fmt.Errorf("CLIENT PAUSE: %s", out)
			}
			holdUntil(ctx, t0, 6*time.Second)
			return err
		}),
		r.storeFault("content-damage", r.damageContent),
		r.storeFault("redis-latency", func(ctx context.Context, n *faultNode) error {
			// 2.5 s each way, 5 s a round trip, for 6 s: every command
			// sent meanwhile outlasts go-redis's 3 s read timeout, and a
			// MULTI/EXEC reaches Redis and is applied while its reply is
			// lost with the connection the client gives up.
			return c.redisDelay(ctx, n, 2500, 0, 6*time.Second)
		}),
		r.storeFault("redis-jitter", func(ctx context.Context, n *faultNode) error {
			// A slow store rather than a stalled one: 200 ± 150 ms each
			// way for 8 s, within the timeouts.
			return c.redisDelay(ctx, n, 200, 150, 8*time.Second)
		}),
		r.storeFault("disk-full", r.fillDisk),
	}
}

// redisDelay delays the node's Redis traffic (its proxy, both directions)
// by ms ± jitter milliseconds for hold, then lifts the delay.
func (c *faultCluster) redisDelay(ctx context.Context, n *faultNode, ms, jitter int, hold time.Duration) error {
	t0 := time.Now()
	if _, err := dockerRun(ctx, time.Minute, "exec", n.sandbox, "/faulttool", "delay", redisDelayFile, strconv.Itoa(ms), strconv.Itoa(jitter)); err != nil {
		return err
	}
	holdUntil(ctx, t0, hold)
	// On its own context: the delay must go even when the test's ends.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := dockerRun(hctx, time.Minute, "exec", n.sandbox, "/faulttool", "delay", redisDelayFile, "0", "0")
	return err
}

// fillerName is the file disk-full fills a node's /data with (in its root,
// where dfs keeps nothing by that name).
const fillerName = "dfs-e2e-filler"

// fillDisk fills the node's /data (its tmpfs, from the host) to the last
// byte, holds it full for 5 s while the workload writes and a few of the
// node's files are read through it, then deletes the filler. Writes must
// be refused (507, or 503), never acknowledged without being kept (the
// checker's business); reads must go on answering right.
func (r *faultRun) fillDisk(ctx context.Context, n *faultNode) error {
	file := filepath.Join(n.data, fillerName)
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("filler: %w", err)
	}
	defer os.Remove(file)
	defer f.Close()
	var free syscall.Statfs_t
	if err := syscall.Statfs(n.data, &free); err != nil {
		return fmt.Errorf("statfs %s: %w", n.data, err)
	}
	before := int64(free.Bavail) * free.Bsize
	t0 := time.Now()
	// Big writes, then ever smaller ones, until not a byte fits.
	written := int64(0)
	for _, size := range []int{1 << 20, 64 << 10, 4 << 10, 1} {
		buf := make([]byte, size)
		for {
			k, err := f.Write(buf)
			written += int64(k)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return fmt.Errorf("filler: %w", err)
			}
		}
	}
	if err := syscall.Statfs(n.data, &free); err != nil {
		return fmt.Errorf("statfs %s: %w", n.data, err)
	}
	left := int64(free.Bavail) * free.Bsize

	// Reads through the full node: files written once, before any fault.
	var reads, good int
	for _, op := range r.hist.newestAckedPuts() {
		if reads == 3 {
			break
		}
		if !strings.HasSuffix(op.Path, "/locked") && !strings.HasSuffix(op.Path, "/props") {
			continue
		}
		reads++
		st, ok, err := readFile(ctx, r.check, n.url, op.Path)
		switch {
		case !ok:
			r.t.Logf("disk-full: GET %s via %s while its disk was full: no answer: %v", op.Path, n.name, err)
		case st != stAbsent && !r.hist.isVersion(st):
			r.hist.violation(&r.hist.falseAnswers, "false answer: GET %s via %s answered 200 with bytes no client wrote (%.19s) while its disk was full", op.Path, n.name, st)
		default:
			good++
		}
	}
	filled := time.Since(t0)
	holdUntil(ctx, t0, 5*time.Second)
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("filler: %w", err)
	}
	if err := os.Remove(file); err != nil {
		return fmt.Errorf("filler: %w", err)
	}
	r.note += fmt.Sprintf(", /data filled in %v (%d MiB free before, %d bytes after), %d of %d reads answered meanwhile",
		filled.Round(time.Millisecond), before>>20, left, good, reads)
	return nil
}

// storeFault is a fault on one node's stores, on the leader and on a
// follower in turn (the 3-node run starts with the leader, the 5-node run
// with a follower). After inject (which heals what it broke) it waits
// until the node answers /readyz 200 again, and logs what the probe said
// meanwhile and how long the node took.
func (r *faultRun) storeFault(name string, inject func(ctx context.Context, n *faultNode) error) fault {
	return fault{name, func(ctx context.Context) (time.Duration, error) {
		l, err := r.leader(ctx)
		if err != nil {
			return 0, err
		}
		n, role := l, "leader"
		if (r.storeTurns[name]+r.parity)%2 == 1 {
			n, role = r.anyOf(r.followers(l)), "follower"
		}
		r.storeTurns[name]++
		t0 := time.Now()
		if err := inject(ctx, n); err != nil {
			return 0, fmt.Errorf("on the %s %s: %w", role, n.name, err)
		}
		healed := time.Since(t0)
		took, seen, err := r.waitReady(ctx, n, 3*time.Second, 90*time.Second)
		// What inject noted goes after the node and the times.
		r.note = fmt.Sprintf(", on the %s %s, fault healed after %v, ready again after %v", role, n.name,
			healed.Round(time.Millisecond), (healed+took).Round(time.Millisecond)) + r.note
		if len(seen) > 0 {
			r.note += fmt.Sprintf(", /readyz said meanwhile: %q", seen)
		}
		if err != nil {
			logs, _ := dockerRun(ctx, 20*time.Second, "logs", "--tail", "30", n.dfs)
			return 0, fmt.Errorf("on the %s %s: %w (readyz said %q); its last log lines:\n%s", role, n.name, err, seen, logs)
		}
		return 0, nil
	}}
}

// readyz asks a node whether it is ready: the status and the body.
func (r *faultRun) readyz(ctx context.Context, n *faultNode) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := r.c.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitReady polls the node's /readyz until it answers 200 and has kept
// answering 200 since, for at least atLeast after the start (a store
// check runs every second: a flushed store may look fine for a moment).
// It returns the time from the start to the first 200 of the last run of
// 200s, and the distinct answers other than 200 it saw.
func (r *faultRun) waitReady(ctx context.Context, n *faultNode, atLeast, bound time.Duration) (time.Duration, []string, error) {
	start := time.Now()
	var seen []string
	var readySince time.Time
	for {
		status, body := r.readyz(ctx, n)
		now := time.Now()
		if status == 200 {
			if readySince.IsZero() {
				readySince = now
			}
			if now.Sub(start) >= atLeast {
				return readySince.Sub(start), seen, nil
			}
		} else {
			readySince = time.Time{}
			what := fmt.Sprintf("%d %s", status, body)
			if status == 0 {
				what = body
			}
			if len(seen) < 6 && !containsString(seen, what) {
				seen = append(seen, what)
			}
		}
		if now.Sub(start) > bound {
			return 0, seen, fmt.Errorf("%s not ready within %v", n.name, bound)
		}
		select {
		case <-ctx.Done():
			return 0, seen, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

var faultTool struct {
	once sync.Once
	path string
	err  error
}

// buildFaultTool builds e2e/faulttool statically, once per test process.
func buildFaultTool() (string, error) {
	faultTool.once.Do(func() {
		dir, err := os.MkdirTemp("", "dfs-faulttool")
		if err != nil {
			faultTool.err = err
			return
		}
		faultTool.path = filepath.Join(dir, "faulttool")
		cmd := exec.Command("go", "build", "-o", faultTool.path, "./faulttool")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			faultTool.err = fmt.Errorf("building e2e/faulttool: %v: %s", err, out)
		}
	})
	return faultTool.path, faultTool.err
}

const objectsDir = "/data/content/objects"

// damageContent deletes two and corrupts two (one byte flipped, one
// truncated) of the node's content objects, preferring the content of
// the newest acknowledged PUTs, which files most likely still reference.
// Reads of those files through the node must give the right bytes (read
// repair) or no answer, never damaged bytes with a 200; then a scrub pass
// on the node (what `dfs cluster scrub --node` starts) must leave every
// damaged object either intact again or gone.
func (r *faultRun) damageContent(ctx context.Context, n *faultNode) error {
	tool, err := buildFaultTool()
	if err != nil {
		return err
	}
	if _, err := dockerRun(ctx, time.Minute, "cp", tool, n.dfs+":/faulttool"); err != nil {
		return err
	}
	out, err := dockerRun(ctx, time.Minute, "exec", n.dfs, "/faulttool", "ls", objectsDir)
	if err != nil {
		return err
	}
	present := map[string]string{} // hash -> path under objects/
	var all []string
	for _, line := range strings.Split(out, "\n") {
		rel, _, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		h := filepath.Base(rel)
		present[h] = rel
		all = append(all, h)
	}
	type target struct{ hash, path string } // path: a file that had this content, if known
	var targets []target
	picked := map[string]bool{}
	pick := func(ops []faultOp, k int) {
		for _, op := range ops {
			if k == 0 {
				return
			}
			h := strings.TrimPrefix(op.State, "sha256:")
			if _, ok := present[h]; ok && !picked[h] {
				picked[h] = true
				targets = append(targets, target{h, op.Path})
				k--
			}
		}
	}
	// Two objects files reference for good (the lock targets' and the
	// property files' content is written once, before any fault), so the
	// repair is certain to be needed, and two of the newest content.
	puts := r.hist.newestAckedPuts()
	var stable []faultOp
	for _, op := range puts {
		if strings.HasSuffix(op.Path, "/locked") || strings.HasSuffix(op.Path, "/props") {
			stable = append(stable, op)
		}
	}
	r.rnd.Shuffle(len(stable), func(i, j int) { stable[i], stable[j] = stable[j], stable[i] })
	pick(stable, 2)
	nStable := len(targets)
	pick(puts, 4-len(targets))
	for len(targets) < 4 && len(picked) < len(all) {
		h := all[r.rnd.IntN(len(all))]
		if !picked[h] {
			picked[h] = true
			targets = append(targets, target{h, ""})
		}
	}
	if len(targets) == 0 {
		return errors.New("no content objects on the node")
	}
	actions := []string{"rm", "flip", "rm", "truncate"}
	var done []string
	for i, tg := range targets {
		file := objectsDir + "/" + present[tg.hash]
		out, err := dockerRun(ctx, time.Minute, "exec", n.dfs, "/faulttool", actions[i], file)
		if err != nil {
			return err
		}
		if strings.HasPrefix(out, "missing") {
			done = append(done, fmt.Sprintf("%.12s gone before %s (garbage collected)", tg.hash, actions[i]))
			continue
		}
		done = append(done, fmt.Sprintf("%s %.12s (%s)", actions[i], tg.hash, tg.path))
	}
	r.t.Logf("content-damage on %s: %v", n.name, done)

	// Reads through the damaged node.
	for _, tg := range targets {
		if tg.path == "" {
			continue
		}
		st, ok, err := readFile(ctx, r.check, n.url, tg.path)
		switch {
		case !ok:
			r.t.Logf("content-damage: GET %s via %s after damaging %.12s: no answer: %v", tg.path, n.name, tg.hash, err)
		case st != stAbsent && !r.hist.isVersion(st):
			r.hist.violation(&r.hist.falseAnswers, "false answer: GET %s via %s answered 200 with damaged bytes (%.19s) after its content %.12s was damaged", tg.path, n.name, st, tg.hash)
		}
	}

	// The repair: a scrub pass on the node.
	cl := cluster.NewClient(r.c.secret, nil)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, err := cl.Scrub(sctx, n.url)
	if err != nil {
		return fmt.Errorf("start a scrub pass: %w", err)
	}
	var info cluster.NodeInfo
	if err := pollUntil(sctx, 2*time.Minute, func() error {
		var err error
		info, err = cl.Node(sctx, n.url)
		if err != nil {
			return err
		}
		if info.Scrub == nil || info.Scrub.Passes < resp.UntilPass {
			return fmt.Errorf("scrub pass %d not done", resp.UntilPass)
		}
		return nil
	}); err != nil {
		return err
	}
	last := info.Scrub.Last
	r.t.Logf("content-damage: scrub pass on %s: %d objects, corrupt %d, missing %d, repaired %d, unrepaired %d; reads repaired %d since start",
		n.name, last.Objects, last.Corrupt, last.Missing, last.Repaired, last.Unrepaired, info.Scrub.ReadRepaired)
	if last.Unrepaired > 0 {
		return fmt.Errorf("the scrub pass on %s left %d objects unrepaired", n.name, last.Unrepaired)
	}
	args := []string{"exec", n.dfs, "/faulttool", "sha256"}
	for _, tg := range targets {
		args = append(args, objectsDir+"/"+present[tg.hash])
	}
	out, err = dockerRun(ctx, time.Minute, args...)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(out, "\n") {
		sum, file, _ := strings.Cut(line, " ")
		switch {
		case sum == "missing" && i < nStable:
			return fmt.Errorf("after the scrub pass %s is missing, although %s references it", file, targets[i].path)
		case sum != "missing" && sum != filepath.Base(file):
			return fmt.Errorf("after the scrub pass %s is still damaged (SHA-256 %.12s)", file, sum)
		}
	}
	return nil
}

// scanPanics looks for panics in the dfs container's log (all its runs):
// a handler's panic reaches the client as a broken connection (an unknown
// outcome), so the log is where it shows.
func (c *faultCluster) scanPanics(ctx context.Context, n *faultNode) {
	out, err := dockerRun(ctx, time.Minute, "logs", n.dfs)
	if err != nil {
		return
	}
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "panic serving") || strings.HasPrefix(line, "panic: ") ||
			strings.Contains(line, `"level":"panic"`) || strings.HasPrefix(line, "fatal error: ") {
			found = append(found, line)
		}
	}
	if len(found) == 0 {
		return
	}
	c.panicMu.Lock()
	defer c.panicMu.Unlock()
	c.panics += len(found)
	for _, l := range found[:min(len(found), 5)] {
		c.t.Logf("PANIC in %s's log: %.600s", n.name, l)
	}
}

// parseTimeout reads the timeout a LOCK answer grants (Second-n), or def.
func parseTimeout(body []byte, def time.Duration) time.Duration {
	s := string(body)
	i := strings.Index(s, "Second-")
	if i < 0 {
		return def
	}
	j := i + len("Second-")
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	n, err := strconv.Atoi(s[j:k])
	if err != nil {
		return def
	}
	return time.Duration(n) * time.Second
}
