package e2e

// Per-path permissions (--access-rules) on a real 3-node cluster: a
// matrix of users × methods × paths through the leader and a follower,
// with nothing changed where refused; listings that hide what a user may
// not read; a rules change picked up by every node; a broken rules file
// refused at start with its line; rclone and cadaver as two users.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eRules: homes everyone reads and only the owner (and admins) change,
// a shared folder staff change with a board only staff read, a secret
// area for admins.
const e2eRules = `default: none
groups:
  staff: [alice, carol]
  admins: [root]
rules:
  - path: /
    read: ["*"]
    write: ["@admins"]
  - path: /home
    read: ["*"]
    write: ["@admins"]
  - path: /home/{user}
    write: ["{user}", "@admins"]
  - path: /shared
    read: ["*"]
    write: ["@staff", "@admins"]
  - path: /shared/board
    read: ["@staff"]
    write: ["@admins"]
  - path: /secret
    write: ["@admins"]
`

// accessUsers writes an htpasswd file with root, alice, bob and carol
// (password: name + "-pw").
func accessUsers(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	for _, u := range []string{"root", "alice", "bob", "carol"} {
		addUser(t, path, u, u+"-pw")
	}
	return path
}

// startAccessCluster starts 3 nodes, each with its own copy of the users
// and of the rules (as each pod mounts the same Secret and ConfigMap), and
// returns the rules files so a test can change them.
func startAccessCluster(t *testing.T, rules string) (*tcluster, []string) {
	t.Helper()
	users := accessUsers(t)
	c := &tcluster{t: t, st: embedded, hc: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	var files []string
	for i, spec := range clusterSpecs(t, 3, embedded) {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("rules-%d.yaml", i))
		if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		spec.Extra = append(spec.Extra, "--htpasswd", users, "--access-rules", f)
		c.nodes = append(c.nodes, launchNode(t, spec, false))
	}
	c.waitAllReady(t, 60*time.Second)
	c.leader(t)
	c.waitMembers(t, 3)
	return c, files
}

