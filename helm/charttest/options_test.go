package charttest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// cmdDir holds the dfs command, whose flags' environment variables the
// chart sets.
const cmdDir = "../../cmd/dfs"

// optionalEnv maps the chart's values for users, limits, scrub and
// listener timeouts to the environment variables of the dfs flags they
// set. A null value sets nothing, so the binary's default applies; the
// chart never repeats a default of its own.
var optionalEnv = []struct{ value, env string }{
	{"auth.readOnlyUsers", "DFS_READ_ONLY_USERS"},
	{"auth.realm", "DFS_AUTH_REALM"},
	{"limits.quotaBytes", "DFS_QUOTA_BYTES"},
	{"limits.minFreeBytes", "DFS_MIN_FREE_BYTES"},
	{"limits.minFreePercent", "DFS_MIN_FREE_PERCENT"},
	{"limits.maxUploadBytes", "DFS_MAX_UPLOAD_BYTES"},
	{"limits.maxConcurrentUploads", "DFS_MAX_CONCURRENT_UPLOADS"},
	{"limits.propfindInfinity", "DFS_PROPFIND_INFINITY"},
	{"limits.propfindMaxEntries", "DFS_PROPFIND_MAX_ENTRIES"},
	{"limits.maxTreeEntries", "DFS_MAX_TREE_ENTRIES"},
	{"limits.maxXMLBytes", "DFS_MAX_XML_BYTES"},
	{"scrub.rate", "DFS_SCRUB_RATE"},
	{"scrub.interval", "DFS_SCRUB_INTERVAL"},
	{"timeouts.readHeader", "DFS_READ_HEADER_TIMEOUT"},
	{"timeouts.idle", "DFS_IDLE_TIMEOUT"},
	{"timeouts.io", "DFS_IO_TIMEOUT"},
}

// authValues are the auth values checkAuth and checkAccessRules cover
// instead of optionalEnv.
var authValues = []string{"auth.htpasswdSecret", "auth.htpasswdKey", "auth.deviceTokensKey", "auth.accessRules", "auth.accessRulesConfigMap", "auth.accessRulesKey"}

// values is a values file decoded with its numbers as written (Helm's own
// decoding makes them float64).
type values map[string]any

func readValues(t *testing.T, file string) values {
	t.Helper()
	if file == "" {
		return values{}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	v := values{}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// lookup returns the value at a dotted path and whether the file has it.
func (v values) lookup(p string) (any, bool) {
	var cur any = map[string]any(v)
	for _, k := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// effective is the value at p after Helm merges the user's file over the
// chart's values.yaml (a null in the user's file deletes the default).
func effective(t *testing.T, r *rendered, p string) any {
	t.Helper()
	if v, ok := readValues(t, r.values).lookup(p); ok {
		return v
	}
	v, _ := readValues(t, filepath.Join(chartDir, "values.yaml")).lookup(p)
	return v
}

// envText is how a value must reach dfs: numbers exactly as written,
// lists comma-separated ("" for null or an empty list: not set at all).
func envText(t *testing.T, v any) string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return ""
	case json.Number:
		return v.String()
	case string:
		return v
	case []any:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = envText(t, e)
		}
		return strings.Join(s, ",")
	}
	t.Fatalf("value %v (%T) has no environment form", v, v)
	return ""
}

func checkOptionalEnv(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for _, o := range optionalEnv {
		want := envText(t, effective(t, r, o.value))
		got, set := env(c, o.env)
		switch {
		case want == "" && set:
			t.Errorf("%s is null but %s=%q is set: the binary's default must apply", o.value, o.env, got)
		case want != "" && got != want:
			t.Errorf("%s: %s=%q (set: %v), want %q", o.value, o.env, got, set, want)
		}
	}
}

// flagEnvVars is every environment variable a flag of the dfs command
// reads, from the EnvVars of its flag definitions.
func flagEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cmdDir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s (%v)", cmdDir, err)
	}
	vars := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if id, ok := kv.Key.(*ast.Ident); !ok || id.Name != "EnvVars" {
				return true
			}
			if lit, ok := kv.Value.(*ast.CompositeLit); ok {
				for _, e := range lit.Elts {
					if s, ok := e.(*ast.BasicLit); ok && s.Kind == token.STRING {
						name, err := strconv.Unquote(s.Value)
						if err == nil {
							vars[name] = true
						}
					}
				}
			}
			return true
		})
	}
	if len(vars) < 20 {
		t.Fatalf("found only %d flag environment variables in %s: the parser no longer sees the flags", len(vars), cmdDir)
	}
	return vars
}

