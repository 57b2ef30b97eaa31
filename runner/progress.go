package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/serve"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// progress renders executor events for a person: a line for every run that starts or ends, as
// it happens, and the current runs' epoch, loss, speed and ETA — redrawn in place on a
// terminal, printed every 20 s otherwise.
type progress struct {
	w        io.Writer
	terminal bool
	total    int
	finished int
	failed   int
	current  map[string]*runProgress // by hash
	order    []string
	lastLine time.Time
	drawn    bool
}

type runProgress struct {
	label   string
	report  executor.ProgressReport
	started time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, terminal: isTerminal(w), total: total, current: map[string]*runProgress{}}
}

// event handles one executor event (calls are serialised by the executor).
func (p *progress) event(ev executor.Event) {
	label := ev.Job.Label
	if label == "" {
		label = store.Short(ev.Job.Hash)
	}
	switch ev.Kind {
	case executor.Started:
		p.current[ev.Job.Hash] = &runProgress{label: label, started: time.Now()}
		p.order = append(p.order, ev.Job.Hash)
		attempt := ""
		if ev.Attempt > 1 {
			attempt = fmt.Sprintf(" (attempt %d)", ev.Attempt)
		}
		p.println(fmt.Sprintf("  ▶ %s  %s started%s", store.Short(ev.Job.Hash), label, attempt))
	case executor.Progress:
		if r := p.current[ev.Job.Hash]; r != nil && ev.Progress != nil {
			r.report = *ev.Progress
			p.status()
		}
	case executor.Finished:
		r := p.current[ev.Job.Hash]
		delete(p.current, ev.Job.Hash)
		p.removeOrder(ev.Job.Hash)
		if !ev.Retrying {
			p.finished++
		}
		took := ""
		if r != nil {
			took = " in " + duration(time.Since(r.started).Seconds())
		}
		switch ev.Outcome {
		case executor.OutcomeDone:
			p.println(fmt.Sprintf("  ✓ %s  %s done%s  [%d/%d]", store.Short(ev.Job.Hash), label, took, p.finished, p.total))
		case executor.OutcomeFailed:
			if !ev.Retrying {
				p.failed++
			}
			retry := ""
			if ev.Retrying {
				retry = " — retrying"
			}
			p.println(fmt.Sprintf("  ✗ %s  %s FAILED%s: %s%s  [%d/%d]", store.Short(ev.Job.Hash), label, took, oneLine(ev.Message), retry, p.finished, p.total))
		default:
			msg := ""
			if m := oneLine(ev.Message); m != "" {
				msg = ": " + m
			}
			p.println(fmt.Sprintf("  ■ %s  %s %s%s%s", store.Short(ev.Job.Hash), label, ev.Outcome, took, msg))
		}
	}
}

func (p *progress) removeOrder(hash string) {
	for i, h := range p.order {
		if h == hash {
			p.order = append(p.order[:i], p.order[i+1:]...)
			return
		}
	}
}

// status draws the running runs' progress.
func (p *progress) status() {
	if !p.terminal && time.Since(p.lastLine) < 20*time.Second {
		return
	}
	var parts []string
	for _, h := range p.order {
		r := p.current[h]
		rep := r.report
		switch {
		case rep.Phase != "":
			parts = append(parts, fmt.Sprintf("%s %s %d/%d steps", r.label, rep.Phase, rep.Done, rep.Total))
		case rep.Epochs > 0:
			parts = append(parts, fmt.Sprintf("%s ep %d/%d loss %.4f %.0f img/s ETA %s",
				r.label, rep.Epoch, rep.Epochs, rep.Loss, rep.ImagesPerSec, duration(rep.ETASeconds)))
		}
	}
	if len(parts) == 0 {
		return
	}
	line := fmt.Sprintf("  … [%d/%d done] %s", p.finished, p.total, strings.Join(parts, " | "))
	p.lastLine = time.Now()
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// println prints a permanent line, clearing an in-place status line first.
func (p *progress) println(s string) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) close() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// duration formats seconds as 1h02m, 3m05s or 42s.
func duration(seconds float64) string {
	if math.IsNaN(seconds) || math.IsInf(seconds, 0) || seconds < 0 {
		return "?"
	}
	d := time.Duration(seconds) * time.Second
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
}

// oneLine keeps the last non-empty line of a message.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// progressFileEvery is how often, at most, the training child rewrites its run's progress.json.
const progressFileEvery = time.Second

// progressTee is the training child's progress writer: every line goes on to w (the parent
// reads it there), and each progress record is also kept in the run folder's progress.json
// (serve.WriteRunProgress), rewritten at most once per every, so that `runner serve`, which is
// not the child's parent, can show it. A record that arrives within every of the last write is
// written when the interval ends, so the file always ends up holding the newest record. Writes
// of the file that fail are dropped: progress must never fail a run.
type progressTee struct {
	w      io.Writer
	runDir string
	every  time.Duration

	mu      sync.Mutex
	partial []byte // an unfinished line
	last    time.Time
	pending *serve.RunProgress
	timer   *time.Timer
	closed  bool
}

func newProgressTee(w io.Writer, runDir string, every time.Duration) *progressTee {
	return &progressTee{w: w, runDir: runDir, every: every}
}

// Write passes b on to w and records the progress lines it completes.
func (p *progressTee) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		if rep, ok := executor.ParseProgress(line); ok {
			p.record(rep)
		}
	}
	return n, err
}

// record keeps rep as the newest record and writes it now or when the interval ends. p.mu is held.
func (p *progressTee) record(rep executor.ProgressReport) {
	if p.closed {
		return
	}
	p.pending = &serve.RunProgress{Updated: time.Now().UTC(), PID: os.Getpid(), ProgressReport: rep}
	wait := p.every - time.Since(p.last)
	if wait <= 0 {
		p.flush()
		return
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(wait, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.timer = nil
			p.flush()
		})
	}
}

// flush writes the pending record, if any. p.mu is held.
func (p *progressTee) flush() {
	if p.pending == nil {
		return
	}
	_ = serve.WriteRunProgress(p.runDir, *p.pending)
	p.pending = nil
	p.last = time.Now()
}

// Close writes the last pending record and stops the timer.
func (p *progressTee) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.flush()
	p.closed = true
	return nil
}
