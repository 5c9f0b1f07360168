package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/replication"
)

// backoff is a retry delay that doubles up to a ceiling.
type backoff struct{ cur, max time.Duration }

// sleep waits the current delay (false if ctx ended first) and doubles it.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// self is this node's join request: who it is and where it is.
func (c *Cluster) self() JoinRequest {
	return JoinRequest{ID: c.cfg.ID, RaftAddr: c.raft.Addr(), URL: c.cfg.URL}
}

// form gets this node into a cluster as configured, then makes sure the
// member table has its current URL.
func (c *Cluster) form(ctx context.Context) {
	switch {
	case c.raft.HasState():
		// --bootstrap, or a restart: already a member. Register anyway
		// (harmless), so a changed URL or Raft address propagates.
		c.register(ctx)
	case len(c.cfg.Join) > 0:
		c.joinLoop(ctx, c.cfg.Join)
	case c.cfg.BootstrapExpect > 0:
		c.bootstrapExpect(ctx)
	}
}

// joinLoop calls POST /cluster/join on targets, round robin with backoff,
// until one accepts or ctx ends. A node that already has state also stops
// once its copy of the member table shows it registered as it is, so a
// restarted node whose --join URLs are gone does not retry forever.
func (c *Cluster) joinLoop(ctx context.Context, targets []string) bool {
	req := c.self()
	want := metastore.Member{ID: req.ID, URL: req.URL, RaftAddr: req.RaftAddr}
	bo := backoff{cur: 200 * time.Millisecond, max: 5 * time.Second}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && c.raft.HasState() {
			if ms, err := c.members.Members(ctx); err == nil && slices.Contains(ms, want) {
				c.log.Info().Msg("the member table holds this node's addresses")
				return true
			}
		}
		target := targets[attempt%len(targets)]
		cctx, cancel := context.WithTimeout(ctx, c.cfg.LeaderWait+c.forwardTimeout())
		resp, err := c.client.Join(cctx, target, req)
		cancel()
		if err == nil {
			c.log.Info().Str("via", target).Str("leader", resp.Leader).Bool("added_voter", resp.AddedVoter).
				Bool("updated_member", resp.UpdatedMember).Msg("joined the cluster")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		ev := c.log.Info()
		switch code := statusCode(err); {
		case code == 401 || code == 403:
			ev = c.log.Error() // the secrets differ: only an operator can fix that
		case attempt >= len(targets)*3:
			ev = c.log.Warn()
		}
		ev.Err(err).Str("via", target).Msg("join not accepted yet; retrying")
		if !bo.sleep(ctx) {
			return false
		}
	}
}

// register makes sure the member table holds this node's current URL and
// Raft address. The leader does that for itself (leaderLoop); a follower
// asks the leader through --join or --peers URLs if it has them, else
// through its own join endpoint, which relays to the leader.
func (c *Cluster) register(ctx context.Context) {
	if targets := append(slices.Clone(c.cfg.Join), c.cfg.Peers...); len(targets) > 0 {
		c.joinLoop(ctx, targets)
		return
	}
	want := metastore.Member{ID: c.cfg.ID, URL: c.cfg.URL, RaftAddr: c.raft.Addr()}
	bo := backoff{cur: 200 * time.Millisecond, max: 5 * time.Second}
	for {
		id, _ := c.raft.Leader()
		switch {
		case id == c.cfg.ID:
			return // leaderLoop registers the leader
		case id != "":
			if ms, err := c.members.Members(ctx); err == nil && slices.Contains(ms, want) {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, c.cfg.LeaderWait+c.forwardTimeout())
			_, err := c.join(cctx, c.self(), false)
			cancel()
			if err == nil {
				c.log.Info().Msg("registered this node's addresses with the leader")
				return
			}
			if ctx.Err() == nil {
				c.log.Info().Err(err).Msg("cannot register this node's addresses yet; retrying")
			}
		}
		if !bo.sleep(ctx) {
			return
		}
	}
}

// leaderLoop makes sure that, whenever this node becomes leader, the member
// table holds its own entry, so followers can forward to it.
func (c *Cluster) leaderLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	done := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.raft.IsLeader() {
			done = false
			continue
		}
		if done {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.opTimeout())
		updated, err := c.putMember(cctx, metastore.Member{ID: c.cfg.ID, URL: c.cfg.URL, RaftAddr: c.raft.Addr()})
		cancel()
		switch {
		case err == nil:
			done = true
			if updated {
				c.log.Info().Str("url", c.cfg.URL).Msg("leader registered its own addresses")
			}
		case ctx.Err() == nil:
			c.log.Warn().Err(err).Msg("leader cannot register its own addresses yet; retrying")
		}
	}
}

