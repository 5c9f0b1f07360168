package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dfs-project/dfs/metastore"
)

// callTimeout is how long one call may take with a cancelled context
// before the suite calls it a hang.
const callTimeout = 10 * time.Second

// A cancelled context makes every call fail promptly with an error that
// says so, and a cancelled Commit or Reset changes nothing.
func testCanceled(e *env) {
	check := populate(e)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := e.s.Get(ctx, dirA); return err }},
		{"Lookup", func() error { _, err := e.s.Lookup(ctx, dirA, "d"); return err }},
		{"List", func() error { _, err := e.s.List(ctx, dirB); return err }},
		{"Props", func() error { _, err := e.s.Props(ctx, 3); return err }},
		{"Locks", func() error { _, err := e.s.Locks(ctx); return err }},
		{"RefCount", func() error { _, err := e.s.RefCount(ctx, "h"); return err }},
		{"AppliedIndex", func() error { _, err := e.s.AppliedIndex(ctx); return err }},
		{"Commit", func() error {
			b := &metastore.Batch{Index: e.idx + 1}
			return e.s.Commit(ctx, b.PutInode(fileInode(77, 77)).Unlink(dirA, "d"))
		}},
		{"Reset", func() error { return e.s.Reset(ctx) }},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				e.t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, err)
			}
		case <-time.After(callTimeout):
			e.t.Fatalf("%s with a cancelled context did not return within %v", c.name, callTimeout)
		}
	}
	check()
	e.wantNoInode(77)
}

// Readers run alongside the writer without errors or torn reads; under
// -race this also checks the store's own synchronisation.
func testConcurrent(e *env) {
	e.commit(func(b *metastore.Batch) { b.PutInode(dirInode(dirA)) })
	const commits, readers = 100, 4
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ents, err := e.s.List(e.ctx, dirA)
				if err != nil {
					errs <- err
					return
				}
				// Each commit adds the next name in sort order, so any
				// consistent listing is a prefix of n0000, n0001, …
				for i, d := range ents {
					if want := fmt.Sprintf("n%04d", i); d.Name != want {
						errs <- fmt.Errorf("list entry %d is %q, want %q", i, d.Name, want)
						return
					}
				}
				if _, err := e.s.AppliedIndex(e.ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range commits {
		id := metastore.ID(100 + i)
		e.commit(func(b *metastore.Batch) {
			b.PutInode(fileInode(id, int64(i))).Link(dirA, fmt.Sprintf("n%04d", i), id)
		})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
	if got := len(e.list(dirA)); got != commits {
		e.t.Fatalf("List after %d commits: %d entries", commits, got)
	}
}
