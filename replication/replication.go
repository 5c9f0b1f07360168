// Package replication owns a dfs node's membership in the Raft group: the
// hashicorp/raft instance, its log, stable and snapshot stores, its TCP
// transport (mutual TLS with the cluster CA when configured, see
// TransportConfig), and the leader-side duties that keep the namespace
// healthy (creating the root, expiring locks). Mutations enter the cluster through
// Node.Propose on the leader; every node's fsm.FSM applies them.
//
// # Storage
//
// The Raft log and stable store are github.com/hashicorp/raft-wal: append-
// only segment files with a small metadata database. A log is written at
// the tail and truncated at the head, which segment files do with plain
// appends and file deletions, whereas a B-tree log (raft-boltdb) keeps
// every truncated page on its freelist and grows, and rewrites pages on
// every append. Consul moved its Raft log to raft-wal for these reasons.
// The released raft-boltdb/v2 also does not build against the
// hashicorp/go-metrics version raft 1.8 requires: it still imports the
// go-metrics compatibility shim that raft 1.8 and go-metrics v0.7 dropped
// (hashicorp/raft#712). Snapshots are raft's FileSnapshotStore (two
// retained) in the same directory.
//
// # The metastore is persistent
//
// The FSM's store (Redis or bbolt) survives restarts and records the index
// of the last entry it applied. Raft is therefore started with
// NoSnapshotRestoreOnStart: rather than wiping the store and restoring the
// newest snapshot on every start, raft only takes that snapshot's index as
// its applied index and replays the log after it, and the FSM skips
// entries the store already holds. If the store is older than the newest
// snapshot (a Redis that lost its data, a restore that crashed halfway),
// replaying from the snapshot's index would leave a gap, so Open first
// restores the store from that snapshot itself.
//
// The store records the term of each entry with its index, so Open also
// checks it against the local log and snapshots before Raft starts: a
// store ahead of both (dropForeignStore), or at an index whose term, or
// with a root collection, this node's history does not have (another
// node's or cluster's store, fsm.CheckStore) is emptied and rebuilt rather
// than applied on top of. The state machine keeps checking while it runs.
//
// Open also rebuilds a log that raft-wal v0.4.0 left unreadable after a
// tail truncation (walrepair.go).
package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/fsm"
)

// Config configures a Node. Zero durations and counts take the defaults
// below, which suit nodes on one LAN (a Kubernetes cluster).
type Config struct {
	// ID is the node's Raft server ID, stable across restarts (the pod name).
	ID string
	// RaftAddr is the TCP address the Raft transport binds, e.g. ":7000" or
	// "127.0.0.1:0" (a free port, for tests).
	RaftAddr string
	// RaftAdvertise is the address other nodes dial; needed when RaftAddr
	// binds all interfaces. Empty means the bound address.
	RaftAdvertise string
	// DataDir holds the Raft state, under DataDir/raft.
	DataDir string
	// Bootstrap makes a node without Raft state start a new single-node
	// cluster. A node with state ignores it.
	Bootstrap bool
	// Joining lets a node without Raft state start empty and wait for a
	// leader to add it (AddVoter). Without Bootstrap or Joining such a node
	// refuses to start, so a lost data directory is never silently a new
	// cluster.
	Joining bool
	// FSM applies the log to the node's metastore.
	FSM *fsm.FSM
	// Logger receives the node's and hashicorp/raft's logs.
	Logger zerolog.Logger

	HeartbeatTimeout   time.Duration // default DefaultHeartbeatTimeout
	ElectionTimeout    time.Duration // default DefaultElectionTimeout
	LeaderLeaseTimeout time.Duration // default half of HeartbeatTimeout
	CommitTimeout      time.Duration // default 50ms
	SnapshotThreshold  uint64        // entries between snapshots, default 8192
	SnapshotInterval   time.Duration // how often to check the threshold, default 2m
	TrailingLogs       uint64        // entries kept after a snapshot, default 10240
	ApplyTimeout       time.Duration // upper bound of one Propose, default 10s
	LockExpiryInterval time.Duration // how often the leader expires locks, default 5s
	WALSegmentSize     int           // bytes per raft-wal segment file, default raft-wal's 64 MiB
	StoreCheckInterval time.Duration // how often the metastore is checked for lost data, default 1s
	TreeWorkInterval   time.Duration // how often the leader looks for unfinished subtree work, default 200ms
	TreeStep           int64         // inodes per OpPurge / OpCopyStep entry, default fsm.TreeStep

	// Transport secures (TLS) and bounds (timeouts) the Raft connections.
	Transport TransportConfig
}

