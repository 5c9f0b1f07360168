package charttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/dfs-project/dfs/kube"
)

const (
	chartDir  = "../dfs"
	release   = "rel"
	namespace = "storage"
	// kubeVersion is what helm template pretends to render for (the chart
	// needs native sidecars).
	kubeVersion = "1.33.0"
)

// helm finds the helm binary: on PATH or in GOPATH/bin (make helm-check
// installs it there).
func helm(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("helm is not installed: `make helm-check` installs it (go install helm.sh/helm/v3/cmd/helm)")
	return ""
}

// rendered is one chart rendering, decoded.
type rendered struct {
	sts        *appsv1.StatefulSet
	services   map[string]*corev1.Service
	secrets    []*corev1.Secret
	configMaps []*corev1.ConfigMap
	accounts   []*corev1.ServiceAccount
	roles      []*rbacv1.Role
	bindings   []*rbacv1.RoleBinding
	pdbs       []*policyv1.PodDisruptionBudget
	ingresses  []*networkingv1.Ingress
	netpols    []*networkingv1.NetworkPolicy
	routes     []*gatewayv1.HTTPRoute
	monitors   []*serviceMonitor
	kinds      []string
	values     string
	replicas   int
}

// render runs helm template with a values file ("" for the defaults) and
// decodes every document strictly: an unknown or misplaced field fails.
func render(t *testing.T, helmBin, values string) *rendered {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	if values != "" {
		args = append(args, "-f", values)
	}
	cmd := exec.Command(helmBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r := &rendered{services: map[string]*corev1.Service{}, values: values}
	for i, doc := range splitDocuments(out) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		r.kinds = append(r.kinds, meta.Kind)
		var target any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 StatefulSet":
			if r.sts != nil {
				t.Fatal("two StatefulSets")
			}
			r.sts = &appsv1.StatefulSet{}
			target = r.sts
		case "v1 Service":
			s := &corev1.Service{}
			target = s
			defer func() { r.services[s.Name] = s }()
		case "v1 Secret":
			r.secrets = append(r.secrets, &corev1.Secret{})
			target = r.secrets[len(r.secrets)-1]
		case "v1 ConfigMap":
			r.configMaps = append(r.configMaps, &corev1.ConfigMap{})
			target = r.configMaps[len(r.configMaps)-1]
		case "v1 ServiceAccount":
			r.accounts = append(r.accounts, &corev1.ServiceAccount{})
			target = r.accounts[len(r.accounts)-1]
		case "rbac.authorization.k8s.io/v1 Role":
			r.roles = append(r.roles, &rbacv1.Role{})
			target = r.roles[len(r.roles)-1]
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			r.bindings = append(r.bindings, &rbacv1.RoleBinding{})
			target = r.bindings[len(r.bindings)-1]
		case "policy/v1 PodDisruptionBudget":
			r.pdbs = append(r.pdbs, &policyv1.PodDisruptionBudget{})
			target = r.pdbs[len(r.pdbs)-1]
		case "networking.k8s.io/v1 Ingress":
			r.ingresses = append(r.ingresses, &networkingv1.Ingress{})
			target = r.ingresses[len(r.ingresses)-1]
		case "networking.k8s.io/v1 NetworkPolicy":
			r.netpols = append(r.netpols, &networkingv1.NetworkPolicy{})
			target = r.netpols[len(r.netpols)-1]
		case "gateway.networking.k8s.io/v1 HTTPRoute":
			r.routes = append(r.routes, &gatewayv1.HTTPRoute{})
			target = r.routes[len(r.routes)-1]
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.monitors = append(r.monitors, &serviceMonitor{})
			target = r.monitors[len(r.monitors)-1]
		default:
			t.Fatalf("document %d: %s %s has no check in this test: add one", i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("document %d (%s): strict decoding: %v\n%s", i, meta.Kind, err, doc)
		}
	}
	if r.sts == nil {
		t.Fatal("no StatefulSet rendered")
	}
	r.replicas = int(*r.sts.Spec.Replicas)
	return r
}

