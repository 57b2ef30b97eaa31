// Package executor runs training runs as child processes.
//
// Every run is executed by its own process, `runner _run-one --store DIR HASH`, so that a
// libtorch crash, a log.Fatal inside gotch or an out-of-memory kill takes down one run and
// not the runner. Local is a pool that runs up to Jobs such children at once on this
// machine; the Slurm executor (slurm.go) submits the same runs as one job array.
//
// # The child's contract
//
// The child takes the run's lock (store.Lock), records the attempt (store.Begin, which
// stores its own PID), writes progress records to stdout as JSON lines (see
// ProgressReport), writes what it has to say to stderr, records its final state in
// status.json and exits with:
//
//	0  done         status.json says done
//	1  failed       an error or a NaN/Inf loss; status.json says failed and why
//	3  interrupted  SIGINT or SIGTERM arrived; a checkpoint was written and status.json says interrupted
//	4  locked       another process holds the run's lock; status.json is not touched
//
// Any other exit, and any exit whose final state the child did not record (a log.Fatal
// exits 1 with status.json still "running"), is a crash: the parent records failed with the
// exit status or signal, the wall time and the tail of the child's stderr.
package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Exit codes of `runner _run-one` (see the package documentation).
const (
	ExitDone        = 0
	ExitFailed      = 1
	ExitInterrupted = 3
	ExitLocked      = 4
)

// Job is one run to execute.
type Job struct {
	Hash  string // full 64-hex-digit hash
	Label string // for people, e.g. "lr=0.0002"
}

// EventKind says what an Event reports.
type EventKind int

const (
	Started  EventKind = iota // a child process started (one per attempt)
	Progress                  // the child wrote a line to stdout
	Finished                  // a child process ended and its outcome is recorded
)

func (k EventKind) String() string {
	switch k {
	case Started:
		return "started"
	case Progress:
		return "progress"
	case Finished:
		return "finished"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// ProgressReport is one progress record, a JSON line on the child's stdout.
type ProgressReport struct {
	Epoch        int     `json:"epoch"`
	Epochs       int     `json:"epochs"`
	Step         int     `json:"step"`
	Loss         float64 `json:"loss"`
	ImagesPerSec float64 `json:"images_per_sec"`
	ETASeconds   float64 `json:"eta_seconds"`
	// Phase is empty while training; "samples" or "eval" while the run draws its final grid
	// or its metrics' images, with Done of Total sampling steps.
	Phase string `json:"phase,omitempty"`
	Done  int    `json:"done,omitempty"`
	Total int    `json:"total,omitempty"`
}

// WriteProgress writes p as one progress line, the form ParseProgress reads: the child's
// (runner/job's) side of the protocol.
func WriteProgress(w io.Writer, p ProgressReport) error {
	line, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

// ParseProgress parses a progress line; ok is false if the line is not a JSON object.
func ParseProgress(line string) (p ProgressReport, ok bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") {
		return ProgressReport{}, false
	}
	return p, json.Unmarshal([]byte(line), &p) == nil
}

// Outcome is how a job ended in this invocation.
type Outcome string

const (
	OutcomeDone        Outcome = "done"
	OutcomeFailed      Outcome = "failed"
	OutcomeInterrupted Outcome = "interrupted"
	OutcomeSkipped     Outcome = "skipped"     // another process holds the run's lock
	OutcomeNotStarted  Outcome = "not started" // cancelled before its child began; status untouched
)

// Event is reported to Local.OnEvent as runs progress.
type Event struct {
	Kind    EventKind
	Job     Job
	Attempt int // 1 for the first attempt in this invocation

	Line     string          // Progress: the raw line
	Progress *ProgressReport // Progress: the parsed record, nil if Line is not one

	Outcome  Outcome      // Finished
	Status   store.Status // Finished: the run's status.json after the attempt
	Message  string       // Finished: a one-line explanation for a failed or skipped attempt
	Retrying bool         // Finished: another attempt follows
}

// RunResult is the final outcome of one job.
type RunResult struct {
	Job      Job
	Outcome  Outcome
	Status   store.Status // status.json after the last attempt
	Attempts int          // child processes started for this job in this invocation
	Message  string       // why it failed or was skipped
	Err      error        // the executor's own error (could not start, could not write status)
}

// Result summarises a Local.Run.
type Result struct {
	Done, Failed, Interrupted, Skipped, NotStarted int

	Runs map[string]RunResult // by full hash
}

func (r *Result) add(rr RunResult) {
	r.Runs[rr.Job.Hash] = rr
	switch rr.Outcome {
	case OutcomeDone:
		r.Done++
	case OutcomeFailed:
		r.Failed++
	case OutcomeInterrupted:
		r.Interrupted++
	case OutcomeSkipped:
		r.Skipped++
	case OutcomeNotStarted:
		r.NotStarted++
	}
}

// Plan splits cores between parallel runs. jobs is clamped to [1, cores] and each run gets
// threads = max(1, cores/jobs) libtorch intra-op threads, so jobs × threads never exceeds
// cores. Cores left over (cores % jobs) stay idle rather than making one run faster than
// the others, which would skew timing comparisons. cores < 1 means runtime.NumCPU().
func Plan(cores, jobs int) (int, int) {
	if cores < 1 {
		cores = runtime.NumCPU()
	}
	jobs = min(max(jobs, 1), cores)
	return jobs, max(1, cores/jobs)
}
