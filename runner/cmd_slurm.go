package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// slurmOptions are runner sweep's --executor slurm flags.
type slurmOptions struct {
	partition, time, mem, gpus string
	maxParallel, cpusPerTask   int
	wait, requeue              bool
}

func (o *slurmOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.partition, "partition", "", "slurm: partition to submit to (default: the cluster's default)")
	fs.IntVar(&o.maxParallel, "max-parallel", 0, "slurm: array tasks running at once (%K); 0 = no limit")
	fs.StringVar(&o.time, "time", "", "slurm: time limit per run, e.g. 2:00:00")
	fs.IntVar(&o.cpusPerTask, "cpus-per-task", 1, "slurm: CPUs per run (libtorch threads)")
	fs.StringVar(&o.mem, "mem", "", "slurm: memory per run, e.g. 4G")
	fs.StringVar(&o.gpus, "gpus", "", "slurm: GPUs per run, e.g. 1")
	fs.BoolVar(&o.wait, "wait", false, "slurm: wait for the array to finish, then write the report")
	fs.BoolVar(&o.requeue, "requeue", false, "slurm: let Slurm requeue preempted runs, which resume from their checkpoint")
}

// newSlurm builds the Slurm executor for a store: the runner binary and the store must be on
// a filesystem every node sees, so both are made absolute.
func newSlurm(st *store.Store, o slurmOptions) (*executor.Slurm, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(st.Root)
	if err != nil {
		return nil, err
	}
	return &executor.Slurm{Exe: exe, StoreRoot: root, Partition: o.partition, MaxParallel: o.maxParallel,
		Time: o.time, CPUsPerTask: o.cpusPerTask, Mem: o.mem, GPUs: o.gpus, Requeue: o.requeue}, nil
}

// runSlurmSweep submits the runs still to do as one Slurm job array. Runs already done, and
// runs pending or running in an earlier submission, are never submitted again.
func runSlurmSweep(ctx context.Context, e *env, st *store.Store, o sweepOptions, name string, todo []executor.Job) error {
	sl, err := newSlurm(st, o.slurm)
	if err != nil {
		return err
	}
	subs, err := executor.ReadSubmissions(sl.StoreRoot, name)
	if err != nil {
		return err
	}
	tasks, err := sl.Status(ctx, subs...)
	if err != nil {
		return err
	}
	if _, err := sl.Settle(tasks); err != nil {
		return err
	}
	var missing []string
	for _, j := range todo {
		if t, ok := tasks[j.Hash]; ok && (t.State == executor.TaskPending || t.State == executor.TaskRunning) {
			continue
		}
		missing = append(missing, j.Hash)
	}
	var jobIDs []string
	if len(missing) == 0 {
		fmt.Fprintln(e.stderr, "nothing to submit: every run to do is already queued or running in Slurm")
	} else {
		sub, err := sl.Submit(ctx, name, missing)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
		jobIDs = append(jobIDs, sub.JobID)
		fmt.Fprintf(e.stdout, "submitted Slurm job array %s: %d runs (script %s)\n", sub.JobID, len(missing), sub.ScriptPath)
		fmt.Fprintf(e.stdout, "follow it: squeue -j %s   or   runner status %s --store %s\n", sub.JobID, name, st.Root)
	}
	if !o.slurm.wait {
		fmt.Fprintf(e.stdout, "when it is done: runner report %s --store %s\n", name, st.Root)
		return nil
	}
	for _, t := range tasks {
		if t.State == executor.TaskPending || t.State == executor.TaskRunning {
			jobIDs = append(jobIDs, t.JobID)
		}
	}
	if err := sl.Wait(ctx, 5*time.Second, jobIDs...); err != nil {
		if ctx.Err() != nil {
			return codedError{130, fmt.Errorf("stopped waiting; the Slurm jobs go on. Follow them with runner status %s, report with runner report %s", name, name)}
		}
		return err
	}
	if tasks, err = sl.Status(ctx, subs...); err != nil {
		return err
	}
	if _, err := sl.Settle(tasks); err != nil {
		return err
	}
	index, err := reports.Build(reports.Options{Store: st.Root, Sweep: name, Out: o.reportOut, Version: codeVersion})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(e.stdout, "report: %s\n", index)
	// The exit code says whether the sweep is complete, as runner sweep's local path does:
	// every run of the sweep counts, also those waited for in an earlier submission and
	// failed runs out of retries that were not submitted.
	m, err := st.ReadManifest(name)
	if err != nil {
		return err
	}
	failed := 0
	for _, h := range m.Hashes() {
		if s, err := st.ReadStatus(h); err == nil && s.State != store.Done {
			failed++
		}
	}
	if failed > 0 {
		return codedError{1, fmt.Errorf("%d of %d runs did not finish (runner status %s)", failed, len(m.Runs), name)}
	}
	return nil
}

// runStatus merges the store with Slurm: `runner status SWEEP`.
func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "status")
	root := storeFlag(fs)
	st, name, m, err := oneSweep(fs, root, args)
	if err != nil {
		return err
	}
	sl, err := newSlurm(st, slurmOptions{})
	if err != nil {
		return err
	}
	subs, err := executor.ReadSubmissions(sl.StoreRoot, name)
	if err != nil {
		return err
	}
	tasks := map[string]executor.Task{}
	if len(subs) > 0 {
		if tasks, err = sl.Status(ctx, subs...); err != nil {
			return err
		}
		if _, err := sl.Settle(tasks); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tSTATE\tSLURM\tEXIT\tVARIED\tLOG / REASON")
	counts := map[string]int{}
	for _, r := range m.Runs {
		status, err := st.ReadStatus(r.Hash)
		if err != nil {
			return err
		}
		state, slurmState, exit, detail := string(status.State), "-", "", oneLine(status.Reason)
		if t, ok := tasks[r.Hash]; ok {
			slurmState = t.JobID + "_" + fmt.Sprint(t.Index) + " " + t.SlurmState
			if t.State != executor.TaskDone {
				state = string(t.State)
			}
			// scancel (or preemption) of a running task: the runner checkpointed on SIGTERM,
			// recorded interrupted and exited 3; Slurm says CANCELLED (in the SLURM column),
			// but the run resumes where it stopped.
			if t.State == executor.TaskCancelled && t.ExitCode == executor.ExitInterrupted && status.State == store.Interrupted {
				state = string(store.Interrupted)
			}
			if t.ExitCode != 0 || t.Signal != 0 {
				exit = fmt.Sprintf("%d", t.ExitCode)
				if t.Signal != 0 {
					exit += fmt.Sprintf(" sig %d", t.Signal)
				}
			}
			if t.State == executor.TaskFailed || t.State == executor.TaskCancelled || t.State == executor.TaskInterrupted {
				detail = t.Log + "  " + detail
			}
		}
		counts[state]++
		var varied []string
		for _, k := range sortedKeys(r.Varied) {
			varied = append(varied, k+"="+r.Varied[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", store.Short(r.Hash), state, slurmState, exit, fmt.Sprint(varied), detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\n%d runs: %v\n", len(m.Runs), counts)
	if len(subs) == 0 {
		fmt.Fprintln(e.stderr, "(no Slurm submissions for this sweep: states are the store's)")
	}
	return nil
}