// checkEnvNames catches a misspelt variable, which dfs would ignore
// without a word: every DFS_* variable of the dfs container is one a flag
// reads.
func checkEnvNames(t *testing.T, r *rendered) {
	known := flagEnvVars(t)
	for _, o := range optionalEnv {
		if !known[o.env] {
			t.Errorf("%s: no dfs flag reads %s", o.value, o.env)
		}
	}
	for _, e := range container(t, r.sts.Spec.Template.Spec, "dfs").Env {
		if strings.HasPrefix(e.Name, "DFS_") && !known[e.Name] {
			t.Errorf("the dfs container sets %s, which no dfs flag reads", e.Name)
		}
	}
}

// usersMount finds the mount DFS_HTPASSWD points into and its volume.
func usersMount(t *testing.T, r *rendered, file string) (*corev1.VolumeMount, *corev1.Volume) {
	t.Helper()
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for i, m := range c.VolumeMounts {
		// The directory of the file, or the file itself (a subPath
		// mount, which checkAuth refuses).
		if mp := path.Clean(m.MountPath); mp != path.Dir(file) && mp != file {
			continue
		}
		for j, v := range r.sts.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &c.VolumeMounts[i], &r.sts.Spec.Template.Spec.Volumes[j]
			}
		}
		t.Fatalf("mount %s names no volume", m.Name)
	}
	return nil, nil
}

func checkAuth(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	secret, _ := effective(t, r, "auth.htpasswdSecret").(string)
	file, set := env(c, "DFS_HTPASSWD")
	tokens, tokensSet := env(c, "DFS_DEVICE_TOKENS")
	if secret == "" {
		if set {
			t.Errorf("DFS_HTPASSWD=%q without auth.htpasswdSecret", file)
		}
		if tokensSet {
			t.Errorf("DFS_DEVICE_TOKENS=%q without auth.htpasswdSecret: dfs refuses tokens without users", tokens)
		}
		for _, v := range r.sts.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName != tlsSecret(t, r) {
				t.Errorf("volume %s mounts Secret %s without auth.htpasswdSecret", v.Name, v.Secret.SecretName)
			}
		}
		return
	}
	key, _ := effective(t, r, "auth.htpasswdKey").(string)
	if !set || path.Base(file) != key {
		t.Fatalf("DFS_HTPASSWD=%q (set: %v): want a file named after auth.htpasswdKey %q", file, set, key)
	}
	m, v := usersMount(t, r, file)
	if m == nil {
		t.Fatalf("DFS_HTPASSWD=%q is on no volume: %+v", file, c.VolumeMounts)
	}
	// Device passwords come from the same Secret, hence the same mount.
	tokensKey, _ := effective(t, r, "auth.deviceTokensKey").(string)
	switch {
	case tokensKey == "" && tokensSet:
		t.Errorf("DFS_DEVICE_TOKENS=%q with an empty auth.deviceTokensKey", tokens)
	case tokensKey != "" && (tokens != path.Join(path.Dir(file), tokensKey)):
		t.Errorf("DFS_DEVICE_TOKENS=%q (set: %v), want key %s beside DFS_HTPASSWD=%s", tokens, tokensSet, tokensKey, file)
	}
	// kubelet never updates a subPath mount: dfs would keep the users of
	// the Secret as it was when the pod started.
	if m.SubPath != "" || !m.ReadOnly {
		t.Errorf("the htpasswd Secret is mounted as %+v: want a whole read-only directory", m)
	}
	if v.Secret == nil || v.Secret.SecretName != secret {
		t.Fatalf("DFS_HTPASSWD=%q is on volume %+v, want Secret %s", file, v.VolumeSource, secret)
	}
	if v.Secret.Items != nil {
		t.Errorf("Secret %s: items %+v; the key %s must be mounted as is", secret, v.Secret.Items, key)
	}
	if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
		t.Errorf("the password hashes are readable by others: defaultMode %v", mode)
	}
	for _, other := range append(slices.Clone(r.sts.Spec.Template.Spec.InitContainers), r.sts.Spec.Template.Spec.Containers...) {
		if other.Name == c.Name {
			continue
		}
		for _, om := range other.VolumeMounts {
			if om.Name == v.Name {
				t.Errorf("container %s mounts the htpasswd Secret too", other.Name)
			}
		}
	}
}

