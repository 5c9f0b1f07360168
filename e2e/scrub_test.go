package e2e

// Content protection against real node processes: a content file damaged
// on one node's disk is never served, is repaired from a peer by the read
// that meets it, and is found, repaired and reported by a scrub pass, as
// are deleted and truncated ones.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testdisk"
)

// scrubView is the scrub part of a node's report.
type scrubView struct {
	Enabled bool        `json:"enabled"`
	Running bool        `json:"running"`
	Passes  int64       `json:"passes"`
	Last    scrubCounts `json:"last"`
	Total   scrubCounts `json:"total"`

	ReadRepaired   int64 `json:"read_repaired"`
	ReadUnrepaired int64 `json:"read_unrepaired"`
}

type scrubCounts struct {
	Objects       int64 `json:"objects"`
	Bytes         int64 `json:"bytes"`
	Corrupt       int64 `json:"corrupt"`
	Missing       int64 `json:"missing"`
	SumsRewritten int64 `json:"sums_rewritten"`
	Repaired      int64 `json:"repaired"`
	Unrepaired    int64 `json:"unrepaired"`
}

// objectFile is where node n keeps the content of data.
func objectFile(n *node, data []byte) string {
	h := sha(data)
	return filepath.Join(n.DataDir, "content", "objects", h[:2], h)
}

// waitObject waits until node n holds the content of data on disk.
func waitObject(t *testing.T, n *node, data []byte) string {
	t.Helper()
	p := objectFile(n, data)
	if !poll(30*time.Second, func() bool { _, err := os.Stat(p); return err == nil }) {
		t.Fatalf("%s never stored %s", n.spec.ID, p)
	}
	return p
}

