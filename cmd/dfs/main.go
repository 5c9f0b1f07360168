// Command dfs runs a node of dfs, a replicated filesystem served over WebDAV.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/replication"
	"github.com/dfs-project/dfs/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	app := newApp(os.Stdout, os.Stderr)
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "dfs:", err)
		code := 1
		// A command that documents its exit statuses returns cli.Exit.
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "dfs",
		Usage:   "a replicated filesystem you mount as a network drive (WebDAV)",
		Version: version,
		Description: "dfs nodes form one Raft cluster: the leader takes every write, every node\n" +
			"serves reads from its own disk, and whatever was acknowledged survives the\n" +
			"loss of any minority of nodes. Clients speak WebDAV: Windows Explorer, macOS\n" +
			"Finder, GNOME Files, davfs2, rclone, cadaver, curl.\n\n" +
			"Every flag can also be set through the DFS_* environment variable shown beside it.",
		Writer:    stdout,
		ErrWriter: stderr,
		// main reports errors and picks the exit status; the default
		// handler would exit from inside Run, tests included.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags:          logFlags(),
		Commands:       []*cli.Command{serverCommand(), clusterCommand(), userCommand(), devCommand(), probeCommand()},
	}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"DFS_LOG_LEVEL"},
			Usage: "minimum log level: debug, info, warn, error"},
		&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: []string{"DFS_LOG_FORMAT"},
			Usage: "log format: json, console, or auto (console on a terminal, JSON otherwise)"},
	}
}

