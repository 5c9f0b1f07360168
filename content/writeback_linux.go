//go:build linux && !arm

package content

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writeback of dirty
// pages in the range without waiting for it.
const syncFileRangeWrite = 0x2

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, so that the device works while the rest of the upload is received
// and hashed, and Commit's fsync finds little left to do. It is advisory:
// durability comes from that fsync alone, so errors are ignored.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		_ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
	})
}
