package server

import (
	"context"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/replication"
)

// digestSource gives the cluster's digest endpoints (dfs cluster verify)
// this node's metadata and content store.
func (s *Server) digestSource() cluster.DigestSource {
	return cluster.DigestSource{Meta: s.meta, Content: contentChecker{s.blobs, s.content}}
}

// contentChecker presents the content store and its replication as
// cluster.ContentChecker.
type contentChecker struct {
	s *content.Store
	r *replication.Content
}

func (c contentChecker) Size(h string) (int64, error) {
	f, err := c.s.Open(h)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size(), nil
}

// Verify re-hashes the object; the store moves a corrupt one to its
// quarantine, so that the next read fetches a good copy from a peer.
func (c contentChecker) Verify(ctx context.Context, h string) error { return c.s.Verify(ctx, h) }

func (c contentChecker) Fetching(h string) bool { return c.r.Fetching(h) }
