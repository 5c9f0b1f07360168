package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dfs-project/dfs/auth"
)

// usersPollInterval is how often the htpasswd file is checked for changes.
const usersPollInterval = time.Second

// newAuth builds the gate in front of WebDAV from cfg.Auth (see package
// auth). Without an htpasswd file the API is open, and the node says so.
func (s *Server) newAuth() (*auth.Authenticator, error) {
	o := s.cfg.Auth
	if o.HtpasswdFile == "" {
		if len(o.ReadOnlyUsers) > 0 {
			return nil, errors.New("server: --read-only-users needs --htpasswd: without it there are no users")
		}
		s.log.Warn().Msg("no --htpasswd: the WebDAV API is OPEN, anyone who reaches this port can read, write and delete every file; " +
			"set --htpasswd (and create users with `dfs user add`) before exposing it")
		return auth.New(auth.Config{ClusterSecret: s.cfg.ClusterSecret, Log: s.log}), nil
	}
	users, err := auth.OpenUsers(o.HtpasswdFile, s.log)
	if err != nil {
		return nil, fmt.Errorf("server: --htpasswd: %w", err)
	}
	for _, u := range o.ReadOnlyUsers {
		if err := auth.ValidUserName(u); err != nil {
			return nil, fmt.Errorf("server: --read-only-users: %q: %w", u, err)
		}
		if !users.Has(u) {
			s.log.Warn().Str("user", u).Msg("read-only user is not in the htpasswd file (yet)")
		}
	}
	s.users = users
	s.log.Info().Str("htpasswd", o.HtpasswdFile).Int("users", users.Len()).Strs("read_only", o.ReadOnlyUsers).
		Msg("WebDAV API requires HTTP Basic authentication")
	return auth.New(auth.Config{
		Users:         users,
		ReadOnly:      o.ReadOnlyUsers,
		Realm:         o.Realm,
		ClusterSecret: s.cfg.ClusterSecret,
		// s.metrics is made after the gate, but before the listener
		// serves the first request.
		Observe: func(r auth.Result) { s.metrics.authResult(r) },
		Log:     s.log.With().Str("component", "auth").Logger(),
	}), nil
}

// watchUsers re-reads the htpasswd file when it changes, until ctx ends.
func (s *Server) watchUsers(ctx context.Context) {
	if s.users != nil {
		s.users.Watch(ctx, usersPollInterval)
	}
}