// Raft's timeouts by default: half of hashicorp/raft's LAN defaults
// (1 s, 1 s, lease 500 ms). A follower starts an election after 0.5-1 s
// without the leader, so a failed leader is replaced in about a second;
// with the LAN defaults the fault suite measured a median of 2.2 s and a
// maximum above 3 s. Nodes of one cluster share a LAN (a Kubernetes
// cluster), where a heartbeat every ~50 ms (a tenth of the timeout) is
// cheap.
const (
	DefaultHeartbeatTimeout = 500 * time.Millisecond
	DefaultElectionTimeout  = 500 * time.Millisecond
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, c.HeartbeatTimeout/2)
	def(&c.CommitTimeout, 50*time.Millisecond)
	def(&c.SnapshotInterval, 2*time.Minute)
	def(&c.ApplyTimeout, 10*time.Second)
	def(&c.LockExpiryInterval, 5*time.Second)
	def(&c.StoreCheckInterval, time.Second)
	def(&c.TreeWorkInterval, 200*time.Millisecond)
	if c.TreeStep <= 0 {
		c.TreeStep = fsm.TreeStep
	}
	if c.WALSegmentSize <= 0 {
		c.WALSegmentSize = raftwal.DefaultSegmentSize
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
}

// Node is this process's member of the Raft group.
type Node struct {
	cfg     Config
	log     zerolog.Logger
	fsm     *fsm.FSM
	raft    *raft.Raft
	wal     *raftwal.WAL
	walMeta *metadb.BoltMetaDB
	trans   *raft.NetworkTransport
	stream  *streamLayer

	// leaderMu serialises LeaderReady; readyTerm is the last term in
	// which this node, as leader, applied every earlier entry.
	leaderMu  sync.Mutex
	readyTerm uint64

	observersMu sync.Mutex
	observers   []func(leader bool) // OnLeadership

	cancel    context.CancelFunc // stops the background loops
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts the node: it opens (or creates) the Raft state under
// cfg.DataDir/raft, brings the metastore up to the newest local snapshot if
// it is behind, bootstraps a new cluster if asked to and there is no state,
// and starts Raft. Open does not wait for a leader (see WaitForLeader).
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.RaftAddr == "" || cfg.DataDir == "" || cfg.FSM == nil {
		return nil, errors.New("replication: Config needs ID, RaftAddr, DataDir and FSM")
	}
	cfg.setDefaults()
	// The caller's logger already names the node.
	log := cfg.Logger.With().Str("component", "replication").Logger()
	hlog := newHCLogger(cfg.Logger.With().Str("component", "raft").Logger())

	dir := filepath.Join(cfg.DataDir, "raft")
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("replication: create %s: %w", walDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("replication: open snapshot store in %s: %w", dir, err)
	}
	if _, err := repairWAL(walDir, log); err != nil {
		return nil, err
	}
	// raft-wal v0.4.0's Close does not close its metadata database (fixed
	// upstream after the release, hashicorp/raft-wal#28), which would keep
	// the file locked and a reopen in the same process waiting forever. So
	// the node owns the metadata store and closes it itself.
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir, raftwal.WithLogger(hlog.Named("wal")),
		raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(cfg.WALSegmentSize))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("replication: open raft log in %s: %w", walDir, err)
	}
	n := &Node{cfg: cfg, log: log, fsm: cfg.FSM, wal: wal, walMeta: meta}
	fail := func(err error) (*Node, error) {
		if n.trans != nil {
			_ = n.trans.Close()
		}
		_ = n.closeLog()
		return nil, err
	}
	// The state machine checks its store against this node's log and
	// snapshots from here on: below, at start, and while it runs.
	cfg.FSM.SetHistory(localHistory{snaps: snaps, log: wal})
	if err := dropHeadlessLog(snaps, wal, log); err != nil {
		return fail(err)
	}
	if err := dropForeignStore(ctx, snaps, wal, cfg.FSM, log); err != nil {
		return fail(err)
	}
	// A store at or below the log's end may still hold another history:
	// another term at its index, or another cluster's root. CheckStore
	// empties it and rebuilds it from the local snapshot (a store that is
	// merely behind, of this history, is left to catch up).
	if err := cfg.FSM.CheckStore(ctx); err != nil {
		return fail(fmt.Errorf("replication: check the metadata store against the raft log: %w", err))
	}
	if err := catchUp(ctx, snaps, cfg.FSM, log); err != nil {
		return fail(err)
	}

	var advertise net.Addr
	if cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
		if err != nil {
			return fail(fmt.Errorf("replication: advertise address %q: %w", cfg.RaftAdvertise, err))
		}
		advertise = a
	}
	n.stream, err = newStreamLayer(cfg.RaftAddr, advertise, cfg.Transport)
	if err != nil {
		return fail(fmt.Errorf("replication: raft transport on %s: %w", cfg.RaftAddr, err))
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog.Named("transport"),
	})

	notify := make(chan bool, 1)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hlog
	rc.NotifyCh = notify
	// The metastore is persistent and knows its applied index: see the
	// package documentation. raft (api.go, tryRestoreSingleSnapshot) then
	// skips FSM.Restore on start but still sets its applied index to the
	// newest snapshot's, so only later entries are replayed.
	rc.NoSnapshotRestoreOnStart = true
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("replication: %w", err))
	}

	has, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		return fail(fmt.Errorf("replication: inspect raft state: %w", err))
	}
	switch {
	case has:
		if cfg.Bootstrap {
			log.Info().Msg("raft state exists; not bootstrapping again")
		}
	case cfg.Bootstrap:
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, wal, wal, snaps, n.trans, conf); err != nil {
			return fail(fmt.Errorf("replication: bootstrap: %w", err))
		}
		log.Info().Str("addr", string(n.trans.LocalAddr())).Msg("bootstrapped a new single-node cluster")
	case cfg.Joining:
		log.Info().Msg("no raft state; waiting for a leader to add this node")
	default:
		return fail(fmt.Errorf("replication: no raft state in %s: pass --bootstrap to start a new cluster, or --join to join an existing one: %w", dir, ErrNoState))
	}

	n.raft, err = raft.NewRaft(rc, cfg.FSM, wal, wal, snaps, n.trans)
	if err != nil {
		return fail(fmt.Errorf("replication: start raft: %w", err))
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(4)
	go n.watchLeadership(loopCtx, notify)
	go n.expireLocks(loopCtx)
	go n.finishTreeWork(loopCtx)
	go func() {
		defer n.wg.Done()
		cfg.FSM.WatchStore(loopCtx, cfg.StoreCheckInterval)
	}()
	log.Info().Str("addr", string(n.trans.LocalAddr())).Msg("raft started")
	return n, nil
}

