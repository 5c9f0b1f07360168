package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestPprofEndpoint(t *testing.T) {
	if addr, err := startPprof(t.Context(), "", zerolog.Nop()); addr != nil || err != nil {
		t.Fatalf("no --pprof-addr: %v, %v; want nothing", addr, err)
	}
	if _, err := startPprof(t.Context(), "256.0.0.1:1", zerolog.Nop()); err == nil {
		t.Fatal("a bad --pprof-addr was accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	addr, err := startPprof(ctx, "127.0.0.1:0", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		resp, err := hc.Get("http://" + addr.String() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr.String() + "/debug/pprof/")
		if err != nil {
			break // closed with the context
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the profiling endpoint still answers after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
