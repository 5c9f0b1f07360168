package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// awkwardNames are file and directory names real users have: unicode,
// spaces, and the characters URLs treat specially.
var awkwardNames = []string{
	"plain.txt",
	"with space.txt",
	"percent%20sign%.bin",
	"hash#tag.md",
	"ünïcødé – 日本語.txt",
	"emoji 🚀.dat",
	"semi;colon&amp=.txt",
}

// makeTree writes a local directory tree with awkward names and random
// contents (small and multi-MiB) and returns its root.
func makeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	dirs := []string{"", "sub dir", "sub dir/nested #1", "数据 %"}
	for i, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		for j, name := range awkwardNames {
			size := 1 + (i*7+j)*1013
			if i == 1 && j == 0 {
				size = 3<<20 + 17 // one multi-MiB file
			}
			b := make([]byte, size)
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, d, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// treeDigest maps every file's relative path to its SHA-256.
func treeDigest(t *testing.T, root string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, want, got map[string][32]byte) {
	t.Helper()
	var missing, differ, extra []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != v:
			differ = append(differ, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(differ)
	sort.Strings(extra)
	if len(missing)+len(differ)+len(extra) > 0 {
		t.Fatalf("trees differ: missing %q, different content %q, unexpected %q", missing, differ, extra)
	}
}

func rclone(t *testing.T, url string, args ...string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(conf, []byte("[dfs]\ntype = webdav\nurl = "+url+"\nvendor = other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rclone", append([]string{"--config", conf, "--retries", "1", "--low-level-retries", "1"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestRcloneSession uploads, lists, renames, copies and downloads a tree
// with rclone and compares every byte.
func TestRcloneSession(t *testing.T) {
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Fatalf("rclone not found on PATH (apt-get install rclone): %v", err)
	}
	for _, st := range []store{embedded, redisStore} {
		t.Run(st.String(), func(t *testing.T) {
			n := startNode(t, st)
			src := makeTree(t)
			want := treeDigest(t, src)

			rclone(t, n.URL, "copy", src, "dfs:tree")
			listing := rclone(t, n.URL, "lsf", "-R", "--files-only", "dfs:tree")
			listed := strings.Split(strings.TrimSpace(listing), "\n")
			if len(listed) != len(want) {
				t.Fatalf("rclone lsf lists %d files, uploaded %d:\n%s", len(listed), len(want), listing)
			}

			// Rename a file and a whole directory, copy a directory.
			rclone(t, n.URL, "moveto", "dfs:tree/hash#tag.md", "dfs:tree/renamed #tag.md")
			rclone(t, n.URL, "moveto", "dfs:tree/sub dir", "dfs:tree/moved dir")
			rclone(t, n.URL, "copy", "dfs:tree/数据 %", "dfs:tree/copy of 数据 %")

			want2 := map[string][32]byte{}
			for k, v := range want {
				switch {
				case k == "hash#tag.md":
					want2["renamed #tag.md"] = v
				case strings.HasPrefix(k, "sub dir/"):
					want2["moved dir/"+strings.TrimPrefix(k, "sub dir/")] = v
				case strings.HasPrefix(k, "数据 %/"):
					want2[k] = v
					want2["copy of "+k] = v
				default:
					want2[k] = v
				}
			}
			dst := filepath.Join(t.TempDir(), "dst")
			rclone(t, n.URL, "copy", "dfs:tree", dst)
			sameTree(t, want2, treeDigest(t, dst))
			// rclone's own check compares sizes and hashes where it can.
			rclone(t, n.URL, "check", "--size-only", dst, "dfs:tree")
		})
	}
}

// TestCadaverSession drives cadaver, a command-line WebDAV client, through
// a scripted session: mkcol, put, ls, move, copy, get, lock, unlock, rm.
func TestCadaverSession(t *testing.T) {
	if _, err := exec.LookPath("cadaver"); err != nil {
		t.Fatalf("cadaver not found on PATH (apt-get install cadaver): %v", err)
	}
	n := startNode(t, embedded)
	work := t.TempDir()
	payload := make([]byte, 1<<20+3)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	// cadaver splits arguments on spaces; quoting keeps names whole.
	if err := os.WriteFile(filepath.Join(work, "up load #1.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		`mkcol "docs ü"`,
		`cd "docs ü"`,
		`put "up load #1.bin" "file %1.bin"`,
		`lock "file %1.bin"`,
		`unlock "file %1.bin"`,
		`move "file %1.bin" "renamed 100%.bin"`,
		`copy "renamed 100%.bin" "copy #2.bin"`,
		`ls`,
		`get "copy #2.bin" "down.bin"`,
		`get "renamed 100%.bin" "down2.bin"`,
		`rm "renamed 100%.bin"`,
		`ls`,
		`quit`,
	}, "\n") + "\n"
	cmd := exec.Command("cadaver", n.URL)
	cmd.Dir = work
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "HOME="+work)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("cadaver: %v\n%s", err, text)
	}
	for _, f := range []string{"down.bin", "down2.bin"} {
		got, err := os.ReadFile(filepath.Join(work, f))
		if err != nil {
			t.Fatalf("cadaver did not download %s: %v\n%s", f, err, text)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%s differs from the upload (%d vs %d bytes)\n%s", f, len(got), len(payload), text)
		}
	}
	if strings.Contains(strings.ToLower(text), "failed") {
		t.Fatalf("cadaver reported a failure:\n%s", text)
	}
	// The last listing shows the copy and not the removed file.
	last := text[strings.LastIndex(text, "Listing collection"):]
	if !strings.Contains(last, "copy #2.bin") || strings.Contains(last, "renamed 100%.bin") {
		t.Fatalf("final listing wrong:\n%s", last)
	}
}
