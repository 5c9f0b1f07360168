//go:build !unix

package content

import (
	"fmt"
	"os"
)

// lockDir only opens the lock file where flock(2) does not exist: dfs runs
// on Linux, other platforms are for development only.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("content: open lock file: %w", err)
	}
	return f, nil
}
