package webdav_test

// This file assembles a Handler in-process without Raft or a listener, for
// tests that need what a real node does not let them choose: the peer
// address and TLS state of a request, the handler's configuration per
// case, or the results the state machine returns. The metadata store
// (embedded) and the state machine are real; the Node applies each entry
// directly, in order, or answers what a test tells it to; content lives
// in memory. The auth gate in front is the real one.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/auth"
	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/webdav"
)

// harnessSecret is the cluster secret of the harness's gate.
const harnessSecret = "harness-cluster-secret"

// harnessOptions configures a harness.
type harnessOptions struct {
	users          map[string]string // name → password; nil: the API is open
	publicURLs     []string
	trustedProxies []string
	intact         func(context.Context) error // the check of Config.StoreGuard
	rules          string                      // access rules (package access) in YAML; "" none
	userRoot       string                      // --user-root pattern; "" none
}

// harness is one in-process handler behind the auth gate.
type harness struct {
	t     testing.TB
	store metastore.Store
	node  *directNode
	h     http.Handler
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	node := &directNode{f: fsm.New(store, zerolog.Nop())}
	publicURLs, err := webdav.ParsePublicURLs(o.publicURLs)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := webdav.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		t.Fatal(err)
	}
	var rules webdav.Access
	if o.rules != "" {
		r, err := access.Parse(strings.NewReader(o.rules))
		if err != nil {
			t.Fatal(err)
		}
		rules = r
	}
	userRoot, err := webdav.ParseUserRoot(o.userRoot)
	if err != nil {
		t.Fatal(err)
	}
	dav := webdav.New(webdav.Config{
		Meta: store, Node: node, Blobs: newMemBlobs(), Log: zerolog.Nop(),
		PublicURLs: publicURLs, TrustedProxies: trusted, StoreGuard: guardOf(o.intact),
		Access: rules, UserRoot: userRoot,
	})
	acfg := auth.Config{ClusterSecret: harnessSecret, Log: zerolog.Nop()}
	if o.users != nil {
		var b strings.Builder
		for name, pw := range o.users {
			hash, err := auth.HashPassword(pw, bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:%s\n", name, hash)
		}
		path := filepath.Join(t.TempDir(), "users.htpasswd")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := auth.OpenUsers(path, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		acfg.Users = users
	}
	hs := &harness{t: t, store: store, node: node, h: auth.New(acfg).Wrap(dav)}
	if _, err := node.Propose(context.Background(), &fsm.Command{Op: fsm.OpInit}); err != nil {
		t.Fatal(err)
	}
	return hs
}

// hreq is one request to a harness.
type hreq struct {
	method, target, body string
	user                 string // Basic credentials of this user (password: user+"-pw"); "" none
	hdr                  hdr    // "Host" sets the request's Host
	remote               string // RemoteAddr; default 192.0.2.10:40000
	tls                  bool   // the request came over TLS
	fromNode             string // forwarded by a node for this user: the cluster secret and X-Dfs-User (no Basic credentials)
}

func (hs *harness) do(q hreq) response {
	hs.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, "http://node.internal:8080"+q.target, body)
	r.RemoteAddr = "192.0.2.10:40000"
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	if q.user != "" {
		r.Header.Set("Authorization", auth.FormatBasic(q.user, q.user+"-pw"))
	}
	if q.fromNode != "" {
		r.Header.Set(clusterauth.Header, harnessSecret)
		r.Header.Set(auth.UserHeader, q.fromNode)
	}
	for k, v := range q.hdr {
		if strings.EqualFold(k, "Host") {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// must sends q and fails the test unless the status is want.
func (hs *harness) must(want int, q hreq) response {
	hs.t.Helper()
	r := hs.do(q)
	if r.status != want {
		hs.t.Fatalf("%s %s (user %q): got %s, want %d", q.method, q.target, q.user+q.fromNode, r, want)
	}
	return r
}

// content is what the store holds at p: the file's hash, "<dir>" for a
// collection, "" for nothing.
func (hs *harness) content(p string) string {
	hs.t.Helper()
	ino, err := fsm.Resolve(context.Background(), hs.store, p)
	if errors.Is(err, metastore.ErrNotFound) {
		return ""
	}
	if err != nil {
		hs.t.Fatal(err)
	}
	if ino.IsDir() {
		return "<dir>"
	}
	return ino.Hash
}

// directNode applies every proposed entry to its state machine at once,
// as a single-node cluster would, unless answer is set: then it answers
// that instead, applying nothing.
type directNode struct {
	mu     sync.Mutex
	f      *fsm.FSM
	index  uint64
	answer func(cmd *fsm.Command) (*fsm.Result, error)
	seen   []fsm.Command // every entry proposed, as proposed
}

func (n *directNode) Propose(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = append(n.seen, *cmd)
	if n.answer != nil {
		return n.answer(cmd)
	}
	cmd.Time = time.Now().UnixNano()
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	n.index++
	return n.f.ApplyEntry(ctx, n.index, data)
}

// last is the last entry proposed.
func (n *directNode) last() fsm.Command {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[len(n.seen)-1]
}

// memBlobs is a content store in memory.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newMemBlobs() *memBlobs { return &memBlobs{blobs: map[string][]byte{}} }

func (b *memBlobs) Write(_ context.Context, r io.Reader) (string, int64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	b.mu.Lock()
	b.blobs[h] = data
	b.mu.Unlock()
	return h, int64(len(data)), nil
}

func (b *memBlobs) Unpin(string)                    {}
func (b *memBlobs) Discard(context.Context, string) {}

func (b *memBlobs) Open(_ context.Context, hash string, _ int64) (webdav.ContentReader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[hash]
	if !ok && hash == fsm.EmptyHash {
		data, ok = []byte{}, true
	}
	if !ok {
		return nil, os.ErrNotExist
	}
	return nopCloser{bytes.NewReader(data)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// guardOf is a Config.StoreGuard whose checks are check (nil: no guard).
func guardOf(check func(context.Context) error) func() webdav.Guard {
	if check == nil {
		return nil
	}
	return func() webdav.Guard { return funcGuard(check) }
}

// funcGuard is a webdav.Guard whose two checks are the one function: a
// test's store is intact or it is not, whatever the read.
type funcGuard func(context.Context) error

func (g funcGuard) Check(ctx context.Context) error { return g(ctx) }
func (g funcGuard) CheckSeen(uint64) error          { return g(context.Background()) }
