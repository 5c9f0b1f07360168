// Package verify owns replica verification: checking that every node of a
// cluster holds the same replicated state (dfs cluster verify).
//
// It has two sides. On every node a Digester hashes the node's state in a
// canonical order (namespace depth first with types, sizes, hashes, ETags,
// times and dead properties, then locks, then the member table) and checks
// the content the namespace references, and serves both over the node's
// cluster API:
//
//	GET /cluster/digest          the node's namespace and content digests (?deep=1 re-hashes content, ?min-index=N waits for N)
//	GET /cluster/digest/entries  NDJSON: the entries the namespace digest hashes, then a trailer (?index=N: the state at N, or 409)
//
// Both need the cluster secret (package clusterauth): the Digester serves
// them as HandleDigest and HandleDigestEntries, and package server's route
// table (server/routes.go, every /cluster/ route of a node) mounts them
// behind it. Replicas, the other side, asks every node for its digest at
// one applied index and, where digests differ, merges the nodes' entry
// streams to name each difference, holding two entries at a time whatever
// the namespace's size.
//
// Package cluster stays below: verify uses its Client for the calls (read
// index, node reports, authenticated requests) and its types.
package verify
