package tlsutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/testlog"
	"github.com/dfs-project/dfs/internal/testpki"
)

// replace writes data to path through a temp file and a rename, as
// cert-manager's and kubelet's writers do.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// secretVolume lays a pair out like a Kubernetes Secret volume: the files
// are symlinks through ..data to a timestamped directory, and an update
// swaps the ..data symlink.
type secretVolume struct {
	dir string
	gen int
}

func (v *secretVolume) write(t *testing.T, l testpki.Leaf) {
	t.Helper()
	v.gen++
	ts := filepath.Join(v.dir, "..gen"+strings.Repeat("x", v.gen))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	l.Write(t, ts)
	tmpLink := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestKeyPairReload(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a, b, c := ca.Issue(t, "a"), ca.Issue(t, "b"), ca.Issue(t, "c")
	type step struct {
		name      string
		change    func(t *testing.T, certFile, keyFile string)
		want      *big.Int // serial served afterwards
		wantError bool     // an error is logged
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"rotation by rename", []step{
			{"new pair", func(t *testing.T, cf, kf string) { replace(t, kf, b.KeyPEM); replace(t, cf, b.CertPEM) }, b.Serial, false},
			{"unchanged files", func(*testing.T, string, string) {}, b.Serial, false},
			{"again", func(t *testing.T, cf, kf string) { replace(t, kf, c.KeyPEM); replace(t, cf, c.CertPEM) }, c.Serial, false},
		}},
		{"certificate written before its key", []step{
			{"cert only: mismatched pair", func(t *testing.T, cf, _ string) { replace(t, cf, b.CertPEM) }, a.Serial, true},
			{"key follows", func(t *testing.T, _, kf string) { replace(t, kf, b.KeyPEM) }, b.Serial, false},
		}},
		{"half-written certificate", []step{
			{"truncated", func(t *testing.T, cf, kf string) {
				replace(t, kf, b.KeyPEM)
				replace(t, cf, b.CertPEM[:len(b.CertPEM)/2])
			}, a.Serial, true},
			{"completed", func(t *testing.T, cf, _ string) { replace(t, cf, b.CertPEM) }, b.Serial, false},
		}},
		{"files gone for a moment", []step{
			{"removed", func(t *testing.T, cf, _ string) {
				if err := os.Remove(cf); err != nil {
					t.Fatal(err)
				}
			}, a.Serial, false},
			{"back with a new pair", func(t *testing.T, cf, kf string) { replace(t, kf, b.KeyPEM); replace(t, cf, b.CertPEM) }, b.Serial, false},
		}},
		{"garbage key", []step{
			{"not PEM", func(t *testing.T, _, kf string) { replace(t, kf, []byte("not a key")) }, a.Serial, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cf, kf := a.Write(t, dir)
			var logs bytes.Buffer
			kp, err := NewKeyPair(cf, kf, 0, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			if got := kp.Certificate().Leaf.SerialNumber; got.Cmp(a.Serial) != 0 {
				t.Fatalf("initial serial %s, want %s", got, a.Serial)
			}
			for _, s := range tc.steps {
				logs.Reset()
				s.change(t, cf, kf)
				got := kp.Certificate().Leaf.SerialNumber
				if got.Cmp(s.want) != 0 {
					t.Fatalf("%s: serving serial %s, want %s", s.name, got, s.want)
				}
				if hasErr := strings.Contains(logs.String(), `"level":"error"`); hasErr != s.wantError {
					t.Fatalf("%s: error logged = %v, want %v; log:\n%s", s.name, hasErr, s.wantError, logs.String())
				}
				// A broken pair is logged once, not on every handshake.
				logs.Reset()
				kp.Certificate()
				if strings.Contains(logs.String(), `"level":"error"`) {
					t.Fatalf("%s: the same broken pair was logged twice", s.name)
				}
			}
		})
	}
}

func TestKeyPairSecretVolumeSwap(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	vol := &secretVolume{dir: t.TempDir()}
	vol.write(t, a)
	kp, err := NewKeyPair(filepath.Join(vol.dir, "tls.crt"), filepath.Join(vol.dir, "tls.key"), 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	vol.write(t, b)
	if got := kp.Certificate().Leaf.SerialNumber; got.Cmp(b.Serial) != 0 {
		t.Fatalf("after the ..data swap: serial %s, want %s", got, b.Serial)
	}
}

func TestKeyPairCheckInterval(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	dir := t.TempDir()
	cf, kf := a.Write(t, dir)
	kp, err := NewKeyPair(cf, kf, DefaultCheckInterval, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	replace(t, kf, b.KeyPEM)
	replace(t, cf, b.CertPEM)
	// Within the interval the files are not looked at.
	if got := kp.Certificate().Leaf.SerialNumber; got.Cmp(a.Serial) != 0 {
		t.Fatalf("serial %s within the check interval, want the old %s", got, a.Serial)
	}
	kp.mu.Lock()
	kp.checked = kp.checked.Add(-DefaultCheckInterval)
	kp.mu.Unlock()
	if got := kp.Certificate().Leaf.SerialNumber; got.Cmp(b.Serial) != 0 {
		t.Fatalf("serial %s after the check interval, want %s", got, b.Serial)
	}
}

func TestNewKeyPairRefusesBadPair(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	dir := t.TempDir()
	cf, kf := a.Write(t, dir)
	replace(t, kf, b.KeyPEM)
	if _, err := NewKeyPair(cf, kf, 0, zerolog.Nop()); err == nil {
		t.Fatal("a certificate with the wrong key loaded")
	}
	if _, err := NewKeyPair(filepath.Join(dir, "missing.crt"), kf, 0, zerolog.Nop()); err == nil {
		t.Fatal("a missing certificate file loaded")
	}
}

func TestConfigChecks(t *testing.T) {
	clusterCA, otherCA := testpki.NewCA(t, "cluster CA"), testpki.NewCA(t, "other CA")
	dir := t.TempDir()
	write := func(name string, l testpki.Leaf) (string, string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return l.Write(t, d)
	}
	caFile := clusterCA.WriteCA(t, dir)
	nodeCert, nodeKey := write("node", clusterCA.Issue(t, "node"))
	foreignCert, foreignKey := write("foreign", otherCA.Issue(t, "foreign"))
	tests := []struct {
		name                  string
		f                     Files
		wantErr               string
		wantHTTPS, wantIntern bool
	}{
		{"nothing", Files{}, "", false, false},
		{"listener only", Files{CertFile: foreignCert, KeyFile: foreignKey}, "", true, false},
		{"cert without key", Files{CertFile: nodeCert}, "go together", false, false},
		{"one cert for everything", Files{CertFile: nodeCert, KeyFile: nodeKey, ClusterCAFile: caFile}, "", true, true},
		{"cluster cert only", Files{ClusterCAFile: caFile, ClusterCertFile: nodeCert, ClusterKeyFile: nodeKey}, "", true, true},
		{"CA without a node cert", Files{ClusterCAFile: caFile}, "needs this node's certificate", false, false},
		{"cluster cert without CA", Files{ClusterCertFile: nodeCert, ClusterKeyFile: nodeKey}, "needs --cluster-ca", false, false},
		{"node cert from another CA", Files{ClusterCAFile: caFile, ClusterCertFile: foreignCert, ClusterKeyFile: foreignKey}, "not signed by --cluster-ca", false, false},
		{"listener cert from another CA", Files{CertFile: foreignCert, KeyFile: foreignKey, ClusterCAFile: caFile,
			ClusterCertFile: nodeCert, ClusterKeyFile: nodeKey}, "--tls-cert is not signed by --cluster-ca", false, false},
		{"CA file without certificates", Files{ClusterCAFile: nodeKey, CertFile: nodeCert, KeyFile: nodeKey}, "holds no PEM certificate", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.f, 0, zerolog.Nop())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTPS() != tc.wantHTTPS || c.Internal() != tc.wantIntern {
				t.Fatalf("HTTPS %v internal %v, want %v %v", c.HTTPS(), c.Internal(), tc.wantHTTPS, tc.wantIntern)
			}
		})
	}
}

// TestRaftMutualTLS shakes hands between the Raft client and server
// configurations of two nodes: both must hold certificates from the same
// cluster CA.
func TestRaftMutualTLS(t *testing.T) {
	clusterCA, otherCA := testpki.NewCA(t, "cluster CA"), testpki.NewCA(t, "other CA")
	dir := t.TempDir()
	caFile := clusterCA.WriteCA(t, dir)
	otherDir := filepath.Join(dir, "other")
	if err := os.Mkdir(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	otherCAFile := otherCA.WriteCA(t, otherDir)
	node := func(ca *testpki.CA, caFile string) *Config {
		d := t.TempDir()
		cf, kf := ca.Issue(t, "node").Write(t, d)
		c, err := New(Files{ClusterCAFile: caFile, CertFile: cf, KeyFile: kf}, 0, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// An impostor trusts the cluster CA but holds a certificate of its own
	// CA; built by hand, since New refuses such a node.
	impostor := node(otherCA, otherCAFile)
	pool, err := LoadCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	impostor.cas = pool
	tests := []struct {
		name           string
		server, client *Config
		ok             bool
	}{
		{"same CA", node(clusterCA, caFile), node(clusterCA, caFile), true},
		{"client from another cluster", node(clusterCA, caFile), node(otherCA, otherCAFile), false},
		{"client with a foreign certificate", node(clusterCA, caFile), impostor, false},
		{"server with a foreign certificate", impostor, node(clusterCA, caFile), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Real sockets: in TLS 1.3 the client finishes before the server
			// has checked its certificate, and the server's alert needs a
			// buffer to land in.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			errc := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				defer conn.Close()
				errc <- tls.Server(conn, tc.server.RaftServer()).Handshake()
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cerr := tls.Client(conn, tc.client.RaftClient()).Handshake()
			serr := <-errc
			if ok := cerr == nil && serr == nil; ok != tc.ok {
				t.Fatalf("handshake ok = %v (client: %v, server: %v), want %v", ok, cerr, serr, tc.ok)
			}
		})
	}
}

// TestKeyPairWatch: a rotation is taken up without any handshake.
func TestKeyPairWatch(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	dir := t.TempDir()
	cf, kf := a.Write(t, dir)
	var logs testlog.Buffer
	kp, err := NewKeyPair(cf, kf, 10*time.Millisecond, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { kp.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	replace(t, kf, b.KeyPEM)
	replace(t, cf, b.CertPEM)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "TLS certificate reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged by the watcher:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