// TestAccessCluster: every user × method × path through the leader and
// through a follower gets the expected status, and a refused request
// commits nothing on any node.
func TestAccessCluster(t *testing.T) {
	c, _ := startAccessCluster(t, e2eRules)
	leader := c.nodes[c.leader(t)]
	follower := c.followers(t)[0]
	root := newAuthDAV(t, follower, "root", "root-pw")
	for _, d := range []string{"/home", "/home/alice", "/home/bob", "/shared", "/shared/board", "/secret"} {
		root.must("MKCOL", d, nil, nil, http.StatusCreated)
	}
	for _, f := range []string{"/home/alice/a.txt", "/home/bob/b.txt", "/shared/s.txt", "/shared/board/minutes.txt", "/secret/s.txt"} {
		root.put(f, []byte("content of "+f))
	}
	// A lock root holds on a file staff may change: carol's writes need
	// root's token, which is root's alone.
	rootToken := root.lock("/shared/locked.txt")
	c.waitApplied(t, leader, c.nodes)

	type attempt struct {
		user, method, path string
		hdr                map[string]string
		body               string
		want               int
	}
	lockinfo := lockBody
	refused := []attempt{
		{"alice", "PUT", "/home/bob/b.txt", nil, "overwritten", http.StatusForbidden},
		{"alice", "PUT", "/secret/s.txt", nil, "overwritten", http.StatusNotFound},
		{"alice", "DELETE", "/home/bob/b.txt", nil, "", http.StatusForbidden},
		{"alice", "DELETE", "/shared", nil, "", http.StatusMultiStatus},
		{"bob", "DELETE", "/shared", nil, "", http.StatusForbidden},
		{"bob", "PUT", "/shared/new.txt", nil, "x", http.StatusForbidden},
		{"alice", "MKCOL", "/home/bob/dir", nil, "", http.StatusForbidden},
		{"alice", "MKCOL", "/secret/dir", nil, "", http.StatusNotFound},
		{"alice", "PROPPATCH", "/home/bob/b.txt", nil, proppatchBody(map[string]string{"T:color": "red"}, nil), http.StatusForbidden},
		{"alice", "LOCK", "/home/bob/b.txt", nil, lockinfo, http.StatusForbidden},
		{"alice", "LOCK", "/shared", map[string]string{"Depth": "infinity"}, lockinfo, http.StatusMultiStatus},
		{"bob", "COPY", "/shared", map[string]string{"Destination": "/home/bob/copy"}, "", http.StatusForbidden},
		{"alice", "COPY", "/home/alice/a.txt", map[string]string{"Destination": "/home/bob/a.txt"}, "", http.StatusForbidden},
		{"alice", "COPY", "/home/alice/a.txt", map[string]string{"Destination": "/secret/a.txt"}, "", http.StatusNotFound},
		{"alice", "MOVE", "/home/bob/b.txt", map[string]string{"Destination": "/home/alice/b.txt"}, "", http.StatusForbidden},
		{"alice", "MOVE", "/shared", map[string]string{"Destination": "/home/alice/shared"}, "", http.StatusMultiStatus},
		{"carol", "COPY", "/home/carol-none.txt", map[string]string{"Destination": "/shared/x"}, "", http.StatusNotFound},
		{"carol", "PUT", "/shared/locked.txt", nil, "x", http.StatusLocked},
		{"carol", "PUT", "/shared/locked.txt", map[string]string{"If": "(<" + rootToken + ">)"}, "x", http.StatusLocked},
		{"carol", "UNLOCK", "/shared/locked.txt", map[string]string{"Lock-Token": "<" + rootToken + ">"}, "", http.StatusForbidden},
		{"bob", "GET", "/shared/board/minutes.txt", nil, "", http.StatusNotFound},
		{"alice", "GET", "/secret/s.txt", nil, "", http.StatusNotFound},
		{"alice", "PROPFIND", "/secret", map[string]string{"Depth": "0"}, "", http.StatusNotFound},
	}
	listings := map[string]props{}
	applied := map[string]uint64{}
	for _, n := range c.nodes {
		listings[n.spec.ID] = newAuthDAV(t, n, "root", "root-pw").listing()
		applied[n.spec.ID] = nodeApplied(t, c, n)
	}
	for _, entry := range []*node{leader, follower} {
		for _, a := range refused {
			d := newAuthDAV(t, entry, a.user, a.user+"-pw")
			var body []byte
			if a.body != "" {
				body = []byte(a.body)
			}
			resp, b := d.do(a.method, a.path, body, a.hdr)
			if resp.StatusCode != a.want {
				t.Errorf("%s %s %s through %s: %d %q, want %d", a.user, a.method, a.path, entry.spec.ID, resp.StatusCode, b, a.want)
			}
			named := strings.HasPrefix(a.path, "/secret") || strings.HasPrefix(a.hdr["Destination"], "/secret")
			if bytes.Contains(b, []byte("/secret")) && !named {
				t.Errorf("%s %s %s through %s: the answer names /secret: %s", a.user, a.method, a.path, entry.spec.ID, b)
			}
		}
	}
	for _, n := range c.nodes {
		if got := nodeApplied(t, c, n); got != applied[n.spec.ID] {
			t.Errorf("%s applied %d commands during the refused attempts", n.spec.ID, got-applied[n.spec.ID])
		}
		if lines := listingDiff(listings[n.spec.ID], newAuthDAV(t, n, "root", "root-pw").listing()); len(lines) > 0 {
			t.Errorf("%s changed: %s", n.spec.ID, strings.Join(lines, "; "))
		}
	}

	// What is allowed works through either node.
	for i, entry := range []*node{leader, follower} {
		alice := newAuthDAV(t, entry, "alice", "alice-pw")
		alice.put(fmt.Sprintf("/home/alice/new-%d.txt", i), []byte("mine"))
		alice.must("GET", "/home/bob/b.txt", nil, nil, http.StatusOK)
		alice.must("GET", "/shared/board/minutes.txt", nil, nil, http.StatusOK)
		alice.must("COPY", "/shared", nil, map[string]string{"Destination": fmt.Sprintf("/home/alice/shared-%d", i)}, http.StatusCreated)
		carol := newAuthDAV(t, entry, "carol", "carol-pw")
		carol.put(fmt.Sprintf("/shared/carol-%d.txt", i), []byte("staff"))
	}

	// Listings hide what a user may not read, on every node.
	c.waitApplied(t, leader, c.nodes)
	for _, n := range c.nodes {
		bob := newAuthDAV(t, n, "bob", "bob-pw")
		for p := range bob.listing() {
			if strings.HasPrefix(p, "/secret") || strings.HasPrefix(p, "/shared/board") {
				t.Errorf("%s lists %s to bob", n.spec.ID, p)
			}
		}
		if _, ok := bob.listing()["/home/alice/a.txt"]; !ok {
			t.Errorf("%s hides alice's home from bob, who may read it", n.spec.ID)
		}
	}
}