// TestAllFeaturesValuesSetEveryOption keeps ci/all-features-values.yaml
// complete for the values optionalEnv covers, and optionalEnv complete for
// the chart's values: a new value under auth, limits, scrub or timeouts
// fails here until the test checks it.
func TestAllFeaturesValuesSetEveryOption(t *testing.T) {
	file := filepath.Join(chartDir, "ci", "all-features-values.yaml")
	all := readValues(t, file)
	covered := slices.Clone(authValues)
	for _, o := range optionalEnv {
		covered = append(covered, o.value)
		if v, ok := all.lookup(o.value); !ok || envText(t, v) == "" {
			t.Errorf("%s does not set %s", filepath.Base(file), o.value)
		}
	}
	defaults := readValues(t, filepath.Join(chartDir, "values.yaml"))
	for _, group := range []string{"auth", "limits", "scrub", "timeouts"} {
		m, ok := defaults[group].(map[string]any)
		if !ok {
			t.Fatalf("values.yaml has no %s block", group)
		}
		for k := range m {
			if !slices.Contains(covered, group+"."+k) {
				t.Errorf("values.yaml has %s.%s, which this test does not check", group, k)
			}
		}
	}
	r := render(t, helm(t), file)
	if m, _ := usersMount(t, r, mustEnv(t, container(t, r.sts.Spec.Template.Spec, "dfs"), "DFS_HTPASSWD")); m == nil {
		t.Error("no htpasswd Secret mounted")
	}
}

// TestValuesReachDfsAsWritten renders values that Helm's float64 numbers
// and Go templates' truthiness get wrong: zeros that turn a limit off
// must be passed, not dropped, and large byte counts must not turn into
// 1.2e+12.
func TestValuesReachDfsAsWritten(t *testing.T) {
	helmBin := helm(t)
	cases := []struct {
		name string
		yaml string
		want map[string]string
	}{
		{"zeros turn limits off", "limits: {quotaBytes: 0, minFreeBytes: 0, minFreePercent: 0, maxUploadBytes: 0, maxConcurrentUploads: 0}\nscrub: {rate: 0}\n",
			map[string]string{"DFS_QUOTA_BYTES": "0", "DFS_MIN_FREE_BYTES": "0", "DFS_MIN_FREE_PERCENT": "0",
				"DFS_MAX_UPLOAD_BYTES": "0", "DFS_MAX_CONCURRENT_UPLOADS": "0", "DFS_SCRUB_RATE": "0"}},
		{"large byte counts", "limits: {quotaBytes: 1125899906842624, maxUploadBytes: 53687091200}\nscrub: {rate: 1073741824}\n",
			map[string]string{"DFS_QUOTA_BYTES": "1125899906842624", "DFS_MAX_UPLOAD_BYTES": "53687091200", "DFS_SCRUB_RATE": "1073741824"}},
		{"fractions", "limits: {minFreePercent: 0.5}\n", map[string]string{"DFS_MIN_FREE_PERCENT": "0.5"}},
		{"one read-only user", "auth: {htpasswdSecret: users, readOnlyUsers: [viewer]}\n",
			map[string]string{"DFS_READ_ONLY_USERS": "viewer", "DFS_HTPASSWD": "/etc/dfs/users/htpasswd", "DFS_DEVICE_TOKENS": "/etc/dfs/users/device-tokens"}},
		{"no device passwords", "auth: {htpasswdSecret: users, deviceTokensKey: \"\"}\n",
			map[string]string{"DFS_HTPASSWD": "/etc/dfs/users/htpasswd"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			r := render(t, helmBin, file)
			c := container(t, r.sts.Spec.Template.Spec, "dfs")
			for name, want := range tc.want {
				if got, ok := env(c, name); got != want {
					t.Errorf("%s=%q (set: %v), want %q", name, got, ok, want)
				}
			}
			checkOptionalEnv(t, r)
			checkAuth(t, r)
		})
	}
}

