// Package testport hands out loopback ports for servers a test starts
// later, in another process or after a restart, so it cannot simply listen
// on port 0 and keep the listener.
//
// A port that was free a moment ago can be taken before the server binds
// it. The kernel hands ports of its ephemeral range to every listener on
// port 0 and to every outgoing connection, of every test process running
// at the same time (go test runs packages in parallel), so ports are
// chosen below that range, at random, and never twice in one process.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the bottom of the range ports are chosen from: above the
// well-known and most registered service ports.
const lowest = 20000

// handedOut is process-wide on purpose: every test of the process draws
// from the same ports, and a port two nodes were both given makes a
// cluster that never forms.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Addr returns "127.0.0.1:P" for a port P that nobody listens on now and
// that no other caller in this process was given.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// Port is Addr's port alone.
func Port(t testing.TB) int {
	t.Helper()
	p, err := pick(ephemeralLow())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pick(top int) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		var p int
		if top > lowest+1000 {
			p = lowest + rand.IntN(top-lowest)
		} else {
			// The ephemeral range starts too low to stay below it.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, fmt.Errorf("testport: %w", err)
			}
			p = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use
		}
		l.Close()
		handedOut.ports[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("testport: no free loopback port below %d after 1000 tries", top)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// IANA's 49152 elsewhere).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 49152
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 49152
	}
	return low
}