// splitDocuments splits a YAML stream at its --- separators, dropping
// documents that hold only comments.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		empty := true
		for _, line := range strings.Split(string(d), "\n") {
			if l := strings.TrimSpace(line); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

func valueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in the chart (%v)", err)
	}
	return append([]string{""}, files...)
}

func TestChart(t *testing.T) {
	helmBin := helm(t)
	for _, values := range valueFiles(t) {
		name := "defaults"
		if values != "" {
			name = filepath.Base(values)
		}
		t.Run(name, func(t *testing.T) {
			r := render(t, helmBin, values)
			checks := []struct {
				name string
				f    func(*testing.T, *rendered)
			}{
				{"dfs container", checkContainer},
				{"redis sidecar", checkRedis},
				{"security", checkSecurity},
				{"discovery", checkDiscovery},
				{"services", checkServices},
				{"rbac", checkRBAC},
				{"scale-down hook", checkPreStop},
				{"disruption budget", checkPDB},
				{"network policy", checkNetworkPolicy},
				{"secret", checkSecret},
				{"routing", checkRouting},
				{"service monitor", checkServiceMonitor},
				{"tls", checkTLS},
				{"auth", checkAuth},
				{"access rules", checkAccessRules},
				{"optional env", checkOptionalEnv},
				{"env names", checkEnvNames},
			}
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) { c.f(t, r) })
			}
		})
	}
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(spec.Containers), spec.InitContainers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// env returns a literal environment variable of a container ("" if unset).
func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func mustEnv(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	v, ok := env(c, name)
	if !ok || v == "" {
		t.Fatalf("container %s: no %s", c.Name, name)
	}
	return v
}

// httpPort is the port dfs listens on for HTTP: DFS_HTTP_ADDR's port.
func httpPort(t *testing.T, c corev1.Container) int {
	t.Helper()
	addr := mustEnv(t, c, "DFS_HTTP_ADDR")
	_, port, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		t.Fatalf("DFS_HTTP_ADDR %q: want [host]:port", addr)
	}
	return n
}

// portNumber resolves a probe's or Service's target port against the
// container's named ports.
func portNumber(t *testing.T, c corev1.Container, name string, number int32) int {
	t.Helper()
	if name == "" {
		return int(number)
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

func checkContainer(t *testing.T, r *rendered) {
	spec := r.sts.Spec.Template.Spec
	c := container(t, spec, "dfs")
	if !slices.Equal(c.Args, []string{"server"}) {
		t.Errorf("args %q, want [server]", c.Args)
	}
	port := httpPort(t, c)
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", c.StartupProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if want := corev1.URIScheme(strings.ToUpper(scheme(c))); p.probe.HTTPGet.Scheme != want {
			t.Errorf("%s probe scheme %q, want %q", p.name, p.probe.HTTPGet.Scheme, want)
		}
		tp := p.probe.HTTPGet.Port
		if got := portNumber(t, c, tp.StrVal, tp.IntVal); got != port {
			t.Errorf("%s probe port %d, want the --http-addr port %d", p.name, got, port)
		}
	}
	// The PVC template is mounted where --data-dir points.
	if len(r.sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(r.sts.Spec.VolumeClaimTemplates))
	}
	pvc := r.sts.Spec.VolumeClaimTemplates[0].Name
	dataDir := mustEnv(t, c, "DFS_DATA_DIR")
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == pvc && filepath.Clean(m.MountPath) == filepath.Clean(dataDir) && m.SubPath == "" && !m.ReadOnly)
	}
	if !mounted {
		t.Errorf("the volume claim %q is not mounted read-write at --data-dir %s: %+v", pvc, dataDir, c.VolumeMounts)
	}
	for _, v := range []string{"POD_NAME", "POD_NAMESPACE"} {
		found := false
		for _, e := range c.Env {
			found = found || (e.Name == v && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil)
		}
		if !found {
			t.Errorf("%s does not come from the downward API", v)
		}
	}
	if id := mustEnv(t, c, "DFS_ID"); id != "$(POD_NAME)" {
		t.Errorf("DFS_ID = %q, want the pod name", id)
	}
	if mustEnv(t, c, "DFS_LOG_FORMAT") != "json" {
		t.Error("logs are not JSON")
	}
	if r.sts.Spec.Template.Spec.TerminationGracePeriodSeconds == nil || *r.sts.Spec.Template.Spec.TerminationGracePeriodSeconds < 60 {
		t.Error("terminationGracePeriodSeconds below 60: no time for the preStop leave, the leadership transfer and requests in flight")
	}
	if c.Resources.Requests.Memory().IsZero() {
		t.Error("no memory request")
	}
}

