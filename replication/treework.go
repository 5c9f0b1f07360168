package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// Subtree work in bounded steps (see package fsm, apply_tree.go): a DELETE
// of a large tree leaves it in the purge area, a large COPY leaves a job in
// the staging area, and the leader proposes the entries that finish them.
// The areas are replicated state, so a new leader resumes what the last
// one left.

// finishTreeWork runs on every node and acts on the leader: every
// TreeWorkInterval it proposes OpCopyStep entries until every staged copy
// is in place, then OpPurge entries until the purge area is empty. Copies
// come first: a client waits for each.
func (n *Node) finishTreeWork(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.TreeWorkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.IsLeader() {
			continue
		}
		if err := n.treeWorkOnce(ctx); err != nil && ctx.Err() == nil && n.IsLeader() {
			n.log.Warn().Err(err).Msg("subtree work failed; retrying")
		}
	}
}

// treeWorkOnce does all pending subtree work while this node leads.
func (n *Node) treeWorkOnce(ctx context.Context) error {
	start, entries := time.Now(), 0
	defer func() {
		if entries > 0 {
			n.log.Info().Int("entries", entries).Dur("took", time.Since(start)).Msg("subtree work done")
		}
	}()
	for _, area := range []metastore.ID{metastore.StagingID, metastore.PurgeID} {
		for n.IsLeader() {
			ents, err := n.fsm.Store().List(ctx, area)
			if err != nil {
				return fmt.Errorf("replication: list work area %d: %w", area, err)
			}
			if len(ents) == 0 {
				break
			}
			cmd := &fsm.Command{Op: fsm.OpPurge, Time: time.Now().UnixNano(), Step: n.cfg.TreeStep}
			if area == metastore.StagingID {
				cmd.Op, cmd.Job = fsm.OpCopyStep, ents[0].Name
			}
			if err := n.treeStep(ctx, cmd); err != nil {
				return err
			}
			entries++
		}
	}
	return nil
}

// treeStep proposes one step and waits until this node has applied it, so
// the next look at the area sees its effect.
func (n *Node) treeStep(ctx context.Context, cmd *fsm.Command) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	res, err := n.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("replication: %s %s: %w", cmd.Op, cmd.Job, err)
	}
	n.log.Debug().Str("op", string(cmd.Op)).Str("job", cmd.Job).Str("result", res.Msg).Msg("subtree step")
	return nil
}
