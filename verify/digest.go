package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/metastore"
)

// digest.go, entries.go, content.go and handlers.go are the node's side of replica verification (see verify.go for
// the side that compares nodes): GET /cluster/digest hashes the node's
// whole replicated state in a canonical order, and GET
// /cluster/digest/entries streams the entries it hashed, so that a
// verifier can name differences without any node holding more than one
// directory listing in memory.

// Applied is what a Digester needs of the node's Raft member
// (replication.Node has it): the index the node's state is at.
type Applied interface {
	// AppliedIndex returns the index of the last entry applied to the
	// node's metastore.
	AppliedIndex(ctx context.Context) (uint64, error)
	// WaitApplied returns once the node has applied index, or when ctx
	// ends.
	WaitApplied(ctx context.Context, index uint64) error
}

// Config configures a Digester.
type Config struct {
	// ID and URL identify the node in its digests.
	ID  string
	URL string
	// Raft tells the applied index the state is read at.
	Raft Applied
	// Meta and Content are the state digested.
	Meta    metastore.Reader
	Content ContentChecker
	// Backlog reports content the node is still fetching; nil reports
	// none.
	Backlog func() cluster.Backlog
	Log     zerolog.Logger
}

// Digester is a node's side of replica verification: it digests the
// node's replicated state and serves GET /cluster/digest and GET
// /cluster/digest/entries (HandleDigest, HandleDigestEntries).
type Digester struct {
	cfg Config
	log zerolog.Logger
}

