package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dfs-project/dfs/internal/tlsutil"
	"github.com/dfs-project/dfs/replication"
)

// ListenConfig secures and bounds a node's listeners: TLS (HTTPS on the
// client listener, TLS with the cluster CA between nodes) and the timeouts
// against slow or stalled clients. Zero durations take the defaults shown.
type ListenConfig struct {
	TLS tlsutil.Files
	// ReadHeaderTimeout bounds reading a request's headers (slowloris) on
	// the HTTP listener, and a TLS handshake on the Raft listener. Default
	// 30s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive HTTP connection, or a Raft
	// connection, that carries nothing for this long. Default 5m.
	IdleTimeout time.Duration
	// IOTimeout disconnects a client that stops sending a request body, or
	// stops reading a response, for this long. A transfer that keeps
	// moving is never cut, however long it takes. Default 2m.
	IOTimeout time.Duration
}

func (c *ListenConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, 30*time.Second)
	def(&c.IdleTimeout, 5*time.Minute)
	def(&c.IOTimeout, 2*time.Minute)
}

// setupTLS loads the node's TLS material and checks the advertised URL
// against it.
func (s *Server) setupTLS() error {
	var err error
	s.tls, err = tlsutil.New(s.cfg.Listen.TLS, tlsutil.DefaultCheckInterval, s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if s.cfg.Advertise != "" && s.tls.HTTPS() && !strings.HasPrefix(s.cfg.Advertise, "https://") {
		return fmt.Errorf("server: --advertise-url %s: this node serves HTTPS (--tls-cert or --cluster-ca), so its URL starts with https://", s.cfg.Advertise)
	}
	if s.cfg.Advertise != "" && !s.tls.HTTPS() && strings.HasPrefix(s.cfg.Advertise, "https://") {
		return fmt.Errorf("server: --advertise-url %s: this node serves plain HTTP; give --tls-cert and --tls-key to serve HTTPS", s.cfg.Advertise)
	}
	switch {
	case s.tls.Internal():
		s.log.Info().Msg("TLS between nodes: Raft with mutual TLS and internal HTTP calls verified against --cluster-ca")
	case s.tls.HTTPS():
		s.log.Warn().Msg("the Raft transport is plain TCP (no --cluster-ca): keep the Raft port on a private network")
	}
	return nil
}

// bindHTTP binds the client listener (WebDAV and the node API) and fixes
// the URL this node advertises: --advertise-url, or the bound address.
func (s *Server) bindHTTP() error {
	var err error
	s.ln, err = net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.HTTPAddr, err)
	}
	s.url = s.cfg.Advertise
	if s.url == "" {
		s.url = s.scheme() + "://" + advertisable(s.ln.Addr().String())
	}
	return nil
}

// advertisable turns a bound address into one peers and clients can use:
// an unspecified host becomes loopback.
func advertisable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func isLoopbackURL(u string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if h, _, err := net.SplitHostPort(strings.TrimRight(host, "/")); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// scheme is the client listener's URL scheme.
func (s *Server) scheme() string {
	if s.tls.HTTPS() {
		return "https"
	}
	return "http"
}

// raftTransport is the Raft side of ListenConfig.
func (s *Server) raftTransport() replication.TransportConfig {
	return replication.TransportConfig{
		ServerTLS:        s.tls.RaftServer(),
		ClientTLS:        s.tls.RaftClient(),
		HandshakeTimeout: s.cfg.Listen.ReadHeaderTimeout,
		IdleTimeout:      s.cfg.Listen.IdleTimeout,
	}
}

// internalTLS is the client configuration of this node's HTTP calls to
// other nodes (nil: Go's defaults, the system roots).
func (s *Server) internalTLS() *tls.Config { return s.tls.HTTPClient() }

// serveHTTP serves the client listener, HTTPS when configured.
func (s *Server) serveHTTP() error {
	if s.tls.HTTPS() {
		return s.httpSrv.ServeTLS(s.ln, "", "")
	}
	return s.httpSrv.Serve(s.ln)
}

// newHTTPServer builds the client listener's server around h.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	lc := s.cfg.Listen
	return &http.Server{
		Handler:           withIOTimeout(lc.IOTimeout, h),
		TLSConfig:         s.tls.Listener(),
		ReadHeaderTimeout: lc.ReadHeaderTimeout,
		IdleTimeout:       lc.IdleTimeout,
		ErrorLog:          newStdLogger(s.log),
	}
}

// ioChunk is the most a response write sends under one write deadline: a
// slow reader must be able to take a chunk within the I/O timeout.
const ioChunk = 64 << 10

// withIOTimeout disconnects clients that stall: each read of the request
// body and each write of the response must make progress within d, but
// nothing bounds a whole transfer, so a large upload or download that
// keeps moving takes as long as it takes. A fixed http.Server WriteTimeout
// or ReadTimeout would cut those.
//
// The read deadline is only set while the body is read and cleared at its
// end: once a request body is done, the server watches the connection in
// the background for the client going away, and a deadline expiring there
// would cancel the request.
func withIOTimeout(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// The connection may carry the previous request's write deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(d))
		var body *progressBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &progressBody{ReadCloser: r.Body, rc: rc, d: d}
			// A shallow copy: the server keeps the original request and
			// looks at its Body after the handler (an Expect: 100-continue
			// body never asked for must close the connection, not be
			// read and discarded while the client waits for a 100).
			r = r.WithContext(r.Context())
			r.Body = body
		}
		defer func() {
			// What the server still writes after the handler (buffered
			// bytes, the last chunk) gets its own d, and so does the
			// rest of a body the handler left unread, which the server
			// reads and discards before it answers.
			_ = rc.SetWriteDeadline(time.Now().Add(d))
			if body != nil && !body.done.Load() && !body.failed.Load() {
				_ = rc.SetReadDeadline(time.Now().Add(d))
			}
		}()
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc, d: d}, r)
	})
}

// progressBody pushes the read deadline out before each read of the body.
type progressBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
	// Atomic: a forwarding node copies the body in a goroutine of its
	// own (the handler waits for it to end before it returns).
	done   atomic.Bool // the body has ended
	failed atomic.Bool // a read failed: the deadline stays as it is
}

func (b *progressBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.done.Store(true)
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		// Timeouts do not stick to a connection: clearing the deadline
		// would let the server's discard of the rest of the body wait
		// forever on the stalled client.
		b.failed.Store(true)
	}
	return n, err
}

// Close discards what little is left of an unread body, as net/http does
// to keep the connection: that is a read too, and a client that stalls
// must not hold the handler past d.
func (b *progressBody) Close() error {
	if !b.done.Load() && !b.failed.Load() {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
	return b.ReadCloser.Close()
}

// progressWriter pushes the write deadline out before each chunk of a
// response write and before each flush.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), ioChunk)
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Flush sends what is buffered (the forwarding proxy flushes every write).
func (w *progressWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
