package nomadtest

import (
	"bytes"
	"sync"
)

// lockedWriter collects the agent's output from its two pipes.
type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Keep the last 1 MiB: a long test must not grow without bound.
	if w.buf.Len() > 1<<20 {
		rest := append([]byte(nil), w.buf.Bytes()[w.buf.Len()/2:]...)
		w.buf.Reset()
		w.buf.Write(rest)
	}
	return w.buf.Write(p)
}
