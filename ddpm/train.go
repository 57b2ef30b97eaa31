package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TrainConfig holds the training hyperparameters that the Trainer needs.
//
// The zero values of the fields after Seed are the guide's plain Algorithm 1: a constant
// learning rate, uniform timesteps, an unweighted loss and an EMA updated every step.
type TrainConfig struct {
	LR        float64 // Adam learning rate; the guide's default is 2e-4
	GradClip  float64 // max global gradient norm; 0 = no clipping
	EMADecay  float64 // 0 = no EMA
	EMAWarmup bool
	PUncond   float64 // label dropout for conditional models (classifier-free guidance)
	Seed      int64

	LRSchedule  string // LRConstant (also "") | LRCosine | LRLinear, after the warm-up (LRAt)
	WarmupSteps int64  // linear warm-up of the learning rate from 0
	TotalSteps  int64  // the run's number of optimizer steps, which cosine and linear decay over

	LossWeighting    string  // WeightingNone (also "") | WeightingMinSNR
	MinSNRGamma      float64 // γ of Min-SNR-γ
	TimestepSampling string  // TimestepsUniform (also "") | TimestepsStratified

	EMAPower float64 // > 0: diffusers' power warm-up of the EMA decay
	EMAEvery int64   // optimizer steps between EMA updates; ≤ 1 = every step
	EMAStart int64   // optimizer steps before the EMA starts averaging

	AdamBeta1 float64 // Adam's β1 in (0, 1); 0 = PyTorch's 0.9
	AdamBeta2 float64 // Adam's β2 in (0, 1); 0 = PyTorch's 0.999

	perTensor bool // tests: Adam and the EMA loop over the parameters instead of flat buffers
}

// Trainer runs the DDPM training step (Ho et al. 2020, Algorithm 1) with Adam and optional EMA.
type Trainer struct {
	Model     *Model
	Diffusion *Diffusion
	Adam      *Adam
	EMA       *EMA // nil when EMA is off
	Config    TrainConfig

	lossWeights *ts.Tensor // (T) per-timestep loss weights; nil for an unweighted loss
}

// NewTrainer prepares the optimizer (and EMA) for model.
func NewTrainer(model *Model, diffusion *Diffusion, cfg TrainConfig) (*Trainer, error) {
	adam, err := NewAdam(model.params, cfg.LR)
	if err != nil {
		return nil, err
	}
	for _, beta := range []struct {
		name      string
		set       float64
		optimizer *float64
	}{{"beta1", cfg.AdamBeta1, &adam.Beta1}, {"beta2", cfg.AdamBeta2, &adam.Beta2}} {
		switch {
		case beta.set == 0: // PyTorch's default, set by NewAdam
		case beta.set > 0 && beta.set < 1:
			*beta.optimizer = beta.set
		default:
			return nil, fmt.Errorf("adam: %s must be in (0, 1), got %g", beta.name, beta.set)
		}
	}
	var flatParams *ts.Tensor // the model's parameters become views of one buffer (flat.go)
	if !cfg.perTensor {
		if flatParams, err = adam.useFlatBuffers(); err != nil {
			return nil, err
		}
	}
	tr := &Trainer{Model: model, Diffusion: diffusion, Adam: adam, Config: cfg}
	if cfg.EMADecay > 0 {
		if tr.EMA, err = NewEMA(model.params, cfg.EMADecay, cfg.EMAWarmup); err != nil {
			return nil, err
		}
		tr.EMA.Power, tr.EMA.Every, tr.EMA.Start = cfg.EMAPower, cfg.EMAEvery, cfg.EMAStart
		if flatParams != nil {
			if err := tr.EMA.useFlatBuffers(flatParams); err != nil {
				return nil, err
			}
		}
	}
	switch cfg.LossWeighting {
	case WeightingNone, "":
	case WeightingMinSNR:
		if !(cfg.MinSNRGamma > 0) {
			return nil, fmt.Errorf("min-snr loss weighting: gamma must be > 0, got %g", cfg.MinSNRGamma)
		}
		if tr.lossWeights, err = coefficients(MinSNRWeights(diffusion.AlphasCumprod, cfg.MinSNRGamma, model.Net.Config.Prediction), diffusion.Device); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown loss weighting %q (want %q or %q)", cfg.LossWeighting, WeightingNone, WeightingMinSNR)
	}
	return tr, nil
}

// Steps is the number of optimizer steps taken so far (restored by LoadCheckpoint).
func (tr *Trainer) Steps() int64 { return tr.Adam.Step }

