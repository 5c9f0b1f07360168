// Package tlsutil owns the TLS material of a dfs node: a certificate and
// key pair that is re-read when its files change on disk (KeyPair, for
// cert-manager rotations and Kubernetes Secret volumes), CA bundles
// (LoadCAs), and the tls.Config values built from them for the client
// listener, the internal HTTP calls between nodes and the mutually
// authenticated Raft transport (Config).
package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultCheckInterval is how often a KeyPair looks at its files at most:
// a handshake costs two stat calls at most once per interval.
const DefaultCheckInterval = time.Second

// KeyPair serves a certificate and key from two PEM files and re-reads
// them when either file changes (its modification time, size or identity:
// a Kubernetes Secret volume swaps a symlink, which changes the file the
// path resolves to). A pair that does not load (half written, or a key
// that does not match the certificate) keeps the last good certificate in
// service and is logged as an error; it is tried again when the files
// change again. It is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	interval          time.Duration
	log               zerolog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  pairStat  // the files the serving certificate came from
	failed  pairStat  // the last files that did not load (logged once)
	checked time.Time // when the files were last looked at
}

// fileStat identifies one version of a file.
type fileStat struct {
	info os.FileInfo
}

func (a fileStat) same(b fileStat) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

type pairStat struct{ cert, key fileStat }

func (a pairStat) same(b pairStat) bool { return a.cert.same(b.cert) && a.key.same(b.key) }

// NewKeyPair loads the pair once (an error if it does not load: a node
// must not start without a usable certificate) and returns a KeyPair that
// checks the files for changes at most every interval (0: every
// handshake; DefaultCheckInterval suits production).
func NewKeyPair(certFile, keyFile string, interval time.Duration, log zerolog.Logger) (*KeyPair, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlsutil: a certificate needs both a certificate file and a key file")
	}
	kp := &KeyPair{certFile: certFile, keyFile: keyFile, interval: interval,
		log: log.With().Str("component", "tls").Str("cert_file", certFile).Logger()}
	st, err := kp.stat()
	if err != nil {
		return nil, err
	}
	cert, err := kp.load()
	if err != nil {
		return nil, err
	}
	kp.cert, kp.loaded, kp.checked = cert, st, time.Now()
	kp.log.Info().Str("subject", cert.Leaf.Subject.String()).Str("serial", serial(cert.Leaf.SerialNumber)).
		Time("not_after", cert.Leaf.NotAfter).Msg("TLS certificate loaded")
	return kp, nil
}

// Certificate returns the certificate to serve, re-reading the files first
// if they changed since they were last looked at (at most once per
// interval).
func (kp *KeyPair) Certificate() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	now := time.Now()
	if now.Sub(kp.checked) < kp.interval {
		return kp.cert
	}
	kp.checked = now
	st, err := kp.stat()
	if err != nil {
		// A Secret volume being swapped, or a file being replaced: keep
		// serving and look again next time.
		kp.log.Debug().Err(err).Msg("TLS certificate files not readable right now; keeping the current certificate")
		return kp.cert
	}
	if st.same(kp.loaded) || st.same(kp.failed) {
		return kp.cert
	}
	cert, err := kp.load()
	if err != nil {
		kp.failed = st
		kp.log.Error().Err(err).Str("key_file", kp.keyFile).Str("serving_serial", serial(kp.cert.Leaf.SerialNumber)).
			Msg("TLS certificate files changed but do not load; still serving the previous certificate")
		return kp.cert
	}
	kp.log.Info().Str("subject", cert.Leaf.Subject.String()).Str("serial", serial(cert.Leaf.SerialNumber)).
		Str("previous_serial", serial(kp.cert.Leaf.SerialNumber)).Time("not_after", cert.Leaf.NotAfter).
		Msg("TLS certificate reloaded")
	kp.cert, kp.loaded, kp.failed = cert, st, pairStat{}
	return cert
}

// Watch looks at the files every interval until ctx ends, so that a
// rotation is taken up (or a broken one reported) even while no handshake
// happens. Handshakes check too; Watch only makes it prompt.
func (kp *KeyPair) Watch(ctx context.Context) {
	t := time.NewTicker(max(kp.interval, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			kp.Certificate()
		}
	}
}

// GetCertificate is tls.Config.GetCertificate.
func (kp *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate.
func (kp *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.Certificate(), nil
}

func (kp *KeyPair) stat() (pairStat, error) {
	c, err := os.Stat(kp.certFile)
	if err != nil {
		return pairStat{}, fmt.Errorf("tlsutil: certificate file: %w", err)
	}
	k, err := os.Stat(kp.keyFile)
	if err != nil {
		return pairStat{}, fmt.Errorf("tlsutil: key file: %w", err)
	}
	return pairStat{cert: fileStat{c}, key: fileStat{k}}, nil
}

// load reads and checks the pair. The files are stat'ed before they are
// read, so a change during the read shows up as a change next time.
func (kp *KeyPair) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(kp.certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(kp.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsutil: %s: %w", kp.certFile, err)
		}
	}
	return &cert, nil
}

func serial(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}

// LoadCAs reads a PEM bundle of CA certificates. A file without a single
// certificate is an error: an empty pool would trust nothing, and a typo
// should not look like that.
func LoadCAs(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("tlsutil: CA bundle %s holds no PEM certificate", file)
	}
	return pool, nil
}