func checkRedis(t *testing.T, r *rendered) {
	spec := r.sts.Spec.Template.Spec
	c := container(t, spec, "redis")
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("redis is not a native sidecar (init container with restartPolicy Always)")
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--appendonly yes", "--dir /data", "--bind 127.0.0.1"} {
		if !strings.Contains(args, want) {
			t.Errorf("redis args %q lack %q", args, want)
		}
	}
	onVolume := false
	for _, m := range c.VolumeMounts {
		onVolume = onVolume || (m.Name == r.sts.Spec.VolumeClaimTemplates[0].Name && m.MountPath == "/data")
	}
	if !onVolume {
		t.Error("redis does not keep its files on the pod's volume")
	}
	if u := mustEnv(t, container(t, spec, "dfs"), "DFS_REDIS_URL"); u != "redis://127.0.0.1:6379/0" {
		t.Errorf("DFS_REDIS_URL = %q", u)
	}
}

func checkSecurity(t *testing.T, r *rendered) {
	spec := r.sts.Spec.Template.Spec
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil {
		t.Error("pod securityContext: want runAsNonRoot and an fsGroup (the volume must be writable)")
	}
	for _, name := range []string{"dfs", "redis"} {
		sc := container(t, spec, name).SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: runAsNonRoot not set", name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: root filesystem writable", name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: privilege escalation allowed", name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: capabilities %+v, want drop ALL", name, sc.Capabilities)
		}
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil {
		t.Error("no pod anti-affinity")
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread constraints")
	}
}

func checkDiscovery(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	expect, err := strconv.Atoi(mustEnv(t, c, "DFS_BOOTSTRAP_EXPECT"))
	if err != nil || expect < 1 || expect > r.replicas {
		t.Fatalf("DFS_BOOTSTRAP_EXPECT %v: want 1..replicas (%d)", err, r.replicas)
	}
	headless := r.sts.Spec.ServiceName
	dns := kube.StatefulSetDNS{StatefulSet: r.sts.Name, Service: headless, Namespace: namespace, Port: httpPort(t, c), Scheme: scheme(c)}
	peers := strings.Split(mustEnv(t, c, "DFS_PEERS"), ",")
	if want := dns.PeerURLs(expect); !slices.Equal(peers, want) {
		t.Errorf("DFS_PEERS\n got %q\nwant %q", peers, want)
	}
	if r.values == "" && len(peers) != r.replicas {
		t.Errorf("defaults: %d peers for %d replicas", len(peers), r.replicas)
	}
	// The advertised URL is this pod's entry in the same list.
	adv := mustEnv(t, c, "DFS_ADVERTISE_URL")
	if got := strings.ReplaceAll(strings.ReplaceAll(adv, "$(POD_NAME)", r.sts.Name+"-0"), "$(POD_NAMESPACE)", namespace); got != dns.URL(0) {
		t.Errorf("DFS_ADVERTISE_URL %q for pod 0 is %q, want %q", adv, got, dns.URL(0))
	}
	if r.sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Error("pods must start in parallel: none is ready before the cluster forms")
	}
	svc := r.services[headless]
	if svc == nil {
		t.Fatalf("no headless Service %q", headless)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Error("the headless Service must have clusterIP None and publishNotReadyAddresses")
	}
}

