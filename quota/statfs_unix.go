//go:build linux || darwin || freebsd

package quota

import (
	"fmt"
	"syscall"
)

// statfs returns the bytes an unprivileged process may still write on the
// filesystem holding dir and the filesystem's size.
func statfs(dir string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("quota: statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize) //nolint:unconvert // Bsize is int64 on Linux, uint32 on Darwin
	return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
}
