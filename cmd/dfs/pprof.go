package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// pprofFlags are dfs server's profiling endpoint: Go's net/http/pprof on a
// listener of its own, so that a node under real load can be profiled
// (go tool pprof http://ADDR/debug/pprof/profile) without exposing the
// profiles on the WebDAV port.
func pprofFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "pprof-addr", EnvVars: []string{"DFS_PPROF_ADDR"},
			Usage: "serve Go's profiles (/debug/pprof/...) on `ADDR`, e.g. 127.0.0.1:6060, for `go tool pprof`; no authentication, keep it on loopback. Empty: off"},
	}
}

// startPprof serves the profiles on addr until ctx ends and returns the
// address it listens on (nil for no addr). The listener is opened before
// it returns, so a bad address fails the start.
func startPprof(ctx context.Context, addr string, log zerolog.Logger) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			log.Warn().Str("addr", ln.Addr().String()).Msg("the profiling endpoint listens beyond loopback, without authentication")
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("profiling endpoint stopped")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("profiles served on /debug/pprof/")
	return ln.Addr(), nil
}
