package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runEval measures a finished run's samples: `runner eval --run HASH [--num-samples N]`.
func runEval(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "eval")
	root := storeFlag(fs)
	runArg := fs.String("run", "", "the run: a hash (any unique prefix)")
	n := fs.Int("num-samples", 1000, "images to generate and measure (>= 10)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *runArg == "" {
		return usagef("--run is required (a run hash from `runner list`)")
	}
	if *n < 10 {
		return usagef("--num-samples must be >= 10, got %d", *n)
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	hash, err := resolveRun(st, *runArg)
	if err != nil {
		return err
	}
	lock, err := st.Lock(hash) // never measure a run that another process is writing
	if err != nil {
		return err
	}
	defer lock.Unlock()
	threads, _ := strconv.Atoi(os.Getenv("DDPMLAB_THREADS"))
	fmt.Fprintf(e.stderr, "sampling %d images from run %s and measuring them (the reference classifier is trained once per dataset)…\n", *n, store.Short(hash))
	summary, err := job.Evaluate(ctx, job.Options{Store: st, Hash: hash, Threads: threads, CodeVersion: codeVersion,
		Log: zerolog.New(e.stderr).With().Timestamp().Str("run", store.Short(hash)).Logger()}, *n)
	if err != nil {
		return err
	}
	printMetrics(e, summary.Metrics)
	fmt.Fprintf(e.stdout, "details:      %s\n", st.Path(hash, "metrics/quality.json"))
	return nil
}

// printMetrics prints the quality metrics that were measured.
func printMetrics(e *env, m store.Metrics) {
	line := func(label string, v *float64, format string) {
		if v != nil {
			fmt.Fprintf(e.stdout, "%-15s"+format+"\n", label+":", *v)
		}
	}
	if m.FD != nil && m.FDLow != nil && m.FDHigh != nil {
		fmt.Fprintf(e.stdout, "%-15s%.2f [%.2f, %.2f] (95%% bootstrap interval over the samples)\n", "FD:", *m.FD, *m.FDLow, *m.FDHigh)
	} else {
		line("FD", m.FD, "%.2f")
	}
	line("FD real/real", m.FDReal, "%.2f (two halves of the test split)")
	if m.FDRealN != nil && m.FD != nil {
		line("FD real, same n", m.FDRealN, "%.2f (as many real train images as samples: FD's floor at this n)")
	}
	if m.Recognizable != nil {
		fmt.Fprintf(e.stdout, "%-15s%.1f%% (classifier confidence >= 0.9)\n", "recognizable:", 100**m.Recognizable)
	}
	line("class entropy", m.ClassEntropy, "%.3f bits (3.32 = all 10 classes equally)")
	if m.MinClassShare != nil {
		fmt.Fprintf(e.stdout, "%-15s%.1f%%\n", "min class:", 100**m.MinClassShare)
	}
	if m.ClassAccuracy != nil {
		fmt.Fprintf(e.stdout, "%-15s%.1f%% (classified as the class asked for)\n", "class acc.:", 100**m.ClassAccuracy)
	}
	if m.Diversity != nil && m.DiversityReal != nil {
		fmt.Fprintf(e.stdout, "%-15s%.2f (real data %.2f)\n", "diversity:", *m.Diversity, *m.DiversityReal)
	}
}