// bootstrapExpect forms a new cluster of BootstrapExpect nodes with no
// designated first node. It polls every peer's bootstrap-info until all
// have answered: if any peer already belongs to a cluster, it joins that
// cluster; otherwise every node bootstraps with the identical, sorted list
// of all of them, which hashicorp/raft turns into one cluster (the same
// configuration at index 1 on every node), never two.
func (c *Cluster) bootstrapExpect(ctx context.Context) {
	bo := backoff{cur: 200 * time.Millisecond, max: 2 * time.Second}
	for round := 0; ; round++ {
		if c.raft.HasState() {
			// A leader reached this node first: it is a member already.
			c.register(ctx)
			return
		}
		infos, missing := c.pollPeers(ctx)
		var inCluster []string
		for u, info := range infos {
			if info.ID != c.cfg.ID && (info.HasState || info.Leader != "") {
				inCluster = append(inCluster, u)
			}
		}
		if len(inCluster) > 0 {
			slices.Sort(inCluster)
			c.log.Info().Strs("members", inCluster).Msg("a peer already belongs to a cluster; joining it instead of bootstrapping")
			if c.joinLoop(ctx, append(inCluster, c.cfg.Peers...)) {
				return
			}
			return // ctx ended
		}
		if len(missing) == 0 {
			servers, err := c.expectedServers(infos)
			if err != nil {
				c.log.Error().Err(err).Msg("cannot bootstrap: fix --peers or --bootstrap-expect on every node")
			} else {
				err := c.raft.BootstrapWith(ctx, servers)
				switch {
				case err == nil:
					c.log.Info().Int("voters", len(servers)).Msg("bootstrapped the cluster with every expected peer")
					c.register(ctx)
					return
				case errors.Is(err, replication.ErrHasState):
					c.register(ctx)
					return
				case ctx.Err() != nil:
					return
				default:
					c.log.Warn().Err(err).Msg("bootstrap failed; retrying")
				}
			}
		} else if round%5 == 0 {
			c.log.Info().Strs("waiting_for", missing).Int("expect", c.cfg.BootstrapExpect).Msg("waiting for every peer before bootstrapping")
		}
		if !bo.sleep(ctx) {
			return
		}
	}
}

// pollPeers asks every peer for its bootstrap info, concurrently; it
// returns the answers by URL and the URLs that did not answer.
func (c *Cluster) pollPeers(ctx context.Context) (map[string]BootstrapInfo, []string) {
	var mu sync.Mutex
	infos := map[string]BootstrapInfo{}
	var missing []string
	var wg sync.WaitGroup
	for _, u := range c.cfg.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
			defer cancel()
			info, err := c.client.BootstrapInfo(cctx, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				missing = append(missing, u)
				if code := statusCode(err); code == 401 || code == 403 {
					c.log.Error().Err(err).Str("peer", u).Msg("peer refuses this node's cluster secret")
				}
				return
			}
			infos[u] = info
		}()
	}
	wg.Wait()
	slices.Sort(missing)
	return infos, missing
}

// expectedServers turns every peer's answer (and this node) into the
// bootstrap configuration, checking that they are exactly the expected
// number of distinct nodes.
func (c *Cluster) expectedServers(infos map[string]BootstrapInfo) ([]replication.Server, error) {
	byID := map[string]string{c.cfg.ID: c.raft.Addr()}
	for u, info := range infos {
		if info.ID == "" || info.RaftAddr == "" {
			return nil, fmt.Errorf("cluster: peer %s sent no id or raft address", u)
		}
		if have, ok := byID[info.ID]; ok && have != info.RaftAddr {
			return nil, fmt.Errorf("cluster: two nodes call themselves %q (raft %s and %s): node IDs must be unique", info.ID, have, info.RaftAddr)
		}
		byID[info.ID] = info.RaftAddr
	}
	if len(byID) != c.cfg.BootstrapExpect {
		ids := make([]string, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, fmt.Errorf("cluster: --bootstrap-expect is %d but --peers and this node are %d distinct nodes (%s)",
			c.cfg.BootstrapExpect, len(byID), strings.Join(ids, ", "))
	}
	servers := make([]replication.Server, 0, len(byID))
	for id, addr := range byID {
		servers = append(servers, replication.Server{ID: id, Address: addr, Suffrage: "Voter"})
	}
	slices.SortFunc(servers, func(a, b replication.Server) int { return strings.Compare(a.ID, b.ID) })
	return servers, nil
}
