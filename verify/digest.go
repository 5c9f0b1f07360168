package verify

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
)

// This file is the node's side of replica verification (see verify.go for
// the side that compares nodes): GET /cluster/digest hashes the node's
// whole replicated state in a canonical order, and GET
// /cluster/digest/entries streams the entries it hashed, so that a
// verifier can name differences without any node holding more than one
// directory listing in memory.

// ContentChecker is what a digest needs of the node's content store.
type ContentChecker interface {
	// Size returns the size of the local object h, or an error wrapping
	// content.ErrNotFound when the node does not hold it (content.ErrCorrupt
	// when what it holds cannot be an object).
	Size(h string) (int64, error)
	// Verify re-hashes the whole object h (size bytes, as the metadata
	// says): nil when its bytes match its name, an error wrapping
	// content.ErrCorrupt or content.ErrNotFound otherwise.
	Verify(ctx context.Context, h string, size int64) error
	// Fetching reports whether the node is still getting the missing
	// object h from a peer (as opposed to no peer having it).
	Fetching(h string) bool
}

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

// apiError is a failure with the HTTP status to answer it with.
type apiError struct {
	status int
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// writeError answers err with its status and a JSON body {"error": ...},
// as the cluster API answers its failures; 503s carry Retry-After.
func (dg *Digester) writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 {
		dg.log.Warn().Err(err).Int("status", status).Msg("cluster request failed")
	}
	cluster.WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// Entry kinds, in the order a stream carries them.
const (
	EntryPath   = "path"
	EntryLock   = "lock"
	EntryMember = "member"
	entryEnd    = "end" // the trailer of GET /cluster/digest/entries
)

// DigestEntry is one canonical entry of a node's replicated state: a path
// of the namespace, a lock or a cluster member. Its JSON line is exactly
// what the namespace digest hashes.
type DigestEntry struct {
	Kind string `json:"kind"`
	// Path entries.
	Path        string `json:"path,omitempty"`
	Type        string `json:"type,omitempty"` // "file" or "collection"
	Size        int64  `json:"size,omitempty"`
	Hash        string `json:"hash,omitempty"`
	ETag        string `json:"etag,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Created     int64  `json:"created,omitempty"`  // Unix nanoseconds
	Modified    int64  `json:"modified,omitempty"` // Unix nanoseconds
	// Props are the dead properties, sorted by name (Clark notation).
	Props []Prop `json:"props,omitempty"`

	Lock   *metastore.Lock   `json:"lock,omitempty"`
	Member *metastore.Member `json:"member,omitempty"`

	// End is set on the trailer of an entries stream only.
	End *StreamEnd `json:"end,omitempty"`
}

// Prop is one dead property: its Clark name and its inner XML.
type Prop struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// StreamEnd is the last line of GET /cluster/digest/entries.
type StreamEnd struct {
	AppliedIndex uint64 `json:"applied_index"`
	// Settled is false when the node applied another entry while the
	// stream was read: the lines then mix two states.
	Settled         bool   `json:"settled"`
	Entries         int64  `json:"entries"`
	NamespaceDigest string `json:"namespace_digest"`
	// Error is set when the node failed part way; the stream is incomplete.
	Error string `json:"error,omitempty"`
}

// Key names an entry for comparisons across nodes: the path, the lock
// token or the member ID, prefixed by the kind for locks and members.
func (e *DigestEntry) Key() string {
	switch e.Kind {
	case EntryLock:
		if e.Lock != nil {
			return "lock " + e.Lock.Token
		}
	case EntryMember:
		if e.Member != nil {
			return "member " + e.Member.ID
		}
	}
	return e.Path
}

// compareEntries orders entries as a stream carries them: paths depth
// first with members in name order, then locks by token, then cluster
// members by ID.
func compareEntries(a, b *DigestEntry) int {
	rank := func(k string) int {
		switch k {
		case EntryPath:
			return 0
		case EntryLock:
			return 1
		case EntryMember:
			return 2
		}
		return 3
	}
	if c := rank(a.Kind) - rank(b.Kind); c != 0 {
		return c
	}
	switch a.Kind {
	case EntryPath:
		return comparePaths(a.Path, b.Path)
	case EntryLock, EntryMember:
		return strings.Compare(a.Key(), b.Key())
	}
	return 0
}

// comparePaths orders paths as a depth-first walk visits them: a
// collection before its members, members by name (bytewise, as the stores
// list them). Plain string order differs: "/a b" < "/a/x" but the walk
// visits /a/x (inside /a) first.
func comparePaths(a, b string) int {
	as, bs := strings.TrimPrefix(a, "/"), strings.TrimPrefix(b, "/")
	for {
		switch {
		case as == "" && bs == "":
			return 0
		case as == "":
			return -1
		case bs == "":
			return 1
		}
		ah, at, _ := strings.Cut(as, "/")
		bh, bt, _ := strings.Cut(bs, "/")
		if c := strings.Compare(ah, bh); c != 0 {
			return c
		}
		as, bs = at, bt
	}
}

// pathEntry is the canonical entry of one inode at path.
func pathEntry(path string, in metastore.Inode, props map[metastore.PropName]string) DigestEntry {
	e := DigestEntry{
		Kind:        EntryPath,
		Path:        path,
		Type:        "collection",
		ContentType: in.ContentType,
		Created:     in.Created,
		Modified:    in.Modified,
	}
	if !in.IsDir() {
		e.Type, e.Size, e.Hash, e.ETag = "file", in.Size, in.Hash, fsm.ETag(in)
	}
	if len(props) > 0 {
		e.Props = make([]Prop, 0, len(props))
		for n, v := range props {
			e.Props = append(e.Props, Prop{Name: n.Key(), Value: v})
		}
		slices.SortFunc(e.Props, func(x, y Prop) int { return strings.Compare(x.Name, y.Name) })
	}
	return e
}

// propsBatch bounds how many inodes' properties one PropsOf call reads.
const propsBatch = 512

// walkState calls fn for every entry of r's state in stream order: the
// namespace depth first from the root, then the locks, then the members.
// It holds one directory listing per level of depth, never the whole
// namespace.
func walkState(ctx context.Context, r metastore.Reader, fn func(*DigestEntry) error) error {
	root, err := r.Get(ctx, metastore.RootID)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		// A cluster whose first leader has not created the root yet.
	case err != nil:
		return fmt.Errorf("read the root: %w", err)
	default:
		props, err := r.Props(ctx, metastore.RootID)
		if err != nil {
			return fmt.Errorf("read properties of /: %w", err)
		}
		e := pathEntry("/", root, props)
		if err := fn(&e); err != nil {
			return err
		}
		if err := walkDir(ctx, r, "", metastore.RootID, fn); err != nil {
			return err
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return fmt.Errorf("read locks: %w", err)
	}
	slices.SortFunc(locks, func(a, b metastore.Lock) int { return strings.Compare(a.Token, b.Token) })
	for i := range locks {
		if err := fn(&DigestEntry{Kind: EntryLock, Lock: &locks[i]}); err != nil {
			return err
		}
	}
	members, err := r.Members(ctx)
	if err != nil {
		return fmt.Errorf("read the member table: %w", err)
	}
	slices.SortFunc(members, func(a, b metastore.Member) int { return strings.Compare(a.ID, b.ID) })
	for i := range members {
		if err := fn(&DigestEntry{Kind: EntryMember, Member: &members[i]}); err != nil {
			return err
		}
	}
	return nil
}

// walkDir emits the members of the collection dir (at path prefix) and,
// depth first, everything below them.
func walkDir(ctx context.Context, r metastore.Reader, prefix string, dir metastore.ID, fn func(*DigestEntry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := r.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s/: %w", prefix, err)
	}
	for lo := 0; lo < len(ents); lo += propsBatch {
		part := ents[lo:min(lo+propsBatch, len(ents))]
		ids := make([]metastore.ID, len(part))
		for i, e := range part {
			ids[i] = e.Inode.ID
		}
		props, err := r.PropsOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("read properties in %s/: %w", prefix, err)
		}
		for _, de := range part {
			p := prefix + "/" + de.Name
			e := pathEntry(p, de.Inode, props[de.Inode.ID])
			if err := fn(&e); err != nil {
				return err
			}
			if de.Inode.IsDir() {
				if err := walkDir(ctx, r, p, de.Inode.ID, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
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

// DigestWait bounds how long GET /cluster/digest?min-index=N waits for the
// node to apply N.
const DigestWait = 10 * time.Second

// errUnsettled is wrapped when the node kept applying entries while its
// state was read.
var errUnsettled = errors.New("the node kept applying log entries while its state was read")

// contentStatus is what a node holds for one referenced hash.
type contentStatus uint8

const (
	contentOK contentStatus = iota
	contentMissing
	contentCorrupt
)

func (s contentStatus) String() string {
	return [...]string{"ok", "missing", "corrupt"}[s]
}

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

// checkContent says whether the node holds hash h with the given size and,
// with deep, whether its bytes still hash to h.
func checkContent(ctx context.Context, cc ContentChecker, h string, size int64, deep bool) (contentStatus, error) {
	got, err := cc.Size(h)
	switch {
	case errors.Is(err, content.ErrNotFound):
		return contentMissing, nil
	case errors.Is(err, content.ErrCorrupt):
		return contentCorrupt, nil
	case err != nil:
		return 0, fmt.Errorf("content %s: %w", h, err)
	case got != size:
		return contentCorrupt, nil
	case !deep:
		return contentOK, nil
	}
	err = cc.Verify(ctx, h, size)
	switch {
	case err == nil:
		return contentOK, nil
	case errors.Is(err, content.ErrCorrupt):
		return contentCorrupt, nil
	case errors.Is(err, content.ErrNotFound):
		return contentMissing, nil
	}
	return 0, fmt.Errorf("verify content %s: %w", h, err)
}

func hashKey(h string) ([32]byte, bool) {
	var k [32]byte
	if !content.ValidHash(h) {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(h))
	return k, err == nil
}

// appendEntry appends e's canonical JSON line to b.
func appendEntry(b []byte, e *DigestEntry) ([]byte, error) {
	j, err := json.Marshal(e)
	if err != nil {
		return b, fmt.Errorf("encode entry %s: %w", e.Key(), err)
	}
	b = append(b, j...)
	return append(b, '\n'), nil
}

// waitIndex waits, at most DigestWait, until this node has applied index.
func (dg *Digester) waitIndex(ctx context.Context, index uint64) error {
	if index == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DigestWait)
	defer cancel()
	if err := dg.cfg.Raft.WaitApplied(ctx, index); err != nil {
		applied, _ := dg.cfg.Raft.AppliedIndex(context.WithoutCancel(ctx))
		return &apiError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("this node has applied %d, not %d, after waiting %s", applied, index, DigestWait), err: err}
	}
	return nil
}

// queryUint parses an optional unsigned query parameter.
func queryUint(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("query parameter %s=%q: want a log index (a non-negative integer)", name, s)}
	}
	return n, nil
}

// queryBool parses an optional boolean query parameter (1, true, 0, false).
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("query parameter %s=%q: want 1 or 0", name, s)}
	}
	return b, nil
}

// HandleDigest answers GET /cluster/digest[?deep=1][&min-index=N]. It
// needs the cluster secret: mount it behind clusterauth.Require (the
// node's route table, in package server, does).
func (dg *Digester) HandleDigest(w http.ResponseWriter, r *http.Request) {
	deep, err := queryBool(r, "deep")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	minIndex, err := queryUint(r, "min-index")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	if err := dg.waitIndex(r.Context(), minIndex); err != nil {
		dg.writeError(w, err)
		return
	}
	start := time.Now()
	d, err := dg.Digest(r.Context(), deep)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		if errors.Is(err, errUnsettled) {
			err = &apiError{status: http.StatusServiceUnavailable, msg: "no stable state to digest (writes are going on); retry", err: err}
		}
		dg.writeError(w, err)
		return
	}
	ev := dg.log.Debug()
	if d.MissingCount+d.CorruptCount > 0 {
		ev = dg.log.Warn() // an operator should see what verify found
	} else if deep {
		ev = dg.log.Info()
	}
	ev.Uint64("applied_index", d.AppliedIndex).Bool("deep", deep).Int64("entries", d.Entries).
		Int64("content_objects", d.ContentObjects).Int64("missing", d.MissingCount).Int64("corrupt", d.CorruptCount).
		Strs("missing_hashes", d.Missing).Strs("corrupt_hashes", d.Corrupt).
		Dur("took", time.Since(start)).Msg("state digested for verification")
	cluster.WriteJSON(w, http.StatusOK, d)
}

// HandleDigestEntries answers GET /cluster/digest/entries[?index=N]: the
// entries the namespace digest hashes, one JSON line each, then a trailer
// line {"kind":"end","end":{...}}. With index, the node first waits (at
// most DigestWait) until it has applied N, and answers 409 if it is
// already past N: the caller wants the state at N, which is gone. It needs
// the cluster secret, like HandleDigest.
func (dg *Digester) HandleDigestEntries(w http.ResponseWriter, r *http.Request) {
	index, err := queryUint(r, "index")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	if err := dg.waitIndex(r.Context(), index); err != nil {
		dg.writeError(w, err)
		return
	}
	ctx := r.Context()
	before, err := dg.cfg.Raft.AppliedIndex(ctx)
	if err != nil {
		dg.writeError(w, fmt.Errorf("cluster: digest entries: %w", err))
		return
	}
	if index != 0 && before != index {
		dg.writeError(w, &apiError{status: http.StatusConflict,
			msg: fmt.Sprintf("this node has applied %d, past the requested state at %d; ask for a new digest", before, index)})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	h := sha256.New()
	end := StreamEnd{AppliedIndex: before}
	var line []byte
	werr := walkState(ctx, dg.cfg.Meta, func(e *DigestEntry) error {
		var err error
		line, err = appendEntry(line[:0], e)
		if err != nil {
			return err
		}
		h.Write(line)
		end.Entries++
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	})
	end.NamespaceDigest = hashHex(h)
	if werr != nil {
		if ctx.Err() != nil {
			return
		}
		dg.log.Warn().Err(werr).Msg("digest entries stream failed")
		end.Error = werr.Error()
	} else if after, err := dg.cfg.Raft.AppliedIndex(ctx); err != nil {
		end.Error = err.Error()
	} else {
		end.Settled = after == before
	}
	line, _ = appendEntry(line[:0], &DigestEntry{Kind: entryEnd, End: &end})
	_, _ = bw.Write(line)
	_ = bw.Flush()
}

func hashHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
