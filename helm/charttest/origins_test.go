package charttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfs-project/dfs/webdav"
)

// TestPublicURLs: DFS_PUBLIC_URLS is publicURLs as written, or else every
// Ingress host and HTTPRoute hostname (of those enabled, wildcards
// skipped) with https and http, so COPY and MOVE through the Ingress are
// not refused with 502; DFS_TRUSTED_PROXIES is trustedProxies. dfs
// accepts what the chart renders.
func TestPublicURLs(t *testing.T) {
	helmBin := helm(t)
	const hosts = "ingress:\n  enabled: true\n  hosts:\n" +
		"    - {host: dfs.example.com, paths: [{path: /, pathType: Prefix}]}\n" +
		"    - {host: '*.wild.example.com', paths: [{path: /, pathType: Prefix}]}\n" +
		"    - {host: files.example.org, paths: [{path: /, pathType: Prefix}]}\n"
	cases := []struct {
		name    string
		yaml    string
		public  string // "" for not set
		trusted string
	}{
		{"defaults", "", "", ""},
		{"Ingress disabled", "ingress: {enabled: false}\n", "", ""},
		{"Ingress hosts", hosts, "https://dfs.example.com,http://dfs.example.com,https://files.example.org,http://files.example.org", ""},
		{"HTTPRoute hostnames too", hosts + "httpRoute: {enabled: true, parentRefs: [{name: public}], hostnames: [dfs.example.com, gw.example.net]}\n",
			"https://dfs.example.com,http://dfs.example.com,https://files.example.org,http://files.example.org,https://gw.example.net,http://gw.example.net", ""},
		{"HTTPRoute disabled", "httpRoute: {enabled: false, hostnames: [gw.example.net]}\n", "", ""},
		{"explicit", hosts + "publicURLs: ['https://dav.example.com:8443', 'http://10.0.0.5']\n", "https://dav.example.com:8443,http://10.0.0.5", ""},
		{"trusted proxies", "trustedProxies: [10.0.0.0/8, 'fd00::/8', 192.168.1.7]\n", "", "10.0.0.0/8,fd00::/8,192.168.1.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.yaml != "" {
				file = filepath.Join(t.TempDir(), "values.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := container(t, render(t, helmBin, file).sts.Spec.Template.Spec, "dfs")
			for _, v := range []struct{ name, want string }{{"DFS_PUBLIC_URLS", tc.public}, {"DFS_TRUSTED_PROXIES", tc.trusted}} {
				got, set := env(c, v.name)
				if got != v.want || set != (v.want != "") {
					t.Errorf("%s=%q (set: %v), want %q", v.name, got, set, v.want)
				}
			}
			if v, ok := env(c, "DFS_PUBLIC_URLS"); ok {
				if _, err := webdav.ParsePublicURLs([]string{v}); err != nil {
					t.Errorf("dfs refuses DFS_PUBLIC_URLS=%q: %v", v, err)
				}
			}
			if v, ok := env(c, "DFS_TRUSTED_PROXIES"); ok {
				if _, err := webdav.ParseTrustedProxies(strings.Split(v, ",")); err != nil {
					t.Errorf("dfs refuses DFS_TRUSTED_PROXIES=%q: %v", v, err)
				}
			}
		})
	}
	for _, bad := range []string{"publicURLs=[\"https://dfs.example.com/dav\"]", "publicURLs=[\"dfs.example.com\"]", "trustedProxies=[\"proxy.example\"]"} {
		args := []string{"template", release, chartDir, "--kube-version", kubeVersion, "--set-json", bad}
		if out, err := exec.Command(helmBin, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), "schema") {
			t.Errorf("helm --set-json %s: %v %s; want a schema error", bad, err, out)
		}
	}
}