// TestAccessRulesReload: a rules change reaches every node without a
// restart; a broken file keeps the last good rules, and a node refuses to
// start with one, naming the line.
func TestAccessRulesReload(t *testing.T) {
	c, files := startAccessCluster(t, e2eRules)
	leader := c.nodes[c.leader(t)]
	root := newAuthDAV(t, leader, "root", "root-pw")
	root.must("MKCOL", "/secret", nil, nil, http.StatusCreated)
	root.put("/secret/s.txt", []byte("s"))
	c.waitApplied(t, leader, c.nodes)

	opened := strings.Replace(e2eRules, "  - path: /secret\n    write: [\"@admins\"]\n", "  - path: /secret\n    read: [bob]\n    write: [\"@admins\"]\n", 1)
	for _, f := range files {
		writeAtomically(t, f, opened)
	}
	for _, n := range c.nodes {
		bob := newAuthDAV(t, n, "bob", "bob-pw")
		waitFor(t, 15*time.Second, n.spec.ID+" to let bob read /secret", func() bool {
			resp, _ := bob.do("GET", "/secret/s.txt", nil, nil)
			return resp.StatusCode == http.StatusOK
		})
	}
	// A broken file: the last good rules stay, the node says why.
	for _, f := range files {
		writeAtomically(t, f, opened+"  - path: /x\n    read: [\"@nogroup\"]\n")
	}
	waitFor(t, 15*time.Second, "every node to log the refused rules", func() bool {
		for _, n := range c.nodes {
			if !strings.Contains(n.logText(), "nogroup") {
				return false
			}
		}
		return true
	})
	for _, n := range c.nodes {
		newAuthDAV(t, n, "bob", "bob-pw").must("GET", "/secret/s.txt", nil, nil, http.StatusOK)
	}

	// A node does not start with a broken file, and says which line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("default: none\nrules:\n  - path: /a\n    read: [\"*\"]\n  - path: relative\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dfsBin, "server", "--id", "bad", "--data-dir", t.TempDir(), "--bootstrap",
		"--http-addr", freeAddr(t), "--raft-addr", freeAddr(t), "--htpasswd", accessUsers(t), "--access-rules", bad)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 5") {
		t.Fatalf("dfs server with a broken rules file: err %v, want a refusal naming line 5:\n%s", err, out)
	}
}

