package main

import (
	"context"
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// exportOptions are the flags of `runner export`.
type exportOptions struct {
	root    string
	hash    string // a unique prefix, as given
	weights string // "ema", "raw", or "" (EMA when the checkpoint has it)
	out     string // "" = <run>/export/<weights>
}

// runExport writes a run's weights for PyTorch: `runner export HASH [--weights ema|raw] [--out DIR]`.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "export")
	var opts exportOptions
	root := storeFlag(fs)
	fs.StringVar(&opts.weights, "weights", "", "ema or raw (default: ema when the checkpoint has EMA weights, else raw)")
	fs.StringVar(&opts.out, "out", "", "output folder (default: <run>/export/<weights>)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one run hash (any unique prefix)")
	}
	if opts.weights != "" && opts.weights != ddpm.WeightsEMA && opts.weights != ddpm.WeightsRaw {
		return usagef("--weights must be %s or %s, got %q", ddpm.WeightsEMA, ddpm.WeightsRaw, opts.weights)
	}
	opts.root, opts.hash = *root, pos[0]
	return exportRun(ctx, e, opts)
}

func exportRun(_ context.Context, e *env, opts exportOptions) error {
	st, err := store.Open(opts.root)
	if err != nil {
		return err
	}
	hash, err := st.Resolve(opts.hash)
	if err != nil {
		return fmt.Errorf("%w (`runner list` shows them)", err)
	}
	opened, err := job.OpenRun(st, hash)
	if err != nil {
		return err
	}
	lock, err := st.Lock(hash) // never read a checkpoint that another process is writing
	if err != nil {
		return err
	}
	defer lock.Unlock()
	res, err := job.Export(job.ExportRequest{Store: st, Run: opened, Weights: opts.weights, Out: opts.out})
	if note := opened.SkippedNote(); note != "" {
		fmt.Fprintln(e.stderr, note)
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("run %s, %s weights: %d tensors, %d parameters", store.Short(hash), res.Weights, res.Tensors, res.Params)
	if res.Unchanged {
		fmt.Fprintf(e.stdout, "already exported (%s), nothing written:\n", what)
	} else {
		fmt.Fprintf(e.stdout, "exported %s:\n", what)
	}
	for _, f := range res.Files {
		fmt.Fprintf(e.stdout, "  %s\n", f)
	}
	fmt.Fprintf(e.stdout, "in PyTorch: python runner/scripts/ddpm_torch.py sample %s --out grid.png\n", res.Dir)
	return nil
}