func checkServices(t *testing.T, r *rendered) {
	podLabels := r.sts.Spec.Template.Labels
	leaders := 0
	for name, svc := range r.services {
		for k, v := range svc.Spec.Selector {
			if k == kube.RoleLabel {
				continue
			}
			if podLabels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the pods do not carry", name, k, v)
			}
		}
		if v, ok := svc.Spec.Selector[kube.RoleLabel]; ok {
			leaders++
			if v != kube.LeaderValue {
				t.Errorf("leader Service %s selects %s=%s, but the leader sets %s", name, kube.RoleLabel, v, kube.LeaderValue)
			}
			if _, onPod := podLabels[kube.RoleLabel]; onPod {
				t.Error("the pod template carries the leader label: every pod would be selected")
			}
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal == "" {
				t.Errorf("Service %s port %s: use the container's named port", name, p.Name)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d leader Services, want 1", leaders)
	}
	if svc := r.services[r.sts.Name]; svc == nil || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Error("no client Service")
	}
}

func checkRBAC(t *testing.T, r *rendered) {
	if len(r.roles) != 1 || len(r.bindings) != 1 {
		t.Fatalf("%d Roles, %d RoleBindings: want 1 each", len(r.roles), len(r.bindings))
	}
	// Exactly what package kube calls (labeler: get, patch pods; reaper:
	// get pods, get the StatefulSet; leave: get the StatefulSet).
	want := map[string][]string{"/pods": {"get", "patch"}, "apps/statefulsets": {"get"}}
	got := map[string][]string{}
	for _, rule := range r.roles[0].Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				got[g+"/"+res] = append(got[g+"/"+res], rule.Verbs...)
			}
		}
		if slices.Contains(rule.Resources, "statefulsets") && !slices.Equal(rule.ResourceNames, []string{r.sts.Name}) {
			t.Errorf("the StatefulSet rule names %v, want only %s", rule.ResourceNames, r.sts.Name)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Role grants %v, want exactly %v", got, want)
	}
	b := r.bindings[0]
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != r.roles[0].Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Name != r.sts.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("RoleBinding %+v does not bind the Role to the pods' ServiceAccount", b)
	}
	spec := r.sts.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Error("the pods need their service account token for the API calls")
	}
}

func checkPreStop(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		t.Fatal("no preStop exec hook: a scaled-down pod would stay a voter")
	}
	cmd := c.Lifecycle.PreStop.Exec.Command
	if !slices.Equal(cmd[:4], []string{"/dfs", "cluster", "leave", "--if-scaled-down"}) {
		t.Errorf("preStop %q: want /dfs cluster leave --if-scaled-down", cmd)
	}
	if v, _ := env(c, "DFS_ADDR"); v != fmt.Sprintf("%s://127.0.0.1:%d", scheme(c), httpPort(t, c)) {
		t.Errorf("DFS_ADDR %q: the hook must reach this node", v)
	}
}

func checkPDB(t *testing.T, r *rendered) {
	if len(r.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(r.pdbs))
	}
	p := r.pdbs[0]
	if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v: want maxUnavailable 1", p.Spec)
	}
	if fmt.Sprint(p.Spec.Selector.MatchLabels) != fmt.Sprint(r.sts.Spec.Selector.MatchLabels) {
		t.Error("the PDB does not select the StatefulSet's pods")
	}
}

func checkNetworkPolicy(t *testing.T, r *rendered) {
	if len(r.netpols) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(r.netpols))
	}
	np := r.netpols[0]
	sel := fmt.Sprint(r.sts.Spec.Selector.MatchLabels)
	if fmt.Sprint(np.Spec.PodSelector.MatchLabels) != sel {
		t.Error("the NetworkPolicy does not select the release's pods")
	}
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for _, rule := range np.Spec.Ingress {
		fromRelease := len(rule.From) == 1 && rule.From[0].PodSelector != nil &&
			fmt.Sprint(rule.From[0].PodSelector.MatchLabels) == sel && rule.From[0].NamespaceSelector == nil
		for _, p := range rule.Ports {
			port := portNumber(t, c, p.Port.StrVal, p.Port.IntVal)
			switch {
			case port == httpPort(t, c):
			case !fromRelease:
				t.Errorf("port %d is open to %+v, want only the release's pods", port, rule.From)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("rule %+v opens every port", rule)
		}
	}
}

