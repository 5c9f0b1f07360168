package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/dfs-project/dfs/auth"
)

// authFlags are dfs server's users and roles (package auth).
func authFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "htpasswd", EnvVars: []string{"DFS_HTPASSWD"},
			Usage: "htpasswd `FILE` of bcrypt entries (written by dfs user add, or htpasswd -B); WebDAV then requires HTTP Basic authentication. " +
				"Re-read within about a second when it changes, no restart; an unreadable or broken file keeps the last good users. " +
				"Without it the WebDAV API is open to anyone who reaches the port"},
		&cli.StringFlag{Name: "device-tokens", EnvVars: []string{"DFS_DEVICE_TOKENS"},
			Usage: "device-password `FILE` (written by dfs user token add): each line a token of a user of --htpasswd, who may then " +
				"log in with it instead of the account password, one per device, revocable on its own. Re-read within about a second " +
				"when it changes; a missing file holds no tokens, a broken one keeps the last good set. Needs --htpasswd"},
		&cli.StringSliceFlag{Name: "read-only-users", EnvVars: []string{"DFS_READ_ONLY_USERS"},
			Usage: "`USERS` (comma-separated or repeated) who may only read: GET, HEAD, OPTIONS, PROPFIND; any other method gets 403 on every node. Needs --htpasswd"},
		&cli.StringFlag{Name: "auth-realm", EnvVars: []string{"DFS_AUTH_REALM"}, Value: "dfs",
			Usage: "the `REALM` of the Basic challenge (401 WWW-Authenticate); clients show it when they ask for a password"},
	}
}

// authOptions reads the auth flags.
func authOptions(c *cli.Context) auth.Options {
	return auth.Options{HtpasswdFile: c.String("htpasswd"), DeviceTokensFile: c.String("device-tokens"),
		ReadOnlyUsers: c.StringSlice("read-only-users"), Realm: c.String("auth-realm")}
}

func userCommand() *cli.Command {
	file := &cli.StringFlag{Name: "file", Aliases: []string{"f"}, EnvVars: []string{"DFS_HTPASSWD"},
		Usage: "the htpasswd `FILE` (default: $DFS_HTPASSWD, as dfs server reads it)"}
	return &cli.Command{
		Name:  "user",
		Usage: "manage the users of an htpasswd file (dfs server --htpasswd)",
		Description: "Edits the htpasswd file a dfs server authenticates WebDAV clients against. Each change\n" +
			"replaces the file atomically (mode 0600; other lines are kept), and running nodes pick it\n" +
			"up within about a second, without a restart. Entries are bcrypt, compatible with\n" +
			"`htpasswd -B`. Every node reads its own copy of the file: give them all the same one\n" +
			"(in Kubernetes, a Secret mounted as a file; edit a local copy and update the Secret).\n" +
			"Device passwords, one per device and revocable on their own, are under `dfs user token`.",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add a user, or set a user's password",
				ArgsUsage: "NAME",
				Description: "Prompts twice for the password (not echoed) on a terminal; otherwise, or with\n" +
					"--password-stdin, reads it as one line from standard input, for scripts:\n" +
					"   printf '%s\\n' \"$PASSWORD\" | dfs user add --file users.htpasswd alice",
				Flags: []cli.Flag{file,
					&cli.BoolFlag{Name: "password-stdin", Usage: "read the password as one line from standard input, even on a terminal"},
					&cli.IntFlag{Name: "cost", Value: bcrypt.DefaultCost,
						Usage: fmt.Sprintf("bcrypt cost (%d..%d): each step doubles the time a password check takes, for the server and for anyone guessing", bcrypt.MinCost, bcrypt.MaxCost)},
				},
				Action: userAdd,
			},
			{
				Name:      "remove",
				Usage:     "remove a user (and, with --tokens-file, the user's device passwords)",
				ArgsUsage: "NAME",
				Description: "Their device passwords stop working with the user. Pass --tokens-file (or set\n" +
					"DFS_DEVICE_TOKENS) to delete them from that file too, so that a user of the same\n" +
					"name added later does not inherit them.",
				Flags:  []cli.Flag{file, tokensFileFlag()},
				Action: userRemove,
			},
			{
				Name:   "list",
				Usage:  "list the users, and the lines a server would ignore",
				Flags:  []cli.Flag{file},
				Action: userList,
			},
			tokenCommand(file),
		},
	}
}

func htpasswdPath(c *cli.Context) (string, error) {
	if p := c.String("file"); p != "" {
		return p, nil
	}
	return "", errors.New("no htpasswd file: pass --file or set DFS_HTPASSWD")
}

func userName(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("want exactly one user NAME, got %d arguments", c.NArg())
	}
	name := c.Args().First()
	if err := auth.ValidUserName(name); err != nil {
		return "", err
	}
	return name, nil
}

func userAdd(c *cli.Context) error {
	path, err := htpasswdPath(c)
	if err != nil {
		return err
	}
	name, err := userName(c)
	if err != nil {
		return err
	}
	password, err := readPassword(c.App.Reader, c.App.ErrWriter, c.Bool("password-stdin"))
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(password, c.Int("cost"))
	if err != nil {
		return err
	}
	replaced, err := auth.SetUser(path, name, hash)
	if err != nil {
		return err
	}
	what := "added"
	if replaced {
		what = "password changed for"
	}
	fmt.Fprintf(c.App.Writer, "%s user %s in %s\n", what, name, path)
	return nil
}

// readPassword prompts twice without echo on a terminal, or reads one line
// from in.
func readPassword(in io.Reader, prompt io.Writer, fromStdin bool) (string, error) {
	if f, ok := in.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "Repeat password: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func userRemove(c *cli.Context) error {
	path, err := htpasswdPath(c)
	if err != nil {
		return err
	}
	name, err := userName(c)
	if err != nil {
		return err
	}
	found, err := auth.RemoveUser(path, name)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no user %s in %s", name, path)
	}
	fmt.Fprintf(c.App.Writer, "removed user %s from %s\n", name, path)
	if tp := c.String("tokens-file"); tp != "" {
		n, err := auth.RemoveUserTokens(tp, name)
		if err != nil {
			return fmt.Errorf("user %s removed, but not their device passwords: %w", name, err)
		}
		fmt.Fprintf(c.App.Writer, "removed %d device passwords of %s from %s\n", n, name, tp)
	}
	return nil
}

func userList(c *cli.Context) error {
	path, err := htpasswdPath(c)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	entries, problems, err := auth.ParseHtpasswd(f)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(c.App.Writer, n)
	}
	for _, p := range problems {
		fmt.Fprintf(c.App.ErrWriter, "ignored: %s\n", p)
	}
	return nil
}
