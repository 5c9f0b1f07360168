//go:build dfsfaults

package content

import (
	"os"
	"strings"
	"sync"
)

// Fault injection for tests, compiled only with -tags dfsfaults: a disk
// that fails (EIO) or fills up (ENOSPC) under a running node, on one node
// of an in-process cluster. Release builds have no way to inject anything.

type fault struct {
	op    FaultOp
	dir   string // files under it are affected
	after int    // matching operations that still succeed first
	count int    // failures left; negative: until ClearFaults
	err   error
}

var faults struct {
	mu   sync.Mutex
	list []*fault
}

// InjectFault makes operations op on files under dir (a Store's directory)
// fail with err, wrapped in an *os.PathError as the operating system's own
// errors are: the first after matching operations succeed, the next count
// fail (count < 0: every one until ClearFaults).
func InjectFault(dir string, op FaultOp, after, count int, err error) {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	faults.list = append(faults.list, &fault{op: op, dir: dir, after: after, count: count, err: err})
}

// ClearFaults removes every injected fault.
func ClearFaults() {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	faults.list = nil
}

// injected returns the error injected for op on the file name, or nil.
func injected(op FaultOp, name string) error {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	for _, f := range faults.list {
		if f.op != op || f.count == 0 || !strings.HasPrefix(name, f.dir+string(os.PathSeparator)) {
			continue
		}
		if f.after > 0 {
			f.after--
			continue
		}
		if f.count > 0 {
			f.count--
		}
		return &os.PathError{Op: string(op), Path: name, Err: f.err}
	}
	return nil
}
