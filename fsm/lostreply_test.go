package fsm

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dfs-project/dfs/metastore"
)

// lostReplyStore commits every batch but reports the first lost commits
// as failures, as go-redis does when EXEC ran and its reply timed out.
type lostReplyStore struct {
	metastore.Store
	lose int // commits still to report as failed
}

func (s *lostReplyStore) Commit(ctx context.Context, b *metastore.Batch) error {
	if err := s.Store.Commit(ctx, b); err != nil {
		return err
	}
	if s.lose > 0 {
		s.lose--
		return errors.New("i/o timeout (reply lost)")
	}
	return nil
}

// TestLostCommitReply checks that an entry whose commit happened but was
// reported as failed answers with the outcome computed before the commit:
// a refused entry stays refused, a PUT keeps its inode (and ETag), and the
// reference hook runs once.
func TestLostCommitReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cmd      Command
		want     Code
		wantHash string // the result's inode must carry it
		refs     int    // reference hook calls expected
	}{
		{"refused lock", lockCmd("/d/a", "tok-2", false, false, 0), Locked, "", 0},
		{"refused mkcol", Command{Op: OpMkcol, Path: "/d"}, NotAllowed, "", 0},
		{"put", Command{Op: OpPut, Path: "/d/b", Hash: hB, Size: 2}, OK, hB, 1},
		{"lock", lockCmd("/d/c", "tok-3", false, false, 0), OK, EmptyHash, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func(*testing.T) metastore.Store) {
				ls := &lostReplyStore{Store: open(t)}
				refs := 0
				f := New(ls, zerolog.Nop(), WithReferenceHook(func(string, int64) { refs++ }))
				setup := []Command{
					{Op: OpInit},
					{Op: OpMkcol, Path: "/d"},
					{Op: OpPut, Path: "/d/a", Hash: hA, Size: 1},
					lockCmd("/d/a", "tok-1", false, false, 0),
				}
				for i := range setup {
					setup[i].Time = T(uint64(i + 1))
				}
				applyAll(t, f, setup, 1)
				refs = 0
				ls.lose = 1
				c := tc.cmd
				c.Time = T(10)
				data, err := c.Encode()
				if err != nil {
					t.Fatal(err)
				}
				r, err := f.ApplyEntry(context.Background(), 5, data)
				if err != nil {
					t.Fatal(err)
				}
				if r.Code != tc.want || r.Msg == "replayed" {
					t.Fatalf("outcome after a lost reply: %v %q, want %v", r.Code, r.Msg, tc.want)
				}
				if tc.wantHash != "" && r.Inode.Hash != tc.wantHash {
					t.Fatalf("result inode %+v, want hash %s", r.Inode, tc.wantHash)
				}
				if refs != tc.refs {
					t.Fatalf("reference hook called %d times, want %d", refs, tc.refs)
				}
				if i, _ := ls.AppliedIndex(context.Background()); i != 5 {
					t.Fatalf("applied index %d, want 5", i)
				}
				// A later replay of the same index is a plain replay.
				if r, err := f.ApplyEntry(context.Background(), 5, data); err != nil || r.Msg != "replayed" {
					t.Fatalf("replay after confirmation: %+v %v", r, err)
				}
			})
		})
	}
}
