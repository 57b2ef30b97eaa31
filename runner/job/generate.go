package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Generator samples a trained run's last checkpoint again and again with different settings:
// the model of `runner serve`'s generation child. Make it with NewGenerator.
type Generator struct {
	cfg     config.Config
	sched   *ddpm.Schedule
	model   *ddpm.Model
	device  gotch.Device
	shape   imageShape
	weights string
	// guide is the bad model of autoguidance at weight cfg.Sample.AutoGuidance; nil when off.
	guide *ddpm.Model
}

// NewGenerator loads the last checkpoint of opened, the opened run (OpenRun), with the weights
// cfg.Sample.UseEMA asks for; cfg is run.Config with the sampling overrides applied. When cfg
// asks for autoguidance (sample.autoguidance > 0) it also loads the guide exactly as the run's
// own sampling does: sample.guide_run's weights, found in st, or the run's own snapshot at
// sample.guide_step. A guide that cannot be opened (a snapshot that is gone, a guide run not
// trained) is a *GuideError that says what to fix; it wraps *SourceError where the run's config
// is the user's to fix. st may be nil only when cfg names no sample.guide_run.
func NewGenerator(st *store.Store, opened *OpenedRun, cfg config.Config) (*Generator, error) {
	device, err := pickDevice(cfg.Runtime.Device)
	if err != nil {
		return nil, err
	}
	sched, err := schedule(cfg)
	if err != nil {
		return nil, err
	}
	if err := opened.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return nil, fmt.Errorf("no checkpoint in %s: train the run first", store.CheckpointsDir(opened.SourceDir))
	} else if err != nil {
		return nil, err
	}
	model, weights, err := opened.Model(cfg, device)
	if err != nil {
		return nil, err
	}
	if err := model.SetSchedule(sched); err != nil { // a v-prediction model's v̂ becomes ε̂ with it
		return nil, err
	}
	// The guide: the same loader as training, `runner sample` and `runner eval` (guide.go).
	r := &run{cfg: cfg, device: device, shape: opened.shape}
	if err := r.loadGuide(st, opened); err != nil {
		return nil, &GuideError{W: cfg.Sample.AutoGuidance, Err: err}
	}
	if r.guide != nil {
		if err := r.guide.SetSchedule(sched); err != nil {
			return nil, err
		}
	}
	return &Generator{cfg: cfg, sched: sched, model: model, device: device, shape: opened.shape, weights: weights, guide: r.guide}, nil
}

// GuideError says that NewGenerator could not open or load the guide that autoguidance at
// weight W asks for; generating with autoguidance 0 needs no guide.
type GuideError struct {
	W   float64 // the autoguidance weight, sample.autoguidance
	Err error   // why the guide could not be had (often a *SourceError naming the key to fix)
}

// Error names the weight and the underlying error, which names the config key to fix.
func (e *GuideError) Error() string { return fmt.Sprintf("autoguidance w=%g: %v", e.W, e.Err) }

// Unwrap returns the underlying error.
func (e *GuideError) Unwrap() error { return e.Err }

// Shape is the (C, H, W) of the images the generator makes.
func (g *Generator) Shape() (c, h, w int) { return g.shape.C, g.shape.H, g.shape.W }

// Weights is "ema" or "raw": the weights the generator samples with.
func (g *Generator) Weights() string { return g.weights }

// AutoGuidance is the weight w of the autoguidance the generator samples with (its config's
// sample.autoguidance), 0 when it samples with the model alone.
func (g *Generator) AutoGuidance() float64 {
	if g.guide == nil {
		return 0
	}
	return g.cfg.Sample.AutoGuidance
}

// NumClasses is the number of classes of a conditional model, 0 for an unconditional one.
func (g *Generator) NumClasses() int { return g.model.Net.Config.NumClasses }

