package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// litmusSummary matches litmus's per-suite summary line, e.g.
// "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%".
var litmusSummary = regexp.MustCompile("summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed, (\\d+) failed")

// TestLitmus runs the WebDAV conformance suite litmus against a real node,
// once per metadata store. dfs must pass all 104 tests of the five suites
// with nothing skipped and no warnings.
func TestLitmus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		st    store
		extra []string
	}{
		{"embedded", embedded, nil},
		{"redis", redisStore, nil},
		// Quota enforcement on and Depth: infinity refused: litmus must
		// not notice either.
		{"embedded with limits", embedded, []string{"--quota-bytes", "1073741824", "--propfind-infinity", "refuse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, tc.st, tc.extra...)
			runLitmus(t, n.URL, tc.name)
		})
	}
}

// runLitmus runs litmus's five suites against url and fails unless all 104
// tests ran and passed, with nothing skipped and no warnings. creds, if
// given, are the user and password litmus authenticates with.
func runLitmus(t *testing.T, url, what string, creds ...string) {
	t.Helper()
	bin, err := exec.LookPath("litmus")
	if err != nil {
		t.Fatalf("litmus not found on PATH (apt-get install litmus): %v", err)
	}
	cmd := exec.Command(bin, append([]string{"--keep-going", url}, creds...)...)
	cmd.Env = append(os.Environ(), "TESTS=basic copymove props locks http")
	cmd.Dir = t.TempDir() // litmus writes debug.log in its working directory
	out, err := cmd.CombinedOutput()
	text := string(out)
	total, passed, failed := 0, 0, 0
	suites := map[string]bool{}
	for _, m := range litmusSummary.FindAllStringSubmatch(text, -1) {
		suites[m[1]] = true
		run, _ := strconv.Atoi(m[2])
		p, _ := strconv.Atoi(m[3])
		f, _ := strconv.Atoi(m[4])
		total, passed, failed = total+run, passed+p, failed+f
	}
	t.Logf("litmus (%s): %d tests run, %d passed, %d failed", what, total, passed, failed)
	problems := []string{}
	if len(suites) != 5 {
		problems = append(problems, "not all five suites ran")
	}
	if passed != 104 || failed != 0 || total != 104 {
		problems = append(problems, "want 104 run and passed")
	}
	if strings.Contains(text, "skipped") || strings.Contains(text, "SKIPPED") {
		problems = append(problems, "tests were skipped")
	}
	if strings.Contains(text, "WARNING") || strings.Contains(text, "warning") {
		problems = append(problems, "warnings were issued")
	}
	if len(problems) > 0 || err != nil {
		t.Fatalf("litmus (%s): %v (exit: %v)\n%s", what, problems, err, text)
	}
}
