package e2e

// Users and roles against real node processes: HTTP Basic against an
// htpasswd file written by `dfs user add`, read-only users on every node,
// the identity a follower passes to the leader, backoff for wrong
// passwords, and real clients (rclone, litmus) with credentials.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testlog"
)

// basicAuth adds HTTP Basic credentials to every request it carries.
type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

// newAuthDAV is newDAV for a client that sends user's credentials.
func newAuthDAV(t *testing.T, n *node, user, pass string) *dav {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &dav{t: t, n: n, hc: &http.Client{Transport: basicAuth{user: user, pass: pass, next: tr}, Timeout: 60 * time.Second}}
}

// addUser runs `dfs user add` on the htpasswd file at path, the password
// on standard input as a script would give it.
func addUser(t testing.TB, path, name, pass string) {
	t.Helper()
	cmd := exec.Command(dfsBin, "user", "add", "--file", path, "--cost", "4", name)
	cmd.Stdin = strings.NewReader(pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dfs user add %s: %v\n%s", name, err, out)
	}
}

func removeUser(t testing.TB, path, name string) {
	t.Helper()
	if out, err := exec.Command(dfsBin, "user", "remove", "--file", path, name).CombinedOutput(); err != nil {
		t.Fatalf("dfs user remove %s: %v\n%s", name, err, out)
	}
}

// usersFile writes an htpasswd file with alice (read-write) and reader.
func usersFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	addUser(t, path, "alice", "alice-pw")
	addUser(t, path, "reader", "reader-pw")
	return path
}

const lockBody = `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>` +
	`<D:locktype><D:write/></D:locktype><D:owner>auth-test</D:owner></D:lockinfo>`

