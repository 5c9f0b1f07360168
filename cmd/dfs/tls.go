package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/internal/tlsutil"
	"github.com/dfs-project/dfs/server"
)

// tlsFlags are dfs server's TLS, listener timeout and secret rotation
// flags (docs/security.md).
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"DFS_TLS_CERT"},
			Usage: "PEM certificate (chain) to serve HTTPS with on --http-addr; re-read within a second when the files change (cert-manager rotation), " +
				"a pair that does not load keeps the previous certificate and logs an error; needs --tls-key"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"DFS_TLS_KEY"},
			Usage: "PEM private key of --tls-cert"},
		&cli.StringFlag{Name: "cluster-ca", EnvVars: []string{"DFS_CLUSTER_CA"},
			Usage: "PEM bundle of the cluster's own CA: turns on TLS between nodes (Raft with mutual TLS, internal HTTP calls trusting only this CA); " +
				"every node needs a certificate from it (--cluster-tls-cert, or --tls-cert), and --http-addr then serves HTTPS; read at start"},
		&cli.StringFlag{Name: "cluster-tls-cert", EnvVars: []string{"DFS_CLUSTER_TLS_CERT"},
			Usage: "this node's PEM certificate from --cluster-ca, presented on Raft connections and internal calls (default: --tls-cert); reloaded like --tls-cert"},
		&cli.StringFlag{Name: "cluster-tls-key", EnvVars: []string{"DFS_CLUSTER_TLS_KEY"},
			Usage: "PEM private key of --cluster-tls-cert (default: --tls-key)"},
		&cli.StringSliceFlag{Name: "cluster-secret-accept", EnvVars: []string{"DFS_CLUSTER_SECRET_ACCEPT"},
			Usage: "further cluster secrets accepted from other nodes but never sent (comma-separated or repeated), " +
				"for rotating --cluster-secret without downtime (docs/security.md); --cluster-secret may also be a comma-separated list, the first one sent"},
		&cli.DurationFlag{Name: "read-header-timeout", EnvVars: []string{"DFS_READ_HEADER_TIMEOUT"}, Value: 30 * time.Second,
			Usage: "a client must send a request's headers (and a Raft peer its TLS handshake) within this time, or it is disconnected"},
		&cli.DurationFlag{Name: "idle-timeout", EnvVars: []string{"DFS_IDLE_TIMEOUT"}, Value: 5 * time.Minute,
			Usage: "a keep-alive HTTP connection, or a Raft connection, that carries nothing for this long is closed"},
		&cli.DurationFlag{Name: "io-timeout", EnvVars: []string{"DFS_IO_TIMEOUT"}, Value: 2 * time.Minute,
			Usage: "a client that stops sending a request body or stops reading a response for this long is disconnected; " +
				"a transfer that keeps moving is never cut, however long it takes"},
	}
}

// listenConfig reads tlsFlags.
func listenConfig(c *cli.Context) server.ListenConfig {
	return server.ListenConfig{
		TLS: tlsutil.Files{
			CertFile:        c.String("tls-cert"),
			KeyFile:         c.String("tls-key"),
			ClusterCAFile:   c.String("cluster-ca"),
			ClusterCertFile: c.String("cluster-tls-cert"),
			ClusterKeyFile:  c.String("cluster-tls-key"),
		},
		ReadHeaderTimeout: c.Duration("read-header-timeout"),
		IdleTimeout:       c.Duration("idle-timeout"),
		IOTimeout:         c.Duration("io-timeout"),
	}
}

// clusterSecret is --cluster-secret followed by --cluster-secret-accept,
// the list package clusterauth sends the first of and accepts any of.
func clusterSecret(c *cli.Context) string {
	return clusterauth.List(c.String("cluster-secret"), c.StringSlice("cluster-secret-accept")...)
}

// clientTLSFlags are the TLS options of commands that call a node.
func clientTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ca-cert", EnvVars: []string{"DFS_CA_CERT"},
			Usage: "PEM CA bundle to verify an https:// node with (e.g. the cluster CA); default: the system's roots"},
		&cli.BoolFlag{Name: "insecure-skip-verify", EnvVars: []string{"DFS_INSECURE_SKIP_VERIFY"},
			Usage: "do not verify the node's certificate (a local health check against https://127.0.0.1, whose certificate names the pod's DNS name)"},
	}
}

// clientTransport is the HTTP transport of a command that calls a node,
// with clientTLSFlags applied.
func clientTransport(c *cli.Context) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if f := c.String("ca-cert"); f != "" {
		pool, err := tlsutil.LoadCAs(f)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		conf.RootCAs = pool
	}
	conf.InsecureSkipVerify = c.Bool("insecure-skip-verify")
	tr.TLSClientConfig = conf
	return tr, nil
}
