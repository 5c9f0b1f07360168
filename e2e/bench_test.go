package e2e

// Benchmarks of a real `dfs server` process beside a reference: the same
// operation served by golang.org/x/net/webdav on a plain directory
// (webdav.Dir, webdav.NewMemLS), measured in the same run on the same
// machine. The reference runs in its own process too (this test binary
// re-executed with benchReferenceEnv set, see TestMain), so each server's
// RSS is its own and neither shares a Go runtime with the client.
//
// Each benchmark runs the reference sub-benchmark first and then dfs; the
// dfs sub-benchmark reports "time-x-ref", its time per operation divided by
// the reference's (the median over -count; 2.0: dfs takes twice as long,
// half the throughput). The parent logs a one-line summary of medians
// (visible with -v). Every sub-benchmark reports the server's
// RSS: "idle-rss-MiB" just before the timed loop and "peak-rss-MiB" during
// it (VmHWM after resetting it through /proc/<pid>/clear_refs, and VmRSS
// sampled every 10ms, whichever is higher).
//
// startApache is the second reference, Apache httpd with mod_dav_fs,
// which BenchmarkSmallFiles (smallfiles_bench_test.go) measures beside the
// first and dfs.
//
// Nothing here runs without -bench. The 1 GiB benchmarks upload and keep
// about 1 GiB per server in $TMPDIR while they run; `make bench-report`
// (scripts/bench-report.sh) is the invocation docs/benchmarks.md reports,
// which also explains why $TMPDIR must be a quiet file system.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/webdav"
)

// benchReferenceEnv, when set to a directory, turns the test binary into the
// reference server (see serveReference).
const benchReferenceEnv = "DFS_BENCH_REFERENCE"

const (
	largeSize   = 1 << 30 // the large-file benchmarks' file
	smallSize   = 4 << 10 // the small-file benchmarks' files
	propfindDir = 10_000  // entries in the PROPFIND benchmark's directory
	// maxRSSGrowth is how far above its idle RSS a dfs node may go while
	// streaming a large file: memory must not grow with file size.
	maxRSSGrowth = 64 << 20
)

// serveReference serves golang.org/x/net/webdav on dir at a free loopback
// port, prints its base URL on stdout and serves until stdin closes (the
// benchmark ended or died) or a signal arrives. It never returns.
func serveReference(dir string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
	fmt.Printf("http://%s/\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	srv := &http.Server{
		Handler:           &webdav.Handler{FileSystem: webdav.Dir(dir), LockSystem: webdav.NewMemLS()},
		ReadHeaderTimeout: 30 * time.Second,
	}
	fmt.Fprintln(os.Stderr, "reference:", srv.Serve(ln))
	os.Exit(1)
}

// benchServer is a running server process under measurement.
type benchServer struct {
	name   string
	url    string // base URL ending in "/"
	pid    int
	client *http.Client // nil: benchClient
	// baseline names the server of the same benchmark this one is a
	// variant of: its time per operation over the baseline's is reported
	// as time-x-baseline, the cost of the one thing that differs. "": none.
	baseline string
}

// http is the client that reaches s.
func (s *benchServer) http() *http.Client {
	if s.client != nil {
		return s.client
	}
	return benchClient
}

func startReference(b *testing.B) *benchServer {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchReferenceEnv+"="+b.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start reference server: %v", err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() {
		stdin.Close() // the server exits when its stdin closes
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case u := <-lines:
		if !strings.HasPrefix(u, "http://") {
			b.Fatalf("reference server did not start: %q\n%s", u, stderr.String())
		}
		return &benchServer{name: "reference", url: u, pid: cmd.Process.Pid}
	case <-time.After(30 * time.Second):
		b.Fatalf("reference server did not start:\n%s", stderr.String())
	}
	return nil
}

// apacheModuleDirs are where distributions keep Apache's modules: Debian
// and Ubuntu first (the package scripts/deps.sh installs), then the
// Fedora/RHEL and Arch layouts.
var apacheModuleDirs = []string{"/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"}

