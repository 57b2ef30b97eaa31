package main

import (
	"context"
	"errors"
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

// errInterrupted is what a command that trains returns after Ctrl-C or SIGTERM: exit code 130.
var errInterrupted = codedError{130, errors.New("interrupted: running runs were checkpointed; run the same command again to resume")}

// executeLocal runs jobs as child processes of this binary, rendering progress to stderr.
// After Ctrl-C or SIGTERM it returns the result so far and errInterrupted.
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
		FailFast: opts.failFast, OnEvent: p.event,
	}
	res, err := l.Run(ctx, jobs)
	if err != nil && ctx.Err() != nil {
		return res, errInterrupted
	}
	return res, err
}
