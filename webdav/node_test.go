package webdav_test

// This file starts real dfs nodes in-process for the handler's tests: the
// embedded metadata store, the content store and a single-voter Raft group
// on loopback, assembled by server.New exactly as `dfs server` does. No
// part of the node is faked.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/server"
)

// nodeOptions configures testNode.
type nodeOptions struct {
	dataDir     string // required
	raftAddr    string // "" picks a free loopback port
	bootstrap   bool
	maxXMLBytes int64
	limits      server.Limits
	treeStep    int64 // server.Config.TreeStep
}

// testNode is one running dfs node.
type testNode struct {
	srv     *server.Server
	opts    nodeOptions
	url     string // base URL without a trailing slash
	log     *logSink
	cancel  context.CancelFunc
	served  chan error
	stopped sync.Once
	stopErr error
}

// startNodeWith starts a node as opts say, waits until it is ready and
// stops it when tb ends. On failure the node's log is attached to the test.
func startNodeWith(tb testing.TB, opts nodeOptions) *testNode {
	tb.Helper()
	n, err := launchNode(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := n.stop(); err != nil {
			tb.Errorf("stopping node: %v", err)
		}
		if p := n.log.panics(); len(p) > 0 {
			tb.Errorf("the node logged %d handler panic(s), first: %s", len(p), p[0])
		}
		if tb.Failed() {
			tb.Logf("node log (tail):\n%s", n.log.tail())
		}
	})
	return n
}

// launchNode starts a node and waits until /readyz answers 200. The caller
// must stop it.
func launchNode(opts nodeOptions) (*testNode, error) {
	if opts.raftAddr == "" {
		// Raft binds the port itself, so no other process can take it
		// between choosing and binding; a restart reuses the bound address.
		opts.raftAddr = "127.0.0.1:0"
	}
	sink := newLogSink()
	log := zerolog.New(sink).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	srv, err := server.New(context.Background(), server.Config{
		ID:          "n1",
		DataDir:     opts.dataDir,
		HTTPAddr:    "127.0.0.1:0",
		RaftAddr:    opts.raftAddr,
		Bootstrap:   opts.bootstrap,
		MaxXMLBytes: opts.maxXMLBytes,
		Limits:      opts.limits,
		TreeStep:    opts.treeStep,
		Log:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("server.New: %w\nlog:\n%s", err, sink.tail())
	}
	opts.raftAddr = srv.Node().Addr()
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{
		srv: srv, opts: opts, url: strings.TrimSuffix(srv.URL(), "/"), log: sink,
		cancel: cancel, served: make(chan error, 1),
	}
	go func() { n.served <- srv.Serve(ctx) }()
	if err := n.waitReady(30 * time.Second); err != nil {
		_ = n.stop()
		return nil, fmt.Errorf("%w\nlog:\n%s", err, sink.tail())
	}
	return n, nil
}

// waitReady polls /readyz until it answers 200 or the deadline passes.
func (n *testNode) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		select {
		case err := <-n.served:
			n.served <- err
			return fmt.Errorf("node stopped serving before it was ready: %v", err)
		default:
		}
		resp, err := client.Get(n.url + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node not ready after %s; last /readyz: %s", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the node down and waits until Serve has returned. It is safe
// to call more than once.
func (n *testNode) stop() error {
	n.stopped.Do(func() {
		n.cancel()
		select {
		case err := <-n.served:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.stopErr = err
			}
		case <-time.After(45 * time.Second):
			n.stopErr = errors.New("Serve did not return 45s after its context was cancelled")
		}
	})
	return n.stopErr
}

// restart stops the node and starts a new one on the same data directory
// and Raft address, without bootstrapping: it must come back from its own
// state. The new node is stopped when tb ends.
func (n *testNode) restart(tb testing.TB) *testNode {
	tb.Helper()
	if err := n.stop(); err != nil {
		tb.Fatalf("stopping node for restart: %v", err)
	}
	opts := n.opts
	opts.bootstrap = false
	return startNodeWith(tb, opts)
}

// response is a finished exchange, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	b := string(r.body)
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(b))
}

// client never follows redirects: the tests assert what the node answers.
var client = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// hdr is a request's extra headers; "Host" sets the request's host.
type hdr map[string]string

// newRequest builds a request whose request-target is target exactly as
// written (already percent-encoded, never cleaned by the client), so tests
// can send hostile paths verbatim.
func (n *testNode) newRequest(method, target string, body io.Reader, h hdr) (*http.Request, error) {
	req, err := http.NewRequest(method, n.url+"/", body)
	if err != nil {
		return nil, err
	}
	req.URL.Opaque = target
	req.URL.Path, req.URL.RawPath = "", ""
	for k, v := range h {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return req, nil
}

// do sends one request and reads the whole response. An empty body sends
// none. It must be called from the test's goroutine; other goroutines use
// try.
func (n *testNode) do(tb testing.TB, method, target, body string, h hdr) response {
	tb.Helper()
	r, err := n.try(method, target, body, h)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// try is do for any goroutine: it returns what went wrong.
func (n *testNode) try(method, target, body string, h hdr) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := n.newRequest(method, target, rd, h)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: building request: %w", method, target, err)
	}
	return n.sendErr(req)
}

