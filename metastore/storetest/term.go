package storetest

import (
	"errors"

	"github.com/dfs-project/dfs/metastore"
)

func (e *env) wantPosition(want metastore.Position) {
	e.t.Helper()
	got, err := e.s.AppliedPosition(e.ctx)
	if err != nil {
		e.t.Fatalf("AppliedPosition: %v", err)
	}
	if got != want {
		e.t.Fatalf("AppliedPosition = %+v, want %+v", got, want)
	}
	e.wantApplied(want.Index)
}

// The term of a batch's entry is recorded with its index, in the same
// atomic step: a batch the store refuses changes neither, a later batch
// replaces both (a term of 0 included, so no earlier term stays beside a
// newer index), Reset clears both and a reopened store still has them.
// The state machine tells its own store from another history's by them.
func testAppliedTerm(e *env) {
	e.wantPosition(metastore.Position{})
	commit := func(idx, term uint64, fill func(*metastore.Batch)) error {
		b := &metastore.Batch{Index: idx, Term: term}
		if fill != nil {
			fill(b)
		}
		return e.s.Commit(e.ctx, b)
	}
	steps := []struct {
		name        string
		index, term uint64
		bad         bool // the batch holds an op no store knows
		wantErr     error
		want        metastore.Position
	}{
		{name: "first batch", index: 3, term: 2, want: metastore.Position{Index: 3, Term: 2}},
		{name: "same term", index: 4, term: 2, want: metastore.Position{Index: 4, Term: 2}},
		{name: "new term", index: 9, term: 5, want: metastore.Position{Index: 9, Term: 5}},
		{name: "stale batch of another term", index: 9, term: 7, wantErr: metastore.ErrStaleBatch, want: metastore.Position{Index: 9, Term: 5}},
		{name: "failed batch", index: 10, term: 6, bad: true, want: metastore.Position{Index: 9, Term: 5}},
		{name: "term unknown", index: 11, term: 0, want: metastore.Position{Index: 11}},
		{name: "term again", index: 12, term: 6, want: metastore.Position{Index: 12, Term: 6}},
	}
	for _, st := range steps {
		err := commit(st.index, st.term, func(b *metastore.Batch) {
			b.PutInode(fileInode(metastore.ID(st.index), 1))
			if st.bad {
				b.Ops = append(b.Ops, metastore.Op{Kind: 200})
			}
		})
		switch {
		case st.bad && err == nil:
			e.t.Fatalf("%s: Commit of a batch with an unknown op kind succeeded", st.name)
		case !st.bad && st.wantErr == nil && err != nil:
			e.t.Fatalf("%s: Commit(index %d, term %d): %v", st.name, st.index, st.term, err)
		case st.wantErr != nil && !errors.Is(err, st.wantErr):
			e.t.Fatalf("%s: Commit(index %d, term %d) = %v, want %v", st.name, st.index, st.term, err, st.wantErr)
		}
		e.wantPosition(st.want)
	}
	e.s = e.f.Reopen(e.t, e.s)
	e.wantPosition(metastore.Position{Index: 12, Term: 6})
	if err := e.s.Reset(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.wantPosition(metastore.Position{})
	if err := commit(1, 3, nil); err != nil {
		e.t.Fatal(err)
	}
	e.wantPosition(metastore.Position{Index: 1, Term: 3})
}
