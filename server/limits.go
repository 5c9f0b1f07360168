package server

import (
	"fmt"
	"strings"

	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/quota"
	"github.com/dfs-project/dfs/webdav"
)

// Limits configures the quota, the data volume's low-water mark and the
// request limits of a node (docs/limits.md). The zero value imposes none;
// `dfs server` sets the documented defaults.
type Limits struct {
	// QuotaBytes is the cluster-wide quota on the logical bytes of all
	// files (0: none). Every node should be given the same value: the
	// leader's is the one in force.
	QuotaBytes int64
	// MinFreeBytes and MinFreePercent: the node keeps the smaller of the
	// two free on its data volume (0 in either: no low-water mark).
	MinFreeBytes   int64
	MinFreePercent float64
	// MaxUploadBytes is the largest PUT body (0: no limit).
	MaxUploadBytes int64
	// MaxConcurrentUploads is how many uploads this node receives at once
	// (0: no limit).
	MaxConcurrentUploads int
	// PropfindInfinity is "allow" (the default when empty) or "refuse".
	PropfindInfinity string
	// PropfindMaxEntries bounds an allowed Depth: infinity PROPFIND
	// (0: webdav.DefaultPropfindMaxEntries).
	PropfindMaxEntries int
	// MaxTreeEntries bounds the subtree one COPY may copy (0: no limit).
	// The leader's value is in force.
	MaxTreeEntries int64
}

// DefaultMaxTreeEntries is dfs server's --max-tree-entries. A COPY is
// built in bounded steps whatever its size, so the limit is about the
// work and space a single request may cause, not about memory: a million
// entries take minutes to copy and reference counts for every file.
const DefaultMaxTreeEntries = 1_000_000

// ParsePropfindInfinity parses a --propfind-infinity value: true for
// "allow" (or empty), false for "refuse".
func ParsePropfindInfinity(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "allow":
		return true, nil
	case "refuse":
		return false, nil
	}
	return false, fmt.Errorf("unknown value %q (want allow or refuse)", s)
}

// newLimits builds the node's storage accounting and the WebDAV limits.
func newLimits(l Limits, dataDir string, meta metastore.Reader) (*quota.Space, webdav.Limits, error) {
	infinity, err := ParsePropfindInfinity(l.PropfindInfinity)
	if err != nil {
		return nil, webdav.Limits{}, fmt.Errorf("--propfind-infinity: %w", err)
	}
	if l.MaxTreeEntries < 0 {
		return nil, webdav.Limits{}, fmt.Errorf("--max-tree-entries must not be negative (%d)", l.MaxTreeEntries)
	}
	if l.MaxUploadBytes < 0 || l.MaxConcurrentUploads < 0 || l.PropfindMaxEntries < 0 {
		return nil, webdav.Limits{}, fmt.Errorf("limits must not be negative: --max-upload-bytes %d, --max-concurrent-uploads %d, --propfind-max-entries %d",
			l.MaxUploadBytes, l.MaxConcurrentUploads, l.PropfindMaxEntries)
	}
	space, err := quota.New(quota.Config{
		Dir:            dataDir,
		QuotaBytes:     l.QuotaBytes,
		MinFreeBytes:   l.MinFreeBytes,
		MinFreePercent: l.MinFreePercent,
	}, meta)
	if err != nil {
		return nil, webdav.Limits{}, err
	}
	return space, webdav.Limits{
		MaxUploadBytes:       l.MaxUploadBytes,
		MaxConcurrentUploads: l.MaxConcurrentUploads,
		PropfindInfinity:     infinity,
		PropfindMaxEntries:   l.PropfindMaxEntries,
		Space:                space,
	}, nil
}

// logLimits says at start what the node enforces.
func (s *Server) logLimits(space *quota.Space) {
	ev := s.log.Info().Int64("quota_bytes", s.cfg.Limits.QuotaBytes).
		Int64("max_upload_bytes", s.cfg.Limits.MaxUploadBytes).
		Int("max_concurrent_uploads", s.cfg.Limits.MaxConcurrentUploads)
	if free, low, err := space.Disk(); err == nil {
		ev = ev.Int64("disk_free_bytes", free).Int64("low_water_bytes", low)
	} else {
		s.log.Warn().Err(err).Msg("free space of the data volume cannot be read: no low-water mark")
	}
	ev.Msg("storage limits")
}