// send sends a prepared request and reads the whole response.
func (n *testNode) send(tb testing.TB, req *http.Request) response {
	tb.Helper()
	r, err := n.sendErr(req)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func (n *testNode) sendErr(req *http.Request) (response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Opaque, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %d, reading the body: %w", req.Method, req.URL.Opaque, resp.StatusCode, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// must sends one request and fails the test unless the status is want.
func (n *testNode) must(tb testing.TB, want int, method, target, body string, h hdr) response {
	tb.Helper()
	r := n.do(tb, method, target, body, h)
	if r.status != want {
		tb.Fatalf("%s %s: got %s, want status %d", method, target, r, want)
	}
	return r
}

// put stores a file and returns its ETag.
func (n *testNode) put(tb testing.TB, target, content string) string {
	tb.Helper()
	r := n.do(tb, http.MethodPut, target, content, nil)
	if r.status != http.StatusCreated && r.status != http.StatusNoContent {
		tb.Fatalf("PUT %s: got %s, want 201 or 204", target, r)
	}
	return r.header.Get("ETag")
}

// mkcol creates a collection.
func (n *testNode) mkcol(tb testing.TB, target string) {
	tb.Helper()
	n.must(tb, http.StatusCreated, "MKCOL", target, "", nil)
}

// get returns a file's bytes, failing unless GET answers 200.
func (n *testNode) get(tb testing.TB, target string) string {
	tb.Helper()
	return string(n.must(tb, http.StatusOK, http.MethodGet, target, "", nil).body)
}

// exists reports whether GET on target answers 200 (false on 404).
func (n *testNode) exists(tb testing.TB, target string) bool {
	tb.Helper()
	r := n.do(tb, http.MethodGet, target, "", nil)
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	tb.Fatalf("GET %s: got %s, want 200 or 404", target, r)
	return false
}

// abs is the absolute URL of a path on this node, for Destination headers.
func (n *testNode) abs(p string) string { return n.url + p }

// logSink collects a node's log: a bounded tail for failure reports and
// every line that reports a recovered handler panic.
type logSink struct {
	mu       sync.Mutex
	buf      []byte
	panicked []string
}

const logTailBytes = 64 << 10

func newLogSink() *logSink { return &logSink{} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Contains(p, []byte("panic serving")) {
		s.panicked = append(s.panicked, string(p))
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) > 2*logTailBytes {
		s.buf = append(s.buf[:0], s.buf[len(s.buf)-logTailBytes:]...)
	}
	return len(p), nil
}

func (s *logSink) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > logTailBytes {
		return string(s.buf[len(s.buf)-logTailBytes:])
	}
	return string(s.buf)
}

func (s *logSink) panics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.panicked...)
}

// escape percent-encodes each segment of a plain path for a request-target.
func escape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// tempDir makes a directory that outlives one fuzz iteration; the caller
// removes it.
func tempDir(prefix string) (string, error) {
	return os.MkdirTemp("", prefix)
}

// testMaxXMLBytes is the shared node's --max-xml-bytes: small, so the limit
// is cheap to exceed, and far above any body the tests mean to be accepted.
const testMaxXMLBytes = 16 << 10

// shared is the node most tests use, started on first use and stopped by
// TestMain. Each test works under its own collection (scratch), so tests
// never see each other's files or locks.
var shared struct {
	once sync.Once
	dir  string
	n    *testNode
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.n != nil {
		if err := shared.n.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the shared node:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedNode returns the shared node. The test fails if the node logs a
// handler panic while it runs.
func sharedNode(tb testing.TB) *testNode {
	tb.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = tempDir("dfs-webdav-test-")
		if shared.err != nil {
			return
		}
		shared.n, shared.err = launchNode(nodeOptions{dataDir: shared.dir, bootstrap: true, maxXMLBytes: testMaxXMLBytes})
	})
	if shared.err != nil {
		tb.Fatalf("starting the shared node: %v", shared.err)
	}
	n := shared.n
	before := len(n.log.panics())
	tb.Cleanup(func() {
		if p := n.log.panics(); len(p) > before {
			tb.Errorf("the node logged a handler panic during this test: %s", p[before])
		}
		if tb.Failed() {
			tb.Logf("shared node log (tail):\n%s", n.log.tail())
		}
	})
	return n
}

var scratchSeq atomic.Int64

// scratch creates a fresh, empty collection for one test and returns its
// path (unescaped; its name needs no escaping).
func (n *testNode) scratch(tb testing.TB) string {
	tb.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, tb.Name())
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	p := fmt.Sprintf("/%s-%d", name, scratchSeq.Add(1))
	n.mkcol(tb, p)
	return p
}
