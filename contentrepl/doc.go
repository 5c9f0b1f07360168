// Package contentrepl replicates file content between the nodes of a dfs
// cluster.
//
// File content never travels in the Raft log: entries name it by hash, and
// Content moves the bytes between nodes over HTTP, beside the log:
//
//   - Push (leader, Write): the leader streams an upload into its own
//     content store and, at the same time, to every follower
//     (POST /cluster/content). With WriteAckMajority, Write returns only
//     once the content is fsynced on a majority of the voters (the leader
//     included); the caller then proposes the entry that references it.
//     An acknowledged write therefore survives the loss of any minority,
//     the leader included: a new leader has every committed entry (Raft),
//     and every committed entry's content is on a majority, so some
//     survivor has it.
//   - Fetch (any node, Open and catch-up): a node that lacks content for a
//     committed entry fetches it from a peer (GET /cluster/content/{hash},
//     leader first) into a resumable partial download, verifies the
//     SHA-256 and only then makes it an object.
//   - Catch-up (Run, Notify, Rescan): a lagging, restarted or new node
//     finds what it lacks by scanning the namespace (at start and after a
//     snapshot restore) and by the state machine's reference hook (every
//     committed entry that references new content), and fetches it in the
//     background with bounded concurrency and an optional bandwidth cap.
//     Until it has, reads of that content fetch it on demand.
//   - Read repair (Open): the reader Open returns never returns a corrupt
//     byte; when the local copy turns out corrupt mid-read, it fetches a
//     good copy and carries on (heal.go).
//   - Scrub (Scrub): a pass re-hashes every local object and walks the
//     namespace, and fetches corrupt or missing content again
//     (scrub.go); package server runs the passes.
//
// Every internal call carries the cluster secret (package clusterauth).
// Content.Handler serves the routes above to the peers.
//
// The package knows nothing of Raft. ContentConfig.Peers (the members,
// the leader first) and ContentConfig.Quorum (how many copies a write
// needs, see Quorum) are what it asks of the cluster; package server
// answers them from the Raft node (package replication) and the member
// list, and hooks Notify and Rescan into the state machine (package fsm).
package contentrepl
