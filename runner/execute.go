package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// localOptions are the flags shared by the commands that train locally.
type localOptions struct {
	jobs     int
	retry    int
	failFast bool
}

// executeLocal runs jobs as child processes of this binary, rendering progress to stderr.
func executeLocal(ctx context.Context, e *env, st *store.Store, jobs []executor.Job, opts localOptions) (executor.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return executor.Result{}, fmt.Errorf("find the runner binary: %w", err)
	}
	n, threads := executor.Plan(0, max(1, opts.jobs))
	p := newProgress(e.stderr, len(jobs))
	defer p.close()
	l := &executor.Local{
		Exe: exe, Store: st, Jobs: n, Threads: threads,
		Retry: opts.retry, FailFast: opts.failFast, OnEvent: p.event,
	}
	return l.Run(ctx, jobs)
}
