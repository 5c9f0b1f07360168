package e2e

// TLS and listener timeouts against real node processes: HTTPS with curl
// and rclone, a certificate swapped on disk, a cluster whose nodes talk
// TLS with their own CA (Raft with mutual TLS), a node with a foreign
// certificate refused, and slow or stalled clients disconnected while slow
// but moving transfers survive.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dfs-project/dfs/internal/testpki"
)

// pki is a cluster CA with its bundle on disk.
type pki struct {
	ca     *testpki.CA
	caFile string
	pool   *x509.CertPool
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	ca := testpki.NewCA(t, name)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &pki{ca: ca, caFile: ca.WriteCA(t, t.TempDir()), pool: pool}
}

// issue writes a fresh certificate for a node into its own directory.
func (p *pki) issue(t testing.TB, cn string) (certFile, keyFile string, serial *big.Int) {
	t.Helper()
	leaf := p.ca.Issue(t, cn)
	certFile, keyFile = leaf.Write(t, t.TempDir())
	return certFile, keyFile, leaf.Serial
}

// client trusts only the CA. Each test gets its own, so no connection
// outlives a certificate swap unnoticed.
func (p *pki) client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// launchTLS starts a node serving HTTPS and returns it with an https URL,
// not yet ready.
func launchTLS(t testing.TB, spec nodeSpec, bootstrap bool) *node {
	t.Helper()
	n := launchNode(t, spec, bootstrap)
	n.URL = "https://" + spec.HTTPAddr + "/"
	return n
}