func checkSecret(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for _, e := range c.Env {
		if e.Name != "DFS_CLUSTER_SECRET" {
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Fatal("the cluster secret must come from a Secret")
		}
		ref := e.ValueFrom.SecretKeyRef
		for _, s := range r.secrets {
			if s.Name == ref.Name && len(s.Data[ref.Key]) >= 16 {
				return
			}
		}
		t.Fatalf("no Secret %s with a key %s of 16 bytes or more", ref.Name, ref.Key)
	}
	t.Fatal("no DFS_CLUSTER_SECRET")
}

func checkRouting(t *testing.T, r *rendered) {
	leader := ""
	for name, svc := range r.services {
		if _, ok := svc.Spec.Selector[kube.RoleLabel]; ok {
			leader = name
		}
	}
	for _, ing := range r.ingresses {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				svc := p.Backend.Service.Name
				if r.services[svc] == nil {
					t.Errorf("Ingress %s routes to a missing Service %s", ing.Name, svc)
				}
				if svc == leader && ing.Annotations["konghq.com/methods"] == "" && len(r.ingresses) > 1 {
					t.Errorf("Ingress %s sends every method to the leader Service", ing.Name)
				}
			}
		}
	}
	for _, rt := range r.routes {
		rules := rt.Spec.Rules
		if len(rules) != 2 {
			t.Fatalf("HTTPRoute %s: %d rules, want the leader rule and the catch-all", rt.Name, len(rules))
		}
		for _, m := range rules[0].Matches {
			if m.Method == nil || (*m.Method != gatewayv1.HTTPMethodPut && *m.Method != gatewayv1.HTTPMethodDelete) {
				t.Errorf("leader rule matches %+v, want PUT or DELETE", m)
			}
		}
		if string(rules[0].BackendRefs[0].Name) != leader || string(rules[1].BackendRefs[0].Name) != r.sts.Name {
			t.Errorf("HTTPRoute backends %s, %s: want %s then %s", rules[0].BackendRefs[0].Name, rules[1].BackendRefs[0].Name, leader, r.sts.Name)
		}
		if rules[1].Matches[0].Method != nil {
			t.Error("the catch-all rule must match every method")
		}
	}
}

// TestAllFeaturesValuesTurnEverythingOn keeps ci/all-features-values.yaml
// honest: it must render every optional object.
func TestAllFeaturesValuesTurnEverythingOn(t *testing.T) {
	r := render(t, helm(t), filepath.Join(chartDir, "ci", "all-features-values.yaml"))
	if len(r.ingresses) != 2 || len(r.routes) != 1 {
		t.Errorf("%d Ingresses and %d HTTPRoutes, want the client and leader Ingresses and one HTTPRoute", len(r.ingresses), len(r.routes))
	}
	if len(r.monitors) != 1 || r.monitors[0].Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("%d ServiceMonitors, want one carrying serviceMonitor.labels", len(r.monitors))
	}
	if r.sts.Spec.PersistentVolumeClaimRetentionPolicy == nil || r.sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Error("the retention policy value is not applied")
	}
}

