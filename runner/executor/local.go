package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// DefaultGrace is how long a child may take to checkpoint after SIGINT before it is killed.
const DefaultGrace = 60 * time.Second

// tailLines is how many lines of a child's stderr go into status.json's log_tail.
const tailLines = 40

// Local runs jobs as child processes on this machine, at most Jobs at a time.
type Local struct {
	Exe  string                     // the runner binary; empty means os.Executable()
	Args func(hash string) []string // the child's arguments; nil means _run-one --store ROOT HASH
	Env  []string                   // extra environment for the children, KEY=VALUE

	Store *store.Store

	// Jobs is the number of runs at once and Threads the libtorch intra-op threads of
	// each, exported to the child as OMP_NUM_THREADS, MKL_NUM_THREADS and
	// DDPMLAB_THREADS. Threads == 0 takes both from Plan(Cores, Jobs); otherwise
	// Jobs × Threads must not exceed Cores. Cores == 0 means runtime.NumCPU().
	Jobs, Threads, Cores int

	// Retry is how many more times a run that fails in this invocation is started again
	// at once. (Retrying runs that failed in an earlier invocation is the caller's choice,
	// made from status.json's attempts.)
	Retry int
	// FailFast stops the pool at the first failed run (after its retries): running
	// children get SIGINT and are recorded interrupted, jobs not started stay pending.
	FailFast bool
	// Grace is how long a child may take to exit after SIGINT; then it gets SIGKILL.
	// Zero means DefaultGrace.
	Grace time.Duration

	// OnEvent, if set, receives every Event. Calls are serialised, so it needs no lock,
	// but it runs on the pool's goroutines and must return quickly.
	OnEvent func(Event)
}

// Run executes jobs and returns their outcomes. A failed run does not stop the others
// unless FailFast is set. Duplicate hashes run once.
//
// When ctx is cancelled (Ctrl-C), every running child gets SIGINT (each child runs in its
// own process group, so a terminal's Ctrl-C reaches only the runner, which forwards it
// once), has Grace to checkpoint and exit, and is then killed; jobs not yet started are
// left as they are and counted NotStarted. Run then returns the result and ctx.Err().
// Any other error means the options are invalid and nothing was started.
func (l *Local) Run(ctx context.Context, jobs []Job) (Result, error) {
	p, err := l.pool()
	if err != nil {
		return Result{}, err
	}
	res := Result{Runs: make(map[string]RunResult, len(jobs))}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		g    errgroup.Group
		seen = make(map[string]bool, len(jobs))
	)
	g.SetLimit(p.jobs)
	for _, job := range jobs {
		if seen[job.Hash] {
			continue
		}
		seen[job.Hash] = true
		// Go blocks while Jobs children run; the job checks the context once it has a slot.
		g.Go(func() error {
			rr := RunResult{Job: job, Outcome: OutcomeNotStarted}
			if runCtx.Err() == nil {
				rr = p.runJob(runCtx, job)
			}
			p.mu.Lock()
			res.add(rr)
			p.mu.Unlock()
			if rr.Outcome == OutcomeFailed && l.FailFast {
				cancel()
			}
			return nil
		})
	}
	_ = g.Wait() // jobs report through res, never through errors
	return res, ctx.Err()
}

// pool holds the resolved options of one Run.
type pool struct {
	*Local
	exe           string
	jobs, threads int
	grace         time.Duration
	mu            sync.Mutex // serialises OnEvent and guards the Result
	host          string
}

func (l *Local) pool() (*pool, error) {
	if l.Store == nil {
		return nil, errors.New("executor: no store")
	}
	p := &pool{Local: l, exe: l.Exe, grace: l.Grace}
	if p.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("executor: find the runner binary: %w", err)
		}
		p.exe = exe
	}
	cores := l.Cores
	if cores < 1 {
		cores = runtime.NumCPU()
	}
	switch {
	case l.Jobs < 1:
		return nil, fmt.Errorf("executor: jobs must be at least 1, got %d", l.Jobs)
	case l.Threads < 0:
		return nil, fmt.Errorf("executor: threads must be at least 1, got %d", l.Threads)
	case l.Threads == 0:
		p.jobs, p.threads = Plan(cores, l.Jobs)
	case l.Jobs*l.Threads > cores:
		return nil, fmt.Errorf("executor: %d jobs × %d threads needs %d cores, this machine has %d (see Plan)",
			l.Jobs, l.Threads, l.Jobs*l.Threads, cores)
	default:
		p.jobs, p.threads = l.Jobs, l.Threads
	}
	if l.Retry < 0 {
		return nil, fmt.Errorf("executor: retry must not be negative, got %d", l.Retry)
	}
	if p.grace <= 0 {
		p.grace = DefaultGrace
	}
	p.host, _ = os.Hostname()
	return p, nil
}

