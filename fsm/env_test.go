package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/internal/testredis"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/metastore/boltstore"
	"github.com/dfs-project/dfs/metastore/redisstore"
)

// backend opens fresh, empty stores of one kind.
type backend struct {
	name string
	open func(t *testing.T) metastore.Store
}

// redisStores opens stores on one redis-server, each under its own key
// prefix, so a test starts one server however many stores it uses.
func redisStores(top *testing.T) func(t *testing.T) metastore.Store {
	url := testredis.Start(top)
	var n atomic.Int64
	return func(t *testing.T) metastore.Store {
		t.Helper()
		s, err := redisstore.Open(context.Background(), url, redisstore.WithPrefix(fmt.Sprintf("t%d:", n.Add(1))))
		if err != nil {
			t.Fatalf("redisstore.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func openBolt(t *testing.T) metastore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func backends(t *testing.T) []backend {
	return []backend{
		{"bolt", openBolt},
		{"redis", redisStores(t)},
	}
}

// forEachStore runs fn once per store kind, each on a fresh store.
func forEachStore(t *testing.T, fn func(t *testing.T, open func(*testing.T) metastore.Store)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open) })
	}
}

// env is a state machine over one store plus the bookkeeping to feed it
// consecutive log entries.
type env struct {
	t        *testing.T
	ctx      context.Context
	s        metastore.Store
	f        *FSM
	index    uint64
	last     *metastore.Batch
	raw      *metastore.Batch // built by tests that write the store directly
	released []string
}

func newEnv(t *testing.T, s metastore.Store) *env {
	e := &env{t: t, ctx: context.Background(), s: s}
	e.f = New(s, zerolog.Nop(),
		WithReleaseHook(func(h string) { e.released = append(e.released, h) }),
		WithTempDir(t.TempDir()),
		withBatchHook(func(b *metastore.Batch) { e.last = b }))
	return e
}

// T is the time of the entry at index i in these tests.
func T(i uint64) int64 { return 1_000_000 + int64(i)*1000 }

// apply applies c as the next entry; a zero Time becomes T(index).
func (e *env) apply(c Command) *Result {
	e.t.Helper()
	e.index++
	if c.Time == 0 {
		c.Time = T(e.index)
	}
	data, err := c.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.f.ApplyEntry(e.ctx, e.index, data)
	if err != nil {
		e.t.Fatalf("ApplyEntry(%d, %+v): %v", e.index, c, err)
	}
	applied, err := e.s.AppliedIndex(e.ctx)
	if err != nil || applied != e.index {
		e.t.Fatalf("after entry %d: applied index %d, %v", e.index, applied, err)
	}
	return res
}

// ok applies c and fails the test unless it succeeds.
func (e *env) ok(c Command) *Result {
	e.t.Helper()
	r := e.apply(c)
	if r.Code != OK {
		e.t.Fatalf("%s %s: %v (%s)", c.Op, c.Path, r.Code, r.Msg)
	}
	return r
}

// code applies c and checks its outcome code; a refused entry must commit
// an empty batch.
func (e *env) code(c Command, want Code) *Result {
	e.t.Helper()
	r := e.apply(c)
	if r.Code != want {
		e.t.Fatalf("%s %s -> %s: got %v (%s), want %v", c.Op, c.Path, c.Dest, r.Code, r.Msg, want)
	}
	if want != OK && len(e.last.Ops) != 0 {
		e.t.Fatalf("refused %s committed %d ops", c.Op, len(e.last.Ops))
	}
	return r
}

func (e *env) init() { e.t.Helper(); e.ok(Command{Op: OpInit}) }

func (e *env) put(p, hash string) *Result {
	e.t.Helper()
	return e.ok(Command{Op: OpPut, Path: p, Hash: hash, Size: int64(len(hash))})
}

func (e *env) mkcol(p string) *Result {
	e.t.Helper()
	return e.ok(Command{Op: OpMkcol, Path: p})
}

func (e *env) stat(p string) (metastore.Inode, bool) {
	e.t.Helper()
	in, err := Resolve(e.ctx, e.s, p)
	if errors.Is(err, metastore.ErrNotFound) {
		return metastore.Inode{}, false
	}
	if err != nil {
		e.t.Fatalf("Resolve(%s): %v", p, err)
	}
	return in, true
}

func (e *env) mustStat(p string) metastore.Inode {
	e.t.Helper()
	in, ok := e.stat(p)
	if !ok {
		e.t.Fatalf("%s does not exist", p)
	}
	return in
}

func (e *env) gone(p string) {
	e.t.Helper()
	if _, ok := e.stat(p); ok {
		e.t.Fatalf("%s still exists", p)
	}
}

func (e *env) refs(hash string) int64 {
	e.t.Helper()
	n, err := e.s.RefCount(e.ctx, hash)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) wantRefs(hash string, want int64) {
	e.t.Helper()
	if got := e.refs(hash); got != want {
		e.t.Fatalf("refcount(%s) = %d, want %d", hash, got, want)
	}
}

func (e *env) props(id metastore.ID) map[metastore.PropName]string {
	e.t.Helper()
	p, err := e.s.Props(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) locks() []metastore.Lock {
	e.t.Helper()
	l, err := e.s.Locks(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// commitRaw commits e.raw as the next entry, bypassing the state machine.
func (e *env) commitRaw() {
	e.t.Helper()
	e.index++
	e.raw.Index = e.index
	if err := e.s.Commit(e.ctx, e.raw); err != nil {
		e.t.Fatalf("commit raw batch: %v", err)
	}
	e.raw = nil
}

// dumpState is the dump without its applied-index line.
func (e *env) dumpState() string {
	e.t.Helper()
	d := e.dump()
	return d[strings.IndexByte(d, '\n')+1:]
}

func (e *env) dump() string {
	e.t.Helper()
	return dump(e.t, e.s)
}

func dump(t *testing.T, r metastore.Reader) string {
	t.Helper()
	var b bytes.Buffer
	if err := Dump(context.Background(), r, &b); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return b.String()
}

// lock builds an OpLock entry.
func lockCmd(p, token string, infinite, shared bool, expires int64, tokens ...string) Command {
	return Command{Op: OpLock, Path: p, Tokens: tokens, Lock: &metastore.Lock{
		Token: token, Root: p, Infinite: infinite, Shared: shared, Owner: "<href>o</href>", Expires: expires,
	}}
}

// diffLines reports the first differing line of two dumps.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  %s\n  %s", i+1, x, y)
		}
	}
	return ""
}
