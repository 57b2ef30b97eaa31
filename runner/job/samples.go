package job

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/viz"
	"github.com/ddpmlab/ddpmlab/reports"
)

// gridImages is the number of images of the per-epoch progress grids (8×8, the guide's 64).
const gridImages = 64

// epochGrid samples the per-epoch "progress photo" with the configured sampler and weights.
func (r *run) epochGrid(ctx context.Context, tr *ddpm.Trainer, sampling *ddpm.Model, epoch int) error {
	if _, err := tr.SamplingWeights(sampling, r.cfg.Sample.UseEMA); err != nil {
		return err
	}
	sched := tr.Diffusion.Schedule
	res, _, _, err := r.sample(ctx, sched, sampling, gridImages, nil)
	if err != nil {
		return fmt.Errorf("epoch %d samples: %w", epoch, err)
	}
	return r.writeGrid(filepath.Join("samples", fmt.Sprintf("epoch_%03d.png", epoch)), res.Images, res.Labels, gridImages)
}

// sample draws n images from the fixed start noise with the configured sampler, keeping the
// frames at keep. It returns the result, the seconds it took and the sampler's name.
func (r *run) sample(ctx context.Context, sched *ddpm.Schedule, model *ddpm.Model, n int, keep map[int]bool) (*ddpm.SampleResult, float64, string, error) {
	cfg := r.cfg
	sampler, err := ddpm.NewSpacedSampler(cfg.Sample.Sampler, cfg.Sample.Spacing, sched, cfg.Sample.Steps, cfg.Sample.Eta, cfg.Sample.ClipX0)
	if err != nil {
		return nil, 0, "", err
	}
	if err := model.SetSchedule(sched); err != nil { // a v-prediction model's v̂ becomes ε̂ with it
		return nil, 0, "", err
	}
	seed := r.seed()
	shape := r.imageShape()
	xT, err := ddpm.NoiseFor(seed, n, shape.C, shape.H, shape.W, r.device) // (n, C, H, W)
	if err != nil {
		return nil, 0, "", err
	}
	defer xT.MustDrop()
	labels := r.classes
	if model.Net.Config.NumClasses > 0 && labels == nil {
		// One row per class, so a conditional grid reads like a table of classes.
		for i := 0; i < n; i++ {
			labels = append(labels, int64(i*model.Net.Config.NumClasses/n))
		}
	}
	ddpm.ManualSeed(seed)
	start := time.Now()
	opts := ddpm.SampleOptions{Labels: labels, Guidance: cfg.Sample.Guidance, KeepFrames: keep, Context: ctx}
	if r.guide != nil {
		if err := r.guide.SetSchedule(sched); err != nil {
			return nil, 0, "", err
		}
		opts.AutoGuide, opts.AutoGuidance = r.guide, cfg.Sample.AutoGuidance
	}
	if r.phase != "" {
		opts.Progress = func(done, total int) { r.reportPhase(r.phase, done, total) }
	}
	res, err := ddpm.Sample(model, sampler, xT, opts)
	name := sampler.Name()
	if r.guide != nil {
		name += fmt.Sprintf(" + autoguidance w=%g", cfg.Sample.AutoGuidance) // twice the network evaluations
	}
	return res, time.Since(start).Seconds(), name, err
}

// finalSamples writes samples/final.png and the denoising strip and GIF.
func (r *run) finalSamples(ctx context.Context, sched *ddpm.Schedule, model *ddpm.Model) (seconds float64, samplerName string, err error) {
	sampler, err := ddpm.NewSpacedSampler(r.cfg.Sample.Sampler, r.cfg.Sample.Spacing, sched, r.cfg.Sample.Steps, r.cfg.Sample.Eta, r.cfg.Sample.ClipX0)
	if err != nil {
		return 0, "", err
	}
	timesteps := sampler.Timesteps()
	stripSteps := pick(timesteps, 10)
	gifSteps := pick(timesteps, 40)
	keep := map[int]bool{}
	for _, t := range append(append([]int{}, stripSteps...), gifSteps...) {
		keep[t] = true
	}
	n := r.cfg.Sample.NumImages
	r.phase = "final samples"
	defer func() { r.phase = "" }()
	res, seconds, samplerName, err := r.sample(ctx, sched, model, n, keep)
	if err != nil {
		return 0, "", fmt.Errorf("final samples: %w", err)
	}
	if err := r.writeGrid(filepath.Join("samples", "final.png"), res.Images, res.Labels, n); err != nil {
		return 0, "", err
	}
	if err := r.writeDenoising(res, timesteps, stripSteps, gifSteps, min(n, 8)); err != nil {
		return 0, "", err
	}
	return seconds, samplerName, nil
}

