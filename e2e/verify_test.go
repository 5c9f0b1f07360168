package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyCLI runs `dfs cluster verify` (the binary) with args and returns
// its output (stdout and stderr) and exit status.
func verifyCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(dfsBin, append([]string{"cluster", "verify"}, args...)...)
	cmd.Env = append(os.Environ(), "DFS_CLUSTER_SECRET="+clusterSecret)
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("dfs cluster verify: %v", err)
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("dfs cluster verify did not finish in 2 minutes:\n%s", out.String())
	}
	return "", -1
}

// TestClusterVerifyCLI runs `dfs cluster verify` against real node
// processes: consistent after a follower was killed with SIGKILL while
// writes went on and came back; a byte flipped on one node's disk found
// by --deep only, then repaired by the node itself; a killed node reported
// unreachable. Exit statuses 0, 1 and 2.
func TestClusterVerifyCLI(t *testing.T) {
	c := startCluster(t, 3, redisStore)
	leader := c.nodes[c.leader(t)]
	d := newDAV(t, leader)
	d.must("MKCOL", "/v", nil, nil, http.StatusCreated)
	put := func(from, to int) {
		for i := from; i < to; i++ {
			d.put(fmt.Sprintf("/v/f%02d.bin", i), versionData(uint64(900+i), 1+i*7001))
		}
	}
	put(0, 15)
	d.proppatch("/v", map[string]string{"T:note": "verified"})
	d.lock("/v/f00.bin")

	victim := c.followers(t)[0]
	vi := c.index(victim)
	victim.kill(t)
	put(15, 30) // the victim misses these
	c.restartNode(t, vi)
	c.waitConverged(t)

	addr := strings.TrimSuffix(leader.URL, "/")
	out, code := verifyCLI(t, "--addr", addr)
	if code != 0 || !strings.Contains(out, "consistent: 3 nodes at applied index") {
		t.Fatalf("after the restart: exit %d, want 0:\n%s", code, out)
	}

	// One flipped byte in f07.bin's object on the restarted node.
	data := versionData(907, 1+7*7001)
	h := sha(data)
	obj := filepath.Join(c.nodes[vi].DataDir, "content", "objects", h[:2], h)
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(obj, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := verifyCLI(t, "--addr", addr); code != 0 {
		t.Fatalf("a shallow verify cannot see a flipped byte; exit %d:\n%s", code, out)
	}
	out, code = verifyCLI(t, "--addr", addr, "--deep")
	want := c.nodes[vi].spec.ID + ": content " + h + " is corrupt (used by /v/f07.bin)"
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "digest at index") {
		t.Fatalf("--deep: exit %d, want 1 naming %q and showing progress:\n%s", code, want, out)
	}
	// The deep check quarantined the object and the node fetched a good
	// copy from a peer by itself (a verify while it fetches may have to
	// ask again; it never reports the fetch as a difference).
	if !poll(30*time.Second, func() bool {
		b, err := os.ReadFile(obj)
		return err == nil && sha(b) == h
	}) {
		t.Fatalf("%s did not fetch a good copy of %s", c.nodes[vi].spec.ID, h)
	}
	if out, code := verifyCLI(t, "--addr", addr, "--deep"); code != 0 {
		t.Fatalf("after the repair: exit %d, want 0:\n%s", code, out)
	}

	c.nodes[vi].kill(t)
	out, code = verifyCLI(t, "--addr", addr)
	if code != 2 || !strings.Contains(out, c.nodes[vi].spec.ID+": unreachable") {
		t.Fatalf("with %s killed: exit %d, want 2 naming it unreachable:\n%s", c.nodes[vi].spec.ID, code, out)
	}
}
