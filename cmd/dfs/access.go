package main

import (
	"github.com/urfave/cli/v2"
)

// accessFlags are dfs server's per-path permission rules (package access).
func accessFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "access-rules", EnvVars: []string{"DFS_ACCESS_RULES"},
			Usage: "YAML `FILE` of per-path rules: who may read and who may write under each path (groups, \"*\" for every user, {user} for the user's own name, " +
				"the longest matching path decides; see docs/access.md). Re-read within about a second when it changes; a broken file is refused with its line " +
				"and the last good rules stay. Needs --htpasswd. Every node must get the same file (a ConfigMap in Kubernetes). Without it every user may read " +
				"and write everywhere (read-only users only read)"},
		&cli.StringFlag{Name: "user-root", EnvVars: []string{"DFS_USER_ROOT"},
			Usage: "map each user's / to a folder of their own, `PATTERN` such as /home/{user}: a user who mounts the drive sees only that folder " +
				"(created, with the folders above it, on the user's first request). Hrefs, Location and Destination are in the user's namespace. " +
				"Every user is mapped, administrators too. Needs --htpasswd; --access-rules still apply, to the paths of the whole drive"},
	}
}