// serviceMonitor mirrors the fields of a Prometheus Operator
// monitoring.coreos.com/v1 ServiceMonitor that the chart renders, so that
// strict decoding catches a misplaced or misspelt field without importing
// the operator's module. Add a field here before rendering it.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port      string `json:"port"`
			Path      string `json:"path"`
			Scheme    string `json:"scheme"`
			TLSConfig *struct {
				CA struct {
					Secret struct {
						Name string `json:"name"`
						Key  string `json:"key"`
					} `json:"secret"`
				} `json:"ca"`
				ServerName string `json:"serverName"`
			} `json:"tlsConfig,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// promDuration is the Prometheus Operator's Duration pattern.
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

func checkServiceMonitor(t *testing.T, r *rendered) {
	if r.values == "" {
		if len(r.monitors) != 0 {
			t.Errorf("defaults render %d ServiceMonitors, want none (it needs the operator's CRDs)", len(r.monitors))
		}
		return
	}
	client := r.services[r.sts.Name]
	if client == nil {
		t.Fatal("no client Service")
	}
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	for _, m := range r.monitors {
		if m.Namespace != namespace || !slices.Equal(m.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
			t.Errorf("ServiceMonitor %s in %q watches namespaces %v, want only %s", m.Name, m.Namespace, m.Spec.NamespaceSelector.MatchNames, namespace)
		}
		sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("ServiceMonitor %s: selector %+v: %v", m.Name, m.Spec.Selector, err)
		}
		// Exactly the client Service: the headless and leader Services
		// reach the same pods, and selecting them too would scrape each
		// pod twice or three times.
		for name, svc := range r.services {
			if got, want := sel.Matches(labels.Set(svc.Labels)), name == client.Name; got != want {
				t.Errorf("ServiceMonitor %s selector %s matches Service %s: %v, want %v", m.Name, sel, name, got, want)
			}
		}
		if len(m.Spec.Endpoints) != 1 {
			t.Fatalf("ServiceMonitor %s: %d endpoints, want 1", m.Name, len(m.Spec.Endpoints))
		}
		ep := m.Spec.Endpoints[0]
		if ep.Path != "/metrics" || ep.Scheme != scheme(c) {
			t.Errorf("ServiceMonitor %s scrapes %s://…%s, want %s and /metrics", m.Name, ep.Scheme, ep.Path, scheme(c))
		}
		if secret := tlsSecret(t, r); secret != "" {
			if ep.TLSConfig == nil || ep.TLSConfig.CA.Secret.Name != secret || ep.TLSConfig.CA.Secret.Key != "ca.crt" ||
				ep.TLSConfig.ServerName != fmt.Sprintf("%s.%s.svc.cluster.local", client.Name, namespace) {
				t.Errorf("ServiceMonitor %s: tlsConfig %+v, want the CA of Secret %s and the client Service's name", m.Name, ep.TLSConfig, secret)
			}
		}
		found := false
		for _, p := range client.Spec.Ports {
			if p.Name == ep.Port {
				found = true
				if got := portNumber(t, c, p.TargetPort.StrVal, p.TargetPort.IntVal); got != httpPort(t, c) {
					t.Errorf("ServiceMonitor port %s reaches container port %d, want the --http-addr port %d", ep.Port, got, httpPort(t, c))
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s scrapes port %q, which the client Service %s does not name", m.Name, ep.Port, client.Name)
		}
		for _, d := range []string{ep.Interval, ep.ScrapeTimeout} {
			if !promDuration.MatchString(d) {
				t.Errorf("ServiceMonitor %s: %q is not a Prometheus duration", m.Name, d)
			}
		}
	}
}

// scheme is the pods' URL scheme: https when dfs serves TLS.
func scheme(c corev1.Container) string {
	if _, ok := env(c, "DFS_TLS_CERT"); ok {
		return "https"
	}
	return "http"
}

// tlsSecret is the Secret mounted for TLS ("" without TLS).
func tlsSecret(t *testing.T, r *rendered) string {
	t.Helper()
	for _, v := range r.sts.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	return ""
}

func checkTLS(t *testing.T, r *rendered) {
	c := container(t, r.sts.Spec.Template.Spec, "dfs")
	secret := tlsSecret(t, r)
	if secret == "" {
		for _, name := range []string{"DFS_TLS_CERT", "DFS_TLS_KEY", "DFS_CLUSTER_CA", "DFS_CA_CERT"} {
			if _, ok := env(c, name); ok {
				t.Errorf("%s is set without a TLS Secret", name)
			}
		}
		return
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.Name == "tls" {
			mount = &c.VolumeMounts[i]
		}
	}
	// kubelet never updates a subPath mount: a renewed certificate would
	// never reach the node.
	if mount == nil || !mount.ReadOnly || mount.SubPath != "" {
		t.Fatalf("TLS Secret %s mounted as %+v: want a whole read-only volume mount", secret, mount)
	}
	for name, file := range map[string]string{"DFS_TLS_CERT": "tls.crt", "DFS_TLS_KEY": "tls.key", "DFS_CA_CERT": "ca.crt", "DFS_CLUSTER_CA": "ca.crt"} {
		if got, want := mustEnv(t, c, name), mount.MountPath+"/"+file; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
