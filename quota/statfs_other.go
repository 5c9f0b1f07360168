//go:build !(linux || darwin || freebsd)

package quota

import (
	"errors"
	"fmt"
)

// statfs is not implemented here: free-space checks are off (New logs it).
func statfs(dir string) (free, total int64, err error) {
	return 0, 0, fmt.Errorf("quota: free space of %s: %w", dir, errors.ErrUnsupported)
}
