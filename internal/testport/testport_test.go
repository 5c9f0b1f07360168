package testport

import (
	"net"
	"testing"
)

func TestPortsAreFreeDistinctAndBelowEphemeral(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 200 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if low > lowest+1000 && (p < lowest || p >= low) {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, low)
		}
	}
	// What Addr hands out can be listened on.
	l, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("listen on a handed-out address: %v", err)
	}
	l.Close()
}
