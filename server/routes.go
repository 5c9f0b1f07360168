package server

import (
	"net/http"

	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/verify"
)

// routeAccess is who may call a route of the node API.
type routeAccess int

const (
	// public: anyone who reaches the listener (read-only reports).
	public routeAccess = iota
	// secret: only a caller with the cluster secret (another node, or dfs
	// cluster with DFS_CLUSTER_SECRET); the mux puts clusterauth.Require
	// in front of the handler: 401 without it, 403 with a wrong one.
	secret
	// secretInside: the cluster secret too, but the handler checks it
	// itself (contentrepl.Content.Handler), before it reads anything.
	secretInside
)

func (a routeAccess) String() string {
	switch a {
	case public:
		return "public"
	case secret:
		return "secret"
	case secretInside:
		return "secret (checked by the handler)"
	}
	return "?"
}

// route is one route of the node API.
type route struct {
	method  string // "" for every method: the handler answers the rest itself
	path    string // an http.ServeMux path; {name} is a wildcard, a trailing / a subtree
	access  routeAccess
	handler http.Handler
	purpose string
}

// pattern is the route's http.ServeMux pattern.
func (r route) pattern() string {
	if r.method == "" {
		return r.path
	}
	return r.method + " " + r.path
}

// routeTable is every route of the node API: the health and metrics
// endpoints and every /cluster/ route, whichever package serves it. The
// mux is built from this table and nothing else registers on it (package
// docs that describe an endpoint point here). A GET route answers HEAD too
// (http.ServeMux). Requests no route takes (another method, another path)
// go to WebDAV, which refuses to write the reserved names (Reserved).
func (s *Server) routeTable(digests *verify.Digester) []route {
	// Content replication serves its two routes with one handler of its
	// own (contentrepl.Content.Handler) that checks the secret and then
	// routes by method and path; it is mounted on the whole of
	// /cluster/content, so every other method or path there gets that
	// handler's answer (401/403, then 404 or 405) rather than WebDAV's.
	contentAPI := s.content.Handler()
	return []route{
		{"GET", "/healthz", public, http.HandlerFunc(s.handleHealthz),
			"liveness: 200 while the process serves HTTP"},
		{"GET", "/readyz", public, http.HandlerFunc(s.handleReadyz),
			"readiness: 200 once the node can serve (stores, leader, caught up, content fetched), else 503 with the problems"},
		{"GET", "/metrics", public, s.metrics.handler(s),
			"Prometheus metrics of this node"},

		{"POST", "/cluster/join", secret, http.HandlerFunc(s.cluster.HandleJoin),
			"add or update a member {id, raft_addr, url}; any node, forwarded to the leader (cluster)"},
		{"POST", "/cluster/remove", secret, http.HandlerFunc(s.cluster.HandleRemove),
			"remove a member {id}; any node, forwarded to the leader (cluster)"},
		{"GET", "/cluster/readindex", secret, http.HandlerFunc(s.cluster.HandleReadIndex),
			"leader only: the read index followers wait for before a read (cluster)"},
		{"GET", "/cluster/bootstrap-info", secret, http.HandlerFunc(s.cluster.HandleBootstrapInfo),
			"who this node is and whether it has Raft state, for --bootstrap-expect (cluster)"},
		{"GET", "/cluster/node", public, http.HandlerFunc(s.cluster.HandleNode),
			"this node's report: role, applied index, content backlog, scrub (cluster)"},
		{"GET", "/cluster/status", public, http.HandlerFunc(s.cluster.HandleStatus),
			"the whole cluster as this node sees it, for dfs cluster status (cluster)"},

		{"GET", "/cluster/digest", secret, http.HandlerFunc(digests.HandleDigest),
			"this node's namespace and content digests, for dfs cluster verify (verify)"},
		{"GET", "/cluster/digest/entries", secret, http.HandlerFunc(digests.HandleDigestEntries),
			"NDJSON of the entries the namespace digest hashes, to name differences (verify)"},

		{"GET", "/cluster/snapshot", secret, http.HandlerFunc(s.handleSnapshot),
			"leader only: a snapshot of the metadata (gzip), streamed, for a node whose own snapshot and log cannot rebuild its store (server/snapshot.go)"},

		{"POST", "/cluster/scrub", secret, http.HandlerFunc(s.scrub.handleScrub),
			"start a content scrub pass now, for dfs cluster scrub (server/scrub.go)"},

		{"POST", "/cluster/content", secretInside, contentAPI,
			"receive an upload the leader pushes; answers {hash, size} once fsynced (contentrepl)"},
		{"GET", "/cluster/content/{hash}", secretInside, contentAPI,
			"serve an object to a peer, with Range so a fetch resumes; 404 when not here (contentrepl)"},
		{"", "/cluster/content", secretInside, contentAPI,
			"any other method on /cluster/content: the content handler's answer (405)"},
		{"", "/cluster/content/", secretInside, contentAPI,
			"any other method or path below /cluster/content/: the content handler's answer (404, 405)"},
	}
}

// newMux builds the node API's mux from its route table.
func (s *Server) newMux(table []route) *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range table {
		h := r.handler
		if r.access == secret {
			h = clusterauth.Require(s.cfg.ClusterSecret, h)
		}
		mux.Handle(r.pattern(), h)
	}
	return mux
}

// routes sends requests the node API has a route for (method and path) to
// the mux and everything else to WebDAV, so a WebDAV method on /healthz
// gets WebDAV's answer (403: reserved).
func (s *Server) routes(mux *http.ServeMux, dav http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		dav.ServeHTTP(w, r)
	})
}