// startApache starts Apache httpd with mod_dav_fs on a directory of its
// own, a second reference beside x/net/webdav: the server a user would
// otherwise put on a Linux box to share files over WebDAV. It runs from a
// configuration generated here (no system configuration, no auth, no
// access log), in the foreground under this process, on a free loopback
// port, and is stopped when the benchmark ends. The benchmark is skipped
// if Apache is not installed (Debian: apt-get install apache2, or
// bash scripts/deps.sh bench).
//
// pid is the parent process's; the requests are served by its children
// (mpm_event), so the RSS and CPU helpers do not see Apache's work.
func startApache(b *testing.B) *benchServer {
	b.Helper()
	bin := ""
	for _, name := range []string{"apache2", "httpd"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		// Debian keeps apache2 in /usr/sbin, which a non-root PATH may lack.
		if _, err := os.Stat("/usr/sbin/apache2"); err == nil {
			bin = "/usr/sbin/apache2"
		}
	}
	if bin == "" {
		b.Skip("Apache httpd is not installed (Debian: apt-get install apache2, or bash scripts/deps.sh bench): the benchmark compares dfs with Apache mod_dav")
	}
	mods := ""
	for _, d := range apacheModuleDirs {
		if _, err := os.Stat(filepath.Join(d, "mod_dav_fs.so")); err == nil {
			mods = d
			break
		}
	}
	if mods == "" {
		b.Skipf("%s is installed but mod_dav_fs.so is in none of %v", bin, apacheModuleDirs)
	}

	// Not b.TempDir: its parent is 0700 and owned by us, and Apache's
	// workers run as an unprivileged user when Apache starts as root, so
	// they could not reach the directory they serve.
	root, err := os.MkdirTemp("", "dfs-bench-apache-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		b.Fatal(err)
	}
	docroot, run, logs := filepath.Join(root, "dav"), filepath.Join(root, "run"), filepath.Join(root, "logs")
	for _, d := range []string{docroot, run, logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	// As root Apache must switch to another user (it refuses to serve as
	// root); that user writes the served directory and the lock database.
	// As anyone else it ignores User and Group and runs as the caller.
	user := ""
	if os.Getuid() == 0 {
		u, err := osuser.Lookup("www-data") // Debian's; others use apache
		if err != nil {
			u, err = osuser.Lookup("apache")
		}
		if err != nil {
			b.Skipf("running as root and no www-data or apache user for Apache's workers: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{docroot, run} {
			if err := os.Chown(d, uid, gid); err != nil {
				b.Fatal(err)
			}
		}
		user = fmt.Sprintf("User %s\nGroup #%d\n", u.Username, gid)
	}
	var mpm string
	if _, err := os.Stat(filepath.Join(mods, "mod_mpm_event.so")); err == nil {
		mpm = fmt.Sprintf("LoadModule mpm_event_module %s/mod_mpm_event.so\n", mods)
	}
	addr := freeAddr(b)
	conf := filepath.Join(root, "httpd.conf")
	// mpm_event with Debian's default sizes (2 processes of 25 threads to
	// start, 150 workers at most), keep-alive without a request limit like
	// the Go servers, and no access log, which neither Go server writes.
	// mod_dav_fs needs a lock database for PUT to check locks.
	cfg := fmt.Sprintf(`ServerRoot %[1]q
ServerName 127.0.0.1
Listen %[2]s
PidFile %[3]q
DefaultRuntimeDir %[4]q
ErrorLog %[5]q
LogLevel warn
%[6]sLoadModule authz_core_module %[7]s/mod_authz_core.so
LoadModule dav_module %[7]s/mod_dav.so
LoadModule dav_fs_module %[7]s/mod_dav_fs.so
%[8]sStartServers 2
ThreadsPerChild 25
MaxRequestWorkers 150
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
DavLockDB %[9]q
DocumentRoot %[10]q
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory %[10]q>
	Dav On
	AllowOverride None
	Require all granted
</Directory>
`, root, addr, filepath.Join(run, "httpd.pid"), run, filepath.Join(logs, "error.log"),
		mpm, mods, user, filepath.Join(run, "davlock"), docroot)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", conf, "-DFOREGROUND")
	// Debian's apache2 reads these from /etc/apache2/envvars when started
	// through apache2ctl; the generated configuration does not use them,
	// but an inherited APACHE_* from the caller must not leak in either.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "APACHE_") })
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// If this process dies without its cleanups, Apache must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	errorLog := func() string {
		data, _ := os.ReadFile(filepath.Join(logs, "error.log"))
		return out.String() + string(data)
	}
	b.Cleanup(func() {
		// SIGTERM: the parent stops its children and exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	url := "http://" + addr + "/"
	if !poll(30*time.Second, func() bool {
		select {
		case <-exited:
			b.Fatalf("%s exited before answering:\n%s", bin, errorLog())
		default:
		}
		status, _, err := request(b.Context(), benchClient, http.MethodOptions, url, nil, 0, nil)
		return err == nil && status == http.StatusOK
	}) {
		b.Fatalf("%s did not answer on %s within 30s:\n%s", bin, addr, errorLog())
	}
	return &benchServer{name: "apache", url: url, pid: cmd.Process.Pid}
}

func startDFS(b *testing.B, st store) *benchServer {
	b.Helper()
	n := startNode(b, st)
	return &benchServer{name: "dfs-" + st.String(), url: n.URL, pid: n.cmd.Process.Pid}
}

// startDFSHTTPS starts a node serving HTTPS with a certificate from a CA of
// its own (ECDSA P-256, Go's TLS defaults: TLS 1.3, AES-GCM), the price of
// --tls-cert beside dfs-embedded.
func startDFSHTTPS(b *testing.B) *benchServer {
	b.Helper()
	p := newPKI(b, "dfs benchmark CA")
	certFile, keyFile, _ := p.issue(b, "dfs benchmark")
	spec := nodeSpec{DataDir: b.TempDir(), HTTPAddr: freeAddr(b), RaftAddr: freeAddr(b),
		Extra: []string{"--tls-cert", certFile, "--tls-key", keyFile}}
	n := launchTLS(b, spec, true)
	tr := benchClient.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: p.pool}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	waitReadyWith(b, hc, n, 30*time.Second)
	return &benchServer{name: "dfs-https", url: n.URL, pid: n.cmd.Process.Pid, client: hc}
}

// benchClient is shared by all benchmarks: enough idle connections per host
// for the concurrent ones, no compression, no proxy from the environment.
var benchClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 64,
	DisableCompression:  true,
}}

