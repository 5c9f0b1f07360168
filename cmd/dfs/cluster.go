package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/cluster"
)

func clusterCommand() *cli.Command {
	addr := &cli.StringFlag{Name: "addr", EnvVars: []string{"DFS_ADDR"}, Value: "http://127.0.0.1:8080",
		Usage: "HTTP base URL of any node of the cluster"}
	timeout := &cli.DurationFlag{Name: "timeout", EnvVars: []string{"DFS_TIMEOUT"}, Value: 15 * time.Second,
		Usage: "give up after this long"}
	return &cli.Command{
		Name:  "cluster",
		Usage: "inspect and change the cluster a node belongs to",
		Description: "Talks to any node over HTTP or HTTPS (--addr; --ca-cert to verify an https:// node). Adding a node needs no command: start it\n" +
			"with --join (see dfs server --help).",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "print every node's role, applied index, lag and content backlog",
				Description: "Asks the node at --addr for GET /cluster/status: Raft's configuration and the\n" +
					"member table, with each node's own report. Columns:\n" +
					"   ID, URL          the node's Raft ID and HTTP URL (from the member table)\n" +
					"   ROLE             leader, follower, candidate, shutdown, or unreachable\n" +
					"   APPLIED          index of the last log entry the node applied to its metadata\n" +
					"   LAG              the leader's applied index minus the node's\n" +
					"   CONTENT BACKLOG  files (and bytes) whose content the node still has to fetch\n" +
					"Then each node's content scrub: its state, when its last pass ended (and how long\n" +
					"it took), what that pass checked, found corrupt or missing, repaired from a peer\n" +
					"or could not repair, and the corrupt content reads met and repaired since start.\n" +
					"The status endpoint is public: no cluster secret is needed.",
				Flags: append([]cli.Flag{addr, timeout,
					&cli.BoolFlag{Name: "json", Usage: "print the JSON answer as it is"}}, clientTLSFlags()...),
				Action: runClusterStatus,
			},
			{
				Name:      "remove",
				Usage:     "remove a node from the cluster for good",
				ArgsUsage: "ID",
				Description: "Removes the node with this ID from Raft's voters and from the member table;\n" +
					"any node accepts the request and passes it to the leader. Use it for a node\n" +
					"that is gone for good (stop it first): a removed node that is started again\n" +
					"with --join rejoins. The last voter cannot be removed. Flags go before the ID:\n" +
					"   dfs cluster remove --addr http://node1:8080 node3",
				Flags: append([]cli.Flag{addr, timeout,
					&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"DFS_CLUSTER_SECRET"},
						Usage: "the cluster's shared secret (prefer the environment variable)"}}, clientTLSFlags()...),
				Action: runClusterRemove,
			},
			leaveCommand(addr, timeout),
			verifyCommand(addr),
			scrubCommand(addr, timeout),
		},
	}
}

func runClusterStatus(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	tr, err := clientTransport(c)
	if err != nil {
		return err
	}
	st, err := cluster.NewClient("", tr).Status(ctx, c.String("addr"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return printStatus(c.App.Writer, st)
}

// printStatus prints a cluster status as a table.
func printStatus(w io.Writer, st cluster.Status) error {
	leader := st.Leader
	if leader == "" {
		leader = "none known"
	} else if st.LeaderURL != "" {
		leader += " (" + st.LeaderURL + ")"
	}
	fmt.Fprintf(w, "leader: %s  term: %d  commit index: %d\n\n", leader, st.Term, st.CommitIndex)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tROLE\tAPPLIED\tLAG\tCONTENT BACKLOG")
	var notes []string
	for _, n := range st.Nodes {
		url, applied, lag, backlog := n.URL, "-", "-", "-"
		if url == "" {
			url = "-"
		}
		role := n.Role
		if !n.Voter {
			role += " (non-voter)"
		}
		if n.Role != "unreachable" {
			applied = strconv.FormatUint(n.AppliedIndex, 10)
			backlog = formatBacklog(n.ContentBacklog)
		}
		if n.Lag != nil {
			lag = strconv.FormatUint(*n.Lag, 10)
		}
		if n.Error != "" {
			notes = append(notes, n.ID+": "+n.Error)
		}
		if n.Rebuilding != "" {
			role += " (healing)"
			notes = append(notes, n.ID+": "+n.Rebuilding)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, url, role, applied, lag, backlog)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, note := range notes {
		fmt.Fprintln(w, "  "+note)
	}
	if st.PurgingTrees > 0 || st.BuildingCopies > 0 {
		fmt.Fprintf(w, "\nsubtree work under way: %d deleted trees being purged (their space is freed as it goes), %d copies being built\n",
			st.PurgingTrees, st.BuildingCopies)
	}
	printScrub(w, st.Nodes, true)
	return nil
}

func formatBacklog(b cluster.Backlog) string {
	if b.Files == 0 && b.Bytes == 0 {
		return "0"
	}
	return fmt.Sprintf("%d files, %s", b.Files, formatBytes(b.Bytes))
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func runClusterRemove(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return errors.New("usage: dfs cluster remove [--addr URL] ID (flags go before the ID)")
	}
	secret := c.String("cluster-secret")
	if secret == "" {
		return errors.New("removing a node needs the cluster secret: --cluster-secret or DFS_CLUSTER_SECRET")
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	id := c.Args().First()
	tr, err := clientTransport(c)
	if err != nil {
		return err
	}
	resp, err := cluster.NewClient(secret, tr).Remove(ctx, c.String("addr"), id)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "removed %s (by leader %s)\n", resp.Removed, resp.Leader)
	return nil
}
