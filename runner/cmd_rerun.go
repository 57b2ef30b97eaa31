package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runRerun runs a recorded config again: `runner rerun HASH [--verify]`.
//
// A run that is not done (failed, interrupted, pending) is simply run again in place, resuming
// from its checkpoint. A done run is never overwritten: it is trained again from scratch in a
// scratch store, <store>/_reruns/<short-hash>-<time>, and with --verify its loss curve is
// compared step by step with the recorded one.
func runRerun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "rerun")
	root := storeFlag(fs)
	verify := fs.Bool("verify", false, "compare the new loss curve with the recorded one and report the largest difference")
	st, hash, err := oneRun(fs, root, args)
	if err != nil {
		return err
	}
	cfg, err := readRunConfig(st, hash)
	if err != nil {
		return err
	}
	if cfg.Hash().String() != hash {
		return fmt.Errorf("run %s: config.toml hashes to %s; refusing to rerun an edited record", store.Short(hash), cfg.Hash().Short())
	}
	status, err := st.ReadStatus(hash)
	if err != nil {
		return err
	}
	target := st
	if status.State == store.Done {
		scratch := filepath.Join(st.Root, "_reruns", store.Short(hash)+"-"+time.Now().UTC().Format("20060102T150405"))
		if target, err = store.Open(scratch); err != nil {
			return err
		}
		if _, err := createRun(target, cfg); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "run %s is done; training it again in %s\n", store.Short(hash), target.RunDir(hash))
	} else if *verify {
		return usagef("run %s is %s: there is no finished loss curve to verify against; rerun it without --verify first", store.Short(hash), status.State)
	}
	res, err := executeLocal(ctx, e, target, []executor.Job{{Hash: hash, Label: "rerun"}}, localOptions{jobs: 1})
	if err != nil {
		return err
	}
	if r := res.Runs[hash]; r.Outcome != executor.OutcomeDone {
		return codedError{1, fmt.Errorf("rerun of %s %s: %s", store.Short(hash), r.Outcome, oneLine(r.Message))}
	}
	if err := printRunResult(e, target, hash); err != nil {
		return err
	}
	if !*verify {
		return nil
	}
	return verifyLosses(e, st, target, hash)
}

// verifyLosses compares the per-step losses of the recorded run with the rerun's.
func verifyLosses(e *env, recorded, rerun *store.Store, hash string) error {
	want, err := recorded.ReadLoss(hash)
	if err != nil {
		return err
	}
	got, err := rerun.ReadLoss(hash)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return codedError{1, fmt.Errorf("verify: the rerun has %d loss steps, the record %d", len(got), len(want))}
	}
	worst, at := 0.0, 0
	for i := range want {
		if d := math.Abs(got[i].Loss - want[i].Loss); d > worst || math.IsNaN(d) {
			worst, at = d, want[i].Step
		}
	}
	if worst == 0 {
		fmt.Fprintf(e.stdout, "verify: identical: all %d per-step losses match exactly\n", len(want))
		return nil
	}
	fmt.Fprintf(e.stdout, "verify: largest difference %.3g at step %d (of %d steps)\n", worst, at, len(want))
	return codedError{1, fmt.Errorf("verify: the rerun's losses differ from the record (largest difference %.3g at step %d)", worst, at)}
}