func serverCommand() *cli.Command {
	cmd := &cli.Command{
		Name:  "server",
		Usage: "run a dfs node",
		Description: "Runs one dfs node: WebDAV and the node API on --http-addr, Raft on\n" +
			"--raft-addr, file content under --data-dir, metadata in Redis (--redis-url)\n" +
			"or, without it, in an embedded store under --data-dir.\n\n" +
			"Start a new single-node cluster:\n" +
			"   dfs server --id node1 --data-dir ./data --bootstrap\n\n" +
			"Add a node to it (any member's URL will do; the leader adds the node):\n" +
			"   DFS_CLUSTER_SECRET=... dfs server --id node2 --data-dir ./data2 --http-addr :8081 \\\n" +
			"      --raft-addr 10.0.0.6:7000 --advertise-url http://10.0.0.6:8081 --join http://10.0.0.5:8080\n\n" +
			"Or form a new cluster of three nodes started together (a StatefulSet), with the\n" +
			"same --peers on every node:\n" +
			"   DFS_CLUSTER_SECRET=... dfs server --id node1 ... --bootstrap-expect 3 \\\n" +
			"      --peers http://node1:8080,http://node2:8080,http://node3:8080\n\n" +
			"A node whose data directory holds Raft state rejoins its cluster by itself;\n" +
			"--bootstrap, --join and --bootstrap-expect only matter for a node without it.\n\n" +
			"Followers forward writes (PUT, DELETE, MKCOL, COPY, MOVE, PROPPATCH, LOCK,\n" +
			"UNLOCK) to the leader; reads are served by any node (see --read-consistency).\n\n" +
			"The node API lives beside WebDAV and those names cannot be used for files:\n" +
			"   GET /healthz          the process is alive\n" +
			"   GET /readyz           200 when the node can serve (stores open, leader known, caught up)\n" +
			"   GET /cluster/status   JSON: leader, nodes with id, url, role, applied_index, lag, content_backlog\n" +
			"   GET /metrics          Prometheus metrics: Raft state, content backlog, scrub, WebDAV requests by\n" +
			"                         method and status (no file names), Go runtime and process\n" +
			"   /cluster/...          the internal API between nodes, authenticated by --cluster-secret\n\n" +
			"WebDAV requires HTTP Basic authentication with --htpasswd (users: `dfs user add`;\n" +
			"read-only ones: --read-only-users); without it anyone who reaches the port can read\n" +
			"and write everything. The node API above does not take Basic credentials: /healthz,\n" +
			"/readyz, /metrics and /cluster/status stay open (probes, Prometheus; no file names),\n" +
			"the internal calls need the cluster secret. A WebDAV lock belongs to the user who\n" +
			"took it: another user's writes under it get 423, their refresh or UNLOCK 403.\n\n" +
			"COPY and MOVE stay on this server: a Destination URL must name the URL the request\n" +
			"was sent to, a --public-url (an Ingress host), a node of the cluster, or the host a\n" +
			"--trusted-proxies proxy reports in X-Forwarded-Host; any other server gets 502.\n\n" +
			"Quota and limits (docs/limits.md): --quota-bytes caps the logical bytes of all\n" +
			"files cluster-wide, and each node keeps the smaller of --min-free-bytes and\n" +
			"--min-free-percent free on its data volume; writes beyond either get 507.\n" +
			"PROPFIND answers the RFC 4331 quota-used-bytes and quota-available-bytes.\n\n" +
			"Stored content is checked on every read and re-hashed in the background at\n" +
			"--scrub-rate; corrupt or missing content is fetched again from a peer\n" +
			"(docs/scrub.md; dfs cluster status shows what was found).\n\n" +
			"HTTPS: --tls-cert and --tls-key (reloaded when the files change). TLS between\n" +
			"nodes: --cluster-ca with each node's certificate from that CA; without it the\n" +
			"Raft port carries the replication log unauthenticated: never expose it outside\n" +
			"the cluster's private network. See docs/security.md for the threat model and\n" +
			"how to rotate the cluster secret (--cluster-secret-accept) and certificates.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", EnvVars: []string{"DFS_ID"}, Required: true,
				Usage: "this node's unique, stable ID in the cluster (e.g. the pod name)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"DFS_DATA_DIR"}, Value: "./dfs-data",
				Usage: "directory for content, Raft state and the embedded metadata store (the persistent volume)"},
			&cli.StringFlag{Name: "http-addr", EnvVars: []string{"DFS_HTTP_ADDR"}, Value: ":8080",
				Usage: "listen address for WebDAV and the node API"},
			&cli.StringFlag{Name: "advertise-url", EnvVars: []string{"DFS_ADVERTISE_URL"},
				Usage: "this node's WebDAV base URL as clients and peers reach it (default: derived from --http-addr)"},
			&cli.StringFlag{Name: "raft-addr", EnvVars: []string{"DFS_RAFT_ADDR"}, Value: "127.0.0.1:7000",
				Usage: "host:port Raft listens on and advertises to peers; keep it on a private network"},
			&cli.StringFlag{Name: "raft-advertise", EnvVars: []string{"DFS_RAFT_ADVERTISE"},
				Usage: "host:port other nodes dial for Raft, when --raft-addr binds all interfaces (e.g. the pod IP and port)"},
			&cli.BoolFlag{Name: "bootstrap", EnvVars: []string{"DFS_BOOTSTRAP"},
				Usage: "form a new cluster with this node as its first member (ignored when the data directory already holds Raft state)"},
			&cli.StringSliceFlag{Name: "join", EnvVars: []string{"DFS_JOIN"},
				Usage: "join an existing cluster through these members' HTTP URLs (comma-separated or repeated; tried in turn until one accepts); needs --cluster-secret"},
			&cli.IntFlag{Name: "bootstrap-expect", EnvVars: []string{"DFS_BOOTSTRAP_EXPECT"},
				Usage: "form a new cluster once this many nodes listed in --peers are up (no node is special; the cluster forms once, never twice); needs --cluster-secret"},
			&cli.StringSliceFlag{Name: "peers", EnvVars: []string{"DFS_PEERS"},
				Usage: "with --bootstrap-expect: the HTTP URLs of all the nodes that form the cluster (this one may be included); give every node the same list"},
			&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"DFS_CLUSTER_SECRET"},
				Usage: "shared secret that authenticates nodes to each other (join, remove, read index, forwarded writes); the same on every node; prefer the environment variable over the flag"},
			&cli.StringFlag{Name: "write-ack", EnvVars: []string{"DFS_WRITE_ACK"}, Value: "majority",
				Usage: "when a write is acknowledged: majority (its content is fsynced on a majority of nodes and its metadata committed: losing any minority, the leader included, loses nothing) or leader (as soon as the leader has it; followers fetch it afterwards, so losing the leader's disk before they do loses that content)"},
			&cli.StringFlag{Name: "read-consistency", EnvVars: []string{"DFS_READ_CONSISTENCY"}, Value: "leader",
				Usage: "leader: a read first catches up with what the leader had committed (read-your-writes from any node; one round trip per batch of reads); local: serve straight from this node's state (faster, may be stale)"},
			&cli.DurationFlag{Name: "leader-wait", EnvVars: []string{"DFS_LEADER_WAIT"}, Value: 3 * time.Second,
				Usage: "how long a write on a follower waits for a leader to be known before it gets 503 with Retry-After"},
			&cli.StringFlag{Name: "redis-url", EnvVars: []string{"DFS_REDIS_URL"},
				Usage: "metadata store: redis://host:6379/0 or unix:///path/redis.sock?db=0; empty uses the embedded store"},
			&cli.Int64Flag{Name: "max-xml-bytes", EnvVars: []string{"DFS_MAX_XML_BYTES"}, Value: 1 << 20,
				Usage: "largest PROPFIND, PROPPATCH or LOCK body accepted, in bytes; larger ones get 413 with a body that says so"},
			&cli.DurationFlag{Name: "gc-interval", EnvVars: []string{"DFS_GC_INTERVAL"}, Value: 10 * time.Minute,
				Usage: "how often content no file references any more is swept from disk"},
			&cli.DurationFlag{Name: "gc-grace", EnvVars: []string{"DFS_GC_GRACE"}, Value: time.Hour,
				Usage: "minimum age of unreferenced content before a sweep deletes it"},
			&cli.DurationFlag{Name: "raft-heartbeat-timeout", EnvVars: []string{"DFS_RAFT_HEARTBEAT_TIMEOUT"}, Value: replication.DefaultHeartbeatTimeout,
				Usage: "how long a follower waits without hearing from the leader before it starts an election (raft randomises it up to twice this); " +
					"with the election timeout it sets how fast a failed leader is replaced. Same value on every node"},
			&cli.DurationFlag{Name: "raft-election-timeout", EnvVars: []string{"DFS_RAFT_ELECTION_TIMEOUT"}, Value: replication.DefaultElectionTimeout,
				Usage: "how long a candidate waits for votes before it tries again. Same value on every node"},
			// Raft snapshot tuning, hidden: the defaults suit production;
			// tests shrink them so a joining node installs a snapshot.
			&cli.Uint64Flag{Name: "raft-snapshot-threshold", EnvVars: []string{"DFS_RAFT_SNAPSHOT_THRESHOLD"}, Hidden: true,
				Usage: "log entries between Raft snapshots (default 8192)"},
			&cli.DurationFlag{Name: "raft-snapshot-interval", EnvVars: []string{"DFS_RAFT_SNAPSHOT_INTERVAL"}, Hidden: true,
				Usage: "how often Raft checks whether to snapshot (default 2m)"},
			&cli.Uint64Flag{Name: "raft-trailing-logs", EnvVars: []string{"DFS_RAFT_TRAILING_LOGS"}, Hidden: true,
				Usage: "log entries kept after a snapshot (default 10240)"},
			&cli.IntFlag{Name: "raft-wal-segment-size", EnvVars: []string{"DFS_RAFT_WAL_SEGMENT_SIZE"}, Hidden: true,
				Usage: "bytes per Raft log segment file; compaction deletes whole segments only (default 64 MiB)"},
		},
		Action: runServer,
	}
	cmd.Flags = append(cmd.Flags, kubeFlags()...)
	cmd.Flags = append(cmd.Flags, authFlags()...)
	cmd.Flags = append(cmd.Flags, accessFlags()...)
	cmd.Flags = append(cmd.Flags, originFlags()...)
	cmd.Flags = append(cmd.Flags, limitsFlags()...)
	cmd.Flags = append(cmd.Flags, scrubFlags()...)
	cmd.Flags = append(cmd.Flags, tlsFlags()...)
	cmd.Flags = append(cmd.Flags, pprofFlags()...)
	return cmd
}