// request sends one request through hc and drains the response body into
// io.Discard, returning the status and the number of body bytes.
func request(ctx context.Context, hc *http.Client, method, url string, body io.Reader, size int64, hdr map[string]string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, 0, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return resp.StatusCode, n, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return resp.StatusCode, n, nil
}

func put(ctx context.Context, hc *http.Client, url string, body io.Reader, size int64) error {
	status, _, err := request(ctx, hc, http.MethodPut, url, body, size, nil)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusNoContent {
		return fmt.Errorf("PUT %s: status %d", url, status)
	}
	return nil
}

func mkcol(b *testing.B, hc *http.Client, url string) {
	b.Helper()
	status, _, err := request(b.Context(), hc, "MKCOL", url, nil, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	if status != http.StatusCreated {
		b.Fatalf("MKCOL %s: status %d", url, status)
	}
}

// genBlock is the period of genReader's random block.
const genBlock = 1 << 20

var (
	genOnce sync.Once
	genBase []byte
)

// genReader streams size deterministic pseudo-random bytes without holding
// them: a 1 MiB block from a seeded ChaCha8, with the seed and the block's
// index stamped into its first 16 bytes, so no two blocks of a stream and
// no two streams with different seeds are equal (dfs deduplicates content
// by hash; every upload must be new content). Producing a byte costs a
// memcpy, so the generator is never what limits a benchmark.
type genReader struct {
	cur       []byte
	seed      uint64
	off, size int64
}

func newGenReader(seed uint64, size int64) *genReader {
	genOnce.Do(func() {
		genBase = make([]byte, genBlock)
		_, _ = rand.NewChaCha8([32]byte{'d', 'f', 's'}).Read(genBase)
	})
	return &genReader{cur: bytes.Clone(genBase), seed: seed, size: size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		pos := int(g.off % genBlock)
		if pos == 0 {
			binary.LittleEndian.PutUint64(g.cur, g.seed)
			binary.LittleEndian.PutUint64(g.cur[8:], uint64(g.off/genBlock))
		}
		c := copy(p[n:], g.cur[pos:])
		n += c
		g.off += int64(c)
	}
	return n, nil
}

// smallBody returns smallSize pseudo-random bytes unique to seed.
func smallBody(seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	buf := make([]byte, smallSize)
	_, _ = rand.NewChaCha8(key).Read(buf)
	return buf
}

// procRSS returns VmRSS and VmHWM of pid in bytes.
func procRSS(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s of %d: %w", key, pid, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// procCPU returns the CPU time (user and system) pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it do not.
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	const userHZ = 100 // USER_HZ, fixed at 100 for the /proc ABI on Linux
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// rssWatch tracks a process's peak RSS, and the CPU time it spends, during
// one measurement.
type rssWatch struct {
	pid      int
	idle     int64
	cpu      time.Duration // at the start
	hwmReset bool
	peak     atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

// watchRSS lets the process settle, records its idle RSS, resets its
// high-water mark (so VmHWM covers only what follows, not startup) and
// samples VmRSS every 10ms until Stop.
func watchRSS(b *testing.B, pid int) *rssWatch {
	b.Helper()
	time.Sleep(300 * time.Millisecond)
	idle, _, err := procRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	w := &rssWatch{pid: pid, idle: idle, stop: make(chan struct{}), done: make(chan struct{})}
	// "5" resets the peak RSS (Linux 4.0+, our own child process).
	w.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	w.peak.Store(idle)
	if w.cpu, err = procCPU(pid); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if rss, _, err := procRSS(pid); err == nil && rss > w.peak.Load() {
					w.peak.Store(rss)
				}
			}
		}
	}()
	return w
}

