package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// SlurmDir is the folder of the store root that holds Slurm submissions: for each, the
// record <sweep>-<stamp>.json, the hash list .hashes its tasks read, the batch script
// .sbatch, and the tasks' output in logs/.
const SlurmDir = "_slurm"

// DefaultSignalBefore is how long before its time limit a task gets SIGTERM, so that
// `_run-one` can checkpoint and record interrupted before Slurm kills it.
const DefaultSignalBefore = 2 * time.Minute

// Slurm submits runs to a Slurm cluster as one job array per submission: array task i
// runs `Exe _run-one --store StoreRoot HASH` for the i-th hash. Exe and StoreRoot must be
// absolute paths on a filesystem that the compute nodes share with this machine.
type Slurm struct {
	Exe       string // absolute path of the runner binary (on the shared filesystem)
	StoreRoot string // absolute path of the run store (on the shared filesystem)

	Partition   string // --partition; empty: the cluster's default partition
	MaxParallel int    // at most this many tasks of the array at once (--array=…%K); 0: no limit
	Time        string // --time, e.g. "2:00:00"; empty: the partition's default
	CPUsPerTask int    // --cpus-per-task, also the task's OMP_NUM_THREADS; 0 means 1
	Mem         string // --mem, e.g. "8G"; empty: the partition's default
	GPUs        string // --gres=gpu:GPUs, e.g. "1" or "a100:1"; empty: none
	Requeue     bool   // --requeue: a preempted or failed-node task is requeued (and resumes from its checkpoint)
	// SignalBefore is how long before the time limit the runner gets SIGTERM
	// (--signal=B:TERM@…). Zero means DefaultSignalBefore; negative sends none.
	SignalBefore time.Duration
	SbatchArgs   []string // more sbatch options, one per #SBATCH line, e.g. "--account=proj"
	Env          []string // KEY=VALUE exported by the batch script before it starts the runner

	// The Slurm commands; empty means the plain names, found in $PATH.
	Sbatch, Squeue, Sacct, Scontrol, Scancel string
}

// Submission records one submitted job array. It is written to ManifestPath as JSON, and
// Status needs it to map array task indices back to runs.
type Submission struct {
	Sweep        string    `json:"sweep"`
	JobID        string    `json:"job_id"` // the array's job ID, e.g. "1234"
	Created      time.Time `json:"created"`
	Hashes       []string  `json:"hashes"` // array task i runs Hashes[i]
	ScriptPath   string    `json:"script"`
	ManifestPath string    `json:"manifest"`
	HashesPath   string    `json:"hashes_file"` // one hash per line, read by the script
	LogPattern   string    `json:"log_pattern"` // sbatch --output, with %A and %a
}

// N is the number of array tasks.
func (sub Submission) N() int { return len(sub.Hashes) }

// Log returns the path of the Slurm output file (stdout and stderr) of array task i.
func (sub Submission) Log(i int) string {
	return strings.NewReplacer("%A", sub.JobID, "%a", strconv.Itoa(i)).Replace(sub.LogPattern)
}

// TaskState is what Slurm (or, once Slurm has forgotten a task, the store) says about one
// array task.
type TaskState string

const (
	TaskPending     TaskState = "pending"     // queued, or requeued
	TaskRunning     TaskState = "running"     // started (or completing, suspended)
	TaskDone        TaskState = "done"        // exit 0
	TaskFailed      TaskState = "failed"      // non-zero exit, out of memory, node failure
	TaskInterrupted TaskState = "interrupted" // exit 3 (SIGTERM, checkpoint written), time limit, preemption
	TaskSkipped     TaskState = "skipped"     // exit 4: another process holds the run's lock
	TaskCancelled   TaskState = "cancelled"   // scancel, or the task is gone without having recorded an end
)

// Final reports whether the task has ended.
func (s TaskState) Final() bool { return s != TaskPending && s != TaskRunning }

// Task is the state of one array task.
type Task struct {
	Hash       string
	JobID      string // the array's job ID
	Index      int    // the array task index
	State      TaskState
	SlurmState string // as Slurm reported it, e.g. "PENDING", "FAILED", "CANCELLED"; "" if from the store
	Reason     string // squeue's reason for pending tasks, Slurm's reason or the store's for ended ones
	ExitCode   int
	Signal     int    // that ended the task, as Slurm reports it (e.g. 9)
	Node       string // where it ran
	Log        string // the task's Slurm output file
	Source     string // "squeue", "sacct", "scontrol" or "store"
}