// NewDigester returns the Digester of one node.
func NewDigester(cfg Config) (*Digester, error) {
	if cfg.Raft == nil || cfg.Meta == nil || cfg.Content == nil {
		return nil, errors.New("verify: Config needs Raft, Meta and Content")
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	// The endpoints are the cluster API's: their log lines stay the
	// cluster component's.
	return &Digester{cfg: cfg, log: cfg.Log.With().Str("component", "cluster").Logger()}, nil
}

func (dg *Digester) contentBacklog() cluster.Backlog {
	if dg.cfg.Backlog == nil {
		return cluster.Backlog{}
	}
	return dg.cfg.Backlog()
}

// DigestFormat numbers the way entries are encoded and hashed: nodes that
// digest differently cannot be compared (a rolling upgrade that changes
// it makes verify inconclusive until every node runs the new version).
const DigestFormat = 1

// Digest is a node's account of its replicated state (GET /cluster/digest).
type Digest struct {
	Format       int    `json:"format"` // DigestFormat
	ID           string `json:"id"`
	URL          string `json:"url"`
	AppliedIndex uint64 `json:"applied_index"`
	// NamespaceDigest is the hex SHA-256 of every entry's JSON line (see
	// DigestEntry), in stream order: paths with type, size, hash, ETag,
	// content type, times and dead properties, then locks, then members.
	NamespaceDigest string `json:"namespace_digest"`
	// ContentDigest is the hex SHA-256 over every content hash the
	// namespace references, in hash order, of "<hash> <size> <status>\n"
	// with status ok, missing or corrupt: equal on two nodes with equal
	// namespaces that both hold all their content.
	ContentDigest string `json:"content_digest"`
	// Deep is whether every object was re-hashed (?deep=1), not only
	// checked for presence and size.
	Deep bool `json:"deep"`
	// Entries counts the lines hashed: paths, locks and members.
	Entries int64 `json:"entries"`
	// ContentObjects counts the distinct content hashes files reference.
	ContentObjects int64 `json:"content_objects"`
	// Missing and Corrupt list referenced content this node lacks or
	// holds damaged, in hash order, at most MaxListed of each;
	// MissingCount and CorruptCount count them all.
	Missing      []string `json:"missing"`
	Corrupt      []string `json:"corrupt"`
	MissingCount int64    `json:"missing_count"`
	CorruptCount int64    `json:"corrupt_count"`
	// Fetching counts the missing objects the node is still fetching
	// from peers: they may yet arrive.
	Fetching int64 `json:"fetching"`
	// ContentBacklog is content the node is still fetching: missing
	// content may still arrive.
	ContentBacklog cluster.Backlog `json:"content_backlog"`
}

// MaxListed bounds the Missing and Corrupt lists of a Digest.
const MaxListed = 1000

// digestTries is how often a digest is computed again when the node
// applied an entry while reading its state.
const digestTries = 3

// errUnsettled is wrapped when the node kept applying entries while its
// state was read.
var errUnsettled = errors.New("the node kept applying log entries while its state was read")

// Digest computes this node's digest. The namespace is read while the
// state machine may apply entries; the applied index is read before and
// after, and a digest that straddles an entry is computed again, up to
// three times, then fails wrapping errUnsettled.
func (dg *Digester) Digest(ctx context.Context, deep bool) (Digest, error) {
	// Objects are immutable: one verified in an earlier try stays good
	// unless it vanished, which the size check of the next try sees.
	verified := map[[32]byte]bool{}
	var moved []string
	for range digestTries {
		before, err := dg.cfg.Raft.AppliedIndex(ctx)
		if err != nil {
			return Digest{}, fmt.Errorf("cluster: digest: %w", err)
		}
		d, err := dg.digestOnce(ctx, deep, verified)
		if err != nil {
			return Digest{}, fmt.Errorf("cluster: digest: %w", err)
		}
		after, err := dg.cfg.Raft.AppliedIndex(ctx)
		if err != nil {
			return Digest{}, fmt.Errorf("cluster: digest: %w", err)
		}
		if before == after {
			d.AppliedIndex = after
			return d, nil
		}
		moved = append(moved, fmt.Sprintf("%d→%d", before, after))
	}
	return Digest{}, fmt.Errorf("cluster: digest: %w (applied index moved %s)", errUnsettled, strings.Join(moved, ", "))
}

func (dg *Digester) digestOnce(ctx context.Context, deep bool, verified map[[32]byte]bool) (Digest, error) {
	d := Digest{Format: DigestFormat, ID: dg.cfg.ID, URL: dg.cfg.URL, Deep: deep, Missing: []string{}, Corrupt: []string{}}
	h := sha256.New()
	var line []byte
	files := map[[32]byte]int64{}
	var invalid []string // hashes that are not hashes: corrupt metadata
	err := walkState(ctx, dg.cfg.Meta, func(e *DigestEntry) error {
		var err error
		line, err = appendEntry(line[:0], e)
		if err != nil {
			return err
		}
		h.Write(line)
		d.Entries++
		if e.Kind == EntryPath && e.Type == "file" {
			k, ok := hashKey(e.Hash)
			if !ok {
				invalid = append(invalid, e.Hash)
				return nil
			}
			files[k] = e.Size
		}
		return nil
	})
	if err != nil {
		return Digest{}, err
	}
	d.NamespaceDigest = hex.EncodeToString(h.Sum(nil))

	keys := make([][32]byte, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	ch := sha256.New()
	note := func(hx string, size int64, st contentStatus) {
		fmt.Fprintf(ch, "%s %d %s\n", hx, size, st)
		switch st {
		case contentMissing:
			d.MissingCount++
			if dg.cfg.Content.Fetching(hx) {
				d.Fetching++
			}
			if len(d.Missing) < MaxListed {
				d.Missing = append(d.Missing, hx)
			}
		case contentCorrupt:
			d.CorruptCount++
			if len(d.Corrupt) < MaxListed {
				d.Corrupt = append(d.Corrupt, hx)
			}
		}
	}
	slices.Sort(invalid)
	for _, hx := range slices.Compact(invalid) {
		note(hx, 0, contentCorrupt)
	}
	for _, k := range keys {
		hx, size := hex.EncodeToString(k[:]), files[k]
		st, err := checkContent(ctx, dg.cfg.Content, hx, size, deep && !verified[k])
		if err != nil {
			return Digest{}, err
		}
		if deep && st == contentOK {
			verified[k] = true
		}
		note(hx, size, st)
	}
	d.ContentObjects = int64(len(keys) + len(invalid))
	d.ContentDigest = hex.EncodeToString(ch.Sum(nil))
	d.ContentBacklog = dg.contentBacklog()
	return d, nil
}