// Step runs one training step on a batch x0 (B,1,H,W) in [-1, 1] with labels (B) int64 (nil for
// unconditional models) and returns the loss. Every tensor it makes is freed before it returns.
//
// libtorch's generator is reseeded from (seed, step) first, so a step's timesteps and noise
// depend only on the run's seed and the step number: a run resumed from a checkpoint continues
// exactly as if it had never stopped.
func (tr *Trainer) Step(x0, labels *ts.Tensor) (float64, error) {
	ManualSeed(stepSeed(tr.Config.Seed, tr.Adam.Step))
	var s scope
	defer s.drop()
	size, err := x0.Size()
	if err != nil {
		return 0, err
	}
	device := tr.Diffusion.Device

	// Algorithm 1, line 3: t ~ Uniform({1, …, T}) (here 0..T−1), one per image
	t := tr.sampleTimesteps(&s, size[0], device)
	// line 4: ε ~ N(0, I)
	noise := s.randn(size, device)
	// line 5: x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε
	xt := s.do(tr.Diffusion.QSample(x0, t, noise))
	y := tr.dropLabels(&s, labels)
	// ...and the loss ‖ε − ε_θ(x_t, t)‖², averaged over pixels and the batch
	predicted := s.do(tr.Model.Net.ForwardT(xt, t, y, true))
	if s.failed(predicted) {
		return 0, fmt.Errorf("forward: %w", s.err)
	}
	target := noise
	if tr.Model.Net.Config.Prediction == PredictV {
		target = s.do(tr.Diffusion.VTarget(x0, t, noise)) // v = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0
	}
	var loss *ts.Tensor
	if tr.lossWeights == nil {
		loss = s.do(predicted.MseLoss(target, ts.ReductionMean, false))
	} else {
		loss = s.weightedMSE(predicted, target, t, tr.lossWeights) // Min-SNR-γ
	}
	if s.failed(loss) {
		return 0, fmt.Errorf("loss: %w", s.err)
	}
	lossValue, err := scalar(loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(lossValue) || math.IsInf(lossValue, 0) {
		return lossValue, &NonFiniteLossError{Step: tr.Adam.Step, Loss: lossValue}
	}

	// line 5, continued: take a gradient step
	if err := tr.Adam.ZeroGrad(); err != nil {
		return 0, err
	}
	if err := loss.Backward(); err != nil {
		return 0, fmt.Errorf("backward: %w", err)
	}
	if tr.Config.GradClip > 0 {
		if _, err := clipGradNorm(tr.Model.params, tr.Config.GradClip); err != nil {
			return 0, err
		}
	}
	c := tr.Config
	if tr.Adam.LR, err = LRAt(c.LRSchedule, c.LR, c.WarmupSteps, c.TotalSteps, tr.Adam.Step); err != nil {
		return 0, err
	}
	if err := tr.Adam.Update(); err != nil {
		return 0, err
	}
	if tr.EMA != nil {
		if err := tr.EMA.AfterStep(tr.Adam.Step); err != nil {
			return 0, err
		}
	}
	return lossValue, nil
}

// dropLabels replaces each label by the null class with probability p_uncond, so one network
// learns ε_θ(x, t, c) and ε_θ(x, t, ∅) at once (Ho & Salimans 2022, Algorithm 1).
func (tr *Trainer) dropLabels(s *scope, labels *ts.Tensor) *ts.Tensor {
	numClasses := tr.Model.Net.Config.NumClasses
	if numClasses == 0 || labels == nil || s.failed(labels) {
		return labels
	}
	if tr.Config.PUncond <= 0 {
		return labels
	}
	size, err := labels.Size()
	if err != nil {
		s.err = err
		return nil
	}
	u := s.do(ts.Rand(size, gotch.Float, tr.Diffusion.Device))
	if s.failed(u) {
		return nil
	}
	p := ts.FloatScalar(tr.Config.PUncond)
	defer p.MustDrop()
	drop := s.do(u.Lt(p, false)) // (B) bool: true with probability p_uncond
	null := ts.IntScalar(int64(numClasses))
	defer null.MustDrop()
	nulls := s.do(labels.FullLike(null, false))
	if s.failed(drop, nulls) {
		return nil
	}
	return s.do(nulls.WhereSelf(drop, labels, false))
}

// NonFiniteLossError reports a NaN or infinite loss; training stops on it.
type NonFiniteLossError struct {
	Step int64
	Loss float64
}

func (e *NonFiniteLossError) Error() string {
	return fmt.Sprintf("loss became %v at step %d (try a lower train.lr or set train.grad_clip)", e.Loss, e.Step)
}

// stepSeed mixes a run seed and a step number into a libtorch seed (SplitMix64 finaliser).
func stepSeed(seed, step int64) int64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 + uint64(step) + 1
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64((z ^ (z >> 31)) >> 1)
}

// SamplingWeights copies the weights to sample with into dst (a model of the same
// configuration): the EMA average when there is one and useEMA is set, else the raw weights.
// It returns which were used, "ema" or "raw".
func (tr *Trainer) SamplingWeights(dst *Model, useEMA bool) (string, error) {
	if useEMA && tr.EMA != nil {
		return "ema", tr.EMA.CopyTo(dst.params)
	}
	return "raw", dst.CopyFrom(tr.Model)
}
