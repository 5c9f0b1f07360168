// Package testdisk damages files in place the way a failing disk does, for
// the tests of content checksums, read repair and scrub.
package testdisk

import (
	"fmt"
	"os"
)

// FlipByte inverts the lowest bit of the byte at off in the file at path,
// leaving its size and every other byte as they were.
func FlipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("testdisk: %w", err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("testdisk: read %s at %d: %w", path, off, err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("testdisk: write %s at %d: %w", path, off, err)
	}
	return f.Close()
}
