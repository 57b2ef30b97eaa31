package job

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/viz"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// SampleRequest describes `runner sample`: new samples from a trained run's checkpoint.
type SampleRequest struct {
	Run              *OpenedRun    // the run (OpenRun); Sample finds its checkpoint, and Run.Skipped then says what it passed over
	Config           config.Config // Run.Config with the sampling overrides applied
	Seed             int64         // start-noise seed; 0 = the grids' seed
	Classes          []int64       // class per image for conditional models; nil = one row per class
	ShowIntermediate bool          // also write the denoising strip and GIF
	Out              string        // output folder
	Store            *store.Store  // the store of Run, where sample.guide_run is found for autoguidance
}

// SampleResult says what was written.
type SampleResult struct {
	Grid, Strip, GIF string
	ClassGIFs        []string // conditional models: one denoising GIF per class
	Weights          string   // "ema" or "raw"
	Seconds          float64
}

// Sample draws new samples from a run's last checkpoint.
func Sample(ctx context.Context, req SampleRequest) (SampleResult, error) {
	var out SampleResult
	device, err := pickDevice(req.Config.Runtime.Device)
	if err != nil {
		return out, err
	}
	cfg := req.Config
	sched, err := schedule(cfg)
	if err != nil {
		return out, err
	}
	if err := req.Run.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return out, fmt.Errorf("no checkpoint in %s: train the run first (runner run, or runner rerun)", store.CheckpointsDir(req.Run.SourceDir))
	} else if err != nil {
		return out, err
	}
	model, weights, err := req.Run.Model(cfg, device)
	if err != nil {
		return out, err
	}
	out.Weights = weights
	r := &run{cfg: cfg, dir: req.Out, device: device, shape: req.Run.shape, noiseSeed: req.Seed, classes: req.Classes}
	if err := r.loadGuide(req.Store, req.Run); err != nil {
		return out, err
	}
	if err := os.MkdirAll(req.Out, 0o755); err != nil {
		return out, err
	}
	tag := fmt.Sprintf("%s%d_seed%d", cfg.Sample.Sampler, sampleSteps(cfg), r.seed())
	if sp := cfg.Sample.Spacing; sp != "" && sp != ddpm.Trailing {
		tag += "_" + sp // e.g. dpmpp_2m20_seed0_karras; trailing keeps the names it always had
	}
	if !req.ShowIntermediate {
		res, seconds, _, err := r.sample(ctx, sched, model, cfg.Sample.NumImages, nil)
		if err != nil {
			return out, err
		}
		out.Grid, out.Seconds = filepath.Join(req.Out, "samples_"+tag+".png"), seconds
		return out, r.writeGrid("samples_"+tag+".png", res.Images, res.Labels, cfg.Sample.NumImages)
	}
	seconds, _, err := r.finalSamples(ctx, sched, model)
	if err != nil {
		return out, err
	}
	// finalSamples writes samples/final.png and denoise/…; give them this request's names.
	out.Seconds = seconds
	out.Grid = filepath.Join(req.Out, "samples_"+tag+".png")
	out.Strip = filepath.Join(req.Out, "denoise_"+tag+".png")
	out.GIF = filepath.Join(req.Out, "denoise_"+tag+".gif")
	for from, to := range map[string]string{"samples/final.png": out.Grid, "denoise/strip.png": out.Strip, "denoise/denoise.gif": out.GIF} {
		if err := os.Rename(filepath.Join(req.Out, from), to); err != nil {
			return out, err
		}
	}
	// A conditional grid also has one GIF per class: denoise/class_K.gif.
	if gifs, _ := filepath.Glob(filepath.Join(req.Out, "denoise", "class_*.gif")); len(gifs) > 0 {
		for _, g := range gifs {
			to := filepath.Join(req.Out, "denoise_"+tag+"_"+filepath.Base(g))
			if err := os.Rename(g, to); err != nil {
				return out, err
			}
			out.ClassGIFs = append(out.ClassGIFs, to)
		}
	}
	os.Remove(filepath.Join(req.Out, "samples"))
	os.Remove(filepath.Join(req.Out, "denoise"))
	return out, nil
}

// ForwardGrid draws the guide's forward-diffusion figure: n training images (rows) noised to
// each of the timesteps (columns) with q_sample, written as a labelled PNG to path (RGB for a
// colour set).
func ForwardGrid(set *data.Set, sched *ddpm.Schedule, timesteps []int, n int, seed int64, path string) error {
	diffusion, err := ddpm.NewDiffusion(sched, gotch.CPU)
	if err != nil {
		return err
	}
	defer diffusion.Close()
	n = min(n, set.N)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	var images []float32
	for _, i := range r.Perm(set.N)[:n] {
		images = append(images, set.Image(i)...)
	}
	// q_sample acts on each value alone (x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε), so a C×H×W image is
	// noised as one 1×(C·H)×W plane: the same values, in the same CHW order.
	noised, err := ddpm.ForwardFrames(diffusion, images, n, set.C()*set.Height, set.Width, timesteps, seed)
	if err != nil {
		return err
	}
	var labels []string
	for _, t := range timesteps {
		labels = append(labels, "t="+strconv.Itoa(t))
	}
	img := viz.LabeledGridC(noised, n*len(timesteps), set.C(), set.Height, set.Width, len(timesteps), 2, 2, labels, nil)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return viz.WritePNG(path, img)
}

// GuideTimesteps are the columns of the guide's forward-diffusion figure, t = 0, 50, 100,
// 200, 400, 600, 800, 999 for T = 1000, scaled to other T.
func GuideTimesteps(T int) []int {
	var out []int
	for _, t := range []int{0, 50, 100, 200, 400, 600, 800, 999} {
		v := min(T-1, t*T/1000)
		if len(out) == 0 || v > out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// Evaluate computes the quality metrics of a finished run with n samples and records them in
// its summary.json and metrics/quality.json (the `runner eval` command).
func Evaluate(ctx context.Context, opts Options, n int) (store.Summary, error) {
	summary, err := opts.Store.ReadSummary(opts.Hash)
	if err != nil {
		return summary, fmt.Errorf("run %s has no summary.json: finish it first: %w", store.Short(opts.Hash), err)
	}
	r := &run{Options: opts, dir: opts.Store.RunDir(opts.Hash)}
	opened, err := OpenRun(opts.Store, opts.Hash)
	if err != nil {
		return summary, err
	}
	// A sampling-only run's weights are in its source run's checkpoint.
	err = opened.FindCheckpoint()
	r.logSkipped(opened.Skipped)
	if err != nil {
		return summary, err
	}
	r.cfg, r.shape = opened.Config, opened.shape
	r.cfg.Eval.NumSamples = n
	if r.device, err = pickDevice(r.cfg.Runtime.Device); err != nil {
		return summary, err
	}
	if opts.Threads > 0 {
		ddpm.SetNumThreads(opts.Threads)
	}
	cfg := r.cfg
	sched, err := schedule(cfg)
	if err != nil {
		return summary, err
	}
	model, weights, err := opened.Model(cfg, r.device)
	if err != nil {
		return summary, err
	}
	if err := r.loadGuide(opts.Store, opened); err != nil {
		return summary, err
	}
	if err := r.evaluate(ctx, sched, model, weights, &summary); err != nil {
		return summary, err
	}
	return summary, opts.Store.WriteSummary(opts.Hash, summary)
}