// Stop ends sampling and reports idle-rss-MiB, peak-rss-MiB and the
// server's CPU time per operation (srv-cpu-ms/op, user and system, in
// 10ms ticks: meaningful over many operations or long ones); it returns
// the peak RSS in bytes.
func (w *rssWatch) Stop(b *testing.B, ops int) int64 {
	close(w.stop)
	<-w.done
	if cpu, err := procCPU(w.pid); err == nil && ops > 0 {
		b.ReportMetric(float64(cpu-w.cpu)/float64(time.Millisecond)/float64(ops), "srv-cpu-ms/op")
	}
	peak := w.peak.Load()
	if rss, hwm, err := procRSS(w.pid); err == nil {
		peak = max(peak, rss)
		if w.hwmReset {
			peak = max(peak, hwm)
		}
	}
	b.ReportMetric(float64(w.idle)/(1<<20), "idle-rss-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	return peak
}

// comparison collects one benchmark's per-server results for the dfs
// sub-benchmarks' time-x-ref and the parent's summary.
//
// Every sub-benchmark uses b.Loop, so its function runs once per -count
// and each call is one sample.
type comparison struct {
	nsPerOp  map[string][]float64 // one sample per -count
	peak     map[string]int64     // the highest of the samples
	baseline map[string]string    // benchServer.baseline of each server
	order    []string
}

func newComparison() *comparison {
	return &comparison{nsPerOp: map[string][]float64{}, peak: map[string]int64{}, baseline: map[string]string{}}
}

// median returns the median of the samples for name (0 if none).
func (c *comparison) median(name string) float64 {
	return medianOf(c.nsPerOp[name])
}

// record stores a finished sub-benchmark's time per operation; for dfs it
// also reports the ratio to the reference (the median of its samples, all
// taken just before: -count repeats each sub-benchmark in place).
func (c *comparison) record(b *testing.B, srv *benchServer, ops int, peak int64) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(ops)
	if _, seen := c.nsPerOp[srv.name]; !seen {
		c.order = append(c.order, srv.name)
	}
	c.nsPerOp[srv.name] = append(c.nsPerOp[srv.name], ns)
	c.peak[srv.name] = max(c.peak[srv.name], peak)
	c.baseline[srv.name] = srv.baseline
	if ref := c.median("reference"); ref > 0 && srv.name != "reference" {
		b.ReportMetric(ns/ref, "time-x-ref")
	}
	if base := c.median(srv.baseline); base > 0 {
		b.ReportMetric(ns/base, "time-x-baseline")
	}
}