func (s *Slurm) cmd(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

func (s *Slurm) check() error {
	switch {
	case s.Exe == "" || !filepath.IsAbs(s.Exe):
		return fmt.Errorf("slurm: the runner binary must be an absolute path on the shared filesystem, got %q", s.Exe)
	case s.StoreRoot == "" || !filepath.IsAbs(s.StoreRoot):
		return fmt.Errorf("slurm: the store must be an absolute path on the shared filesystem, got %q", s.StoreRoot)
	case s.MaxParallel < 0:
		return fmt.Errorf("slurm: max parallel must not be negative, got %d", s.MaxParallel)
	case s.CPUsPerTask < 0:
		return fmt.Errorf("slurm: cpus per task must not be negative, got %d", s.CPUsPerTask)
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || !isEnvName(k) {
			return fmt.Errorf("slurm: environment entry %q: want NAME=VALUE", kv)
		}
	}
	return nil
}

func isEnvName(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// ArraySpec returns sbatch's --array value for n tasks, at most maxParallel at once.
func ArraySpec(n, maxParallel int) string {
	spec := fmt.Sprintf("0-%d", n-1)
	if maxParallel > 0 {
		spec += "%" + strconv.Itoa(maxParallel)
	}
	return spec
}

// Submit submits one job array that runs hashes, in order, and records it under
// <StoreRoot>/_slurm/. Every hash must be a full hash of a run in the store. The runs'
// status.json are not touched: each task's `_run-one` records its own attempt.
//
// Submit writes the hash list and the batch script, runs `sbatch --parsable SCRIPT`, and
// then writes the Submission to ManifestPath. If sbatch fails, the files are removed and
// the error carries sbatch's message. If the job was submitted but its record could not
// be written, Submit returns the Submission and an error naming the job.
func (s *Slurm) Submit(ctx context.Context, sweep string, hashes []string) (Submission, error) {
	if err := s.check(); err != nil {
		return Submission{}, err
	}
	if err := store.CheckSweepName(sweep); err != nil {
		return Submission{}, fmt.Errorf("slurm: %w", err)
	}
	if len(hashes) == 0 {
		return Submission{}, errors.New("slurm: no runs to submit")
	}
	st := &store.Store{Root: s.StoreRoot}
	for _, h := range hashes {
		if err := store.CheckHash(h); err != nil {
			return Submission{}, fmt.Errorf("slurm: %w", err)
		}
		if !st.Exists(h) {
			return Submission{}, fmt.Errorf("slurm: run %s: %w in %s", store.Short(h), store.ErrNoRun, s.StoreRoot)
		}
	}
	dir := filepath.Join(s.StoreRoot, SlurmDir)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return Submission{}, fmt.Errorf("slurm: %w", err)
	}
	sub, err := s.reserve(dir, sweep)
	if err != nil {
		return Submission{}, err
	}
	sub.Hashes = slices.Clone(hashes)
	removeFiles := func() {
		_ = os.Remove(sub.HashesPath)
		_ = os.Remove(sub.ScriptPath)
		_ = os.Remove(sub.ManifestPath)
	}
	if err := durable.WriteFile(sub.HashesPath, []byte(strings.Join(hashes, "\n")+"\n"), 0o644); err != nil {
		removeFiles()
		return Submission{}, fmt.Errorf("slurm: %w", err)
	}
	if err := durable.WriteFile(sub.ScriptPath, []byte(s.Script(sub)), 0o755); err != nil {
		removeFiles()
		return Submission{}, fmt.Errorf("slurm: %w", err)
	}

	out, err := s.run(ctx, s.cmd(s.Sbatch, "sbatch"), "--parsable", sub.ScriptPath)
	if err != nil {
		removeFiles()
		return Submission{}, fmt.Errorf("slurm: submit %s: %w", sub.ScriptPath, err)
	}
	// --parsable prints "jobid" or "jobid;cluster".
	id, _, _ := strings.Cut(strings.TrimSpace(lastLine(string(out))), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return Submission{}, fmt.Errorf("slurm: sbatch printed %q, want a job ID (the job may have been submitted; check squeue)", out)
	}
	sub.JobID = id
	if err := store.WriteJSON(sub.ManifestPath, sub); err != nil {
		return sub, fmt.Errorf("slurm: job %s was submitted but its record could not be written: %w", id, err)
	}
	return sub, nil
}

// reserve picks the file names of a new submission, <sweep>-<UTC time>, claiming the
// record's name with an empty file so that two submissions in one second get two names.
func (s *Slurm) reserve(dir, sweep string) (Submission, error) {
	now := time.Now().UTC()
	stamp := now.Format("20060102T150405Z")
	for i := 1; ; i++ {
		base := sweep + "-" + stamp
		if i > 1 {
			base += "-" + strconv.Itoa(i)
		}
		f, err := os.OpenFile(filepath.Join(dir, base+".json"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return Submission{}, fmt.Errorf("slurm: %w", err)
		}
		_ = f.Close()
		return Submission{
			Sweep:        sweep,
			Created:      now,
			ScriptPath:   filepath.Join(dir, base+".sbatch"),
			ManifestPath: filepath.Join(dir, base+".json"),
			HashesPath:   filepath.Join(dir, base+".hashes"),
			LogPattern:   filepath.Join(dir, "logs", "%A_%a.out"),
		}, nil
	}
}

// Script returns the batch script of a submission (its Sweep, Hashes, HashesPath and
// LogPattern must be set). Task $SLURM_ARRAY_TASK_ID reads its hash from line
// $SLURM_ARRAY_TASK_ID+1 of the hash list and execs the runner, so that the signals Slurm
// sends to the batch step (scancel, the time limit, preemption) reach `_run-one` itself.
func (s *Slurm) Script(sub Submission) string {
	cpus := max(s.CPUsPerTask, 1)
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("#!/bin/bash")
	line("# Written by ddpmlab's runner: sweep %s, %d runs, one array task each.", sub.Sweep, len(sub.Hashes))
	line("# Array task i runs the hash on line i+1 of %s.", sub.HashesPath)
	line("# Submitted with: sbatch --parsable %s", shellQuote(sub.ScriptPath))
	line("#SBATCH --job-name=%s", slurmWord("ddpm-"+sub.Sweep))
	line("#SBATCH --array=%s", ArraySpec(len(sub.Hashes), s.MaxParallel))
	line("#SBATCH --output=%s", sub.LogPattern)
	line("#SBATCH --open-mode=append")
	line("#SBATCH --chdir=%s", s.StoreRoot)
	line("#SBATCH --ntasks=1")
	line("#SBATCH --cpus-per-task=%d", cpus)
	if s.Partition != "" {
		line("#SBATCH --partition=%s", s.Partition)
	}
	if s.Time != "" {
		line("#SBATCH --time=%s", s.Time)
	}
	if s.Mem != "" {
		line("#SBATCH --mem=%s", s.Mem)
	}
	if s.GPUs != "" {
		line("#SBATCH --gres=gpu:%s", s.GPUs)
	}
	if before := s.signalBefore(); before > 0 {
		// B: signals the batch shell, which exec has replaced by the runner.
		line("#SBATCH --signal=B:TERM@%d", int(before.Seconds()))
	}
	if s.Requeue {
		line("#SBATCH --requeue")
	}
	for _, a := range s.SbatchArgs {
		line("#SBATCH %s", a)
	}
	line("set -euo pipefail")
	line("hash=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" %s)", shellQuote(sub.HashesPath))
	line(`if [ -z "$hash" ]; then`)
	line(`	echo "ddpmlab: no run for array task $SLURM_ARRAY_TASK_ID in %s" >&2`, strings.ReplaceAll(sub.HashesPath, `"`, `\"`))
	line("	exit 2")
	line("fi")
	line(`threads="${SLURM_CPUS_PER_TASK:-%d}"`, cpus)
	line(`export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" DDPMLAB_THREADS="$threads"`)
	line(`export GLIBC_TUNABLES="${GLIBC_TUNABLES:-%s}"`, MallocTunables) // ChildEnv, in the task's shell
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		line("export %s=%s", k, shellQuote(v))
	}
	line(`echo "=== $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname): run $hash" >&2`)
	line("exec %s _run-one --store %s \"$hash\"", shellQuote(s.Exe), shellQuote(s.StoreRoot))
	return b.String()
}

func (s *Slurm) signalBefore() time.Duration {
	if s.SignalBefore == 0 {
		return DefaultSignalBefore
	}
	return s.SignalBefore
}

// shellQuote quotes s for bash, leaving plain paths unquoted for readability.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:=@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// slurmWord makes s usable as one word of an #SBATCH line.
func slurmWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == '"' || r == '\'' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// run runs a Slurm command and returns its stdout; the error carries its stderr.
func (s *Slurm) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, msg)
		}
		return out, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return out, nil
}