// writeDenoising draws the reverse process: a strip (rows = images, columns = steps, each
// labelled with the timestep of the x it shows, x_0 last) and a GIF of the whole grid.
func (r *run) writeDenoising(res *ddpm.SampleResult, timesteps, stripSteps, gifSteps []int, rows int) error {
	shape := r.imageShape()
	pixels := shape.len()
	var strip []float32
	var labels []string
	for row := 0; row < rows; row++ {
		for _, t := range stripSteps {
			strip = append(strip, res.Frames[t][row*pixels:(row+1)*pixels]...)
		}
	}
	// A frame kept at step t shows x after that step, i.e. at the next visited timestep.
	next := map[int]string{}
	for i, t := range timesteps {
		next[t] = "x0"
		if i+1 < len(timesteps) {
			next[t] = "t=" + strconv.Itoa(timesteps[i+1])
		}
	}
	for _, t := range stripSteps {
		labels = append(labels, next[t])
	}
	if err := os.MkdirAll(r.path("denoise"), 0o755); err != nil {
		return err
	}
	img := viz.LabeledGridC(strip, rows*len(stripSteps), shape.C, shape.H, shape.W, len(stripSteps), 2, 2, labels, nil)
	if err := viz.WritePNG(r.path("denoise", "strip.png"), img); err != nil {
		return err
	}
	n := min(r.cfg.Sample.NumImages, gridImages)
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	var frames []image.Image
	for _, t := range gifSteps {
		frames = append(frames, viz.GridC(res.Frames[t][:n*pixels], n, shape.C, shape.H, shape.W, cols, 2, 2))
	}
	if err := viz.WriteGIFImages(r.path("denoise", "denoise.gif"), frames, 8); err != nil {
		return err
	}
	return r.writeClassGIFs(res, gifSteps, res.Labels)
}

// writeClassGIFs writes, for a class-conditional grid, one GIF per requested class: that
// class's samples denoising side by side (denoise/class_K.gif).
func (r *run) writeClassGIFs(res *ddpm.SampleResult, gifSteps []int, labels []int64) error {
	shape := r.imageShape()
	pixels := shape.len()
	members := map[int64][]int{}
	var classes []int64
	for i, k := range labels {
		if len(members[k]) == 0 {
			classes = append(classes, k)
		}
		if len(members[k]) < 8 {
			members[k] = append(members[k], i)
		}
	}
	for _, k := range classes {
		var frames []image.Image
		for _, t := range gifSteps {
			var row []float32
			for _, i := range members[k] {
				row = append(row, res.Frames[t][i*pixels:(i+1)*pixels]...)
			}
			frames = append(frames, viz.GridC(row, len(members[k]), shape.C, shape.H, shape.W, len(members[k]), 2, 2))
		}
		if err := viz.WriteGIFImages(r.path("denoise", fmt.Sprintf("class_%d.gif", k)), frames, 8); err != nil {
			return err
		}
	}
	return nil
}

// writeGrid writes n images (of the run's shape) as a grid under the run folder, RGB for colour
// images: one row per class when labels (nil for unconditional models) run in equal blocks of
// classes, else square-ish.
func (r *run) writeGrid(rel string, images []float32, labels []int64, n int) error {
	path := r.path(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	shape := r.imageShape()
	return viz.WritePNG(path, viz.GridC(images, n, shape.C, shape.H, shape.W, gridColumns(labels, n), 2, 2))
}

// gridColumns is the grid width for n images: the block length when labels hold equal blocks
// of two or more classes (0,0,0,1,1,1,…: a row per class), else ⌈√n⌉.
func gridColumns(labels []int64, n int) int {
	square := int(math.Ceil(math.Sqrt(float64(n))))
	if len(labels) < n || n == 0 {
		return square
	}
	block := 1
	for block < n && labels[block] == labels[0] {
		block++
	}
	if block == n || n%block != 0 { // one class only, or uneven blocks
		return square
	}
	seen := map[int64]bool{}
	for start := 0; start < n; start += block {
		class := labels[start]
		if seen[class] {
			return square
		}
		seen[class] = true
		for _, l := range labels[start : start+block] {
			if l != class {
				return square
			}
		}
	}
	return block
}

// writeLossPlot writes plots/loss.png from the per-step losses.
func (r *run) writeLossPlot() error {
	png, err := reports.RunLossPlot("training loss", r.loss, false)
	if err != nil || png == nil {
		return err
	}
	if err := os.MkdirAll(r.path("plots"), 0o755); err != nil {
		return err
	}
	return writeFile(r.path("plots", "loss.png"), png)
}

// pick chooses about k timesteps spread over the sampler's sequence, always including the
// first and the last.
func pick(timesteps []int, k int) []int {
	if len(timesteps) <= k {
		return timesteps
	}
	var out []int
	for i := 0; i < k; i++ {
		out = append(out, timesteps[i*(len(timesteps)-1)/(k-1)])
	}
	return out
}
