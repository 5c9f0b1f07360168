package server

import (
	"context"
	"errors"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/contentrepl"
	"github.com/dfs-project/dfs/verify"
)

// newDigester gives replica verification (dfs cluster verify, package
// verify) this node's metadata and content store; its endpoints are in the
// route table beside the cluster's.
func (s *Server) newDigester() (*verify.Digester, error) {
	return verify.NewDigester(verify.Config{
		ID:      s.cfg.ID,
		URL:     s.url,
		Raft:    s.node,
		Meta:    s.meta,
		Content: contentChecker{s.blobs, s.content},
		Backlog: s.cluster.ContentBacklog,
		Log:     s.log,
	})
}

// contentChecker presents the content store and its replication as
// verify.ContentChecker.
type contentChecker struct {
	s *content.Store
	r *contentrepl.Content
}

func (c contentChecker) Size(h string) (int64, error) {
	f, err := c.s.Open(h)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size(), nil
}

// Verify re-hashes the object. The store moves a corrupt one to its
// quarantine; the node then lacks referenced content, so it is queued for
// fetching from a peer at once rather than on the next read of the file.
func (c contentChecker) Verify(ctx context.Context, h string, size int64) error {
	err := c.s.Verify(ctx, h)
	if errors.Is(err, content.ErrCorrupt) {
		c.r.Notify(h, size)
	}
	return err
}

func (c contentChecker) Fetching(h string) bool { return c.r.Fetching(h) }