// waitReadyWith waits until n answers /readyz with 200 through hc.
func waitReadyWith(t testing.TB, hc *http.Client, n *node, timeout time.Duration) {
	t.Helper()
	var last string
	ok := poll(timeout, func() bool {
		select {
		case <-n.exited:
			t.Fatalf("%s exited before becoming ready:\n%s", n.spec.ID, n.logText())
		default:
		}
		resp, err := hc.Get(n.URL + "readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		t.Fatalf("%s not ready after %s (last /readyz: %s)", n.spec.ID, timeout, last)
	}
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"--silent", "--show-error", "--fail"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTLSClients serves HTTPS and drives it with curl and rclone, both
// verifying the certificate against the CA.
func TestTLSClients(t *testing.T) {
	p := newPKI(t, "dfs test CA")
	cert, key, _ := p.issue(t, "node1")
	n := launchTLS(t, nodeSpec{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--tls-cert", cert, "--tls-key", key}}, true)
	hc := p.client(t)
	waitReadyWith(t, hc, n, 30*time.Second)

	// Plain HTTP to the HTTPS listener is refused, not served.
	if resp, err := http.Get("http://" + n.spec.HTTPAddr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the HTTPS listener: %d, want 400", resp.StatusCode)
		}
	}

	src := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(src, []byte("hello over TLS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	curl(t, "--cacert", p.caFile, "-T", src, n.URL+"hello.txt")
	if got := curl(t, "--cacert", p.caFile, n.URL+"hello.txt"); got != "hello over TLS\n" {
		t.Fatalf("curl GET: %q", got)
	}
	if got := curl(t, "--cacert", p.caFile, "-X", "PROPFIND", "-H", "Depth: 1", n.URL); !strings.Contains(got, "hello.txt") {
		t.Fatalf("curl PROPFIND does not list hello.txt:\n%s", got)
	}
	// Without the CA, curl refuses the certificate.
	if out, err := exec.Command("curl", "--silent", "--fail", n.URL+"hello.txt").CombinedOutput(); err == nil {
		t.Fatalf("curl without --cacert accepted the certificate: %s", out)
	}

	if _, err := exec.LookPath("rclone"); err != nil {
		t.Fatalf("rclone not found on PATH (apt-get install rclone): %v", err)
	}
	tree := makeTree(t)
	want := treeDigest(t, tree)
	rclone(t, n.URL, "--ca-cert", p.caFile, "copy", tree, "dfs:tree")
	if listing := rclone(t, n.URL, "--ca-cert", p.caFile, "lsf", "-R", "--files-only", "dfs:tree"); len(strings.Fields(listing)) == 0 {
		t.Fatalf("rclone lsf over TLS lists nothing")
	}
	dst := t.TempDir()
	rclone(t, n.URL, "--ca-cert", p.caFile, "copy", "dfs:tree", dst)
	sameTree(t, want, treeDigest(t, dst))
}

// servedSerial is the serial number of the certificate a fresh TLS
// connection to addr is served.
func servedSerial(t *testing.T, p *pki, addr string) (*big.Int, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool, ServerName: "localhost"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// replaceFile swaps path's content through a rename, as cert-manager and
// kubelet do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSCertificateReload swaps the certificate files under a running
// node: new connections get the new certificate without a restart, and a
// broken pair keeps the last good one.
func TestTLSCertificateReload(t *testing.T) {
	p := newPKI(t, "dfs test CA")
	first, second, third := p.ca.Issue(t, "first"), p.ca.Issue(t, "second"), p.ca.Issue(t, "third")
	cert, key := first.Write(t, t.TempDir())
	n := launchTLS(t, nodeSpec{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--tls-cert", cert, "--tls-key", key}}, true)
	waitReadyWith(t, p.client(t), n, 30*time.Second)
	addr := n.spec.HTTPAddr

	waitSerial := func(what string, want *big.Int) {
		t.Helper()
		var got *big.Int
		var err error
		if !poll(10*time.Second, func() bool {
			got, err = servedSerial(t, p, addr)
			return err == nil && got.Cmp(want) == 0
		}) {
			t.Fatalf("%s: served serial %v (err %v), want %v", what, got, err, want)
		}
	}
	waitSerial("at start", first.Serial)

	replaceFile(t, key, second.KeyPEM)
	replaceFile(t, cert, second.CertPEM)
	waitSerial("after the swap", second.Serial)

	// A certificate whose key has not been written yet: the pair does not
	// match, and the node keeps serving the second certificate.
	replaceFile(t, cert, third.CertPEM)
	// The node looks at the files every second (and on handshakes).
	if !poll(10*time.Second, func() bool {
		_, _ = servedSerial(t, p, addr)
		return strings.Contains(n.logText(), "do not load")
	}) {
		t.Fatalf("a mismatched pair was not reported in the log:\n%s", n.logText())
	}
	if got, err := servedSerial(t, p, addr); err != nil || got.Cmp(second.Serial) != 0 {
		t.Fatalf("with a mismatched pair on disk: served %v (err %v), want the last good %v", got, err, second.Serial)
	}
	replaceFile(t, key, third.KeyPEM)
	waitSerial("once the key follows", third.Serial)

	// The node still serves WebDAV over the new certificate.
	resp, err := p.client(t).Get(n.URL + "readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz after the rotation: %d", resp.StatusCode)
	}
}

// tlsClusterSpecs are n nodes forming a cluster over HTTPS, each with its
// own certificate from p, Raft over mutual TLS.
func tlsClusterSpecs(t *testing.T, p *pki, n int) []nodeSpec {
	t.Helper()
	specs := make([]nodeSpec, n)
	urls := make([]string, n)
	for i := range specs {
		specs[i] = nodeSpec{ID: nodeID(i), DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t)}
		urls[i] = "https://" + specs[i].HTTPAddr
	}
	for i := range specs {
		cert, key, _ := p.issue(t, specs[i].ID)
		specs[i].Extra = []string{"--cluster-secret", clusterSecret, "--bootstrap-expect", strconv.Itoa(n),
			"--peers", strings.Join(urls, ","), "--cluster-ca", p.caFile,
			"--cluster-tls-cert", cert, "--cluster-tls-key", key}
	}
	return specs
}

// TestTLSCluster forms a three-node cluster whose nodes talk TLS with their
// own CA: it elects a leader, replicates a write, and a follower forwards
// a write; the Raft port refuses a client without a certificate from the
// CA.
func TestTLSCluster(t *testing.T) {
	p := newPKI(t, "dfs cluster CA")
	hc := p.client(t)
	c := &tcluster{t: t, st: embedded, hc: hc}
	for _, spec := range tlsClusterSpecs(t, p, 3) {
		c.nodes = append(c.nodes, launchTLS(t, spec, false))
	}
	for _, n := range c.nodes {
		waitReadyWith(t, hc, n, 60*time.Second)
	}
	leader := c.nodes[c.leader(t)]
	c.waitMembers(t, 3)
	for _, n := range c.nodes {
		if !strings.Contains(n.logText(), "TLS between nodes") {
			t.Fatalf("%s does not report TLS between nodes", n.spec.ID)
		}
	}

	put := func(n *node, name, body string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, n.URL+name, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("PUT %s on %s: %v", name, n.spec.ID, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s on %s: %d", name, n.spec.ID, resp.StatusCode)
		}
	}
	get := func(n *node, name string) string {
		t.Helper()
		resp, err := hc.Get(n.URL + name)
		if err != nil {
			t.Fatalf("GET %s on %s: %v", name, n.spec.ID, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s on %s: %d %s", name, n.spec.ID, resp.StatusCode, b)
		}
		return string(b)
	}
	put(leader, "from-leader.txt", "written on the leader")
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
		}
		if got := get(n, "from-leader.txt"); got != "written on the leader" {
			t.Fatalf("%s serves %q", n.spec.ID, got)
		}
	}
	put(follower, "via-follower.txt", "forwarded to the leader")
	for _, n := range c.nodes {
		if got := get(n, "via-follower.txt"); got != "forwarded to the leader" {
			t.Fatalf("%s serves %q", n.spec.ID, got)
		}
	}

	// dfs cluster status over HTTPS, verified with the CA: the node asks
	// its peers over internal TLS, so none is unreachable.
	out, err := exec.Command(dfsBin, "cluster", "status", "--addr", strings.TrimSuffix(follower.URL, "/"), "--ca-cert", p.caFile).CombinedOutput()
	if err != nil {
		t.Fatalf("dfs cluster status --ca-cert: %v\n%s", err, out)
	}
	if strings.Count(string(out), "follower") != 2 || strings.Count(string(out), "leader") < 2 || strings.Contains(string(out), "unreachable") {
		t.Fatalf("dfs cluster status over TLS:\n%s", out)
	}
	if out, err := exec.Command(dfsBin, "cluster", "status", "--addr", strings.TrimSuffix(follower.URL, "/")).CombinedOutput(); err == nil {
		t.Fatalf("dfs cluster status trusted a certificate from an unknown CA:\n%s", out)
	}

	// The Raft port refuses a TLS client without a certificate, or with a
	// certificate from another CA.
	other := newPKI(t, "someone else's CA")
	ocert, okey, _ := other.issue(t, "intruder")
	pair, err := tls.LoadX509KeyPair(ocert, okey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{{"no certificate", nil}, {"certificate from another CA", []tls.Certificate{pair}}} {
		conn, err := tls.Dial("tcp", leader.spec.RaftAddr, &tls.Config{RootCAs: p.pool, ServerName: "localhost", Certificates: tc.certs})
		if err != nil {
			continue // refused during the handshake
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if err == nil || isTimeout(err) {
			t.Fatalf("raft port, %s: the connection was accepted (read: %v)", tc.name, err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestTLSForeignNodeCannotJoin starts a one-node TLS cluster and tries to
// join it with nodes whose certificates the cluster CA did not sign: they
// never become voters, and the logs say why.
func TestTLSForeignNodeCannotJoin(t *testing.T) {
	p := newPKI(t, "dfs cluster CA")
	other := newPKI(t, "another CA")
	hc := p.client(t)
	cert, key, _ := p.issue(t, "node1")
	first := launchTLS(t, nodeSpec{ID: "node1", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--cluster-secret", clusterSecret, "--cluster-ca", p.caFile, "--cluster-tls-cert", cert, "--cluster-tls-key", key}}, true)
	waitReadyWith(t, hc, first, 30*time.Second)
	c := &tcluster{t: t, st: embedded, hc: hc, nodes: []*node{first}}

	// A bundle with both CAs: the joiner trusts the cluster (its HTTPS
	// join request goes through) but holds a certificate of another CA.
	both := filepath.Join(t.TempDir(), "both.crt")
	if err := os.WriteFile(both, append(append([]byte{}, p.ca.CertPEM...), other.ca.CertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		caFile    string // the joiner's --cluster-ca; its certificate is always from the other CA
		exits     bool   // the joiner refuses to start
		joinerLog string // what the joiner's log says
		leaderLog string // what the leader's log says ("" if it never hears of the joiner)
	}{
		{"another cluster's CA and certificate", other.caFile, false, "certificate signed by unknown authority", ""},
		{"trusts the cluster CA, certificate from another CA", both, false, "join refused", "join refused"},
		{"certificate not from its own --cluster-ca", p.caFile, true, "not signed by --cluster-ca", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jcert, jkey, _ := other.issue(t, "joiner")
			id := fmt.Sprintf("joiner%d", i)
			j := launchTLS(t, nodeSpec{ID: id, DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
				Extra: []string{"--cluster-secret", clusterSecret, "--join", strings.TrimSuffix(first.URL, "/"),
					"--cluster-ca", tc.caFile, "--cluster-tls-cert", jcert, "--cluster-tls-key", jkey}}, false)
			if tc.exits {
				select {
				case <-j.exited:
				case <-time.After(15 * time.Second):
					t.Fatalf("a node with a certificate not from its --cluster-ca started:\n%s", j.logText())
				}
			}
			if !poll(20*time.Second, func() bool { return strings.Contains(j.logText(), tc.joinerLog) }) {
				t.Fatalf("the joiner's log does not say %q:\n%s", tc.joinerLog, j.logText())
			}
			if tc.leaderLog != "" && !poll(10*time.Second, func() bool { return strings.Contains(first.logText(), tc.leaderLog) }) {
				t.Fatalf("the leader's log does not say %q", tc.leaderLog)
			}
			st, err := c.status(first)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Nodes) != 1 {
				t.Fatalf("the cluster changed: %+v", st.Nodes)
			}
		})
	}
}

// TestListenerTimeouts runs a node with short timeouts and checks that
// slow or stalled clients are disconnected while slow transfers that keep
// moving complete.
func TestListenerTimeouts(t *testing.T) {
	const ioTimeout = time.Second
	n := startNode(t, embedded, "--read-header-timeout", "1s", "--io-timeout", ioTimeout.String(), "--idle-timeout", "2s")
	addr := n.spec.HTTPAddr

	// closedWithin reads from conn until the server closes it, failing the
	// test if that takes longer than limit.
	closedWithin := func(t *testing.T, conn net.Conn, limit time.Duration) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(limit))
		_, err := io.Copy(io.Discard, conn)
		if err != nil && isTimeout(err) {
			t.Fatalf("the server kept the connection open for %s", limit)
		}
	}

	t.Run("slowloris headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			// Byte by byte, forever: the headers never end.
			hdr := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: " + strings.Repeat("a", 1000)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{hdr[i%len(hdr)]}); err != nil {
					return
				}
			}
		}()
		closedWithin(t, conn, 10*time.Second)
	})

	t.Run("raft connection carries nothing", func(t *testing.T) {
		conn, err := net.Dial("tcp", n.spec.RaftAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closedWithin(t, conn, 15*time.Second)
	})

	t.Run("body stalls", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /stalled.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: 1048576\r\n\r\n", addr)
		if _, err := conn.Write(make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		// ... and nothing more: the server gives up on the body, says so
		// with 408 and closes the connection.
		_ = conn.SetReadDeadline(time.Now().Add(10 * ioTimeout))
		answer, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to the stalled upload: %v", err)
		}
		answer.Body.Close()
		if answer.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled upload: %d, want 408", answer.StatusCode)
		}
		closedWithin(t, conn, 10*ioTimeout)
		resp, err := http.Get(n.URL + "stalled.bin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET of the stalled upload: %d, want 404 (nothing left behind)", resp.StatusCode)
		}
	})

	t.Run("unread body stalls", func(t *testing.T) {
		// 409 before the body is read (no parent collection); the server
		// then discards what the client still sends, which never comes.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /no/such/parent.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: 1048576\r\n\r\n", addr)
		if _, err := conn.Write(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, conn, 10*ioTimeout)
	})

	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	t.Run("slow upload keeps moving", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			// 48 chunks, 150ms apart: about 7s in all, each pause well
			// within the timeout.
			for off := 0; off < len(data); off += 64 << 10 {
				time.Sleep(150 * time.Millisecond)
				if _, err := pw.Write(data[off:min(off+64<<10, len(data))]); err != nil {
					return
				}
			}
			pw.Close()
		}()
		start := time.Now()
		req, err := http.NewRequest(http.MethodPut, n.URL+"slow.bin", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("slow upload: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("slow upload: %d", resp.StatusCode)
		}
		if took := time.Since(start); took < 3*ioTimeout {
			t.Fatalf("the upload took %s, not longer than the I/O timeout: it proves nothing", took)
		}
	})

	// big is larger than what the socket buffers of both ends hold, so
	// the server's writes block whenever the client does not read.
	big := make([]byte, 48<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, n.URL+"big.bin", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT big.bin: %d", resp.StatusCode)
	}
	// smallBuffers dials with a small receive buffer: the server has to
	// wait for the client's reads.
	smallBuffers := func(ctx context.Context, network, a string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err == nil {
			_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return conn, err
	}

	t.Run("slow download keeps moving", func(t *testing.T) {
		tr := &http.Transport{DialContext: smallBuffers}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(n.URL + "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// 1 MiB every 100ms: about 5s in all, every pause well within
		// the timeout, the server blocked on the client most of the time.
		// The bytes are hashed as they come, not kept: growing a 48 MiB
		// buffer under the race detector stalls this reader for longer
		// than the timeout, which the server rightly answers by
		// disconnecting.
		got, n := sha256.New(), 0
		buf := make([]byte, 1<<20)
		start := time.Now()
		for {
			time.Sleep(100 * time.Millisecond)
			m, err := io.ReadFull(resp.Body, buf)
			got.Write(buf[:m])
			n += m
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				t.Fatalf("slow download cut after %d bytes: %v", n, err)
			}
		}
		if want := sha256.Sum256(big); n != len(big) || !bytes.Equal(got.Sum(nil), want[:]) {
			t.Fatalf("slow download: %d bytes, want the %d uploaded (or their hash differs)", n, len(big))
		}
		if took := time.Since(start); took < 3*ioTimeout {
			t.Fatalf("the download took %s, not longer than the I/O timeout: it proves nothing", took)
		}
	})

	t.Run("reader stalls", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		br := bufio.NewReader(conn)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, "200") {
			t.Fatalf("GET big.bin: %q %v", status, err)
		}
		time.Sleep(5 * ioTimeout) // stop reading
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.Copy(io.Discard, br)
		if isTimeout(err) {
			t.Fatalf("the server kept the stalled download's connection open")
		}
		if got >= int64(len(big)) {
			t.Fatalf("the stalled reader still got all %d bytes: the server never gave up", got)
		}
	})
}

// TestClusterSecretRotation runs a cluster in the middle of a secret
// rotation: node1 still sends the old secret and accepts the new one,
// node2 sends the new one and accepts the old. They join, forward writes
// and push content to each other; a node with neither secret is refused.
func TestClusterSecretRotation(t *testing.T) {
	const oldSecret, newSecret = "rotation-old-secret", "rotation-new-secret"
	hc := &http.Client{Timeout: 10 * time.Second}
	c := &tcluster{t: t, st: embedded, hc: hc}
	n1 := launchNode(t, nodeSpec{ID: "node1", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--cluster-secret", oldSecret, "--cluster-secret-accept", newSecret}}, true)
	c.nodes = append(c.nodes, n1)
	c.waitReady(t, n1, 30*time.Second)
	join := strings.TrimSuffix(n1.URL, "/")
	n2 := launchNode(t, nodeSpec{ID: "node2", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--cluster-secret", newSecret, "--cluster-secret-accept", oldSecret, "--join", join}}, false)
	c.nodes = append(c.nodes, n2)
	c.waitReady(t, n2, 30*time.Second)
	c.waitMembers(t, 2)

	leader := c.nodes[c.leader(t)]
	follower := n1
	if leader == n1 {
		follower = n2
	}
	// Forwarded by the follower with its secret, pushed back by the
	// leader with the other one.
	req, err := http.NewRequest(http.MethodPut, follower.URL+"rotated.txt", strings.NewReader("both secrets work"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT through the follower: %d", resp.StatusCode)
	}
	for _, n := range c.nodes {
		resp, err := hc.Get(n.URL + "rotated.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "both secrets work" {
			t.Fatalf("%s serves %d %q", n.spec.ID, resp.StatusCode, b)
		}
	}

	n3 := launchNode(t, nodeSpec{ID: "node3", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Extra: []string{"--cluster-secret", "neither-of-them", "--join", join}}, false)
	if !poll(20*time.Second, func() bool { return strings.Contains(n3.logText(), "403") }) {
		t.Fatalf("a node with a wrong secret was not refused:\n%s", n3.logText())
	}
	st, err := c.status(n1)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 {
		t.Fatalf("the node with a wrong secret got in: %+v", st.Nodes)
	}
}
