//go:build docker

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBigTree copies and deletes a tree of more than 200 000 files and
// folders on a 3-node cluster whose containers have the Helm chart's
// memory limits (dfs 1 GiB, Redis 512 MiB): a subtree is applied in
// bounded steps, so no node runs out of memory, every node stays ready,
// and the replicas agree at the end. (Before steps, one such DELETE was
// one store transaction of the whole tree on every node.)
func TestBigTree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dfsImg, redImg := envOr("DFS_E2E_IMAGE", "dfs:dev"), envOr("DFS_E2E_REDIS_IMAGE", "dfs-redis:dev")
	r := &faultRun{t: t, check: &http.Client{Timeout: 30 * time.Second}}
	r.c = newFaultCluster(ctx, t, 3, dfsImg, redImg)
	// The chart's Raft snapshot settings; Raft timeouts longer than the
	// default 0.5 s, since three nodes, their Redis servers and this
	// test's client share two cores here and elections under that load
	// are not what this test is about (TestFaults is).
	r.c.extra = []string{"--raft-heartbeat-timeout", "2s", "--raft-election-timeout", "2s"}
	r.c.dfsMemory, r.c.redisMemory = "1g", "512m"
	for i := range 3 {
		if err := r.c.addNode(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.members = append(r.members, r.c.nodes[i])
	}
	if err := r.waitHealthy(ctx, 3*time.Minute); err != nil {
		t.Fatalf("the cluster did not form: %v", err)
	}
	dav := &http.Client{Timeout: 10 * time.Minute}
	// do sends a request until it gets want, as a client would: a 503
	// (the leader changed under the request; on a loaded machine a leader
	// can miss its heartbeats) or a 423 (a copy being built holds the
	// tree) is retried, and after such a retry the answer of a request
	// that was applied the first time counts too (MKCOL 405, PUT or COPY
	// 204, MOVE or DELETE 404); the checks after every step read the
	// tree back.
	do := func(n *faultNode, method, path string, body []byte, hdr map[string]string, want int) time.Duration {
		t.Helper()
		start := time.Now()
		retried := false
		for attempt := 1; ; attempt++ {
			req, err := http.NewRequestWithContext(ctx, method, n.url+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := dav.Do(req)
			if err != nil {
				t.Fatalf("%s %s via %s: %v", method, path, n.name, err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			switch got := resp.StatusCode; {
			case got == want:
				return time.Since(start)
			case (got == http.StatusServiceUnavailable || got == http.StatusLocked) && time.Since(start) < 6*time.Minute:
				// A 423 after a 503: the first attempt's copy is being
				// built and holds the destination until it is in place.
				if !retried || attempt%20 == 0 {
					t.Logf("%s %s via %s: %d %s; retrying", method, path, n.name, got, bytes.TrimSpace(b))
				}
				retried = true
				time.Sleep(time.Second)
				continue
			case retried && (method == "MKCOL" && got == http.StatusMethodNotAllowed ||
				(method == http.MethodPut || method == "COPY") && got == http.StatusNoContent ||
				(method == "MOVE" || method == http.MethodDelete) && got == http.StatusNotFound):
				return time.Since(start)
			default:
				t.Fatalf("%s %s via %s: %d %s, want %d", method, path, n.name, got, b, want)
			}
		}
	}
	via := r.c.nodes[1]

	// /l0 holds 100 files; /l<k> holds /l<k-1> (moved) as a and a copy of
	// it as b, so /l11 holds 2^11 * 100 files and 2^12 - 1 + 2^11 folders.
	do(via, "MKCOL", "/l0", nil, nil, http.StatusCreated)
	for i := range 100 {
		do(via, http.MethodPut, fmt.Sprintf("/l0/f%02d", i), fmt.Appendf(nil, "file %d\n", i), nil, http.StatusCreated)
	}
	const levels = 11
	entries := 101
	for k := 1; k <= levels; k++ {
		dir := fmt.Sprintf("/l%d", k)
		do(via, "MKCOL", dir, nil, nil, http.StatusCreated)
		do(via, "MOVE", fmt.Sprintf("/l%d", k-1), nil, map[string]string{"Destination": via.url + dir + "/a"}, http.StatusCreated)
		took := do(via, "COPY", dir+"/a", nil, map[string]string{"Destination": via.url + dir + "/b"}, http.StatusCreated)
		entries = 2*entries + 1
		t.Logf("COPY of %d entries took %v", entries/2, took.Round(time.Millisecond))
	}
	top := fmt.Sprintf("/l%d", levels)
	deep := strings.Repeat("/b", levels) + "/f42"
	took := do(via, "COPY", top, nil, map[string]string{"Destination": via.url + "/copy"}, http.StatusCreated)
	t.Logf("COPY of %d entries (the whole tree) took %v", entries, took.Round(time.Millisecond))
	for _, n := range r.members {
		do(n, http.MethodGet, "/copy"+deep, nil, nil, http.StatusOK)
	}
	took = do(via, http.MethodDelete, "/copy", nil, nil, http.StatusNoContent)
	t.Logf("DELETE of %d entries answered after %v", entries, took.Round(time.Millisecond))
	do(via, http.MethodDelete, top, nil, nil, http.StatusNoContent)
	for _, n := range r.members {
		do(n, http.MethodGet, "/copy"+deep, nil, nil, http.StatusNotFound)
	}
	start := time.Now()
	err := pollUntil(ctx, 10*time.Minute, func() error {
		var st struct {
			Purging  int `json:"purging_trees"`
			Building int `json:"building_copies"`
		}
		if err := getJSON(ctx, r.c.http, via.url+"/cluster/status", &st); err != nil {
			return err
		}
		if st.Purging+st.Building > 0 {
			return fmt.Errorf("%d trees still being purged, %d copies being built", st.Purging, st.Building)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the purge of %d entries did not finish: %v", 2*entries, err)
	}
	t.Logf("purge of %d entries finished %v after the DELETEs", 2*entries, time.Since(start).Round(time.Millisecond))

	if err := r.waitHealthy(ctx, 2*time.Minute); err != nil {
		t.Fatalf("not every node is ready after the big tree: %v", err)
	}
	if bad := r.verify(ctx); len(bad) > 0 {
		t.Fatalf("replicas differ after the big tree: %v", bad)
	}
	for _, n := range r.members {
		for _, ctr := range []string{n.dfs, n.redis} {
			out, err := dockerRun(ctx, 30*time.Second, "inspect", "--format",
				"{{.State.Running}} {{.State.OOMKilled}} {{.RestartCount}} {{.Id}}", ctr)
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(out)
			if len(f) != 4 || f[0] != "true" || f[1] != "false" || f[2] != "0" {
				t.Fatalf("%s: running, OOM-killed, restarts: %s", ctr, out)
			}
			if peak, err := os.ReadFile("/sys/fs/cgroup/memory/docker/" + f[3] + "/memory.max_usage_in_bytes"); err == nil {
				t.Logf("%s: peak memory %s bytes", ctr, strings.TrimSpace(string(peak)))
			}
		}
	}
}
