package devmesh

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
)

// prefixWriter prefixes each line of one process's output. Every writer
// of a mesh shares outMu, so whole lines from different processes never
// interleave.
type prefixWriter struct {
	out    io.Writer
	outMu  *sync.Mutex
	prefix string
	mu     sync.Mutex
	buf    []byte
}

// Write prefixes every complete line; a partial line waits for its end.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.emit(p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) emit(line []byte) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	fmt.Fprintf(p.out, "%s%s", p.prefix, line)
}

// flush writes a last line without a newline.
func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

var palette = []string{"36", "35", "33", "32", "34", "31", "96", "95", "93", "92"}

// paint colors s by key when colors are on.
func (m *Mesh) paint(key, s string) string {
	if !m.cfg.Color {
		return s
	}
	if key == "mesh" {
		return "\x1b[1m" + s + "\x1b[0m"
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return "\x1b[" + palette[int(h.Sum32())%len(palette)] + "m" + s + "\x1b[0m"
}