// summary logs each server's median rate (perOp units per operation) and
// its ratio to the reference's and to its baseline's.
func (c *comparison) summary(b *testing.B, unit string, perOp float64) {
	if len(c.order) == 0 {
		return // -bench matched none of the servers
	}
	ref := c.median("reference")
	var parts []string
	for _, name := range c.order {
		ns := c.median(name)
		s := fmt.Sprintf("%s %.1f %s (peak RSS %.0f MiB)", name, perOp/(ns/1e9), unit, float64(c.peak[name])/(1<<20))
		if ref > 0 && name != "reference" {
			s += fmt.Sprintf(" = %.2fx reference", ref/ns)
		}
		if base := c.median(c.baseline[name]); base > 0 {
			s += fmt.Sprintf(", %.2fx %s", base/ns, c.baseline[name])
		}
		parts = append(parts, s)
	}
	// The first server's count: the reference's, unless -bench left it out.
	b.Logf("summary (median of %d): %s", len(c.nsPerOp[c.order[0]]), strings.Join(parts, "; "))
}

// quiesce flushes every dirty page on the machine so one server's
// unflushed writes (x/net/webdav never fsyncs) do not slow the next
// measurement down.
func quiesce() { syscall.Sync() }

// checkGrowth fails a dfs benchmark whose server grew by more than
// maxRSSGrowth while streaming a large file.
func checkGrowth(b *testing.B, srv *benchServer, w *rssWatch, peak int64) {
	if srv.name == "reference" {
		return
	}
	if grow := peak - w.idle; grow > maxRSSGrowth {
		b.Errorf("%s RSS grew by %d MiB (idle %d MiB, peak %d MiB) streaming %d MiB: memory must not grow with file size",
			srv.name, grow>>20, w.idle>>20, peak>>20, largeSize>>20)
	}
}

// BenchmarkLargePut uploads one 1 GiB file (the same path every iteration,
// new content each time) and reports throughput and the server's peak RSS.
func BenchmarkLargePut(b *testing.B) {
	servers := []*benchServer{startReference(b), startDFS(b, embedded), startDFSHTTPS(b)}
	cmp := newComparison()
	var seed atomic.Uint64
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			b.SetBytes(largeSize)
			quiesce()
			w := watchRSS(b, srv.pid)
			for b.Loop() {
				if err := put(b.Context(), srv.http(), srv.url+"big.bin", newGenReader(seed.Add(1), largeSize), largeSize); err != nil {
					b.Fatal(err)
				}
			}
			peak := w.Stop(b, b.N)
			cmp.record(b, srv, b.N, peak)
			checkGrowth(b, srv, w, peak)
		})
	}
	cmp.summary(b, "MB/s", largeSize/1e6)
}

// BenchmarkLargeGet downloads one 1 GiB file, uploaded before the timer
// starts (so it is in the page cache for both servers), and reports
// throughput and the server's peak RSS.
func BenchmarkLargeGet(b *testing.B) {
	servers := []*benchServer{startReference(b), startDFS(b, embedded), startDFSHTTPS(b)}
	for i, srv := range servers {
		if err := put(b.Context(), srv.http(), srv.url+"big.bin", newGenReader(uint64(i), largeSize), largeSize); err != nil {
			b.Fatal(err)
		}
	}
	cmp := newComparison()
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			b.SetBytes(largeSize)
			quiesce()
			w := watchRSS(b, srv.pid)
			for b.Loop() {
				status, n, err := request(b.Context(), srv.http(), http.MethodGet, srv.url+"big.bin", nil, 0, nil)
				if err != nil {
					b.Fatal(err)
				}
				if status != http.StatusOK || n != largeSize {
					b.Fatalf("GET: status %d, %d bytes; want 200, %d bytes", status, n, largeSize)
				}
			}
			peak := w.Stop(b, b.N)
			cmp.record(b, srv, b.N, peak)
			checkGrowth(b, srv, w, peak)
		})
	}
	cmp.summary(b, "MB/s", largeSize/1e6)
}

