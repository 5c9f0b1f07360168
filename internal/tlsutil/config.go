package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Files names a node's TLS files. All empty: no TLS anywhere.
type Files struct {
	// CertFile and KeyFile serve HTTPS on the client listener.
	CertFile, KeyFile string
	// ClusterCAFile is the PEM bundle of the cluster's own CA. Set, it turns
	// on TLS between nodes: the Raft transport with mutual TLS, and the
	// internal HTTP calls trust only this CA.
	ClusterCAFile string
	// ClusterCertFile and ClusterKeyFile are this node's certificate from
	// the cluster CA, presented on Raft connections both ways and on
	// internal HTTP calls. Default: CertFile and KeyFile.
	ClusterCertFile, ClusterKeyFile string
}

// Config is a node's TLS setup built from Files. The zero value (and nil)
// means plain TCP and HTTP everywhere.
type Config struct {
	listener *KeyPair       // HTTPS on the client listener; nil: plain HTTP
	node     *KeyPair       // this node's cluster certificate; nil: no internal TLS
	cas      *x509.CertPool // the cluster CA
}

// New loads the files (each must load now) and checks that they fit
// together. interval is the KeyPair check interval.
func New(f Files, interval time.Duration, log zerolog.Logger) (*Config, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("tlsutil: --tls-cert and --tls-key go together")
	}
	if (f.ClusterCertFile == "") != (f.ClusterKeyFile == "") {
		return nil, errors.New("tlsutil: --cluster-tls-cert and --cluster-tls-key go together")
	}
	if f.ClusterCAFile == "" && f.ClusterCertFile != "" {
		return nil, errors.New("tlsutil: --cluster-tls-cert needs --cluster-ca, the CA that signed the nodes' certificates")
	}
	c := &Config{}
	var err error
	if f.CertFile != "" {
		if c.listener, err = NewKeyPair(f.CertFile, f.KeyFile, interval, log); err != nil {
			return nil, err
		}
	}
	if f.ClusterCAFile == "" {
		return c, nil
	}
	if c.cas, err = LoadCAs(f.ClusterCAFile); err != nil {
		return nil, err
	}
	switch {
	case f.ClusterCertFile != "":
		if c.node, err = NewKeyPair(f.ClusterCertFile, f.ClusterKeyFile, interval, log); err != nil {
			return nil, err
		}
	case c.listener != nil:
		c.node = c.listener
	default:
		return nil, errors.New("tlsutil: --cluster-ca needs this node's certificate from that CA: --cluster-tls-cert and --cluster-tls-key, or --tls-cert and --tls-key")
	}
	if err := c.verify(c.node.Certificate()); err != nil {
		return nil, fmt.Errorf("tlsutil: this node's cluster certificate is not signed by --cluster-ca: %w", err)
	}
	if c.listener == nil {
		// Nodes call each other on the client listener: with TLS between
		// nodes it serves HTTPS with the node certificate.
		c.listener = c.node
	} else if err := c.verify(c.listener.Certificate()); err != nil {
		return nil, fmt.Errorf("tlsutil: --tls-cert is not signed by --cluster-ca, but other nodes call this node's HTTPS listener and verify it against the cluster CA "+
			"(terminate public TLS at the ingress, or use a certificate from the cluster CA): %w", err)
	}
	return c, nil
}

// Watch watches the certificate files (KeyPair.Watch) until ctx ends.
func (c *Config) Watch(ctx context.Context) {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	if c.listener != nil {
		wg.Go(func() { c.listener.Watch(ctx) })
	}
	if c.node != nil && c.node != c.listener {
		wg.Go(func() { c.node.Watch(ctx) })
	}
	wg.Wait()
}

// HTTPS reports whether the client listener serves HTTPS.
func (c *Config) HTTPS() bool { return c != nil && c.listener != nil }

// Internal reports whether nodes talk to each other over TLS with the
// cluster CA.
func (c *Config) Internal() bool { return c != nil && c.cas != nil }

// Listener returns the client listener's server configuration (nil: plain
// HTTP). Clients are not asked for certificates: WebDAV clients have none,
// and internal calls authenticate with the cluster secret.
func (c *Config) Listener() *tls.Config {
	if !c.HTTPS() {
		return nil
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.listener.GetCertificate,
	}
}

// HTTPClient returns the configuration of this node's HTTP calls to other
// nodes: the cluster CA as the only root, the node certificate offered if
// asked. Without internal TLS: nil (the system roots, for a cluster whose
// listeners have publicly trusted certificates).
func (c *Config) HTTPClient() *tls.Config {
	if !c.Internal() {
		return nil
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              c.cas,
		GetClientCertificate: c.node.GetClientCertificate,
	}
}

// RaftServer and RaftClient return the two sides of the mutually
// authenticated Raft transport (nil without internal TLS). Both present
// the node certificate and accept a peer only if its chain leads to the
// cluster CA. Host names are not checked: Raft addresses are usually pod
// IPs that the certificates do not name, and the cluster CA issues only to
// the cluster's nodes.
func (c *Config) RaftServer() *tls.Config {
	if !c.Internal() {
		return nil
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.node.GetCertificate,
		// Verified below against the cluster CA, for any key usage
		// (RequireAndVerifyClientCert would insist on the client-auth
		// usage, which many node certificates lack).
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: c.verifyRaw,
	}
}

// RaftClient: see RaftServer.
func (c *Config) RaftClient() *tls.Config {
	if !c.Internal() {
		return nil
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: c.node.GetClientCertificate,
		// The chain is verified by verifyRaw against the cluster CA (host
		// names are not checked: see RaftServer); Go's own verification
		// would check a host name.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: c.verifyRaw,
	}
}

func (c *Config) verifyRaw(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("the peer presented no certificate; every dfs node needs one from the cluster CA")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("the peer's certificate does not parse: %w", err)
		}
		certs[i] = cert
	}
	return c.verifyChain(certs)
}

func (c *Config) verify(cert *tls.Certificate) error {
	chain := []*x509.Certificate{cert.Leaf}
	for _, b := range cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(b)
		if err != nil {
			return err
		}
		chain = append(chain, ic)
	}
	return c.verifyChain(chain)
}

func (c *Config) verifyChain(chain []*x509.Certificate) error {
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: c.cas, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("certificate %q (serial %s) is not from the cluster CA: %w",
			chain[0].Subject.String(), serial(chain[0].SerialNumber), err)
	}
	return nil
}
