package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// OnLeadership registers f to be called with true each time this node
// becomes leader and with false each time it stops leading. f runs on the
// goroutine that follows raft's notifications and must not block (raft
// waits for it): hand the news to another goroutine. Calls may lag the
// actual state, so f should re-read IsLeader rather than trust its
// argument when that matters. Observers registered after a change miss it.
func (n *Node) OnLeadership(f func(leader bool)) {
	n.observersMu.Lock()
	defer n.observersMu.Unlock()
	n.observers = append(n.observers, f)
}

func (n *Node) notifyObservers(leader bool) {
	n.observersMu.Lock()
	obs := slices.Clone(n.observers)
	n.observersMu.Unlock()
	for _, f := range obs {
		f(leader)
	}
}

// watchLeadership follows raft's leadership notifications and passes them
// to OnLeadership's observers. On becoming leader it makes sure the
// namespace has a root.
func (n *Node) watchLeadership(ctx context.Context, notify <-chan bool) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-notify:
			n.notifyObservers(leader)
			if !leader {
				n.log.Info().Msg("lost leadership")
				continue
			}
			n.log.Info().Msg("became leader")
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.ensureRoot(ctx)
			}()
		}
	}
}

// ensureRoot proposes OpInit if the namespace has no root yet, so the root
// gets a real creation time (the leader's clock when the cluster first had
// a leader). It first waits for a barrier: a new leader may not have
// applied the entries of its predecessor, including an earlier OpInit.
// OpInit is idempotent, so a race with another leader is harmless.
func (n *Node) ensureRoot(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for n.IsLeader() {
		err := n.initRoot(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn().Err(err).Dur("retry_in", backoff).Msg("cannot make sure the root exists")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (n *Node) initRoot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.Barrier(ctx); err != nil {
		return err
	}
	_, err := n.fsm.Store().Get(ctx, metastore.RootID)
	if err == nil {
		return nil
	}
	if !errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("replication: read root: %w", err)
	}
	res, err := n.Propose(ctx, &fsm.Command{Op: fsm.OpInit})
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return err
	}
	n.log.Info().Int64("created", res.Inode.Created).Msg("created the root collection")
	return nil
}

// expireLocks runs on every node and acts on the leader: every
// LockExpiryInterval, if a lock has expired by the leader's clock, it
// proposes OpExpire with that time. Expired locks already stop protecting
// anything at apply time (every check compares with the entry's time);
// this loop only removes them from the store and from lockdiscovery.
func (n *Node) expireLocks(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.LockExpiryInterval)
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
		if err := n.expireOnce(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn().Err(err).Msg("lock expiry failed")
		}
	}
}

func (n *Node) expireOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	locks, err := n.fsm.Store().Locks(ctx)
	if err != nil {
		return fmt.Errorf("replication: read locks: %w", err)
	}
	now := time.Now().UnixNano()
	expired := 0
	for _, l := range locks {
		if l.Expired(now) {
			expired++
		}
	}
	if expired == 0 {
		return nil
	}
	res, err := n.Propose(ctx, &fsm.Command{Op: fsm.OpExpire, Time: now})
	if err != nil {
		return err
	}
	n.log.Debug().Str("result", res.Msg).Msg("expired locks")
	return nil
}
