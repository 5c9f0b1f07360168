package main

import "github.com/urfave/cli/v2"

// originFlags say which servers a COPY or MOVE Destination may name
// (server.Config.PublicURLs and TrustedProxies, docs/security.md).
func originFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "public-url", EnvVars: []string{"DFS_PUBLIC_URLS"},
			Usage: "`URL`s clients reach the cluster at besides each node's own, e.g. the Ingress's https://dfs.example.com (comma-separated or repeated; " +
				"scheme, host and port only). A COPY or MOVE Destination naming this URL, the URL the request was sent to, " +
				"a member node's URL or the host a --trusted-proxies proxy reports is carried out; one naming any other server gets 502 Bad Gateway"},
		&cli.StringSliceFlag{Name: "trusted-proxies", EnvVars: []string{"DFS_TRUSTED_PROXIES"},
			Usage: "`CIDR`s or addresses of proxies (an ingress controller) whose X-Forwarded-Host and X-Forwarded-Proto name the server a client addressed, " +
				"for the COPY/MOVE Destination check (comma-separated or repeated, e.g. 10.0.0.0/8). Default: none, the headers are ignored. " +
				"Only list proxies that set or overwrite these headers: any client that reaches the node from a listed address can write them"},
	}
}