// TestAuthNode: one node with --htpasswd: anonymous clients get a Basic
// challenge, the node API stays open, users authenticate, the file is
// re-read when `dfs user add` and `dfs user remove` change it, and a
// client-supplied identity header changes nothing.
func TestAuthNode(t *testing.T) {
	path := usersFile(t)
	n := startNode(t, embedded, "--htpasswd", path, "--read-only-users", "reader")
	anon, alice := newDAV(t, n), newAuthDAV(t, n, "alice", "alice-pw")

	t.Run("anonymous refused", func(t *testing.T) {
		for _, m := range []string{"GET", "PROPFIND", "OPTIONS", "PUT", "MKCOL", "DELETE"} {
			resp, body := anon.do(m, "/anon.txt", []byte("x"), nil)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="dfs", charset="UTF-8"` {
				t.Errorf("anonymous %s: %d, WWW-Authenticate %q; want 401 with a Basic challenge", m, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(string(body), "Basic") {
				t.Errorf("anonymous %s: body %q does not say why", m, body)
			}
		}
		alice.must("PROPFIND", "/anon.txt", nil, map[string]string{"Depth": "0"}, http.StatusNotFound)
	})

	t.Run("node API stays open", func(t *testing.T) {
		for _, p := range []string{"healthz", "readyz", "metrics", "cluster/status"} {
			resp, err := http.Get(n.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /%s without credentials: %d, want 200", p, resp.StatusCode)
			}
		}
		resp, _ := anon.do("POST", "/cluster/join", []byte("{}"), map[string]string{"Authorization": "Basic YWxpY2U6YWxpY2UtcHc="})
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST /cluster/join with Basic credentials and no cluster secret: %d", resp.StatusCode)
		}
	})

	t.Run("users", func(t *testing.T) {
		alice.put("/a.txt", []byte("alice's"))
		alice.must("GET", "/a.txt", nil, nil, http.StatusOK)
		reader := newAuthDAV(t, n, "reader", "reader-pw")
		reader.must("GET", "/a.txt", nil, nil, http.StatusOK)
		resp, body := reader.do("PUT", "/r.txt", []byte("x"), nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "read-only") {
			t.Fatalf("PUT by a read-only user: %d %q", resp.StatusCode, body)
		}
		// A forged identity header is dropped: anonymous stays anonymous,
		// the reader stays read-only.
		anon.must("PUT", "/forged.txt", []byte("x"), map[string]string{"X-Dfs-User": "alice"}, http.StatusUnauthorized)
		reader.must("PUT", "/forged.txt", []byte("x"), map[string]string{"X-Dfs-User": "alice"}, http.StatusForbidden)
		anon.must("PUT", "/forged.txt", []byte("x"), map[string]string{"X-Dfs-User": "alice", "X-Dfs-Cluster-Secret": "guess"}, http.StatusUnauthorized)
		alice.must("PROPFIND", "/forged.txt", nil, map[string]string{"Depth": "0"}, http.StatusNotFound)
	})

	t.Run("file changes picked up without restart", func(t *testing.T) {
		carol := newAuthDAV(t, n, "carol", "carol-pw")
		carol.must("GET", "/a.txt", nil, nil, http.StatusUnauthorized)
		addUser(t, path, "carol", "carol-pw")
		waitFor(t, 10*time.Second, "the new user carol to be accepted", func() bool {
			resp, _ := carol.do("GET", "/a.txt", nil, nil)
			return resp.StatusCode == http.StatusOK
		})
		carol.put("/c.txt", []byte("carol's"))
		removeUser(t, path, "carol")
		waitFor(t, 10*time.Second, "the removed user carol to be refused", func() bool {
			resp, _ := carol.do("GET", "/a.txt", nil, nil)
			return resp.StatusCode == http.StatusUnauthorized
		})
		// A broken file keeps the last good users.
		if err := os.WriteFile(path, []byte("alice:plaintext\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the broken file to be reported", func() bool {
			return strings.Contains(n.logText(), "htpasswd not reloaded")
		})
		alice.must("GET", "/a.txt", nil, nil, http.StatusOK)
	})
}

// TestAuthOpenWarns: without --htpasswd the node serves anyone and says so
// loudly at start.
func TestAuthOpenWarns(t *testing.T) {
	n := startNode(t, embedded)
	newDAV(t, n).put("/open.txt", []byte("x"))
	if log := n.logText(); !strings.Contains(log, `"level":"warn"`) || !strings.Contains(log, "WebDAV API is OPEN") {
		t.Fatalf("no loud warning about an open API in the log:\n%s", log)
	}
}

// TestAuthBackoff: wrong passwords for one user are answered later and
// later (the node waits before it even checks them, and says in
// Retry-After what the next attempt costs); the right password still
// works afterwards: a delay, never a lock-out.
func TestAuthBackoff(t *testing.T) {
	path := usersFile(t)
	n := startNode(t, embedded, "--htpasswd", path)
	wrong := newAuthDAV(t, n, "alice", "guess")
	// The default backoff: 3 failures free, then 250ms doubling.
	minDelay := []time.Duration{0, 0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
	lastRetry := 0
	for i, want := range minDelay {
		start := time.Now()
		resp, body := wrong.do("GET", "/", nil, nil)
		took := time.Since(start)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "wrong user name or password") {
			t.Fatalf("attempt %d: %d %q, want 401", i+1, resp.StatusCode, body)
		}
		if took < want {
			t.Errorf("attempt %d took %s, want at least the backoff %s", i+1, took, want)
		}
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if i >= 3 && (retry < 1 || retry < lastRetry) {
			t.Errorf("attempt %d: Retry-After %q after %q; want it present and growing", i+1, resp.Header.Get("Retry-After"), strconv.Itoa(lastRetry))
		}
		lastRetry = retry
		t.Logf("attempt %d: 401 after %s, Retry-After %s", i+1, took.Round(time.Millisecond), resp.Header.Get("Retry-After"))
	}
	if lastRetry < 4 {
		t.Errorf("Retry-After after 8 failures: %d, want the 4s the next attempt waits", lastRetry)
	}
	start := time.Now()
	newAuthDAV(t, n, "alice", "alice-pw").must("GET", "/", nil, nil, http.StatusOK)
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("the right password after 8 failures answered after %s, want the 4s delay first", took)
	}
	log := n.logText()
	if !strings.Contains(log, `"message":"authentication failed"`) || !strings.Contains(log, `"client_ip":"127.0.0.1"`) || !strings.Contains(log, `"user":"alice"`) {
		t.Errorf("failed attempts not logged with user and client IP:\n%s", log)
	}
	if strings.Contains(log, "guess") || strings.Contains(log, "alice-pw") {
		t.Error("a password reached the log")
	}
}

// nodeApplied is a node's metastore applied index: it moves with every
// command the cluster commits, refused ones included.
func nodeApplied(t *testing.T, c *tcluster, n *node) uint64 {
	t.Helper()
	v, err := c.nodeView(n)
	if err != nil {
		t.Fatal(err)
	}
	return v.AppliedIndex
}

// startAuthCluster forms a 3-node cluster in which every node reads its
// own htpasswd file (a copy of path), so a test can give nodes different
// users.
func startAuthCluster(t *testing.T, path string) (*tcluster, []string) {
	t.Helper()
	c := &tcluster{t: t, st: embedded, hc: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for i, spec := range clusterSpecs(t, 3, embedded, "--read-only-users", "reader") {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("users-%d.htpasswd", i))
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		spec.Extra = append(spec.Extra, "--htpasswd", f)
		c.nodes = append(c.nodes, launchNode(t, spec, false))
	}
	c.waitAllReady(t, 60*time.Second)
	c.leader(t)
	c.waitMembers(t, 3)
	return c, files
}

// TestAuthClusterReadOnly: a read-only user changes nothing through any
// method, whether it asks the leader or a follower (which would forward
// the write), and a forged identity header is ignored by both. Afterwards
// no node has applied a single command more and every node lists exactly
// what it listed before.
func TestAuthClusterReadOnly(t *testing.T) {
	c, _ := startAuthCluster(t, usersFile(t))
	leader := c.nodes[c.leader(t)]
	follower := c.followers(t)[0]

	// Set up through the follower: alice's writes are forwarded.
	alice := newAuthDAV(t, follower, "alice", "alice-pw")
	alice.must("MKCOL", "/ro", nil, nil, http.StatusCreated)
	alice.put("/ro/existing.txt", []byte("must stay as it is"))
	alice.must("PROPPATCH", "/ro/existing.txt", []byte(proppatchBody(map[string]string{"T:color": "blue"}, nil)), nil, http.StatusMultiStatus)
	token := alice.lock("/ro/locked.txt")
	c.waitApplied(t, leader, c.nodes)

	listings := map[string]props{}
	applied := map[string]uint64{}
	for _, n := range c.nodes {
		listings[n.spec.ID] = newAuthDAV(t, n, "alice", "alice-pw").listing()
		applied[n.spec.ID] = nodeApplied(t, c, n)
	}
	if len(listings[leader.spec.ID]) < 4 {
		t.Fatalf("setup missing from the listing: %v", listings[leader.spec.ID])
	}

	attempts := []struct {
		method, path string
		body         string
		hdr          map[string]string
	}{
		{"PUT", "/ro/new.txt", "new", nil},
		{"PUT", "/ro/existing.txt", "overwritten", nil},
		{"DELETE", "/ro/existing.txt", "", nil},
		{"DELETE", "/ro", "", nil},
		{"MKCOL", "/ro/newdir", "", nil},
		{"COPY", "/ro/existing.txt", "", map[string]string{"Destination": "/ro/copy.txt"}},
		{"MOVE", "/ro/existing.txt", "", map[string]string{"Destination": "/ro/moved.txt"}},
		{"PROPPATCH", "/ro/existing.txt", proppatchBody(map[string]string{"T:color": "red"}, nil), nil},
		{"LOCK", "/ro/existing.txt", lockBody, map[string]string{"Timeout": "Second-600"}},
		{"LOCK", "/ro/unmapped.txt", lockBody, nil},
		{"UNLOCK", "/ro/locked.txt", "", map[string]string{"Lock-Token": "<" + token + ">"}},
	}
	for _, entry := range []*node{leader, follower} {
		reader := newAuthDAV(t, entry, "reader", "reader-pw")
		anon := newDAV(t, entry)
		for _, a := range attempts {
			for _, forged := range []bool{false, true} {
				hdr := map[string]string{}
				for k, v := range a.hdr {
					hdr[k] = v
				}
				if forged {
					hdr["X-Dfs-User"] = "alice"
				}
				var body []byte
				if a.body != "" {
					body = []byte(a.body)
				}
				what := fmt.Sprintf("%s %s through %s (forged X-Dfs-User: %v)", a.method, a.path, entry.spec.ID, forged)
				resp, b := reader.do(a.method, a.path, body, hdr)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "read-only") {
					t.Errorf("reader: %s: %d %q, want 403 saying the user is read-only", what, resp.StatusCode, b)
				}
				if resp, b := anon.do(a.method, a.path, body, hdr); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("anonymous: %s: %d %q, want 401", what, resp.StatusCode, b)
				}
			}
		}
		// Reading works.
		reader.must("GET", "/ro/existing.txt", nil, nil, http.StatusOK)
		reader.must("PROPFIND", "/ro", nil, map[string]string{"Depth": "1"}, http.StatusMultiStatus)
	}

	for _, n := range c.nodes {
		if got := nodeApplied(t, c, n); got != applied[n.spec.ID] {
			t.Errorf("%s applied %d commands during the refused attempts", n.spec.ID, got-applied[n.spec.ID])
		}
		d := newAuthDAV(t, n, "alice", "alice-pw")
		if lines := listingDiff(listings[n.spec.ID], d.listing()); len(lines) > 0 {
			t.Errorf("%s changed: %s", n.spec.ID, strings.Join(lines, "; "))
		}
		resp, b := d.do("PROPFIND", "/ro/locked.txt", []byte(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`), map[string]string{"Depth": "0"})
		if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(string(b), token) {
			t.Errorf("%s: alice's lock is gone after the reader's UNLOCK (%d): %s", n.spec.ID, resp.StatusCode, b)
		}
	}
	// Alice's own lock still works for her.
	alice.must("UNLOCK", "/ro/locked.txt", nil, map[string]string{"Lock-Token": "<" + token + ">"}, http.StatusNoContent)
}

