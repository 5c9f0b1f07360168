package e2e

// Lock ownership and COPY/MOVE Destinations across real node processes:
// the user a follower authenticated is the one the leader checks a lock
// against, and the leader judges a forwarded Destination by the Host the
// client sent to the follower.

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuthClusterLockOwnership: alice locks a file through a follower;
// bob, who can read its token in lockdiscovery, cannot write under it,
// refresh it or remove it, through the follower (forwarded with his name)
// or the leader; alice can, through either. A MOVE through the follower
// whose Destination names the follower, the leader or a path works; one
// naming another server gets 502 and moves nothing.
func TestAuthClusterLockOwnership(t *testing.T) {
	path := usersFile(t)
	addUser(t, path, "bob", "bob-pw")
	c, _ := startAuthCluster(t, path)
	leader := c.nodes[c.leader(t)]
	follower := c.followers(t)[0]
	aliceF, aliceL := newAuthDAV(t, follower, "alice", "alice-pw"), newAuthDAV(t, leader, "alice", "alice-pw")
	bobF, bobL := newAuthDAV(t, follower, "bob", "bob-pw"), newAuthDAV(t, leader, "bob", "bob-pw")

	aliceF.must("MKCOL", "/shared", nil, nil, http.StatusCreated)
	aliceF.put("/shared/plan.txt", []byte("alice's plan"))
	tok := aliceF.lock("/shared/plan.txt")
	// The token is no secret.
	resp, b := bobF.do("PROPFIND", "/shared/plan.txt", []byte(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`),
		map[string]string{"Depth": "0"})
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(string(b), tok) {
		t.Fatalf("bob cannot see the token in lockdiscovery (%d): %s", resp.StatusCode, b)
	}
	with := map[string]string{"If": "(<" + tok + ">)"}
	for _, bob := range []*dav{bobF, bobL} {
		bob.must("PUT", "/shared/plan.txt", []byte("bob's plan"), with, http.StatusLocked)
		bob.must("DELETE", "/shared/plan.txt", nil, with, http.StatusLocked)
		bob.must("LOCK", "/shared/plan.txt", nil, map[string]string{"If": with["If"], "Timeout": "Second-60"}, http.StatusForbidden)
		bob.must("UNLOCK", "/shared/plan.txt", nil, map[string]string{"Lock-Token": "<" + tok + ">"}, http.StatusForbidden)
	}
	aliceF.expectFile("/shared/plan.txt", sha([]byte("alice's plan")), int64(len("alice's plan")), "")
	for _, alice := range []*dav{aliceF, aliceL} {
		alice.must("LOCK", "/shared/plan.txt", nil, map[string]string{"If": with["If"], "Timeout": "Second-60"}, http.StatusOK)
		alice.must("PUT", "/shared/plan.txt", []byte("alice's plan, v3"), with, http.StatusNoContent)
	}
	aliceF.must("UNLOCK", "/shared/plan.txt", nil, map[string]string{"Lock-Token": "<" + tok + ">"}, http.StatusNoContent)
	bobF.put("/shared/plan.txt", []byte("bob's plan"), http.StatusNoContent)

	// Destinations through the follower, forwarded to the leader.
	aliceF.put("/shared/a.txt", []byte("a"))
	aliceF.must("MOVE", "/shared/a.txt", nil, map[string]string{"Destination": aliceF.url("/shared/b.txt")}, http.StatusCreated)
	aliceF.must("MOVE", "/shared/b.txt", nil, map[string]string{"Destination": aliceL.url("/shared/c.txt")}, http.StatusCreated)
	aliceF.must("MOVE", "/shared/c.txt", nil, map[string]string{"Destination": "/shared/d.txt"}, http.StatusCreated)
	resp, b = aliceF.do("MOVE", "/shared/d.txt", nil, map[string]string{"Destination": "http://elsewhere.example/t.txt"})
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "names another server") {
		t.Fatalf("MOVE to another server through the follower: %d %s, want 502", resp.StatusCode, b)
	}
	aliceF.must("COPY", "/shared/d.txt", nil, map[string]string{"Destination": "http://elsewhere.example/t.txt"}, http.StatusBadGateway)
	c.waitApplied(t, leader, c.nodes)
	for _, n := range c.nodes {
		d := newAuthDAV(t, n, "alice", "alice-pw")
		d.expectStatus("GET", "/shared/d.txt", http.StatusOK)
		d.expectStatus("GET", "/t.txt", http.StatusNotFound)
	}
}
