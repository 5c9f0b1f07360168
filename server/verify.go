package server

import (
	"context"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/content"
)

// digestSource gives the cluster's digest endpoints (dfs cluster verify)
// this node's metadata and content store.
func (s *Server) digestSource() cluster.DigestSource {
	return cluster.DigestSource{Meta: s.meta, Content: contentChecker{s.blobs}}
}

// contentChecker presents the content store as cluster.ContentChecker.
type contentChecker struct{ s *content.Store }

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
