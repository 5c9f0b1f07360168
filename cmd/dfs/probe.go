package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// probeCommand is a health check for images without a shell or curl (the
// dfs image is scratch): `dfs probe` asks the node's /readyz and exits 0
// only on a 2xx answer.
func probeCommand() *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "check a node's health endpoint; exit 0 when it answers 2xx (a container health check)",
		Description: "GETs --url and exits 0 on a 2xx answer, 1 otherwise, printing the answer's\n" +
			"first line. Meant for container health checks where no shell or curl exists:\n" +
			"   HEALTHCHECK CMD [\"/dfs\", \"probe\"]                                 (ready)\n" +
			"   HEALTHCHECK CMD [\"/dfs\", \"probe\", \"--url\", \"http://127.0.0.1:8080/healthz\"]  (alive)\n" +
			"A node serving HTTPS (--tls-cert): --url https://127.0.0.1:8080/readyz with\n" +
			"--ca-cert (a certificate that names 127.0.0.1 or localhost) or --insecure-skip-verify.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", EnvVars: []string{"DFS_PROBE_URL"}, Value: "http://127.0.0.1:8080/readyz",
				Usage: "endpoint to check: /readyz (ready to serve) or /healthz (process alive)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "give up after this long"},
		}, clientTLSFlags()...),
		Action: runProbe,
	}
}

func runProbe(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.String("url"), nil)
	if err != nil {
		return err
	}
	tr, err := clientTransport(c)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", c.String("url"), resp.Status, line)
	}
	fmt.Fprintf(c.App.Writer, "%s: %s\n", c.String("url"), resp.Status)
	return nil
}