// Generation is one request to a Generator. Autoguidance is not in it: it is the Generator's
// (its config's sample.autoguidance and guide), as the guide's weights are loaded once.
type Generation struct {
	Sampler, Spacing string  // "" = the run's sample.sampler / sample.spacing
	Steps            int     // sampling steps, 1..T; 0 = the run's sample.steps
	Eta              float64 // DDIM η
	Guidance         float64 // classifier-free guidance scale w
	Seed             int64   // start noise (ddpm.NoiseFor) and the stochastic samplers' noise
	N                int     // images
	// Class is the class of every image for a conditional model; -1 is unconditional (the null
	// class). It must be -1 for an unconditional model.
	Class      int
	FrameEvery int                        // OnFrame's stride in steps
	OnFrame    func(ddpm.StepFrame) error // nil: no frames
	// OnStart, if set, is called once the sampler is built, before the first step, with its
	// description and number of steps; an error from it stops the generation.
	OnStart func(sampler string, steps int) error
}

// GenerationResult is a finished generation: images as B·C·H·W values in [-1, 1].
type GenerationResult struct {
	Images    []float32
	Sampler   string // the sampler's description, e.g. "ddim(η=0, 20 steps, trailing) + autoguidance w=1"
	Timesteps []int
	Seconds   float64
}

// Generate runs one generation. The same Generation gives the same images: the start noise
// comes from Seed in Go, and libtorch's generator is seeded with it before the first step.
func (g *Generator) Generate(ctx context.Context, gen Generation) (GenerationResult, error) {
	var out GenerationResult
	sampler := cmp.Or(gen.Sampler, g.cfg.Sample.Sampler)
	spacing := cmp.Or(gen.Spacing, g.cfg.Sample.Spacing)
	steps := gen.Steps
	if steps == 0 {
		steps = g.cfg.Sample.Steps
	}
	s, err := ddpm.NewSpacedSampler(sampler, spacing, g.sched, steps, gen.Eta, g.cfg.Sample.ClipX0)
	if err != nil {
		return out, err
	}
	if gen.N < 1 {
		return out, fmt.Errorf("generate: want at least one image, got %d", gen.N)
	}
	var labels []int64
	switch k := g.NumClasses(); {
	case gen.Class >= 0 && k == 0:
		return out, fmt.Errorf("generate: class %d asked of an unconditional model", gen.Class)
	case gen.Class >= k:
		return out, fmt.Errorf("generate: class %d out of range 0..%d", gen.Class, k-1)
	case gen.Class >= 0:
		labels = make([]int64, gen.N)
		for i := range labels {
			labels[i] = int64(gen.Class)
		}
	}
	// labels nil on a conditional model: every image gets the null class ∅ (unconditional).
	xT, err := ddpm.NoiseFor(gen.Seed, gen.N, g.shape.C, g.shape.H, g.shape.W, g.device)
	if err != nil {
		return out, err
	}
	defer xT.MustDrop()
	opts := ddpm.SampleOptions{
		Labels: labels, Guidance: gen.Guidance, Context: ctx, OnFrame: gen.OnFrame, FrameEvery: gen.FrameEvery,
	}
	name := s.Name()
	if g.guide != nil { // as run.sample wires it (samples.go)
		opts.AutoGuide, opts.AutoGuidance = g.guide, g.cfg.Sample.AutoGuidance
		name += fmt.Sprintf(" + autoguidance w=%g", g.cfg.Sample.AutoGuidance) // twice the network evaluations
	}
	if gen.OnStart != nil {
		if err := gen.OnStart(name, len(s.Timesteps())); err != nil {
			return out, err
		}
	}
	ddpm.ManualSeed(gen.Seed)
	start := time.Now()
	res, err := ddpm.Sample(g.model, s, xT, opts)
	if err != nil {
		return out, err
	}
	return GenerationResult{Images: res.Images, Sampler: name, Timesteps: s.Timesteps(), Seconds: time.Since(start).Seconds()}, nil
}