// dropForeignStore empties a metastore that is ahead of everything this
// node's Raft state holds. A store applies an entry only after the entry
// is in the local log (or in a snapshot), so a store past both is not this
// node's: a Redis shared with another cluster or node, a volume mixed up
// with another pod's, or a data directory whose Raft state was lost while
// the store was kept. Applying this node's log on top of it would skip
// every entry below its index as already applied.
func dropForeignStore(ctx context.Context, snaps raft.SnapshotStore, logs raft.LogStore, f *fsm.FSM, log zerolog.Logger) error {
	applied, err := f.AppliedIndex(ctx)
	if err != nil || applied == 0 {
		return err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("replication: last log index: %w", err)
	}
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("replication: list snapshots: %w", err)
	}
	if len(list) > 0 {
		last = max(last, list[0].Index)
	}
	if applied <= last {
		return nil
	}
	log.Error().Uint64("store_index", applied).Uint64("raft_last_index", last).
		Msg("the metadata store is ahead of this node's Raft log and snapshots: it is not this node's store; emptying it and rebuilding from the Raft state")
	if err := f.ResetStore(ctx); err != nil {
		return fmt.Errorf("replication: empty a foreign metadata store: %w", err)
	}
	return nil
}

// catchUp restores the FSM from the newest local snapshot when the store
// is older than it (see the package documentation).
func catchUp(ctx context.Context, snaps raft.SnapshotStore, f *fsm.FSM, log zerolog.Logger) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("replication: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil
	}
	applied, err := f.AppliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	if applied >= list[0].Index {
		return nil // a store at or past raft's index is past the FSM's too
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("replication: open snapshot %s: %w", list[0].ID, err)
	}
	info, err := fsm.ReadSnapshotInfo(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("replication: snapshot %s: %w", list[0].ID, err)
	}
	if applied >= info.Index {
		return nil
	}
	log.Warn().Uint64("store_index", applied).Uint64("snapshot_index", info.Index).Str("snapshot", list[0].ID).
		Msg("metastore is behind the newest snapshot; restoring it from the snapshot")
	_, rc, err = snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("replication: open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	if _, err := f.RestoreFrom(ctx, rc); err != nil {
		return fmt.Errorf("replication: restore metastore from snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

func (n *Node) closeLog() error {
	return errors.Join(n.wal.Close(), n.walMeta.Close())
}

// Addr returns the address other nodes reach this node's Raft transport at.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// ID returns the node's Raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// Close leaves the Raft group's activity (not its membership): it stops
// the background loops, shuts Raft down, closes the transport and the log.
// If ctx ends first, Close also stops the FSM from retrying an entry it
// cannot commit, which is what a stuck shutdown waits for. The FSM's store
// is the caller's to close.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		done := make(chan error, 1)
		go func() { done <- n.raft.Shutdown().Error() }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			_ = n.fsm.Close()
			err = <-done
			if err == nil {
				err = ctx.Err()
			}
		}
		if cerr := n.trans.Close(); err == nil {
			err = cerr
		}
		if cerr := n.closeLog(); err == nil {
			err = cerr
		}
		if err != nil {
			n.closeErr = fmt.Errorf("replication: close: %w", err)
		}
		n.log.Info().Msg("raft stopped")
	})
	return n.closeErr
}

