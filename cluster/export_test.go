package cluster

import (
	"net/http"

	"github.com/dfs-project/dfs/internal/clusterauth"
)

// Routes mounts this package's endpoints on mux the way a node's route
// table (package server, routes.go) does, for the tests that serve a
// Cluster alone.
func (c *Cluster) Routes(mux *http.ServeMux) {
	auth := func(h http.HandlerFunc) http.Handler { return clusterauth.Require(c.cfg.Secret, h) }
	mux.Handle("POST /cluster/join", auth(c.HandleJoin))
	mux.Handle("POST /cluster/remove", auth(c.HandleRemove))
	mux.Handle("GET /cluster/readindex", auth(c.HandleReadIndex))
	mux.Handle("GET /cluster/bootstrap-info", auth(c.HandleBootstrapInfo))
	mux.HandleFunc("GET /cluster/node", c.HandleNode)
	mux.HandleFunc("GET /cluster/status", c.HandleStatus)
}
