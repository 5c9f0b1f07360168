package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/dfs-project/dfs/access"
	"github.com/dfs-project/dfs/webdav"
)

// openAccess reads --access-rules (package access). The rules name
// authenticated users, so they need --htpasswd: with the API open every
// request is anonymous and no rule could tell one person from another.
func (s *Server) openAccess() error {
	path := s.cfg.AccessRules
	if path == "" {
		return nil
	}
	if s.users == nil {
		return errors.New("server: --access-rules needs --htpasswd: the rules name users, and without it nobody is authenticated")
	}
	f, err := access.OpenFile(path, s.log)
	if err != nil {
		return fmt.Errorf("server: --access-rules: %w", err)
	}
	s.access = f
	s.log.Info().Str("access_rules", path).Msg("WebDAV access follows the per-path rules")
	return nil
}

// davAccess is the rules as webdav.Config wants them: a nil interface,
// not a nil *access.File, when there are none.
func (s *Server) davAccess() webdav.Access {
	if s.access == nil {
		return nil
	}
	return s.access
}

// watchAccess re-reads the rules file when it changes, until ctx ends.
func (s *Server) watchAccess(ctx context.Context) {
	if s.access != nil {
		s.access.Watch(ctx, usersPollInterval)
	}
}
