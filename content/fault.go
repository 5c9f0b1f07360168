package content

// FaultOp names a content store operation that a test build can make fail
// (see InjectFault, compiled only with the dfsfaults build tag). Release
// builds carry the names and a hook that always returns nil.
type FaultOp string

const (
	// FaultWrite is a write into a temp file: an upload, a push received
	// from the leader, a download from a peer.
	FaultWrite FaultOp = "write"
	// FaultSync is the fsync of a complete temp file before it becomes an
	// object.
	FaultSync FaultOp = "fsync"
	// FaultRead is a read of a block of a stored object.
	FaultRead FaultOp = "read"
)
