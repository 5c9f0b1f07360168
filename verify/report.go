package verify

import (
	"fmt"
	"strconv"
	"strings"
)

// Report is the outcome of Replicas.
type Report struct {
	// Consistent is true only when every node answered at one applied
	// index with the same namespace digest and holds all its content.
	Consistent bool `json:"consistent"`
	// Inconclusive is true when the nodes never answered at one common
	// applied index (live writes, a node catching up) within the
	// attempts: nothing can be said about divergence.
	Inconclusive bool `json:"inconclusive"`
	// Reason says in one sentence why the report is not consistent.
	Reason string `json:"reason,omitempty"`
	// AppliedIndex is the index the nodes were compared at (the last one
	// tried when inconclusive).
	AppliedIndex uint64 `json:"applied_index"`
	// Reference is the ID of the node the others were compared with: one
	// of the largest group of nodes with equal namespace digests.
	Reference   string       `json:"reference,omitempty"`
	Deep        bool         `json:"deep"`
	Attempts    int          `json:"attempts"`
	Nodes       []NodeDigest `json:"nodes"`
	Differences []Difference `json:"differences"`
	Truncated   bool         `json:"differences_truncated,omitempty"`
}

// NodeDigest is one node in a Report.
type NodeDigest struct {
	ID              string `json:"id"`
	URL             string `json:"url"`
	AppliedIndex    uint64 `json:"applied_index"`
	NamespaceDigest string `json:"namespace_digest"`
	ContentDigest   string `json:"content_digest"`
	Entries         int64  `json:"entries"`
	ContentObjects  int64  `json:"content_objects"`
	MissingCount    int64  `json:"missing_count"`
	CorruptCount    int64  `json:"corrupt_count"`
	// Error says why the node gave no usable digest (unreachable, refused,
	// not caught up); empty when it did.
	Error string `json:"error,omitempty"`
	// Unreachable is set when the node could not be reached at all.
	Unreachable bool `json:"unreachable,omitempty"`
}

func (n *NodeDigest) name() string {
	if n.ID != "" {
		return n.ID
	}
	return n.URL
}

// Difference kinds.
const (
	DiffMissing        = "missing"         // the reference has the entry, the node does not
	DiffExtra          = "extra"           // the node has an entry the reference does not
	DiffField          = "field"           // both have the entry; one field differs
	DiffContentMissing = "content_missing" // the node lacks referenced content
	DiffContentCorrupt = "content_corrupt" // the node's copy has the wrong size or bytes
	DiffDigest         = "digest"          // digests differ but the entries compare equal field by field
)

// Difference is one way a node differs from the reference node.
type Difference struct {
	Kind      string `json:"kind"`
	Node      string `json:"node"`
	Reference string `json:"reference,omitempty"`
	// Entry names what differs: a path, "lock <token>" or "member <id>".
	Entry          string `json:"entry,omitempty"`
	Field          string `json:"field,omitempty"`
	ReferenceValue string `json:"reference_value,omitempty"`
	NodeValue      string `json:"node_value,omitempty"`
	// Hash and Paths name content a node lacks or holds damaged, and the
	// node's paths that reference it (at most MaxPaths).
	Hash  string   `json:"hash,omitempty"`
	Paths []string `json:"paths,omitempty"`
}

// String says what differs in one line.
func (d Difference) String() string {
	switch d.Kind {
	case DiffMissing:
		return fmt.Sprintf("%s: %s is missing (present on %s)", d.Node, d.Entry, d.Reference)
	case DiffExtra:
		return fmt.Sprintf("%s: %s exists there only (not on %s)", d.Node, d.Entry, d.Reference)
	case DiffField:
		return fmt.Sprintf("%s: %s: %s is %s, on %s %s", d.Node, d.Entry, d.Field, quoteValue(d.NodeValue), d.Reference, quoteValue(d.ReferenceValue))
	case DiffContentMissing, DiffContentCorrupt:
		what := "missing"
		if d.Kind == DiffContentCorrupt {
			what = "corrupt"
		}
		paths := "no path found"
		if len(d.Paths) > 0 {
			paths = "used by " + strings.Join(d.Paths, ", ")
		}
		return fmt.Sprintf("%s: content %s is %s (%s)", d.Node, d.Hash, what, paths)
	}
	return fmt.Sprintf("%s: namespace digest differs from %s's, but no entry does (an entry field this verifier does not know?)", d.Node, d.Reference)
}

func quoteValue(s string) string {
	if s == "" {
		return "(none)"
	}
	return strconv.Quote(s)
}
