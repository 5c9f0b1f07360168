package charttest

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/access"
)

// checkAccessRules: with auth.accessRules or auth.accessRulesConfigMap,
// DFS_ACCESS_RULES names the key's file in a read-only directory mount of
// that ConfigMap (the chart's, holding the rules byte for byte and
// parseable by package access, or the existing one); without either,
// nothing of the rules is rendered.
func checkAccessRules(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	inline, _ := effective(t, r, "auth.accessRules").(string)
	existing, _ := effective(t, r, "auth.accessRulesConfigMap").(string)
	file, set := env(c, "DFS_ACCESS_RULES")
	if inline == "" && existing == "" {
		if set {
			t.Errorf("DFS_ACCESS_RULES=%q without auth.accessRules or auth.accessRulesConfigMap", file)
		}
		if len(r.configMaps) != 0 {
			t.Errorf("%d ConfigMaps rendered without rules", len(r.configMaps))
		}
		for _, v := range r.sts.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				t.Errorf("volume %s mounts ConfigMap %s without rules", v.Name, v.ConfigMap.Name)
			}
		}
		return
	}
	key, _ := effective(t, r, "auth.accessRulesKey").(string)
	if !set || path.Base(file) != key {
		t.Fatalf("DFS_ACCESS_RULES=%q (set: %v): want a file named after auth.accessRulesKey %q", file, set, key)
	}
	name := existing
	if name == "" {
		name = r.sts.Name + "-access-rules" // <fullname>-access-rules
	}
	// usersMount finds the mount of any file, not only the users'.
	m, v := usersMount(t, r, file)
	if m == nil {
		t.Fatalf("DFS_ACCESS_RULES=%q is on no volume: %+v", file, c.VolumeMounts)
	}
	// kubelet never updates a subPath mount: dfs would keep the rules the
	// pod started with, and nodes started at different times would
	// decide differently.
	if m.SubPath != "" || !m.ReadOnly {
		t.Errorf("the rules ConfigMap is mounted as %+v: want a whole read-only directory", m)
	}
	if v.ConfigMap == nil || v.ConfigMap.Name != name {
		t.Fatalf("DFS_ACCESS_RULES=%q is on volume %+v, want ConfigMap %s", file, v.VolumeSource, name)
	}
	if v.ConfigMap.Items != nil {
		t.Errorf("ConfigMap %s: items %+v; the key %s must be mounted as is", name, v.ConfigMap.Items, key)
	}
	if existing != "" {
		if len(r.configMaps) != 0 {
			t.Errorf("auth.accessRulesConfigMap is set, yet the chart renders %d ConfigMaps", len(r.configMaps))
		}
		return
	}
	if len(r.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want the rules' one", len(r.configMaps))
	}
	cm := r.configMaps[0]
	if cm.Name != name || cm.Namespace != namespace {
		t.Errorf("ConfigMap %s/%s, want %s/%s", cm.Namespace, cm.Name, namespace, name)
	}
	if got := cm.Data[key]; got != inline {
		t.Errorf("ConfigMap %s key %s:\n%s\nwant auth.accessRules as written:\n%s", cm.Name, key, got, inline)
	}
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Errorf("ConfigMap %s holds %d keys and %d binary keys, want only %s", cm.Name, len(cm.Data), len(cm.BinaryData), key)
	}
	if _, err := access.Parse(strings.NewReader(cm.Data[key])); err != nil {
		t.Errorf("dfs would refuse the rules of %s: %v", valuesName(r), err)
	}
}

func valuesName(r *rendered) string {
	if r.values == "" {
		return "the defaults"
	}
	return filepath.Base(r.values)
}

// teamRules is a rules file in values written the way docs/auth.md shows.
const teamRules = `groups:
  staff: [alice, carol]
rules:
  - path: /
    read: ["*"]
  - path: /home/{user}
    read: ["*"]
    write: ["{user}"]
  - path: /shared
    read: ["*"]
    write: ["@staff"]
`

