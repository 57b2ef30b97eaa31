package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/executor"
)

// GenerateCommand is the hidden subcommand of the runner binary that runs one generation.
const GenerateCommand = "_generate"

// Kinds of ChildEvent, in the order a child prints them: one start, frames, one done.
const (
	EventStart = "start"
	EventFrame = "frame"
	EventDone  = "done"
)

// ChildEvent is one JSON line on the generation child's stdout; the server relays each to the
// browser unchanged as a server-sent event named by Kind. Images are PNG (GIF for the
// animation) bytes, which encoding/json writes as base64, ready for a data: URL.
type ChildEvent struct {
	Kind string `json:"kind"`
	// start
	Sampler string `json:"sampler,omitempty"` // e.g. "ddim(η=0, 20 steps, trailing)"
	Weights string `json:"weights,omitempty"` // "ema" or "raw"
	Steps   int    `json:"steps,omitempty"`
	// frame: Step of Steps done from timestep T; X is x after the step, X0 the predicted x̂_0.
	Step      int     `json:"step,omitempty"`
	T         int     `json:"t"`
	X         []byte  `json:"x,omitempty"`
	X0        []byte  `json:"x0,omitempty"`
	MsPerStep float64 `json:"ms_per_step,omitempty"` // wall time per step since the last frame
	// done: the final grid and the denoising animation.
	PNG     []byte  `json:"png,omitempty"`
	GIF     []byte  `json:"gif,omitempty"`
	Seconds float64 `json:"seconds,omitempty"` // sampling time
	// Sent is when the child wrote the line (Unix nanoseconds), to measure the relay.
	Sent int64 `json:"sent"`
}

// maxEventLine bounds one line of the child's output: 16 frames of 64×64 RGB grids as PNG
// with base64 stay far below it.
const maxEventLine = 32 << 20

// runChild runs one generation child for p and hands each event line to emit, in order. When
// ctx ends (the browser left) or emit fails, the child is killed. The error of a child that
// fails carries the last line of its stderr.
func (s *Server) runChild(ctx context.Context, p Params, emit func(kind string, line []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append([]string{GenerateCommand, "--store", s.opts.Store.Root}, p.childArgs()...)
	cmd := exec.CommandContext(ctx, s.opts.Exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), s.opts.ChildEnv...)
	cmd.Env = append(cmd.Env, executor.ChildEnv(cmd.Env)...)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the generation child: %w", err)
	}
	s.children.Add(1)
	defer s.children.Add(-1)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var emitErr error
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue // not an event: ignore, as the executor does with the training child
		}
		if emitErr = emit(head.Kind, line); emitErr != nil {
			cancel()
			break
		}
		done = done || head.Kind == EventDone
	}
	scanErr := sc.Err()
	if scanErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil && emitErr == nil && scanErr == nil:
		return context.Cause(ctx)
	case emitErr != nil:
		return emitErr
	case scanErr != nil:
		return fmt.Errorf("read the generation child: %w", scanErr)
	case waitErr != nil:
		return fmt.Errorf("generation failed: %s", stderr.lastLine(waitErr))
	case !done:
		return errors.New("generation failed: the child ended without a result")
	}
	return nil
}

// tailBuffer keeps the last 8 kB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 8<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

// lastLine is the last non-empty line written, or err's text when there is none.
func (t *tailBuffer) lastLine(err error) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil))), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}
