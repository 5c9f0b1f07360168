package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/auth"
)

func tokensFileFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "tokens-file", EnvVars: []string{"DFS_DEVICE_TOKENS"},
		Usage: "the device-token `FILE` (default: $DFS_DEVICE_TOKENS, as dfs server --device-tokens reads it)"}
}

// tokenCommand is `dfs user token`: device passwords.
func tokenCommand(htpasswd *cli.StringFlag) *cli.Command {
	tokens := tokensFileFlag()
	return &cli.Command{
		Name:  "token",
		Usage: "manage device passwords: one password per device, revocable on its own",
		Description: "WebDAV clients (Finder, Windows Explorer, davfs2, rclone) only speak Basic authentication,\n" +
			"so they keep a password. A device password is a random token a user gives one device\n" +
			"instead of the account password: a lost laptop is cut off by revoking its token, and\n" +
			"the account password and the other devices stay as they are. The client sends the\n" +
			"user NAME and the token as the password.\n\n" +
			"Tokens live in their own file (dfs server --device-tokens, $DFS_DEVICE_TOKENS), which\n" +
			"holds only their SHA-256. Each change replaces it atomically (mode 0600; other lines\n" +
			"are kept) and running nodes pick it up within about a second. A token works only while\n" +
			"its user is in the htpasswd file and until it expires.",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create a device password for a user and print it, once",
				ArgsUsage: "NAME --label LABEL",
				Description: "Prints the new token on standard output, and only then: store it in the device's\n" +
					"WebDAV client as the password of user NAME. The file keeps only its hash.\n\n" +
					"   dfs user token add alice --label laptop\n" +
					"   dfs user token add alice --label phone --read-only --expires 90d\n" +
					"   dfs user token add alice --label ci --expires 2027-03-01",
				Flags: []cli.Flag{tokens, htpasswd,
					&cli.StringFlag{Name: "label", Aliases: []string{"l"},
						Usage: "the device's `LABEL` (laptop, phone, ...), unique per user: revoke names it; no spaces"},
					&cli.BoolFlag{Name: "read-only",
						Usage: "the token may only read (GET, HEAD, OPTIONS, PROPFIND), whatever the user may do with the account password"},
					&cli.StringFlag{Name: "expires",
						Usage: "when the token stops working: a `WHEN` from now (90d, 36h, 30m) or a time (2027-03-01T00:00:00Z, or 2027-03-01 for 00:00 UTC); default: never"},
				},
				Action: withTrailingFlags(tokenAdd),
			},
			{
				Name:      "list",
				Usage:     "list device passwords (never the tokens themselves)",
				ArgsUsage: "[NAME]",
				Description: "One line per token: user, label, id, whether it is read-only, when it was created and\n" +
					"expires, and its status: active, expired, or \"no user\" when NAME is not in the\n" +
					"htpasswd file (--file; such a token authenticates nobody). Lines a server would\n" +
					"ignore are reported on standard error.",
				Flags:  []cli.Flag{tokens, htpasswd},
				Action: withTrailingFlags(tokenList),
			},
			{
				Name:      "revoke",
				Usage:     "revoke a device password",
				ArgsUsage: "NAME LABEL_OR_ID",
				Description: "Removes NAME's token with that label or id. Running nodes refuse it within about a\n" +
					"second of seeing the new file (in Kubernetes: once the kubelet has updated the Secret).",
				Flags:  []cli.Flag{tokens},
				Action: withTrailingFlags(tokenRevoke),
			},
		},
	}
}

func tokensPath(c *cli.Context) (string, error) {
	if p := c.String("tokens-file"); p != "" {
		return p, nil
	}
	return "", errors.New("no device-token file: pass --tokens-file or set DFS_DEVICE_TOKENS")
}

