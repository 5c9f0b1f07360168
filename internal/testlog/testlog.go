// Package testlog collects what a test's nodes log, from their goroutines
// or from a child process, so the test can read it while they run and show
// it when the test fails. t.Log cannot take that output itself: Raft's
// goroutines go on logging after a test's last line, which t.Log forbids.
package testlog

import (
	"bytes"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that goroutines and a process's stdout and
// stderr may write while the test reads it. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ShowOnFailure logs what l holds, under title, when t ends failed.
func (l *Buffer) ShowOnFailure(t testing.TB, title string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s:\n%s", title, l.String())
		}
	})
}
