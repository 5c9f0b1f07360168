package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/server"
)

// scrubFlags are the server flags of the content scrubber (docs/scrub.md).
func scrubFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "scrub-rate", EnvVars: []string{"DFS_SCRUB_RATE"}, Value: 32 << 20,
			Usage: "bytes per second the content scrubber may read to re-hash stored content (default 32 MiB/s); " +
				"0 disables it, so corrupt or lost content is only found when a client reads it"},
		&cli.DurationFlag{Name: "scrub-interval", EnvVars: []string{"DFS_SCRUB_INTERVAL"}, Value: 24 * time.Hour,
			Usage: "time from the start of one scrub pass to the start of the next; the first pass starts once the node is ready " +
				"after start (a pass that takes longer than this is followed by the next at once)"},
	}
}

func scrubConfig(c *cli.Context) server.ScrubConfig {
	return server.ScrubConfig{Rate: c.Int64("scrub-rate"), Interval: c.Duration("scrub-interval")}
}

func scrubCommand(addr, timeout cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "scrub",
		Usage: "start a content scrub pass now, on every node or on one",
		Description: "Asks each node (all nodes of the cluster --addr belongs to, or only --node) to\n" +
			"start a content scrub pass now: re-hash every stored object, fetch content that\n" +
			"is corrupt or missing from a peer. A node already scrubbing starts another pass\n" +
			"right after. With --wait, waits for the passes and prints what they found\n" +
			"(--timeout bounds the wait). Needs the cluster secret.",
		Flags: []cli.Flag{addr, timeout,
			&cli.StringFlag{Name: "node", EnvVars: []string{"DFS_SCRUB_NODE"}, Usage: "HTTP base URL of the one node to scrub (default: every node)"},
			&cli.BoolFlag{Name: "wait", EnvVars: []string{"DFS_SCRUB_WAIT"}, Usage: "wait until the passes are done and print their results"},
			&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"DFS_CLUSTER_SECRET"},
				Usage: "the cluster's shared secret (prefer the environment variable)"}},
		Action: runClusterScrub,
	}
}

func runClusterScrub(c *cli.Context) error {
	secret := c.String("cluster-secret")
	if secret == "" {
		return errors.New("starting a scrub needs the cluster secret: --cluster-secret or DFS_CLUSTER_SECRET")
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	client := cluster.NewClient(secret, nil)
	urls := []string{c.String("node")}
	if urls[0] == "" {
		st, err := client.Status(ctx, c.String("addr"))
		if err != nil {
			return err
		}
		urls = urls[:0]
		for _, n := range st.Nodes {
			if n.URL != "" {
				urls = append(urls, n.URL)
			}
		}
	}
	targets := map[string]int64{}
	var errs []error
	for _, u := range urls {
		resp, err := client.Scrub(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		targets[u] = resp.UntilPass
		fmt.Fprintf(c.App.Writer, "%s: scrub pass %d requested\n", u, resp.UntilPass)
	}
	if c.Bool("wait") {
		for u, target := range targets {
			info, err := waitScrub(ctx, client, u, target)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			printScrub(c.App.Writer, []cluster.NodeStatus{{ID: info.ID, URL: u, Scrub: info.Scrub}}, false)
		}
	}
	return errors.Join(errs...)
}

// waitScrub polls the node at u until its completed passes reach target.
func waitScrub(ctx context.Context, client *cluster.Client, u string, target int64) (cluster.NodeInfo, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		info, err := client.Node(ctx, u)
		if err == nil && info.Scrub != nil && info.Scrub.Passes >= target {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return cluster.NodeInfo{}, fmt.Errorf("%s: scrub pass %d not done: %w", u, target, ctx.Err())
		case <-t.C:
		}
	}
}

// printScrub prints the scrub report of the nodes that have one, after a
// blank line if gap is set; nothing if none has one (nodes that predate
// scrubbing).
func printScrub(w io.Writer, nodes []cluster.NodeStatus, gap bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	for _, n := range nodes {
		s := n.Scrub
		if s == nil {
			continue
		}
		if !header {
			if gap {
				fmt.Fprintln(tw)
			}
			fmt.Fprintln(tw, "ID\tSCRUB\tLAST PASS\tCHECKED\tCORRUPT\tMISSING\tREPAIRED\tUNREPAIRED\tREAD REPAIRS")
			header = true
		}
		state, last := "idle", "never"
		switch {
		case !s.Enabled:
			state = "disabled"
		case s.Running:
			state = "running"
			if s.Current != nil {
				state += " (" + strconv.FormatInt(s.Current.Objects, 10) + " objects so far)"
			}
		}
		if !s.LastEnd.IsZero() {
			last = s.LastEnd.Local().Format(time.DateTime) + " (" + s.LastEnd.Sub(s.LastStart).Round(time.Second).String() + ")"
		}
		l := s.Last
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d objects, %s\t%d\t%d\t%d\t%d\t%d ok, %d failed\n", n.ID, state, last,
			l.Objects, formatBytes(l.Bytes), l.Corrupt, l.Missing, l.Repaired, l.Unrepaired, s.ReadRepaired, s.ReadUnrepaired)
		if s.LastError != "" {
			defer fmt.Fprintln(w, "  "+n.ID+": last scrub pass stopped early: "+strings.TrimSpace(s.LastError))
		}
	}
	_ = tw.Flush()
}
