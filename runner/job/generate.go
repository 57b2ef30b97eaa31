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
}

// NewGenerator loads the last checkpoint of the opened run (OpenRun) with the weights
// cfg.Sample.UseEMA asks for; cfg is run.Config with the sampling overrides applied.
func NewGenerator(run *OpenedRun, cfg config.Config) (*Generator, error) {
	device, err := pickDevice(cfg.Runtime.Device)
	if err != nil {
		return nil, err
	}
	sched, err := schedule(cfg)
	if err != nil {
		return nil, err
	}
	if err := run.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return nil, fmt.Errorf("no checkpoint in %s: train the run first", CheckpointsDir(run.SourceDir))
	} else if err != nil {
		return nil, err
	}
	model, weights, err := run.Model(cfg, device)
	if err != nil {
		return nil, err
	}
	if err := model.SetSchedule(sched); err != nil { // a v-prediction model's v̂ becomes ε̂ with it
		return nil, err
	}
	return &Generator{cfg: cfg, sched: sched, model: model, device: device, shape: run.shape, weights: weights}, nil
}

// Shape is the (C, H, W) of the images the generator makes.
func (g *Generator) Shape() (c, h, w int) { return g.shape.C, g.shape.H, g.shape.W }

// Weights is "ema" or "raw": the weights the generator samples with.
func (g *Generator) Weights() string { return g.weights }

// NumClasses is the number of classes of a conditional model, 0 for an unconditional one.
func (g *Generator) NumClasses() int { return g.model.Net.Config.NumClasses }

// Generation is one request to a Generator.
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
	Sampler   string // the sampler's description, e.g. "ddim(η=0, 20 steps, trailing)"
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
	if gen.OnStart != nil {
		if err := gen.OnStart(s.Name(), len(s.Timesteps())); err != nil {
			return out, err
		}
	}
	ddpm.ManualSeed(gen.Seed)
	start := time.Now()
	res, err := ddpm.Sample(g.model, s, xT, ddpm.SampleOptions{
		Labels: labels, Guidance: gen.Guidance, Context: ctx, OnFrame: gen.OnFrame, FrameEvery: gen.FrameEvery,
	})
	if err != nil {
		return out, err
	}
	return GenerationResult{Images: res.Images, Sampler: s.Name(), Timesteps: s.Timesteps(), Seconds: time.Since(start).Seconds()}, nil
}
