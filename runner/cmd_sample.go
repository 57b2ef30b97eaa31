package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runSample draws samples from a trained run: `runner sample --run HASH`.
func runSample(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sample")
	root := storeFlag(fs)
	runArg := fs.String("run", "", "the run: a hash (any unique prefix) or a run folder")
	n := fs.Int("num-images", 64, "number of images")
	seed := fs.Int64("seed", 0, "start-noise seed (0 = the seed of the run's own grids)")
	show := fs.Bool("show-intermediate", false, "also write a strip of denoising frames and an animated GIF")
	sampler := fs.String("sampler", "", "ddpm, ddim, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, dpmpp_3m_sde or unipc (default: the run's sample.sampler)")
	spacing := fs.String("spacing", "", "timestep grid: trailing, logsnr or karras (default: the run's sample.spacing)")
	steps := fs.Int("steps", -1, "sampling steps, 1..T (default: the run's sample.steps)")
	eta := fs.Float64("eta", -1, "DDIM η in [0, 1] (default: the run's sample.eta)")
	class := fs.String("class", "", "conditional models: a class 0..9, or \"all\" for one row per class")
	guidance := fs.Float64("guidance", -1, "conditional models: classifier-free guidance scale w >= 0")
	raw := fs.Bool("raw-weights", false, "sample with the raw weights even when the checkpoint has EMA weights")
	out := fs.String("out", "", "output folder (default: <run>/samples)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *runArg == "" {
		return usagef("--run is required (a run hash from `runner list`, or a run folder)")
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	dir := *runArg
	if abs, err := filepath.Abs(dir); err == nil && isDir(abs) {
		st = &store.Store{Root: filepath.Dir(abs)}
		dir = filepath.Base(abs)
	}
	hash, err := resolveRun(st, dir)
	if err != nil {
		return err
	}
	opened, err := job.OpenRun(st, hash)
	if err != nil {
		return err
	}
	cfg := opened.Config
	sets := map[string]string{"sample.num_images": strconv.Itoa(*n)}
	if *sampler != "" {
		sets["sample.sampler"] = *sampler
	}
	if *spacing != "" {
		sets["sample.spacing"] = *spacing
	}
	if *steps >= 0 {
		sets["sample.steps"] = strconv.Itoa(*steps)
	}
	if *eta >= 0 {
		sets["sample.eta"] = strconv.FormatFloat(*eta, 'g', -1, 64)
	}
	if *guidance >= 0 {
		sets["sample.guidance"] = strconv.FormatFloat(*guidance, 'g', -1, 64)
	}
	if *raw {
		sets["sample.use_ema"] = "false"
	}
	for _, k := range sortedKeys(sets) {
		if err := cfg.Set(k, sets[k]); err != nil {
			return usagef("%v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	classes, err := parseClass(*class, cfg.Model.Conditional, cfg.Data.Dataset, *n)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = st.Path(hash, "samples")
	}
	fmt.Fprintf(e.stderr, "sampling %d images from run %s with %s (%d steps, %s spacing)…\n", *n, store.Short(hash), cfg.Sample.Sampler, max(cfg.Sample.Steps, 0), cfg.Sample.Spacing)
	res, err := job.Sample(ctx, job.SampleRequest{Run: opened, Config: cfg, Seed: *seed, Classes: classes, ShowIntermediate: *show, Out: *out, Store: st})
	if note := opened.SkippedNote(); note != "" {
		fmt.Fprintln(e.stderr, note)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "samples:   %s (%s weights, %.1fs)\n", res.Grid, res.Weights, res.Seconds)
	if res.Strip != "" {
		fmt.Fprintf(e.stdout, "denoising: %s\n           %s\n", res.Strip, res.GIF)
	}
	for _, g := range res.ClassGIFs {
		fmt.Fprintf(e.stdout, "           %s\n", g)
	}
	return nil
}

// parseClass turns --class into per-image labels. The null class (used for guidance) can never
// be requested.
func parseClass(arg string, conditional bool, dataset string, n int) ([]int64, error) {
	if arg == "" {
		return nil, nil
	}
	if !conditional {
		return nil, usagef("--class needs a class-conditional run (model.conditional = true); this run is unconditional")
	}
	classes := len(data.ClassNames(dataset))
	if strings.EqualFold(arg, "all") {
		labels := make([]int64, n)
		for i := range labels {
			labels[i] = int64(i * classes / n)
		}
		return labels, nil
	}
	c, err := strconv.Atoi(arg)
	if err != nil || c < 0 || c >= classes {
		return nil, usagef("--class must be 0..%d or \"all\", got %q", classes-1, arg)
	}
	labels := make([]int64, n)
	for i := range labels {
		labels[i] = int64(c)
	}
	return labels, nil
}

// runVisualize draws the forward-diffusion grid: `runner visualize --dataset fashion_mnist`.
func runVisualize(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "visualize")
	root := storeFlag(fs)
	dataset := fs.String("dataset", "mnist", "mnist or fashion_mnist")
	dir := fs.String("data-dir", "", "folder with the IDX files (default: the data search)")
	schedule := fs.String("schedule", "linear", "noise schedule: linear or cosine")
	T := fs.Int("timesteps", 1000, "number of diffusion steps T")
	seed := fs.Int64("seed", 0, "which images, and which noise")
	out := fs.String("out", "", "output PNG (default: <store>/_visualize/forward_<dataset>_<schedule>.png)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	set, err := data.Load(*dataset, *dir, data.Train)
	if err != nil {
		return err
	}
	sched, err := ddpm.NewSchedule(*schedule, *T, 1e-4, 0.02)
	if err != nil {
		return usagef("%v", err)
	}
	if *out == "" {
		*out = filepath.Join(*root, "_visualize", fmt.Sprintf("forward_%s_%s.png", *dataset, *schedule))
	}
	if err := job.ForwardGrid(set, sched, job.GuideTimesteps(*T), 8, *seed, *out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "forward diffusion: %s\n", *out)
	return nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
