package executor

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLine caps the length of one line kept from a child's output.
const maxLine = 64 << 10

// lineWriter splits what is written to it into lines and calls fn with each, without the
// newline. Flush delivers a final unterminated line.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b...)
			if len(w.buf) > maxLine {
				w.Flush()
			}
			break
		}
		w.buf = append(w.buf, b[:i]...)
		b = b[i+1:]
		w.Flush()
	}
	return n, nil
}

// Flush delivers the buffered partial line, if any.
func (w *lineWriter) Flush() {
	if len(w.buf) == 0 {
		return
	}
	line := strings.TrimSuffix(string(w.buf), "\r")
	w.buf = w.buf[:0]
	w.fn(line)
}

// tail keeps the last n lines written to it.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	lw    lineWriter
}

func newTail(n int) *tail {
	t := &tail{n: n}
	t.lw.fn = func(line string) {
		const maxKept = 1000 // bytes per line in status.json
		if len(line) > maxKept {
			line = line[:maxKept] + "…"
		}
		if len(t.lines) == t.n {
			t.lines = append(t.lines[:0], t.lines[1:]...)
		}
		t.lines = append(t.lines, line)
	}
	return t
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lw.Write(b)
}

// String returns the kept lines, each ending in a newline, including a final partial line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lw.Flush()
	if len(t.lines) == 0 {
		return ""
	}
	return strings.Join(t.lines, "\n") + "\n"
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// multiWriter writes to every writer and ignores their errors, so that a full disk for
// stderr.log neither stops the tail nor fails the child (io.MultiWriter stops at an error).
type multiWriter []io.Writer

func (m multiWriter) Write(b []byte) (int, error) {
	for _, w := range m {
		_, _ = w.Write(b)
	}
	return len(b), nil
}
