package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// guideFlags are the DDPM guide's train.py flags, kept as shortcuts for --set.
var guideFlags = []struct{ flag, key, help string }{
	{"epochs", "train.epochs", "number of epochs"},
	{"batch_size", "train.batch_size", "batch size"},
	{"lr", "train.lr", "learning rate"},
	{"dataset", "data.dataset", "dataset: mnist, fashion_mnist, cifar10 or folder (with --set data.dir=DIR)"},
	{"timesteps", "diffusion.timesteps", "number of diffusion steps T"},
}

// runRun trains one config: `runner run CONFIG [--set k=v ...]`.
func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "run")
	root := storeFlag(fs)
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key, key=value (repeatable), e.g. --set train.lr=5e-4")
	guide := map[string]*string{}
	for _, g := range guideFlags {
		guide[g.flag] = fs.String(g.flag, "", g.help+" (same as --set "+g.key+"=…)")
	}
	outputDir := fs.String("output_dir", "", "the guide's output folder: used as the run store (same as --store)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one config file, e.g. runner run configs/quick.toml")
	}
	if *outputDir != "" {
		*root = *outputDir
	}
	for _, g := range guideFlags {
		if v := *guide[g.flag]; v != "" {
			sets = append([]string{g.key + "=" + v}, sets...)
		}
	}
	cfg, err := loadConfig(pos[0], sets)
	if err != nil {
		return err
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	if cfg, err = resolveSource(st, cfg); err != nil {
		return err
	}
	hash, err := createRun(st, cfg)
	if err != nil {
		return err
	}
	status, err := st.ReadStatus(hash)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "run %s  %s  (%s)\n", store.Short(hash), pos[0], st.RunDir(hash))
	if status.State == store.Done {
		fmt.Fprintf(e.stderr, "already done: nothing to train. `runner rerun %s` trains it again into a scratch store.\n", store.Short(hash))
		return printRunResult(e, st, hash)
	}
	printBF16Hint(e.stderr, []config.Config{cfg})
	res, err := executeLocal(ctx, e, st, []executor.Job{{Hash: hash, Label: pos[0]}}, localOptions{jobs: 1})
	if err != nil {
		return err
	}
	if err := printRunResult(e, st, hash); err != nil {
		return err
	}
	if r := res.Runs[hash]; r.Outcome != executor.OutcomeDone {
		return codedError{1, fmt.Errorf("run %s %s: %s", store.Short(hash), r.Outcome, oneLine(r.Message))}
	}
	return nil
}

// loadConfig reads a config file and applies --set overrides, reporting every error.
func loadConfig(path string, sets []string) (config.Config, error) {
	cfg, err := config.LoadFile(path)
	if err != nil {
		return cfg, err
	}
	for _, s := range sets {
		key, value, err := config.SplitSet(s)
		if err == nil {
			err = cfg.Set(key, value)
		}
		if err != nil {
			return cfg, usagef("--set %s: %v", s, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	// A folder dataset's images are part of the run's name: read them now, before any run.
	if err := cfg.ResolveData(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// createRun records cfg in the store under its hash (idempotent).
func createRun(st *store.Store, cfg config.Config) (string, error) {
	hash := cfg.Hash().String()
	header := "# ddpmlab run " + hash + "\n# rerun: runner rerun " + cfg.Hash().Short() + "\n\n"
	if _, err := st.Create(hash, append([]byte(header), cfg.TOML()...), cfg.Canonical()); err != nil {
		return "", err
	}
	return hash, nil
}

// printRunResult prints a run's outcome and where its outputs are.
func printRunResult(e *env, st *store.Store, hash string) error {
	status, err := st.ReadStatus(hash)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "status:       %s", status.State)
	if status.Reason != "" {
		fmt.Fprintf(e.stdout, " (%s)", oneLine(status.Reason))
	}
	fmt.Fprintln(e.stdout)
	if sum, err := st.ReadSummary(hash); err == nil {
		fmt.Fprintf(e.stdout, "final loss:   %s (best epoch mean %s)\n", fmtFloat(sum.FinalLoss), fmtFloat(sum.BestLoss))
		fmt.Fprintf(e.stdout, "training:     %s at %.0f images/s; %s parameters\n", duration(sum.TrainSeconds), sum.ImagesPerSec, strconv.FormatInt(sum.ParamCount, 10))
		fmt.Fprintf(e.stdout, "samples:      %s (%s weights, %s)\n", st.Path(hash, "samples/final.png"), sum.Weights, sum.Sampler)
		fmt.Fprintf(e.stdout, "loss plot:    %s\n", st.Path(hash, "plots/loss.png"))
		fmt.Fprintf(e.stdout, "denoising:    %s\n", st.Path(hash, "denoise/denoise.gif"))
		printMetrics(e, sum.Metrics)
	}
	fmt.Fprintf(e.stdout, "run folder:   %s\n", st.RunDir(hash))
	return nil
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
