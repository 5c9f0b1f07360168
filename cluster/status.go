package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Status reports the cluster as this node sees it: Raft's configuration
// joined with the member table, and every other node's own report (GET
// /cluster/node, each bounded by CallTimeout; a node that does not answer
// is "unreachable").
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	st, err := c.raft.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: status: %w", err)
	}
	members, err := c.members.Members(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: status: read member table: %w", err)
	}
	out := Status{Leader: st.LeaderID, Term: st.Term, CommitIndex: st.CommitIndex,
		PurgingTrees: st.PurgingTrees, BuildingCopies: st.BuildingCopies}
	index := map[string]int{}
	add := func(id string) *NodeStatus {
		if i, ok := index[id]; ok {
			return &out.Nodes[i]
		}
		index[id] = len(out.Nodes)
		out.Nodes = append(out.Nodes, NodeStatus{ID: id})
		return &out.Nodes[len(out.Nodes)-1]
	}
	for _, s := range st.Servers {
		ns := add(s.ID)
		ns.RaftAddr, ns.Voter = s.Address, s.Suffrage == "Voter"
	}
	for _, m := range members {
		ns := add(m.ID)
		ns.URL = strings.TrimRight(m.URL, "/")
		if ns.RaftAddr == "" {
			ns.RaftAddr = m.RaftAddr
		}
	}
	slices.SortFunc(out.Nodes, func(a, b NodeStatus) int { return strings.Compare(a.ID, b.ID) })

	var wg sync.WaitGroup
	for i := range out.Nodes {
		ns := &out.Nodes[i]
		if ns.ID == c.cfg.ID {
			if ns.URL == "" {
				ns.URL = c.cfg.URL // not registered yet
			}
			ns.Role = strings.ToLower(st.Role)
			ns.AppliedIndex = st.AppliedIndex
			ns.ContentBacklog = c.ContentBacklog()
			ns.Rebuilding = st.Rebuilding
			ns.Scrub = c.scrubStatus()
			continue
		}
		if ns.URL == "" {
			ns.Role, ns.Error = "unreachable", "no URL in the member table"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
			defer cancel()
			info, err := c.client.Node(cctx, ns.URL)
			if err != nil {
				ns.Role, ns.Error = "unreachable", err.Error()
				return
			}
			ns.Role, ns.AppliedIndex, ns.ContentBacklog = info.Role, info.AppliedIndex, info.ContentBacklog
			ns.Rebuilding = info.Rebuilding
			ns.Scrub = info.Scrub
		}()
	}
	wg.Wait()

	for _, ns := range out.Nodes {
		if ns.ID == out.Leader {
			out.LeaderURL = ns.URL
			if ns.Role == "leader" {
				for i := range out.Nodes {
					if out.Nodes[i].Role != "unreachable" {
						lag := ns.AppliedIndex - min(ns.AppliedIndex, out.Nodes[i].AppliedIndex)
						out.Nodes[i].Lag = &lag
					}
				}
			}
		}
	}
	return out, nil
}

func (c *Cluster) scrubStatus() *ScrubStatus {
	if c.cfg.Scrub == nil {
		return nil
	}
	return c.cfg.Scrub()
}
