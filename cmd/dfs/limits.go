package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/quota"
	"github.com/dfs-project/dfs/server"
	"github.com/dfs-project/dfs/webdav"
)

// limitsFlags are dfs server's quota, free-space and request limits
// (server.Limits, docs/limits.md).
func limitsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "quota-bytes", EnvVars: []string{"DFS_QUOTA_BYTES"},
			Usage: "cluster-wide quota in bytes on the logical size of all files (a copy counts again); a write beyond it gets 507 " +
				"Insufficient Storage, before the body is read when its size is known; 0: no quota. Give every node the same value: the leader's is in force"},
		&cli.Int64Flag{Name: "min-free-bytes", EnvVars: []string{"DFS_MIN_FREE_BYTES"}, Value: quota.DefaultMinFreeBytes,
			Usage: "low-water mark in bytes: uploads that would leave the data volume with less free space get 507, and a follower refuses content pushes; " +
				"the mark is the smaller of this and --min-free-percent; 0 turns it off"},
		&cli.Float64Flag{Name: "min-free-percent", EnvVars: []string{"DFS_MIN_FREE_PERCENT"}, Value: quota.DefaultMinFreePercent,
			Usage: "low-water mark as a percentage of the data volume's size (see --min-free-bytes; the smaller applies); 0 turns it off"},
		&cli.Int64Flag{Name: "max-upload-bytes", EnvVars: []string{"DFS_MAX_UPLOAD_BYTES"},
			Usage: "largest file one PUT may upload, in bytes; a larger Content-Length gets 413 before the body is read, a chunked body is stopped at the limit " +
				"with 413; 0: no limit (uploads stream, so size costs no memory; the quota and the low-water mark still bound the disk)"},
		&cli.IntFlag{Name: "max-concurrent-uploads", EnvVars: []string{"DFS_MAX_CONCURRENT_UPLOADS"}, Value: 64,
			Usage: "uploads this node receives at once (forwarded ones count on the leader, which stores them); one more gets 503 with Retry-After; 0: no limit"},
		&cli.StringFlag{Name: "propfind-infinity", EnvVars: []string{"DFS_PROPFIND_INFINITY"}, Value: "allow",
			Usage: "PROPFIND with Depth: infinity (or no Depth header): allow (bounded by --propfind-max-entries) or refuse " +
				"(403 with the RFC 4918 DAV:propfind-finite-depth precondition)"},
		&cli.Int64Flag{Name: "max-tree-entries", EnvVars: []string{"DFS_MAX_TREE_ENTRIES"}, Value: server.DefaultMaxTreeEntries,
			Usage: "most files and folders one COPY may copy; a larger tree gets 403 with the reason before anything is copied " +
				"(copy its subfolders one at a time); 0: no limit. Large copies and deletes are applied in steps of " +
				fmt.Sprint(fsm.TreeStep) + " entries whatever this says, so memory does not grow with the tree. The leader's value is in force"},
		&cli.IntFlag{Name: "propfind-max-entries", EnvVars: []string{"DFS_PROPFIND_MAX_ENTRIES"}, Value: webdav.DefaultPropfindMaxEntries,
			Usage: "most resources a Depth: infinity PROPFIND may list; a larger tree gets 403 with DAV:propfind-finite-depth (Depth: 0 and 1 are not bounded)"},
	}
}

// limitsConfig reads limitsFlags.
func limitsConfig(c *cli.Context) server.Limits {
	return server.Limits{
		QuotaBytes:           c.Int64("quota-bytes"),
		MinFreeBytes:         c.Int64("min-free-bytes"),
		MinFreePercent:       c.Float64("min-free-percent"),
		MaxUploadBytes:       c.Int64("max-upload-bytes"),
		MaxConcurrentUploads: c.Int("max-concurrent-uploads"),
		PropfindInfinity:     c.String("propfind-infinity"),
		PropfindMaxEntries:   c.Int("propfind-max-entries"),
		MaxTreeEntries:       c.Int64("max-tree-entries"),
	}
}
