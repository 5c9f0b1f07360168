package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/verify"
)

// Exit codes of dfs cluster verify.
const (
	exitConsistent   = 0
	exitDifferences  = 1
	exitInconclusive = 2
)

// verifyCommand is `dfs cluster verify`: compare every node's replicated
// state (package verify, Replicas).
func verifyCommand(addr cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that every node holds the same namespace, properties, locks and content",
		Description: "Asks every node for a digest of its replicated state at one applied log index\n" +
			"(GET /cluster/digest): a SHA-256 over every path with its type, size, content\n" +
			"hash, ETag, content type, times and dead properties, every lock and the member\n" +
			"table; and a content digest saying, for every content hash the namespace uses,\n" +
			"whether the node holds it with the right size (--deep: whether its bytes still\n" +
			"hash to its name; slow, it reads all content; a node moves a corrupt object to\n" +
			"its quarantine and fetches a good copy from a peer). Where digests\n" +
			"differ it streams the nodes' entries and names each difference: a path missing\n" +
			"on a node, a field with both values, content missing or corrupt with the paths\n" +
			"that use it. Nodes are compared with the largest group of nodes that agree.\n\n" +
			"It is safe on a live cluster: when writes keep the nodes at different applied\n" +
			"indexes it asks again (--attempts) and, if they never hold still, says so\n" +
			"(inconclusive) rather than report a difference it cannot prove.\n\n" +
			"The nodes are every member in /cluster/status of --addr, or those given with\n" +
			"--node. Needs the cluster secret.\n\n" +
			"Exit status:\n" +
			"   0  consistent: every node answered, at one applied index, with equal digests\n" +
			"   1  differences found (listed; a node that could not be asked is listed too)\n" +
			"   2  inconclusive (writes never paused), a node unreachable or refusing, or an error",
		Flags: []cli.Flag{addr,
			&cli.StringSliceFlag{Name: "node", EnvVars: []string{"DFS_VERIFY_NODES"},
				Usage: "HTTP base URL of a node to compare (repeat or comma-separate); default: every member --addr lists"},
			&cli.BoolFlag{Name: "deep", EnvVars: []string{"DFS_VERIFY_DEEP"},
				Usage: "re-hash every object on every node instead of checking presence and size (reads all content; progress goes to stderr)"},
			&cli.IntFlag{Name: "attempts", EnvVars: []string{"DFS_VERIFY_ATTEMPTS"}, Value: 5,
				Usage: "how many rounds to try, a second apart, while writes keep the nodes at different applied indexes (missing content counts only once two rounds agree, so 1 never reports it)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON (the exit status is the same)"},
			&cli.DurationFlag{Name: "timeout", EnvVars: []string{"DFS_TIMEOUT"}, Value: 10 * time.Minute,
				Usage: "give up after this long (a deep verify of a large cluster needs more); 0 waits without limit"},
			&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"DFS_CLUSTER_SECRET"},
				Usage: "the cluster's shared secret (prefer the environment variable)"},
		},
		Action: runClusterVerify,
	}
}

// inconclusive wraps err as exit status 2.
func inconclusive(err error) error { return cli.Exit(err.Error(), exitInconclusive) }

func runClusterVerify(c *cli.Context) error {
	secret := c.String("cluster-secret")
	if secret == "" {
		return inconclusive(errors.New("verifying needs the cluster secret: --cluster-secret or DFS_CLUSTER_SECRET"))
	}
	if c.Int("attempts") < 1 {
		return inconclusive(fmt.Errorf("--attempts %d: want at least 1", c.Int("attempts")))
	}
	ctx := c.Context
	if d := c.Duration("timeout"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	urls := c.StringSlice("node")
	ids := map[string]string{} // URL → member ID, to name nodes that do not answer
	var unlisted []string      // members without a URL: they cannot be asked
	if len(urls) == 0 {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := cluster.NewClient("", nil).Status(sctx, c.String("addr"))
		cancel()
		if err != nil {
			return inconclusive(fmt.Errorf("list the members: %w", err))
		}
		for _, n := range st.Nodes {
			if n.URL == "" {
				unlisted = append(unlisted, n.ID)
				continue
			}
			urls = append(urls, n.URL)
			ids[strings.TrimRight(n.URL, "/")] = n.ID
		}
	}
	opt := verify.Options{Deep: c.Bool("deep"), Attempts: c.Int("attempts"), Names: ids}
	if opt.Deep {
		start := time.Now()
		opt.Progress = func(msg string) {
			fmt.Fprintf(c.App.ErrWriter, "[%5.1fs] %s\n", time.Since(start).Seconds(), msg)
		}
	}
	rep, err := verify.Replicas(ctx, cluster.NewClient(secret, nil), urls, opt)
	if err != nil {
		return inconclusive(err)
	}
	for _, id := range unlisted {
		rep.Consistent = false
		rep.Nodes = append(rep.Nodes, verify.NodeDigest{ID: id, Error: "no URL in the member table: it cannot be asked"})
		if rep.Reason == "" {
			rep.Reason = "members without a URL: " + strings.Join(unlisted, ", ")
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return inconclusive(err)
		}
	} else if err := printVerify(c.App.Writer, rep); err != nil {
		return inconclusive(err)
	}
	switch {
	case rep.Consistent:
		return nil
	case len(rep.Differences) > 0:
		return cli.Exit("replicas differ", exitDifferences)
	}
	return cli.Exit("replicas not verified", exitInconclusive)
}

// printVerify prints a report: one line per node, then the verdict and
// the differences.
func printVerify(w io.Writer, rep verify.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tAPPLIED\tNAMESPACE\tCONTENT\tENTRIES\tOBJECTS\tMISSING\tCORRUPT")
	short := func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	}
	var notes []string
	for _, n := range rep.Nodes {
		id, url := n.ID, n.URL
		name := id
		switch {
		case id == "":
			id, name = "-", url
		case url == "":
			url = "-"
		}
		if n.NamespaceDigest == "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", id, url)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\n", id, url, n.AppliedIndex,
				short(n.NamespaceDigest), short(n.ContentDigest), n.Entries, n.ContentObjects, n.MissingCount, n.CorruptCount)
		}
		if n.Error != "" {
			what := "error"
			if n.Unreachable {
				what = "unreachable"
			}
			notes = append(notes, name+": "+what+": "+n.Error)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, note := range notes {
		fmt.Fprintln(w, "  "+note)
	}
	mode := "shallow (presence and size of content)"
	if rep.Deep {
		mode = "deep (content re-hashed)"
	}
	fmt.Fprintln(w)
	switch {
	case rep.Consistent:
		fmt.Fprintf(w, "consistent: %d nodes at applied index %d, %s, %s\n", len(rep.Nodes), rep.AppliedIndex, mode, plural(rep.Attempts, "attempt"))
	case len(rep.Differences) > 0:
		fmt.Fprintf(w, "DIFFERENT: %s, compared with %s, %s:\n", rep.Reason, rep.Reference, mode)
		for _, d := range rep.Differences {
			fmt.Fprintln(w, "  "+d.String())
		}
		if rep.Truncated {
			fmt.Fprintln(w, "  ... (more not listed)")
		}
	case rep.Inconclusive:
		fmt.Fprintf(w, "inconclusive: %s\n", rep.Reason)
	default:
		fmt.Fprintf(w, "not verified: %s\n", rep.Reason)
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