// ReadSubmissions returns the submissions recorded under <StoreRoot>/_slurm/ for sweep
// (every sweep if sweep is empty), oldest first.
func (s *Slurm) ReadSubmissions(sweep string) ([]Submission, error) {
	return ReadSubmissions(s.StoreRoot, sweep)
}

// ReadSubmissions returns the submissions recorded in the store at root for sweep (every
// sweep if sweep is empty), oldest first. Records without a job ID (a submission that
// failed or is still being made) are skipped.
func ReadSubmissions(root, sweep string) ([]Submission, error) {
	paths, err := filepath.Glob(filepath.Join(root, SlurmDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var subs []Submission
	for _, p := range paths {
		var sub Submission
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			continue
		}
		if err := store.ReadJSON(p, &sub); err != nil {
			return nil, err
		}
		if sub.JobID == "" || (sweep != "" && sub.Sweep != sweep) {
			continue
		}
		subs = append(subs, sub)
	}
	slices.SortStableFunc(subs, func(a, b Submission) int { return a.Created.Compare(b.Created) })
	return subs, nil
}

// Cancel cancels the given job arrays (scancel; running tasks get SIGTERM, then SIGKILL
// after the cluster's KillWait).
func (s *Slurm) Cancel(ctx context.Context, jobIDs ...string) error {
	if len(jobIDs) == 0 {
		return nil
	}
	_, err := s.run(ctx, s.cmd(s.Scancel, "scancel"), jobIDs...)
	return err
}