// writeAtomically replaces path's content the way a ConfigMap update does
// (a new file renamed over the old).
func writeAtomically(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAccessClients: rclone and cadaver as two users. alice copies a tree
// into her home and reads it back; bob can read it but his upload into
// alice's home fails, and his listing of /shared lacks the board.
func TestAccessClients(t *testing.T) {
	for _, tool := range []string{"rclone", "cadaver"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH (apt-get install %s): %v", tool, tool, err)
		}
	}
	c, _ := startAccessCluster(t, e2eRules)
	follower := c.followers(t)[0]
	root := newAuthDAV(t, follower, "root", "root-pw")
	for _, d := range []string{"/home", "/home/alice", "/home/bob", "/shared", "/shared/board"} {
		root.must("MKCOL", d, nil, nil, http.StatusCreated)
	}
	root.put("/shared/board/minutes.txt", []byte("staff only"))
	root.put("/shared/s.txt", []byte("for all"))

	obscure := func(pw string) string {
		out, err := exec.Command("rclone", "obscure", pw).Output()
		if err != nil {
			t.Fatalf("rclone obscure: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	as := func(user string) []string {
		return []string{"--webdav-user", user, "--webdav-pass", obscure(user + "-pw")}
	}
	src := makeTree(t)
	rclone(t, follower.URL, append([]string{"copy", src, "dfs:home/alice/tree"}, as("alice")...)...)
	back := filepath.Join(t.TempDir(), "back")
	rclone(t, follower.URL, append([]string{"copy", "dfs:home/alice/tree", back}, as("bob")...)...)
	sameTree(t, treeDigest(t, src), treeDigest(t, back))

	conf := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(conf, []byte("[dfs]\ntype = webdav\nurl = "+follower.URL+"\nvendor = other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rclone", append([]string{"--config", conf, "--retries", "1", "--low-level-retries", "1",
		"copyto", filepath.Join(src, "plain.txt"), "dfs:home/alice/by-bob.txt"}, as("bob")...)...)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("bob's rclone upload into alice's home succeeded:\n%s", out)
	}
	cmd = exec.Command("rclone", append([]string{"--config", conf, "lsf", "dfs:shared"}, as("bob")...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rclone lsf as bob: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "s.txt") || strings.Contains(string(out), "board") {
		t.Errorf("bob's rclone listing of /shared: %q, want s.txt and no board", out)
	}

	// cadaver as alice: a put into her home works, one into bob's fails.
	local := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(local, []byte("from cadaver"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("put %s /home/alice/note.txt\nput %s /home/bob/note.txt\nls /shared/\nquit\n", local, local)
	cout := cadaverAs(t, follower.URL, "alice", "alice-pw", script)
	if !strings.Contains(cout, "board") {
		t.Errorf("cadaver as alice (staff) does not list the board:\n%s", cout)
	}
	d := newAuthDAV(t, follower, "root", "root-pw")
	d.must("GET", "/home/alice/note.txt", nil, nil, http.StatusOK)
	d.must("GET", "/home/bob/note.txt", nil, nil, http.StatusNotFound)
}

// cadaverAs runs a cadaver script against url as user, with the
// credentials in a netrc file, and returns what it printed.
func cadaverAs(t *testing.T, url, user, pass, script string) string {
	t.Helper()
	home := t.TempDir()
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(fmt.Sprintf("machine %s\nlogin %s\npassword %s\n", host, user, pass)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cadaver", url)
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cadaver as %s: %v\n%s", user, err, out)
	}
	return string(out)
}

// TestUserRootLitmus: with --user-root every user mounts their own
// folder: litmus passes through a follower (whose first request, before
// the folder exists, goes to the leader to create it), and what alice
// writes lands under /home/alice, where bob does not see it.
func TestUserRootLitmus(t *testing.T) {
	users := accessUsers(t)
	c := &tcluster{t: t, st: embedded, hc: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	for _, spec := range clusterSpecs(t, 3, embedded, "--htpasswd", users, "--user-root", "/home/{user}") {
		c.nodes = append(c.nodes, launchNode(t, spec, false))
	}
	c.waitAllReady(t, 60*time.Second)
	c.leader(t)
	c.waitMembers(t, 3)
	follower := c.followers(t)[0]

	alice := newAuthDAV(t, follower, "alice", "alice-pw")
	alice.must("PROPFIND", "/", nil, map[string]string{"Depth": "0"}, http.StatusMultiStatus)
	alice.put("/mine.txt", []byte("alice's"))
	runLitmus(t, follower.URL, "3 nodes, through the follower "+follower.spec.ID+", --user-root /home/{user}", "alice", "alice-pw")

	bob := newAuthDAV(t, follower, "bob", "bob-pw")
	bob.must("GET", "/mine.txt", nil, nil, http.StatusNotFound)
	for p := range bob.listing() {
		if strings.Contains(p, "mine") || strings.Contains(p, "litmus") {
			t.Errorf("bob sees %s", p)
		}
	}
	// The drive holds alice's file under her folder, on every node.
	c.waitApplied(t, c.nodes[c.leader(t)], c.nodes)
	for _, n := range c.nodes {
		st, _, _, _ := newAuthDAV(t, n, "alice", "alice-pw").get("/mine.txt")
		if st != http.StatusOK {
			t.Errorf("%s: alice's /mine.txt: %d", n.spec.ID, st)
		}
	}
}

// TestDeviceTokensCluster: a device password made by `dfs user token add`
// works on every node of a cluster (writes through a follower forwarded
// as its user), a read-only one only reads, and a revoked one stops
// working on every node within the reload interval.
func TestDeviceTokensCluster(t *testing.T) {
	users := accessUsers(t)
	tokens := filepath.Join(t.TempDir(), "device-tokens")
	add := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(dfsBin, append([]string{"user", "token", "add", "--tokens-file", tokens, "--file", users}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dfs user token add %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	laptop := add("alice", "--label", "laptop")
	phone := add("alice", "--label", "phone", "--read-only")
	if !strings.HasPrefix(laptop, "dfs_") || laptop == phone {
		t.Fatalf("tokens %q and %q", laptop, phone)
	}
	c := &tcluster{t: t, st: embedded, hc: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	for _, spec := range clusterSpecs(t, 3, embedded, "--htpasswd", users, "--device-tokens", tokens) {
		c.nodes = append(c.nodes, launchNode(t, spec, false))
	}
	c.waitAllReady(t, 60*time.Second)
	leader := c.nodes[c.leader(t)]
	c.waitMembers(t, 3)
	follower := c.followers(t)[0]

	newAuthDAV(t, follower, "alice", laptop).put("/from-laptop.txt", []byte("x"))
	for _, n := range []*node{leader, follower} {
		ph := newAuthDAV(t, n, "alice", phone)
		ph.must("GET", "/from-laptop.txt", nil, nil, http.StatusOK)
		ph.must("PUT", "/from-phone.txt", []byte("x"), nil, http.StatusForbidden)
		// A token is alice's password only: not bob's.
		newAuthDAV(t, n, "bob", laptop).must("GET", "/from-laptop.txt", nil, nil, http.StatusUnauthorized)
	}

	if out, err := exec.Command(dfsBin, "user", "token", "revoke", "--tokens-file", tokens, "alice", "laptop").CombinedOutput(); err != nil {
		t.Fatalf("dfs user token revoke: %v\n%s", err, out)
	}
	for _, n := range c.nodes {
		d := newAuthDAV(t, n, "alice", laptop)
		waitFor(t, 10*time.Second, n.spec.ID+" to refuse the revoked token", func() bool {
			resp, _ := d.do("GET", "/from-laptop.txt", nil, nil)
			return resp.StatusCode == http.StatusUnauthorized
		})
		// The account password and the other token still work.
		newAuthDAV(t, n, "alice", "alice-pw").must("GET", "/from-laptop.txt", nil, nil, http.StatusOK)
		newAuthDAV(t, n, "alice", phone).must("GET", "/from-laptop.txt", nil, nil, http.StatusOK)
	}
}