// BenchmarkSmallPut uploads new 4 KiB files into one collection, one
// client after another ("sequential") and from 8 clients at once
// ("concurrent-8"), and reports files/s, for dfs with each metadata store,
// and with users with and without per-path rules (access_bench_test.go).
func BenchmarkSmallPut(b *testing.B) {
	servers := []*benchServer{startReference(b), startDFS(b, embedded), startDFS(b, redisStore),
		startDFSUsers(b, ""), startDFSUsers(b, benchRules)}
	for _, srv := range servers {
		mkcol(b, srv.http(), srv.url+"small/")
	}
	var seed atomic.Uint64
	for _, clients := range []int{1, 8} {
		mode := "sequential"
		if clients > 1 {
			mode = fmt.Sprintf("concurrent-%d", clients)
		}
		b.Run(mode, func(b *testing.B) {
			cmp := newComparison()
			for _, srv := range servers {
				b.Run(srv.name, func(b *testing.B) {
					b.SetBytes(smallSize)
					quiesce()
					w := watchRSS(b, srv.pid)
					putOne := func(s uint64) error {
						url := fmt.Sprintf("%ssmall/f%09d.bin", srv.url, s)
						return put(b.Context(), srv.http(), url, bytes.NewReader(smallBody(s)), smallSize)
					}
					if clients == 1 {
						for b.Loop() {
							if err := putOne(seed.Add(1)); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						// b.Loop hands each upload to one of the clients;
						// the unbuffered channel keeps exactly that many
						// in flight.
						jobs := make(chan uint64)
						var failed atomic.Pointer[error]
						var wg sync.WaitGroup
						for range clients {
							wg.Go(func() {
								for s := range jobs {
									if failed.Load() != nil {
										continue
									}
									if err := putOne(s); err != nil {
										failed.CompareAndSwap(nil, &err)
									}
								}
							})
						}
						for b.Loop() {
							jobs <- seed.Add(1)
						}
						// The uploads still in flight belong to the
						// measurement: b.Loop stopped the timer.
						b.StartTimer()
						close(jobs)
						wg.Wait()
						b.StopTimer()
						if err := failed.Load(); err != nil {
							b.Fatal(*err)
						}
					}
					peak := w.Stop(b, b.N)
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
					cmp.record(b, srv, b.N, peak)
				})
			}
			cmp.summary(b, "files/s", 1)
		})
	}
}

// BenchmarkPropfind10000 answers PROPFIND Depth: 1 (allprop, what a client
// gets without a body) on a collection of 10 000 files, for dfs with each
// metadata store, and with users with and without per-path rules
// (access_bench_test.go: every member listed is checked against them), and
// reports the time per PROPFIND.
func BenchmarkPropfind10000(b *testing.B) {
	servers := []*benchServer{startReference(b), startDFS(b, embedded), startDFS(b, redisStore),
		startDFSUsers(b, ""), startDFSUsers(b, benchRules)}
	for _, srv := range servers {
		fillDir(b, srv)
	}
	cmp := newComparison()
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			quiesce()
			w := watchRSS(b, srv.pid)
			for b.Loop() {
				propfind(b, srv, nil)
			}
			peak := w.Stop(b, b.N)
			cmp.record(b, srv, b.N, peak)
		})
	}
	cmp.summary(b, "PROPFIND/s", 1)
}

// fillDir creates /dir/ holding propfindDir small files, from 8 clients,
// and checks that a PROPFIND lists them all (which also warms caches).
func fillDir(b *testing.B, srv *benchServer) {
	b.Helper()
	mkcol(b, srv.http(), srv.url+"dir/")
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= propfindDir; i = next.Add(1) {
				body := fmt.Sprintf("file %d of the PROPFIND benchmark\n", i)
				url := fmt.Sprintf("%sdir/file-%05d.txt", srv.url, i)
				if err := put(b.Context(), srv.http(), url, strings.NewReader(body), int64(len(body))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: created %d files in %s", srv.name, propfindDir, time.Since(start).Round(time.Millisecond))
	var count int
	propfind(b, srv, &count)
	if count != propfindDir+1 {
		b.Fatalf("%s: PROPFIND listed %d responses, want %d", srv.name, count, propfindDir+1)
	}
}

// propfind sends PROPFIND Depth: 1 on /dir/; with count it also counts the
// responses in the multistatus.
func propfind(b *testing.B, srv *benchServer, count *int) {
	req, err := http.NewRequestWithContext(b.Context(), "PROPFIND", srv.url+"dir/", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Depth", "1")
	resp, err := srv.http().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if count == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		*count = bytes.Count(body, []byte("<D:response>"))
	}
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusMultiStatus {
		b.Fatalf("PROPFIND %s: status %d", srv.url, resp.StatusCode)
	}
}