// dropHeadlessLog empties a Raft log that no snapshot precedes: one whose
// first entry is past 1 while the node has no snapshot (its snapshot
// directory was lost, or it rebuilt its store from the leader's snapshot
// and stopped before taking one of its own). hashicorp/raft cannot start
// on such a log (it reads entries from 1 on and panics). Without it, the
// node starts as a member with its term and vote intact but nothing
// logged: the leader sends it a snapshot and the entries after it, and
// dropForeignStore then finds its metadata store ahead of everything it
// holds and empties it for that snapshot. A single-node cluster in this
// state has no leader to send one; it stays without a leader, and says so.
func dropHeadlessLog(snaps raft.SnapshotStore, logs raft.LogStore, log zerolog.Logger) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("replication: first log index: %w", err)
	}
	if first <= 1 {
		return nil
	}
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("replication: list snapshots: %w", err)
	}
	if len(list) > 0 && list[0].Index+1 >= first {
		return nil
	}
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("replication: last log index: %w", err)
	}
	log.Error().Uint64("first_index", first).Uint64("last_index", last).Int("snapshots", len(list)).
		Msg("the Raft log starts past what any local snapshot covers (snapshots lost): dropping the log; " +
			"the leader will send a snapshot (a single-node cluster cannot recover this way: restore a backup)")
	if err := logs.DeleteRange(first, last); err != nil {
		return fmt.Errorf("replication: drop a log no snapshot precedes: %w", err)
	}
	return nil
}