func runServer(c *cli.Context) error {
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := waitRaftAdvertise(ctx, c.String("raft-advertise"), log); err != nil {
		return err
	}
	if _, err := startPprof(ctx, c.String("pprof-addr"), log); err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		ID:        c.String("id"),
		DataDir:   c.String("data-dir"),
		HTTPAddr:  c.String("http-addr"),
		Advertise: c.String("advertise-url"),
		RaftAddr:  c.String("raft-addr"),
		Bootstrap: c.Bool("bootstrap"),

		RaftAdvertise:   c.String("raft-advertise"),
		Join:            c.StringSlice("join"),
		BootstrapExpect: c.Int("bootstrap-expect"),
		Peers:           c.StringSlice("peers"),
		ClusterSecret:   clusterSecret(c),
		ReadConsistency: c.String("read-consistency"),
		WriteAck:        c.String("write-ack"),
		LeaderWait:      c.Duration("leader-wait"),
		RedisURL:        c.String("redis-url"),
		MaxXMLBytes:     c.Int64("max-xml-bytes"),
		GCInterval:      c.Duration("gc-interval"),
		GCGrace:         c.Duration("gc-grace"),
		Auth:            authOptions(c),
		AccessRules:     c.String("access-rules"),
		UserRoot:        c.String("user-root"),
		PublicURLs:      c.StringSlice("public-url"),
		TrustedProxies:  c.StringSlice("trusted-proxies"),
		Limits:          limitsConfig(c),
		Scrub:           scrubConfig(c),
		Listen:          listenConfig(c),
		Log:             log,

		HeartbeatTimeout:  c.Duration("raft-heartbeat-timeout"),
		ElectionTimeout:   c.Duration("raft-election-timeout"),
		SnapshotThreshold: c.Uint64("raft-snapshot-threshold"),
		SnapshotInterval:  c.Duration("raft-snapshot-interval"),
		TrailingLogs:      c.Uint64("raft-trailing-logs"),
		WALSegmentSize:    c.Int("raft-wal-segment-size"),
	})
	if err != nil {
		return err
	}
	waitKube, err := startKube(ctx, c, srv, log)
	if err != nil {
		_ = srv.Close(context.WithoutCancel(ctx))
		return err
	}
	defer waitKube()
	return srv.Serve(ctx)
}

// newLogger builds the process logger: JSON for machines, a console
// format when a person watches a terminal.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	switch format {
	case "auto":
		if isTerminal(w) {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format: want json, console or auto, got %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