func tokenAdd(c *cli.Context, args []string) error {
	path, err := tokensPath(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("want exactly one user NAME, got %d arguments", len(args))
	}
	name := args[0]
	if err := auth.ValidUserName(name); err != nil {
		return err
	}
	label := c.String("label")
	if label == "" {
		return errors.New("--label is required: name the device (laptop, phone), so that it can be revoked by name")
	}
	if err := auth.ValidTokenLabel(label); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	if hp := c.String("file"); hp != "" {
		ok, err := htpasswdHas(hp, name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no user %s in %s: add the user first (dfs user add); a token of a user who is not there authenticates nobody", name, hp)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	expires, err := parseExpiry(c.String("expires"), now)
	if err != nil {
		return err
	}
	secret, sum, err := auth.NewTokenSecret()
	if err != nil {
		return err
	}
	t, err := auth.AddToken(path, auth.DeviceToken{User: name, Label: label, Hash: sum, ReadOnly: c.Bool("read-only"), Created: now, Expires: expires})
	if err != nil {
		return err
	}
	// The token alone on standard output, so that TOKEN=$(dfs user token
	// add ...) works; everything else on standard error.
	fmt.Fprintln(c.App.Writer, secret)
	what := "read-write"
	if t.ReadOnly {
		what = "read-only"
	}
	until := "never expires"
	if !t.Expires.IsZero() {
		until = "expires " + t.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(c.App.ErrWriter, "added device password %s (id %s, %s, %s) for user %s in %s.\n"+
		"It is shown only now: enter it in the device's WebDAV client as the password of user %s.\n"+
		"Revoke it with: dfs user token revoke %s %s\n", t.Label, t.ID, what, until, name, path, name, name, t.Label)
	return nil
}

// parseExpiry reads --expires: empty for never, a duration from now (with
// d for days), an RFC 3339 time or a date (00:00 UTC). It must lie ahead.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	const maxDays = 100 * 366 // keeps days*24h far from overflowing a Duration
	var at time.Time
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > maxDays {
			return at, fmt.Errorf("--expires %q: want a whole number of days from 1 to %d", s, maxDays)
		}
		at = now.Add(time.Duration(days) * 24 * time.Hour)
	} else if d, err := time.ParseDuration(s); err == nil {
		at = now.Add(d)
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t.UTC()
	} else if t, err := time.Parse(time.DateOnly, s); err == nil {
		at = t
	} else {
		return at, fmt.Errorf("--expires %q: want a duration from now (90d, 36h, 30m), an RFC 3339 time (2027-03-01T00:00:00Z) or a date (2027-03-01)", s)
	}
	if !at.After(now) {
		return at, fmt.Errorf("--expires %q: %s is not in the future", s, at.Format(time.RFC3339))
	}
	return at, nil
}

// htpasswdHas reports whether the htpasswd file at path has a valid entry
// for name (the one a server would take).
func htpasswdHas(path, name string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	entries, _, err := auth.ParseHtpasswd(f)
	if err != nil {
		return false, err
	}
	_, ok := entries[name]
	return ok, nil
}

func tokenList(c *cli.Context, args []string) error {
	path, err := tokensPath(c)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return fmt.Errorf("want at most one user NAME, got %d arguments", len(args))
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(c.App.ErrWriter, "no device-token file at %s: no device passwords\n", path)
		return nil
	}
	tokens, problems, err := auth.ReadTokens(path)
	if err != nil {
		return err
	}
	var users auth.Entries
	if hp := c.String("file"); hp != "" {
		f, err := os.Open(hp)
		if err != nil {
			return err
		}
		users, _, err = auth.ParseHtpasswd(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if len(args) == 1 {
		tokens = slices.DeleteFunc(tokens, func(t auth.DeviceToken) bool { return t.User != args[0] })
	}
	slices.SortFunc(tokens, func(a, b auth.DeviceToken) int {
		return cmp.Or(strings.Compare(a.User, b.User), strings.Compare(a.Label, b.Label))
	})
	now := time.Now()
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tLABEL\tID\tREAD-ONLY\tCREATED\tEXPIRES\tSTATUS")
	for _, t := range tokens {
		ro, expires, status := "no", "never", "active"
		if t.ReadOnly {
			ro = "yes"
		}
		if !t.Expires.IsZero() {
			expires = t.Expires.Format(time.RFC3339)
		}
		switch {
		case users != nil && users[t.User] == nil:
			status = "no user"
		case t.Expired(now):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.User, t.Label, t.ID, ro, t.Created.Format(time.RFC3339), expires, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(c.App.ErrWriter, "ignored: %s\n", p)
	}
	return nil
}

func tokenRevoke(c *cli.Context, args []string) error {
	path, err := tokensPath(c)
	if err != nil {
		return err
	}
	if len(args) != 2 {
		return fmt.Errorf("want a user NAME and a LABEL_OR_ID, got %d arguments", len(args))
	}
	t, err := auth.RevokeToken(path, args[0], args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "revoked device password %s (id %s) of user %s in %s\n", t.Label, t.ID, t.User, path)
	return nil
}
