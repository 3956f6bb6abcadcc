// Package syncbuf is a bytes.Buffer that goroutines may write while another
// reads it: the sink for a child process's output or a logger that a test
// or tool inspects while the work it logs is still running.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes; its zero value is ready to use. Safe for
// concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
