package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
	"github.com/ddpmlab/ddpmlab/runner/sweep"
)

// sweepOptions are runner sweep's flags.
type sweepOptions struct {
	root, scale, executor, reportOut string
	sets                             multiFlag
	dryRun                           bool
	local                            localOptions
	slurm                            slurmOptions
}

// runSweep runs every config of a sweep file: `runner sweep FILE`.
func runSweep(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sweep")
	var o sweepOptions
	root := storeFlag(fs)
	fs.StringVar(&o.scale, "scale", sweep.DefaultScale, "which [scale.NAME] of the sweep file to apply: quick (minutes here) or full (the guide's settings)")
	fs.Var(&o.sets, "set", "override a config key for every run, key=value (repeatable)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan (hashes, varied values, states) and stop")
	fs.IntVar(&o.local.jobs, "jobs", 1, "runs at once; jobs × libtorch threads never exceed the cores")
	fs.IntVar(&o.local.retry, "retry", 1, "a failed run is tried again when the sweep is rerun, until it has had 1+N attempts (status.json's attempts); failures are never retried at once, since most are deterministic")
	fs.BoolVar(&o.local.failFast, "fail-fast", false, "stop the sweep at the first failed run")
	fs.StringVar(&o.executor, "executor", "local", "where runs execute: local or slurm")
	fs.StringVar(&o.reportOut, "report-out", reports.DefaultOut, "folder for the HTML reports")
	o.slurm.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one sweep file, e.g. runner sweep experiments/learning_rate.toml")
	}
	o.root = *root
	if o.executor != "local" && o.executor != "slurm" {
		return usagef("--executor must be local or slurm, got %q", o.executor)
	}

	// 1. Validate and expand the whole sweep before anything runs.
	sw, err := sweep.Load(pos[0])
	if err != nil {
		return err
	}
	plan, err := sw.Expand(o.scale, o.sets)
	if err != nil {
		return err
	}
	st, err := store.Open(o.root)
	if err != nil {
		return err
	}
	// Sampling-only runs name their source by any prefix; their identity uses the full hash.
	for i := range plan.Runs {
		r := &plan.Runs[i]
		if r.Config, err = resolveSource(st, r.Config); err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		r.Hash = r.Config.Hash()
	}
	name := manifestName(plan)
	manifest := store.Manifest{Name: name, File: pos[0], Scale: plan.Scale, Created: time.Now().UTC(), VariedKeys: plan.VariedKeys}
	for _, r := range plan.Runs {
		manifest.Runs = append(manifest.Runs, store.ManifestRun{Hash: r.Hash.String(), Varied: r.VariedMap()})
	}
	if !o.dryRun { // a dry run changes nothing in the store
		for _, r := range plan.Runs {
			if _, err := createRun(st, r.Config); err != nil {
				return err
			}
		}
		if err := st.WriteManifest(manifest); err != nil {
			return err
		}
	}

	// 2. Plan: what is done, what runs now.
	todo, states, exhausted, err := classify(st, plan, o.local.retry)
	if err != nil {
		return err
	}
	estimate := estimateSeconds(st, plan, todo) / float64(max(1, min(o.local.jobs, len(todo))))
	fmt.Fprintf(e.stderr, "sweep %s (scale %s, %s): %d runs — %d done, %d to run", sw.Name, plan.Scale, pos[0], len(plan.Runs), states[store.Done], len(todo))
	if len(exhausted) > 0 {
		fmt.Fprintf(e.stderr, ", %d failed %d+ times (not retried; raise --retry)", len(exhausted), o.local.retry+1)
	}
	if plan.Duplicates > 0 {
		fmt.Fprintf(e.stderr, "; %d duplicate configs collapsed", plan.Duplicates)
	}
	if len(todo) > 0 {
		fmt.Fprintf(e.stderr, "; estimated %s", duration(estimate))
	}
	fmt.Fprintln(e.stderr)
	if o.dryRun {
		return printPlan(e.stdout, st, plan)
	}

	// 3. Run.
	var runErr error
	if len(todo) > 0 {
		if o.executor == "slurm" {
			return runSlurmSweep(ctx, e, st, o, name, todo)
		}
		printBF16Hint(e.stderr, todoConfigs(plan, todo))
		res, err := executeLocal(ctx, e, st, todo, o.local)
		runErr = err
		if err == nil && res.Failed > 0 {
			runErr = codedError{1, fmt.Errorf("%d of %d runs failed (see the report, or `runner list --sweep %s --status failed`)", res.Failed, len(todo), name)}
		}
	} else if len(exhausted) == 0 {
		fmt.Fprintln(e.stderr, "nothing to train: every run is done.")
	} else {
		fmt.Fprintln(e.stderr, "nothing to train.")
	}
	if runErr == nil && len(exhausted) > 0 {
		// The sweep is not complete: say so in the exit code too, every time it is run.
		runErr = codedError{1, fmt.Errorf("%d of %d runs failed %d+ times and were not retried (raise --retry, or see `runner list --sweep %s --status failed`)", len(exhausted), len(plan.Runs), o.local.retry+1, name)}
	}
	if ctx.Err() != nil {
		runErr = errInterrupted
	}

	// 4. Report, also after failures or an interruption.
	index, err := reports.Build(reports.Options{Store: o.root, Sweep: name, Out: o.reportOut, Version: codeVersion, Description: sw.Description})
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("report: %w", err))
	}
	fmt.Fprintf(e.stdout, "report: %s\n", index)
	return runErr
}

