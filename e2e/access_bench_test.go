package e2e

// The per-path rules' cost in BenchmarkSmallPut and BenchmarkPropfind10000:
// two more dfs-embedded nodes, both with the same --htpasswd and the same
// user, one without rules ("rules=none") and one with a team's rules file
// ("rules=20", its baseline rules=none). Authentication costs both the
// same, so rules=20's time-x-baseline is the rules' price alone.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchRules is a team's rules file of 20 rules: homes with a private
// and a public folder, a shared area, projects with archives, areas for
// ops and admins. The benchmark's user works in their own home, where
// /home/{user} decides, as it does for most of such a team's requests.
const benchRules = `default: none
groups:
  staff: [bench, alice, carol, dave, erin]
  ops: [olga, oscar]
  admins: [admin]
rules:
  - path: /
    read: ["*"]
    write: ["@admins"]
  - path: /home
    read: ["*"]
    write: ["@admins"]
  - path: /home/{user}
    write: ["{user}", "@admins"]
  - path: /home/{user}/private
    write: ["{user}"]
  - path: /home/{user}/public
    read: ["*"]
    write: ["{user}"]
  - path: /shared
    read: ["*"]
    write: ["@staff", "@admins"]
  - path: /shared/board
    read: ["@staff"]
    write: ["@admins"]
  - path: /shared/templates
    read: ["*"]
    write: ["@admins"]
  - path: /projects
    read: ["@staff", "@ops"]
    write: ["@admins"]
  - path: /projects/alpha
    read: ["@staff"]
    write: ["alice", "carol"]
  - path: /projects/alpha/archive
    read: ["@staff"]
    write: ["@ops"]
  - path: /projects/beta
    read: ["@staff"]
    write: ["dave", "erin"]
  - path: /projects/beta/archive
    read: ["@staff"]
    write: ["@ops"]
  - path: /projects/gamma
    write: ["@staff"]
  - path: /projects/gamma/archive
    read: ["@staff"]
    write: ["@ops"]
  - path: /archive
    read: ["@staff"]
    write: ["@ops"]
  - path: /ops
    write: ["@ops", "@admins"]
  - path: /ops/runbooks
    read: ["*"]
    write: ["@ops"]
  - path: /admin
    write: ["@admins"]
  - path: /admin/backups
    write: ["@admins", "@ops"]
`

// benchUser is the user whose requests are measured; benchAdmin only
// makes the home they work in (/home needs an admin under benchRules).
const (
	benchUser  = "bench"
	benchAdmin = "admin"
)

// startDFSUsers starts a node with --htpasswd, and with --access-rules
// when rules is not empty, makes /home/bench/ and returns the node as a
// server whose base URL is that home and whose client sends bench's
// credentials. Both variants serve the same paths, so the only difference
// between them is the rules.
func startDFSUsers(b *testing.B, rules string) *benchServer {
	b.Helper()
	dir := b.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	addUser(b, users, benchUser, benchUser+"-pw")
	addUser(b, users, benchAdmin, benchAdmin+"-pw")
	extra := []string{"--htpasswd", users}
	name := "rules=none"
	baseline := ""
	if rules != "" {
		file := filepath.Join(dir, "rules.yaml")
		if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
			b.Fatal(err)
		}
		extra = append(extra, "--access-rules", file)
		name = fmt.Sprintf("rules=%d", strings.Count(rules, "- path:"))
		baseline = "rules=none"
	}
	n := startNode(b, embedded, extra...)
	admin := benchUserClient(b, benchAdmin)
	mkcol(b, admin, n.URL+"home/")
	mkcol(b, admin, n.URL+"home/"+benchUser+"/")
	return &benchServer{name: name, url: n.URL + "home/" + benchUser + "/", pid: n.cmd.Process.Pid,
		client: benchUserClient(b, benchUser), baseline: baseline}
}

// benchUserClient is benchClient sending user's credentials. dfs
// remembers a verified password for minutes, so bcrypt runs about once
// per benchmark, not per request.
func benchUserClient(b *testing.B, user string) *http.Client {
	tr := benchClient.Transport.(*http.Transport).Clone()
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: basicAuth{user: user, pass: user + "-pw", next: tr}}
}