// TestSchemaRefusesBadOptions: values dfs would refuse at start (or
// misread) fail `helm install` instead, naming the value.
func TestSchemaRefusesBadOptions(t *testing.T) {
	helmBin := helm(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown propfindInfinity", []string{"--set", "limits.propfindInfinity=sometimes"}, "propfindInfinity"},
		{"negative quota", []string{"--set", "limits.quotaBytes=-1"}, "quotaBytes"},
		{"percent above 100", []string{"--set-json", "limits.minFreePercent=101"}, "minFreePercent"},
		{"count as text", []string{"--set", "limits.maxConcurrentUploads=many"}, "maxConcurrentUploads"},
		{"zero propfind entries", []string{"--set", "limits.propfindMaxEntries=0"}, "propfindMaxEntries"},
		{"negative scrub rate", []string{"--set", "scrub.rate=-5"}, "rate"},
		{"interval not a duration", []string{"--set", "scrub.interval=daily"}, "interval"},
		{"timeout without unit", []string{"--set", "timeouts.io=120"}, "io"},
		{"misspelt limit", []string{"--set", "limits.quota=1"}, "quota"},
		{"misspelt group", []string{"--set", "limit.quotaBytes=1"}, "limit"},
		{"read-only users without htpasswd", []string{"--set", "auth.readOnlyUsers={viewer}"}, "htpasswdSecret"},
		{"user name with a comma", []string{"--set", "auth.htpasswdSecret=u", "--set-json", `auth.readOnlyUsers=["a,b"]`}, "readOnlyUsers"},
		{"empty htpasswd key", []string{"--set", "auth.htpasswdSecret=u", "--set", "auth.htpasswdKey="}, "htpasswdKey"},
		{"key with a slash", []string{"--set", "auth.htpasswdSecret=u", "--set", "auth.htpasswdKey=a/b"}, "htpasswdKey"},
		{"token key with a slash", []string{"--set", "auth.htpasswdSecret=u", "--set", "auth.deviceTokensKey=../t"}, "deviceTokensKey"},
		// dfs refuses --access-rules without --htpasswd at start.
		{"access rules without htpasswd", []string{"--set-string", "auth.accessRules=rules: []"}, "htpasswdSecret"},
		{"rules ConfigMap without htpasswd", []string{"--set", "auth.accessRulesConfigMap=rules"}, "htpasswdSecret"},
		{"rules twice", []string{"--set", "auth.htpasswdSecret=u", "--set-string", "auth.accessRules=rules: []", "--set", "auth.accessRulesConfigMap=rules"}, "accessRulesConfigMap"},
		{"rules as a mapping", []string{"--set", "auth.htpasswdSecret=u", "--set-json", `auth.accessRules={"rules":[]}`}, "accessRules"},
		{"rules key with a slash", []string{"--set", "auth.htpasswdSecret=u", "--set", "auth.accessRulesConfigMap=rules", "--set", "auth.accessRulesKey=a/b"}, "accessRulesKey"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", release, chartDir, "--kube-version", kubeVersion}, tc.args...)
			out, err := exec.Command(helmBin, args...).CombinedOutput()
			if err == nil {
				t.Fatalf("helm %s rendered; want a schema error", strings.Join(tc.args, " "))
			}
			if !strings.Contains(string(out), "schema") || !strings.Contains(string(out), tc.want) {
				t.Errorf("helm %s: %s\nwant a schema error naming %s", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}

// TestDefaultsLeaveDfsDefaults: without values for them, the chart passes
// none of the optional variables, so the binary's defaults apply, and
// WebDAV is open as it always was.
func TestDefaultsLeaveDfsDefaults(t *testing.T) {
	r := render(t, helm(t), "")
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for _, name := range append([]string{"DFS_HTPASSWD", "DFS_DEVICE_TOKENS", "DFS_ACCESS_RULES"}, envNames()...) {
		if v, ok := env(c, name); ok {
			t.Errorf("defaults set %s=%q", name, v)
		}
	}
	if len(r.configMaps) != 0 {
		t.Errorf("defaults render %d ConfigMaps, want none", len(r.configMaps))
	}
	if n := len(r.sts.Spec.Template.Spec.Volumes); n != 0 {
		t.Errorf("defaults render %d pod volumes, want none: %+v", n, r.sts.Spec.Template.Spec.Volumes)
	}
}

func envNames() []string {
	s := make([]string, len(optionalEnv))
	for i, o := range optionalEnv {
		s[i] = o.env
	}
	return s
}

// TestDeviceTokensKeyApart: the device-password key cannot be the htpasswd
// key; dfs would read one file as both and refuse to start.
func TestDeviceTokensKeyApart(t *testing.T) {
	args := []string{"template", release, chartDir, "--kube-version", kubeVersion,
		"--set", "auth.htpasswdSecret=u", "--set", "auth.htpasswdKey=users", "--set", "auth.deviceTokensKey=users"}
	out, err := exec.Command(helm(t), args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "auth.deviceTokensKey must differ from auth.htpasswdKey") {
		t.Fatalf("helm template with the same key twice: %v\n%s", err, out)
	}
}