// manifestName names a sweep's manifest and report: the sweep's name at full scale, and
// name-SCALE at any other scale, so the quick and full results never mix; a sampling-only
// sweep adds its source run's short hash (name-SCALE-SOURCE).
func manifestName(plan *sweep.Plan) string {
	name := plan.Sweep
	if plan.Scale != "full" {
		name += "-" + plan.Scale
	}
	// Sampling-only sweeps of different models are different experiments: one report each.
	if len(plan.Runs) > 0 {
		from := plan.Runs[0].Config.Sample.FromRun
		for _, r := range plan.Runs[1:] {
			if r.Config.Sample.FromRun != from {
				from = ""
			}
		}
		if from != "" {
			name += "-" + store.Short(from)
		}
	}
	return name
}

// todoConfigs returns the configs of plan's runs that todo lists.
func todoConfigs(plan *sweep.Plan, todo []executor.Job) []config.Config {
	want := map[string]bool{}
	for _, j := range todo {
		want[j.Hash] = true
	}
	var cfgs []config.Config
	for _, r := range plan.Runs {
		if want[r.Hash.String()] {
			cfgs = append(cfgs, r.Config)
		}
	}
	return cfgs
}

// classify splits a plan's runs into those to run now and the rest.
func classify(st *store.Store, plan *sweep.Plan, retry int) (todo []executor.Job, states map[store.State]int, exhausted []string, err error) {
	states = map[store.State]int{}
	for _, r := range plan.Runs {
		hash := r.Hash.String()
		status, err := readStatusOrPending(st, hash)
		if err != nil {
			return nil, nil, nil, err
		}
		states[status.State]++
		switch {
		case status.State == store.Done:
		case status.State == store.Failed && status.Attempts > retry:
			exhausted = append(exhausted, hash)
		default:
			todo = append(todo, executor.Job{Hash: hash, Label: label(r)})
		}
	}
	return todo, states, exhausted, nil
}

func label(r sweep.PlannedRun) string {
	if l := r.Label(); l != "" {
		return l
	}
	return store.Short(r.Hash.String())
}

// readStatusOrPending is the run's status, pending for a run not in the store yet (a dry run
// creates none).
func readStatusOrPending(st *store.Store, hash string) (store.Status, error) {
	status, err := st.ReadStatus(hash)
	if errors.Is(err, store.ErrNoRun) {
		return store.Status{State: store.Pending}, nil
	}
	return status, err
}

// printPlan lists every run with its state and varied values.
func printPlan(w io.Writer, st *store.Store, plan *sweep.Plan) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HASH\tSTATE\t%s\n", strings.ToUpper(strings.Join(plan.VariedKeys, "\t")))
	for _, r := range plan.Runs {
		status, err := readStatusOrPending(st, r.Hash.String())
		if err != nil {
			return err
		}
		var values []string
		for _, kv := range r.Varied {
			values = append(values, kv.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Hash.Short(), status.State, strings.Join(values, "\t"))
	}
	return tw.Flush()
}

// estimateSeconds is a rough time for the runs to do: training images over a speed measured
// on this store (median images/s of done runs of the same model size), or a CPU default, plus
// the sampling of the per-epoch and final grids and of the eval samples. A sampling-only run
// trains nothing and samples with its source run's model.
func estimateSeconds(st *store.Store, plan *sweep.Plan, todo []executor.Job) float64 {
	measured := map[int][]float64{} // base channels → images/s
	if infos, err := st.List(store.Filter{States: []store.State{store.Done}}); err == nil {
		for _, info := range infos {
			cfg, err := config.Parse("config.toml", info.Config)
			if err == nil && info.Summary != nil && info.Summary.ImagesPerSec > 0 {
				measured[cfg.Model.BaseChannels] = append(measured[cfg.Model.BaseChannels], info.Summary.ImagesPerSec)
			}
		}
	}
	want := map[string]bool{}
	for _, j := range todo {
		want[j.Hash] = true
	}
	total := 0.0
	for _, r := range plan.Runs {
		if !want[r.Hash.String()] {
			continue
		}
		cfg := r.Config
		images := float64(cfg.Train.Epochs * trainImages(cfg))
		grids := 1.0
		if cfg.Train.SampleEvery > 0 {
			grids += float64(cfg.Train.Epochs / cfg.Train.SampleEvery)
		}
		if from := cfg.Sample.FromRun; from != "" {
			images, grids = 0, 1
			if src, err := st.Info(from); err == nil {
				if srcCfg, err := config.Parse("config.toml", src.Config); err == nil {
					cfg.Model = srcCfg.Model
				}
			}
		}
		speed := median(measured[cfg.Model.BaseChannels])
		if speed == 0 {
			speed = 100 * math.Pow(64/float64(cfg.Model.BaseChannels), 0.8) // about this machine's CPU
		}
		steps := cfg.Sample.Steps
		if steps == 0 {
			steps = cfg.Diffusion.Timesteps
		}
		passes := 1.0 // network evaluations per image and step
		if cfg.Model.Conditional && cfg.Sample.Guidance > 0 {
			passes = 2 // classifier-free guidance: with and without the class
		}
		if cfg.Sample.AutoGuidance > 0 {
			passes *= 2 // autoguidance: the model and its guide
		}
		sampled := grids*float64(cfg.Sample.NumImages) + float64(cfg.Eval.NumSamples)
		// A sampling step costs about a third of a training step on the same images.
		total += images/speed + sampled*float64(steps)*passes/(3*speed)
	}
	return total
}

// trainImages is the number of training images a config uses, read from the labels file.
func trainImages(cfg config.Config) int {
	n := 60000
	if dir, err := data.Locate(cfg.Data.Dataset, cfg.Data.Dir); err == nil {
		for _, name := range []string{"train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte"} {
			if labels, err := data.ReadLabels(filepath.Join(dir, name)); err == nil {
				n = len(labels)
				break
			}
		}
	}
	if cfg.Data.TrainSubset > 0 && cfg.Data.TrainSubset < n {
		n = cfg.Data.TrainSubset
	}
	return n
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
