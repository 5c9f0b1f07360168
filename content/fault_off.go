//go:build !dfsfaults

package content

// injected is the fault hook; without the dfsfaults build tag nothing is
// ever injected, and the call compiles to nothing.
func injected(FaultOp, string) error { return nil }