// TestAuthClusterForwardedIdentity: the leader believes the user a
// follower authenticated, even one only the follower knows, but never the
// same header from a client.
func TestAuthClusterForwardedIdentity(t *testing.T) {
	c, files := startAuthCluster(t, usersFile(t))
	li := c.leader(t)
	leader := c.nodes[li]
	follower := c.followers(t)[0]
	fi := c.index(follower)
	// Only the follower knows zoë (a name beyond ASCII, as header and as Basic credentials).
	addUser(t, files[fi], "zoë", "zoë-pw")
	viaFollower := newAuthDAV(t, follower, "zoë", "zoë-pw")
	waitFor(t, 10*time.Second, "the follower to accept zoë", func() bool {
		resp, _ := viaFollower.do("GET", "/", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	// The leader does not know her...
	newAuthDAV(t, leader, "zoë", "zoë-pw").must("PUT", "/direct.txt", []byte("x"), nil, http.StatusUnauthorized)
	// ...but believes the follower, which forwards her write with her name
	// and the cluster secret.
	viaFollower.put("/zoë.txt", []byte("written by zoë through "+follower.spec.ID))
	newAuthDAV(t, leader, "alice", "alice-pw").must("GET", "/zoë.txt", nil, nil, http.StatusOK)
	// A client that names zoë itself, on either node, is not zoë.
	for _, n := range []*node{leader, follower} {
		newDAV(t, n).must("PUT", "/forged.txt", []byte("x"), map[string]string{"X-Dfs-User": "zoë"}, http.StatusUnauthorized)
		newAuthDAV(t, n, "reader", "reader-pw").must("PUT", "/forged.txt", []byte("x"), map[string]string{"X-Dfs-User": "zoë"}, http.StatusForbidden)
	}
	newAuthDAV(t, leader, "alice", "alice-pw").must("PROPFIND", "/forged.txt", nil, map[string]string{"Depth": "0"}, http.StatusNotFound)
}

// TestAuthRclone: rclone with --webdav-user and --webdav-pass copies a tree
// up and back byte for byte; as a read-only user it can list and download
// but not upload.
func TestAuthRclone(t *testing.T) {
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Fatalf("rclone not found on PATH (apt-get install rclone): %v", err)
	}
	n := startNode(t, embedded, "--htpasswd", usersFile(t), "--read-only-users", "reader")
	obscure := func(pw string) string {
		out, err := exec.Command("rclone", "obscure", pw).Output()
		if err != nil {
			t.Fatalf("rclone obscure: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	asAlice := []string{"--webdav-user", "alice", "--webdav-pass", obscure("alice-pw")}
	asReader := []string{"--webdav-user", "reader", "--webdav-pass", obscure("reader-pw")}
	src := makeTree(t)
	rclone(t, n.URL, append([]string{"copy", src, "dfs:tree"}, asAlice...)...)
	back := filepath.Join(t.TempDir(), "back")
	rclone(t, n.URL, append([]string{"copy", "dfs:tree", back}, asReader...)...)
	sameTree(t, treeDigest(t, src), treeDigest(t, back))

	// Uploads as the reader fail; without credentials even listing does.
	for _, args := range [][]string{
		append([]string{"copyto", filepath.Join(src, "plain.txt"), "dfs:tree/by-reader.txt"}, asReader...),
		{"lsf", "dfs:tree"},
	} {
		conf := filepath.Join(t.TempDir(), "rclone.conf")
		if err := os.WriteFile(conf, []byte("[dfs]\ntype = webdav\nurl = "+n.URL+"\nvendor = other\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("rclone", append([]string{"--config", conf, "--retries", "1", "--low-level-retries", "1"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err == nil {
			t.Errorf("rclone %s succeeded:\n%s", strings.Join(args, " "), out.String())
		}
	}
	resp, _ := newAuthDAV(t, n, "alice", "alice-pw").do("PROPFIND", "/tree/by-reader.txt", nil, map[string]string{"Depth": "0"})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the reader's upload exists: PROPFIND %d", resp.StatusCode)
	}
}

// TestAuthLitmus: litmus passes 104/104 as an authenticated user, on one
// node and through a follower of a cluster (every write forwarded to the
// leader with the user's identity).
func TestAuthLitmus(t *testing.T) {
	path := usersFile(t)
	n := startNode(t, embedded, "--htpasswd", path)
	runLitmus(t, n.URL, "one node, HTTP Basic", "alice", "alice-pw")
	c, _ := startAuthCluster(t, path)
	f := c.followers(t)[0]
	runLitmus(t, f.URL, "3 nodes, through the follower "+f.spec.ID+", HTTP Basic", "alice", "alice-pw")
}

// TestAuthUserAddPrompt: on a terminal (script(1) gives dfs a real pty)
// `dfs user add` asks twice and refuses two different answers.
func TestAuthUserAddPrompt(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script not found on PATH (util-linux): %v", err)
	}
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	tests := []struct {
		first, second string
		wantErr       string
	}{
		{"typo-pw", "other-pw", "do not match"},
		{"tty-pw", "tty-pw", ""},
	}
	for _, tt := range tests {
		cmd := exec.Command("script", "-qec", dfsBin+" user add --cost 4 --file "+path+" alice", "/dev/null")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out testlog.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Answer each prompt once it is shown.
		for i, answer := range []string{tt.first, tt.second} {
			waitFor(t, 10*time.Second, "password prompt", func() bool { return strings.Count(out.String(), "assword: ") > i })
			if _, err := stdin.Write([]byte(answer + "\n")); err != nil {
				t.Fatal(err)
			}
		}
		err = cmd.Wait()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(out.String(), tt.wantErr) {
				t.Fatalf("different answers: %v, output %q; want a failure saying %q", err, out.String(), tt.wantErr)
			}
			if _, serr := os.Stat(path); serr == nil {
				t.Fatal("the file was written after a mismatch")
			}
			continue
		}
		if err != nil || !strings.Contains(out.String(), "added user alice") {
			t.Fatalf("dfs user add on a terminal: %v\n%s", err, out.String())
		}
	}
	if out, err := exec.Command("htpasswd", "-vb", path, "alice", "tty-pw").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd -v: %v %s", err, out)
	}
}