// fileSHA is the SHA-256 of a file on disk ("" if it cannot be read).
func fileSHA(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func scrubOf(t *testing.T, c *tcluster, n *node) scrubView {
	t.Helper()
	status, b, err := c.get(n, "cluster/node")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %scluster/node: %d %s %v", n.URL, status, b, err)
	}
	var v struct {
		Scrub *scrubView `json:"scrub"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Scrub == nil {
		t.Fatalf("%s: no scrub report in %s (%v)", n.spec.ID, b, err)
	}
	return *v.Scrub
}

// TestScrubReadRepair damages content on one follower's disk and reads it
// from that follower: full GETs and Range GETs must deliver exactly the
// right bytes, and the copy on disk must be good again afterwards.
func TestScrubReadRepair(t *testing.T) {
	c := startCluster(t, 3, embedded)
	x := c.followers(t)[0]
	d := newDAV(t, x)
	cases := []struct {
		name string
		size int
		flip int64
		rng  [2]int64 // a Range request's first and last byte; zero: a full GET
	}{
		{name: "small file", size: 3000, flip: 2999},
		{name: "first block", size: 3 << 20, flip: 10},
		{name: "middle of a large file", size: 5<<20 + 3, flip: 4<<20 + 77},
		{name: "range over the damage", size: 2 << 20, flip: 1 << 20, rng: [2]int64{1<<20 - 5000, 1<<20 + 5000}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := versionData(uint64(600+i), tc.size)
			p := fmt.Sprintf("/read-repair-%d.bin", i)
			d.put(p, data)
			obj := waitObject(t, x, data)
			flipByte(t, obj, tc.flip)
			before := scrubOf(t, c, x).ReadRepaired

			if tc.rng == [2]int64{} {
				d.expectFile(p, sha(data), int64(len(data)), "")
			} else {
				resp, body := d.do(http.MethodGet, p, nil, map[string]string{
					"Range": fmt.Sprintf("bytes=%d-%d", tc.rng[0], tc.rng[1])})
				if resp.StatusCode != http.StatusPartialContent || sha(body) != sha(data[tc.rng[0]:tc.rng[1]+1]) {
					t.Fatalf("Range GET: %d, %d bytes, right: %v", resp.StatusCode, len(body), sha(body) == sha(data[tc.rng[0]:tc.rng[1]+1]))
				}
			}
			if got := fileSHA(obj); got != sha(data) {
				t.Fatalf("the copy on %s's disk is not repaired (sha256 %.16s)", x.spec.ID, got)
			}
			if after := scrubOf(t, c, x).ReadRepaired; after != before+1 {
				t.Fatalf("read repairs went from %d to %d, want one more", before, after)
			}
		})
	}
	if !strings.Contains(x.logText(), "read met corrupt content") {
		t.Fatalf("%s did not log the corruption it met", x.spec.ID)
	}
}

// TestScrubPass damages content on one node's disk every way (a flipped
// byte, a deleted file, a truncated file), starts a scrub pass with
// `dfs cluster scrub --wait` and checks that everything was found,
// repaired from a peer, and reported by /cluster/status, `dfs cluster
// status` and /metrics.
func TestScrubPass(t *testing.T) {
	c := startCluster(t, 3, embedded, "--scrub-rate", "104857600")
	x := c.followers(t)[1]
	// The pass every node starts once ready, on an empty store: wait for
	// it, so that the pass started below is the one that finds the damage.
	if !poll(30*time.Second, func() bool { s := scrubOf(t, c, x); return s.Passes >= 1 && !s.Running }) {
		t.Fatalf("%s never completed its first scrub pass", x.spec.ID)
	}
	d := newDAV(t, c.nodes[c.leader(t)])
	files := map[string][]byte{}
	for i, size := range []int{2 << 20, 500 << 10, 1<<20 + 1, 4000, 300} {
		p := fmt.Sprintf("/scrub/file-%d.bin", i)
		if i == 0 {
			d.must("MKCOL", "/scrub", nil, nil, http.StatusCreated)
		}
		files[p] = versionData(uint64(700+i), size)
		d.put(p, files[p])
	}
	for _, data := range files {
		waitObject(t, x, data)
	}
	// Damage only once the node has applied every entry: an entry applied
	// after the damage would have catch-up fetch what it finds missing,
	// before the scrubber could.
	c.waitApplied(t, c.nodes[c.leader(t)], []*node{x})
	flipByte(t, objectFile(x, files["/scrub/file-0.bin"]), 1<<20+3)
	flipByte(t, objectFile(x, files["/scrub/file-3.bin"]), 0)
	if err := os.Remove(objectFile(x, files["/scrub/file-1.bin"])); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(objectFile(x, files["/scrub/file-2.bin"]), 1000); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(dfsBin, "cluster", "scrub", "--node", strings.TrimSuffix(x.URL, "/"), "--wait", "--timeout", "60s")
	cmd.Env = append(os.Environ(), "DFS_CLUSTER_SECRET="+clusterSecret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dfs cluster scrub: %v\n%s", err, out)
	}
	t.Logf("dfs cluster scrub:\n%s", out)

	for p, data := range files {
		if got := fileSHA(objectFile(x, data)); got != sha(data) {
			t.Errorf("%s: content of %s not repaired on %s's disk", x.spec.ID, p, x.spec.ID)
		}
	}
	// The report, as another node's /cluster/status has it.
	other := c.nodes[c.leader(t)]
	v, err := c.status(other)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, _ := c.get(other, "cluster/status")
	var st struct {
		Nodes []struct {
			ID    string     `json:"id"`
			Scrub *scrubView `json:"scrub"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	var got *scrubView
	for _, n := range st.Nodes {
		if n.ID == x.spec.ID {
			got = n.Scrub
		}
	}
	if got == nil || len(v.Nodes) != 3 {
		t.Fatalf("no scrub report for %s in %s", x.spec.ID, raw)
	}
	want := scrubCounts{Objects: 4, Corrupt: 3, Missing: 1, Repaired: 4} // the truncated file is corrupt too
	last, total := got.Last, got.Total
	last.Bytes, total.Bytes = 0, 0
	if !got.Enabled || last != want || total != want {
		t.Fatalf("%s's scrub report: %+v; want 4 objects checked, 3 corrupt, 1 missing, 4 repaired", x.spec.ID, *got)
	}

	// dfs cluster status prints it.
	cmd = exec.Command(dfsBin, "cluster", "status", "--addr", strings.TrimSuffix(other.URL, "/"))
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dfs cluster status: %v\n%s", err, out)
	}
	var row []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == x.spec.ID && strings.Contains(line, "objects") {
			row = f
		}
	}
	// ID idle DATE TIME (took) N objects, SIZE UNIT CORRUPT MISSING REPAIRED UNREPAIRED ...
	if len(row) < 13 || strings.Join(row[9:13], " ") != "3 1 4 0" {
		t.Fatalf("dfs cluster status scrub row for %s: %q\n%s", x.spec.ID, row, out)
	}

	// And the metrics.
	_, metrics, err := c.get(x, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dfs_scrub_corrupt_total 3", "dfs_scrub_missing_total 1", "dfs_scrub_repaired_total 4", "dfs_scrub_unrepaired_total 0"} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("metrics of %s lack %q", x.spec.ID, want)
		}
	}

	// Every file reads back right from that node.
	dx := newDAV(t, x)
	for p, data := range files {
		dx.expectFile(p, sha(data), int64(len(data)), "")
	}
}

// TestScrubNoGoodCopy damages content on a single node, which has no peer
// to repair it from: damage in the first block gets 503 before anything
// is sent; damage further in breaks the response off after the good bytes
// before the damaged block. Not one corrupt byte reaches the client.
func TestScrubNoGoodCopy(t *testing.T) {
	n := startNode(t, embedded)
	d := newDAV(t, n)
	small := versionData(800, 5000)
	large := versionData(801, 3<<20)
	d.put("/small.bin", small)
	d.put("/large.bin", large)
	flipByte(t, objectFile(n, small), 100)
	const flip = 2<<20 + 5
	flipByte(t, objectFile(n, large), flip)

	resp, body := d.do(http.MethodGet, "/small.bin", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET of corrupt content with no good copy: %d (Retry-After %q) %s; want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	resp, err := d.hc.Do(d.req(http.MethodGet, "/large.bin", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("GET of a file corrupt in its middle completed (%d bytes, status %d); want a broken transfer", len(got), resp.StatusCode)
	}
	good := int64(flip) / (64 << 10) * (64 << 10) // the block holding the damage starts here
	if int64(len(got)) > good || !bytes.Equal(got, large[:len(got)]) {
		t.Fatalf("delivered %d bytes (right: %v); want at most the %d good bytes before the damaged block",
			len(got), bytes.Equal(got, large[:min(len(got), len(large))]), good)
	}
	if !strings.Contains(n.logText(), "no good copy of corrupt content") {
		t.Error("the failed repair was not logged")
	}
}

// flipByte damages one byte of a file in place, as a failing disk would.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	if err := testdisk.FlipByte(p, off); err != nil {
		t.Fatal(err)
	}
}