// TestAccessRules renders each way of giving the rules and checks what
// reaches the pod: the ConfigMap, the mount and DFS_ACCESS_RULES, spelt
// out here rather than derived as checkAccessRules derives them.
func TestAccessRules(t *testing.T) {
	helmBin := helm(t)
	cases := []struct {
		name     string
		yaml     string
		mounted  string // the ConfigMap the pods mount; "": none
		rendered string // the ConfigMap the chart renders; "": none
		env      string
	}{
		{"inline", "auth:\n  htpasswdSecret: users\n  accessRules: |\n" + indent(teamRules, "    "),
			"rel-dfs-access-rules", "rel-dfs-access-rules", "/etc/dfs/access/rules.yaml"},
		{"inline with its own key", "auth:\n  htpasswdSecret: users\n  accessRulesKey: team.yaml\n  accessRules: |\n" + indent(teamRules, "    "),
			"rel-dfs-access-rules", "rel-dfs-access-rules", "/etc/dfs/access/team.yaml"},
		{"existing ConfigMap", "auth: {htpasswdSecret: users, accessRulesConfigMap: team-rules}\n",
			"team-rules", "", "/etc/dfs/access/rules.yaml"},
		{"existing ConfigMap with its own key", "auth: {htpasswdSecret: users, accessRulesConfigMap: team-rules, accessRulesKey: dfs.yaml}\n",
			"team-rules", "", "/etc/dfs/access/dfs.yaml"},
		{"unset", "auth: {htpasswdSecret: users}\n", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, helmBin, writeValues(t, tc.yaml))
			spec := r.sts.Spec.Template.Spec
			c := container(t, spec, "dfs")
			if got, _ := env(c, "DFS_ACCESS_RULES"); got != tc.env {
				t.Errorf("DFS_ACCESS_RULES=%q, want %q", got, tc.env)
			}
			var mounted []string
			for _, v := range spec.Volumes {
				if v.ConfigMap != nil {
					mounted = append(mounted, v.ConfigMap.Name)
				}
			}
			if want := nonEmpty(tc.mounted); !reflect.DeepEqual(mounted, want) {
				t.Errorf("ConfigMap volumes %q, want %q", mounted, want)
			}
			var names []string
			for _, cm := range r.configMaps {
				names = append(names, cm.Name)
			}
			if want := nonEmpty(tc.rendered); !reflect.DeepEqual(names, want) {
				t.Fatalf("rendered ConfigMaps %q, want %q", names, want)
			}
			if tc.rendered != "" && r.configMaps[0].Data[path.Base(tc.env)] != teamRules {
				t.Errorf("ConfigMap data %q, want the rules as written", r.configMaps[0].Data)
			}
			for _, m := range c.VolumeMounts {
				if m.MountPath == "/etc/dfs/access" && (m.SubPath != "" || !m.ReadOnly) {
					t.Errorf("rules mounted as %+v: want a whole read-only directory", m)
				}
			}
			checkAccessRules(t, r)
			checkAuth(t, r)
			checkEnvNames(t, r)
		})
	}
}

// TestAccessRulesChangeRestartsNothing: dfs reloads the rules itself, so
// a change of auth.accessRules must leave the pod template alone (no
// checksum annotation): changing it rolls no pod, and during a rollout
// nodes with old and new rules would decide differently for longer.
func TestAccessRulesChangeRestartsNothing(t *testing.T) {
	helmBin := helm(t)
	before := render(t, helmBin, writeValues(t, "auth:\n  htpasswdSecret: users\n  accessRules: |\n"+indent(teamRules, "    ")))
	after := render(t, helmBin, writeValues(t, "auth:\n  htpasswdSecret: users\n  accessRules: |\n"+indent(strings.ReplaceAll(teamRules, "carol", "dave"), "    ")))
	if before.configMaps[0].Data["rules.yaml"] == after.configMaps[0].Data["rules.yaml"] {
		t.Fatal("the two renderings hold the same rules")
	}
	if !reflect.DeepEqual(before.sts.Spec.Template, after.sts.Spec.Template) {
		t.Error("changing auth.accessRules changes the pod template: every pod would restart")
	}
}

// TestAccessRulesNotYAML: rules that are not a YAML mapping fail at
// install, naming the value, instead of a pod that refuses to start.
func TestAccessRulesNotYAML(t *testing.T) {
	helmBin := helm(t)
	for _, rules := range []string{"rules: [", "just text", "- path: /"} {
		args := []string{"template", release, chartDir, "--kube-version", kubeVersion,
			"--set", "auth.htpasswdSecret=u", "--set-string", "auth.accessRules=" + rules}
		out, err := exec.Command(helmBin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("auth.accessRules=%q rendered; want an error", rules)
			continue
		}
		if !strings.Contains(string(out), "auth.accessRules is not a YAML mapping") {
			t.Errorf("auth.accessRules=%q: %s\nwant an error naming auth.accessRules", rules, out)
		}
	}
}

func writeValues(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// nonEmpty is s as a list, nil when s is empty.
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
