package replication

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// TransportConfig secures and bounds the Raft transport. The zero value is
// plain TCP with the default timeouts.
type TransportConfig struct {
	// ServerTLS and ClientTLS, both set, make every Raft connection TLS:
	// ServerTLS for connections this node accepts, ClientTLS for those it
	// dials (see tlsutil.Config.RaftServer: mutual TLS with the cluster CA).
	ServerTLS, ClientTLS *tls.Config
	// HandshakeTimeout bounds an accepted connection's TLS handshake
	// (default 10s): a peer that connects and sends nothing, or trickles
	// its handshake, is dropped.
	HandshakeTimeout time.Duration
	// IdleTimeout drops an accepted connection that carries nothing for
	// this long (default 5m). Live connections carry a heartbeat or an
	// append at least every few hundred milliseconds.
	IdleTimeout time.Duration
}

func (c *TransportConfig) setDefaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
}

func (c *TransportConfig) tls() bool { return c.ServerTLS != nil && c.ClientTLS != nil }

// ErrPeerTLS is wrapped by errors of a Raft TLS handshake the peer or
// this node refused (a certificate not from the cluster CA, no
// certificate), as opposed to a peer that could not be reached.
var ErrPeerTLS = errors.New("raft TLS handshake refused")

var (
	errNotAdvertisable = errors.New("the Raft address is not advertisable: give --raft-advertise, the host:port other nodes dial")
	errHalfTLS         = errors.New("the Raft transport needs both a server and a client TLS configuration")
)

// streamLayer is raft.StreamLayer over TCP, optionally TLS, with the
// accepted connections' timeouts of TransportConfig.
type streamLayer struct {
	cfg       TransportConfig
	ln        net.Listener
	advertise net.Addr
}

func newStreamLayer(bind string, advertise net.Addr, cfg TransportConfig) (*streamLayer, error) {
	if (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil) {
		return nil, errHalfTLS
	}
	cfg.setDefaults()
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &streamLayer{cfg: cfg, ln: ln, advertise: advertise}
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, errNotAdvertisable
	}
	return s, nil
}

// Accept returns the next connection without waiting for its handshake:
// raft accepts in one loop, and one slow peer must not hold up the others.
// The handshake runs on the connection's first read, bounded by
// HandshakeTimeout.
func (s *streamLayer) Accept() (net.Conn, error) {
	conn, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	ac := &acceptedConn{Conn: conn, raw: conn, cfg: s.cfg}
	if s.cfg.tls() {
		ac.tls = tls.Server(conn, s.cfg.ServerTLS)
		ac.Conn = ac.tls
	}
	return ac, nil
}

func (s *streamLayer) Close() error { return s.ln.Close() }

func (s *streamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects to a peer's Raft transport, completing the TLS handshake
// (and so the peer's verification) within timeout.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(address))
}

func (s *streamLayer) dial(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil || !s.cfg.tls() {
		return conn, err
	}
	tc := tls.Client(conn, s.cfg.ClientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrPeerTLS, err)
		}
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// acceptedConn is a connection the transport accepted: a TLS handshake
// (if any) on first use under HandshakeTimeout, then every read pushes the
// read deadline IdleTimeout out, so a connection that carries nothing for
// that long is dropped. Raft sets its own deadlines on connections it
// dials, not on accepted ones.
type acceptedConn struct {
	net.Conn           // what raft reads and writes: raw, or tls over raw
	raw      net.Conn  // the TCP connection, whose deadlines count
	tls      *tls.Conn // nil without TLS
	cfg      TransportConfig
	once     sync.Once
	err      error
}

func (c *acceptedConn) handshake() error {
	if c.tls == nil {
		return nil
	}
	c.once.Do(func() {
		_ = c.raw.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
		if c.err = c.tls.Handshake(); c.err != nil {
			c.err = fmt.Errorf("raft TLS handshake with %s: %w", c.raw.RemoteAddr(), c.err)
		}
		_ = c.raw.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *acceptedConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	if err := c.raw.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *acceptedConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// CheckPeer dials a Raft address the way the transport does and completes
// the mutual TLS handshake, so that a node whose certificate the cluster CA
// did not sign (or that does not trust the cluster CA) is refused before
// it becomes a voter nobody can talk to. Without TLS it checks nothing:
// a plain transport has no identity to check.
func (n *Node) CheckPeer(ctx context.Context, addr string) error {
	if !n.stream.cfg.tls() {
		return nil
	}
	conn, err := n.stream.dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	// In TLS 1.3 the server checks the client's certificate after the
	// client has finished: a one-byte read surfaces its verdict (an alert)
	// or times out quietly when the peer accepted and waits for an RPC.
	// Joins are rare; a second is a generous wait for the verdict.
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	_ = conn.Close()
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("replication: raft transport at %s refused this node: %w: %w", addr, ErrPeerTLS, err)
	}
	return nil
}
