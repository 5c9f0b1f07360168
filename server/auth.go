package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dfs-project/dfs/auth"
)

// usersPollInterval is how often the htpasswd and device-token files are
// checked for changes: a revoked device password stops working on every
// node within about this long.
const usersPollInterval = time.Second

// newAuth builds the gate in front of WebDAV from cfg.Auth (see package
// auth). Without an htpasswd file the API is open, and the node says so.
func (s *Server) newAuth() (*auth.Authenticator, error) {
	o := s.cfg.Auth
	if o.HtpasswdFile == "" {
		if len(o.ReadOnlyUsers) > 0 {
			return nil, errors.New("server: --read-only-users needs --htpasswd: without it there are no users")
		}
		if o.DeviceTokensFile != "" {
			return nil, errors.New("server: --device-tokens needs --htpasswd: a device password belongs to one of its users")
		}
		s.log.Warn().Msg("no --htpasswd: the WebDAV API is OPEN, anyone who reaches this port can read, write and delete every file; " +
			"set --htpasswd (and create users with `dfs user add`) before exposing it")
		return auth.New(auth.Config{ClusterSecret: s.cfg.ClusterSecret, Log: s.log}), nil
	}
	if o.DeviceTokensFile == o.HtpasswdFile {
		return nil, errors.New("server: --device-tokens and --htpasswd name the same file: device passwords have a file of their own")
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
	cfg := auth.Config{
		Users:         users,
		ReadOnly:      o.ReadOnlyUsers,
		Realm:         o.Realm,
		ClusterSecret: s.cfg.ClusterSecret,
		// s.metrics is made after the gate, but before the listener
		// serves the first request.
		Observe: func(r auth.Result) { s.metrics.authResult(r) },
		Log:     s.log.With().Str("component", "auth").Logger(),
	}
	ev := s.log.Info()
	if o.DeviceTokensFile != "" {
		tokens, err := auth.OpenDeviceTokens(o.DeviceTokensFile, s.log)
		if err != nil {
			return nil, fmt.Errorf("server: --device-tokens: %w", err)
		}
		// Only a non-nil *DeviceTokens goes into the interface: a typed
		// nil would look configured.
		s.tokens, cfg.Tokens = tokens, tokens
		ev = ev.Str("device_tokens", o.DeviceTokensFile).Int("tokens", tokens.Len())
	}
	ev.Str("htpasswd", o.HtpasswdFile).Int("users", users.Len()).Strs("read_only", o.ReadOnlyUsers).
		Msg("WebDAV API requires HTTP Basic authentication")
	return auth.New(cfg), nil
}

// watchUsers re-reads the htpasswd and device-token files when they
// change, until ctx ends.
func (s *Server) watchUsers(ctx context.Context) {
	if s.tokens != nil {
		go s.tokens.Watch(ctx, usersPollInterval)
	}
	if s.users != nil {
		s.users.Watch(ctx, usersPollInterval)
	}
}
