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

// userRoot parses --user-root. Folders are per user, so it needs users:
// with the API open nobody is authenticated.
func userRoot(cfg *Config) (webdav.UserRoot, error) {
	if cfg.UserRoot == "" {
		return webdav.UserRoot{}, nil
	}
	if cfg.Auth.HtpasswdFile == "" {
		return webdav.UserRoot{}, errors.New("server: --user-root needs --htpasswd: folders are per user, and without it nobody is authenticated")
	}
	u, err := webdav.ParseUserRoot(cfg.UserRoot)
	if err != nil {
		return webdav.UserRoot{}, fmt.Errorf("server: --user-root: %w", err)
	}
	return u, nil
}