func (p *pool) emit(e Event) {
	if p.OnEvent == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.OnEvent(e)
}

// runJob runs a job, retrying a failure up to Retry times.
func (p *pool) runJob(ctx context.Context, job Job) RunResult {
	for attempt := 1; ; attempt++ {
		rr := p.attempt(ctx, job, attempt)
		rr.Attempts = attempt
		retry := rr.Outcome == OutcomeFailed && rr.Err == nil && attempt <= p.Retry && ctx.Err() == nil
		if rr.Outcome != OutcomeNotStarted {
			p.emit(Event{Kind: Finished, Job: job, Attempt: attempt, Outcome: rr.Outcome,
				Status: rr.Status, Message: rr.Message, Retrying: retry})
		}
		if !retry {
			return rr
		}
	}
}

func (p *pool) args(hash string) []string {
	if p.Args != nil {
		return p.Args(hash)
	}
	return []string{"_run-one", "--store", p.Store.Root, hash}
}

// attempt starts one child for job and waits for it.
func (p *pool) attempt(ctx context.Context, job Job, n int) RunResult {
	rr := RunResult{Job: job, Outcome: OutcomeFailed}
	if err := store.CheckHash(job.Hash); err != nil {
		rr.Err, rr.Message = err, err.Error()
		return rr
	}
	if !p.Store.Exists(job.Hash) {
		rr.Err = fmt.Errorf("run %s: %w in %s", store.Short(job.Hash), store.ErrNoRun, p.Store.Root)
		rr.Message = rr.Err.Error()
		return rr
	}

	logf, err := os.OpenFile(p.Store.Path(job.Hash, store.StderrFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		rr.Err, rr.Message = err, err.Error()
		return rr
	}
	defer logf.Close()
	args := p.args(job.Hash)
	fmt.Fprintf(logf, "=== %s attempt %d on %s: %s %q\n", time.Now().UTC().Format(time.RFC3339), n, p.host, p.exe, args)

	tail := newTail(tailLines)
	stdout := &lineWriter{fn: func(line string) {
		e := Event{Kind: Progress, Job: job, Attempt: n, Line: line}
		if pr, ok := ParseProgress(line); ok {
			e.Progress = &pr
		}
		p.emit(e)
	}}
	threads := strconv.Itoa(p.threads)
	cmd := exec.Command(p.exe, args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Env = append(cmd.Env, ChildEnv(cmd.Env)...)
	cmd.Env = append(cmd.Env, "OMP_NUM_THREADS="+threads, "MKL_NUM_THREADS="+threads, "DDPMLAB_THREADS="+threads)
	cmd.Stdout = stdout
	cmd.Stderr = multiWriter{logf, tail}
	// Own process group: a terminal's Ctrl-C reaches only the runner, which forwards a
	// single SIGINT; the signals below reach the child's own children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// If a grandchild keeps the pipes open after the child exits, stop waiting for it.
	cmd.WaitDelay = 10 * time.Second

	launched := time.Now()
	if err := cmd.Start(); err != nil {
		rr.Err = fmt.Errorf("start run %s: %w", store.Short(job.Hash), err)
		rr.Message = rr.Err.Error()
		return rr
	}
	pid := cmd.Process.Pid
	p.emit(Event{Kind: Started, Job: job, Attempt: n})

	var interrupted, killed atomic.Bool
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		interrupted.Store(true)
		_ = syscall.Kill(-pid, syscall.SIGINT)
		t := time.NewTimer(p.grace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			killed.Store(true)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	waitErr := cmd.Wait()
	close(exited)
	stdout.Flush()
	if cmd.ProcessState == nil {
		rr.Err = fmt.Errorf("wait for run %s: %w", store.Short(job.Hash), waitErr)
		rr.Message = rr.Err.Error()
		return rr
	}
	fmt.Fprintf(logf, "=== %s attempt %d: %s\n", time.Now().UTC().Format(time.RFC3339), n, cmd.ProcessState)
	return p.settle(job, exit{
		state:       cmd.ProcessState,
		pid:         pid,
		launched:    launched,
		wall:        time.Since(launched),
		tail:        tail.String(),
		interrupted: interrupted.Load(),
		killed:      killed.Load(),
	})
}

// exit is what the parent knows about a child that has ended.
type exit struct {
	state       *os.ProcessState
	pid         int
	launched    time.Time
	wall        time.Duration
	tail        string // last lines of stderr
	interrupted bool   // the parent sent SIGINT
	killed      bool   // the parent sent SIGKILL after the grace period
}

// settle turns a child's exit into an outcome, and records in status.json what the child
// could not: the end of a run that crashed, was killed, or exited without a final state.
func (p *pool) settle(job Job, x exit) RunResult {
	rr := RunResult{Job: job}
	st, err := p.Store.ReadStatus(job.Hash)
	if err != nil {
		st = store.Status{State: store.Pending} // rewritten below if the attempt needs recording
	}
	// The child records its PID when it begins (store.Begin). A status with another PID
	// is from an earlier attempt: this child died before it recorded anything.
	began := err == nil && st.PID == x.pid

	ws, _ := x.state.Sys().(syscall.WaitStatus)
	code := x.state.ExitCode() // -1 if killed by a signal
	var (
		want   store.State // the final state the child must have recorded for its exit code
		reason string      // why, when the parent has to record it
	)
	switch {
	case ws.Signaled() && x.interrupted && !began:
		// Stopped before it began: the run was never started, leave it as it was.
		rr.Outcome, rr.Status = OutcomeNotStarted, st
		return rr
	case ws.Signaled() && x.killed:
		want, reason = store.Interrupted, fmt.Sprintf("did not stop within %s of SIGINT and was killed; resumes from its last checkpoint", p.grace)
	case ws.Signaled() && x.interrupted && (ws.Signal() == syscall.SIGINT || ws.Signal() == syscall.SIGTERM):
		want, reason = store.Interrupted, fmt.Sprintf("stopped by %s before it could checkpoint", unix.SignalName(ws.Signal()))
	case ws.Signaled():
		want, reason = store.Failed, fmt.Sprintf("killed by signal %s (%s)", unix.SignalName(ws.Signal()), ws.Signal())
	case code == ExitLocked:
		rr.Outcome, rr.Status, rr.Message = OutcomeSkipped, st, lastLine(x.tail)
		if rr.Message == "" {
			rr.Message = "locked by another process"
		}
		return rr
	case code == ExitDone && began && st.State == store.Done:
		rr.Outcome, rr.Status = OutcomeDone, st
		return rr
	case code == ExitDone:
		want, reason = store.Failed, fmt.Sprintf("exited with status 0 but did not record done (status.json says %s)", st.State)
	case code == ExitFailed:
		want, reason = store.Failed, "exited with status 1"
	case code == ExitInterrupted:
		want, reason = store.Interrupted, "exited with status 3 (interrupted)"
	default:
		want, reason = store.Failed, fmt.Sprintf("exited with status %d", code)
	}

	if began && st.State == want {
		// The child recorded its end itself; add what only the parent has.
		if want == store.Failed && (st.LogTail == "" || st.ExitCode == 0) {
			if st.LogTail == "" {
				st.LogTail = x.tail
			}
			if st.ExitCode == 0 {
				st.ExitCode = code
			}
			rr.Err = p.Store.WriteStatus(job.Hash, st)
		}
	} else {
		st = p.record(job.Hash, st, began, want, reason, x)
		rr.Err = p.Store.WriteStatus(job.Hash, st)
	}
	rr.Status = st
	rr.Outcome = OutcomeFailed
	if want == store.Interrupted {
		rr.Outcome = OutcomeInterrupted
	}
	if want == store.Failed {
		rr.Message = st.Reason
	}
	return rr
}

// record fills in the final status of an attempt whose child did not record one.
func (p *pool) record(hash string, st store.Status, began bool, state store.State, reason string, x exit) store.Status {
	if !began {
		// The child died before store.Begin: count the attempt here, so that a run that
		// cannot even start is not retried forever across invocations.
		st = store.Status{Attempts: st.Attempts + 1, Host: p.host, PID: x.pid, Started: x.launched.UTC(),
			Epoch: st.Epoch, Epochs: st.Epochs}
	}
	st.State = state
	st.Reason = reason
	st.ExitCode = max(x.state.ExitCode(), 0)
	st.Signal = ""
	if ws, ok := x.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal = unix.SignalName(ws.Signal())
	}
	st.Finished = time.Now().UTC()
	st.WallSeconds = x.wall.Seconds()
	if !st.Started.IsZero() {
		st.WallSeconds = st.Finished.Sub(st.Started).Seconds()
	}
	st.LogTail = x.tail
	return st
}
