package config

import (
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Limits on values; they are generous, and exist so a typo cannot ask for a year of work.
const (
	MaxTimesteps = 100_000
	MaxNumImages = 4096
	// MaxAutoGuidance bounds sample.autoguidance; Karras et al. 2024 find the best w below 2.
	MaxAutoGuidance = 20
)

// Datasets, Schedules, Samplers, Spacings and Devices list the accepted values of the string keys.
var (
	Datasets  = []string{"mnist", "fashion_mnist", "cifar10", "folder"}
	Schedules = []string{"linear", "cosine"}
	Samplers  = []string{"ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "dpmpp_3m_sde", "unipc"}
	Spacings  = []string{"trailing", "logsnr", "karras"}
	Devices   = []string{"auto", "cpu", "cuda"}
	// Precisions are the values of train.precision and sample.precision.
	Precisions = []string{"fp32", "bf16"}
)

// Validate checks ranges and cross-field rules and returns every problem at once, as an
// ErrorList of *FieldError naming the field (without file or line: LoadFile and the sweep
// package add those). It returns nil for a valid config.
func (c Config) Validate() error {
	var e ErrorList
	// Every float must be finite: NaN slips through range checks and cannot be hashed as JSON.
	for _, f := range fields {
		if f.kind == reflect.Float64 {
			if x := reflect.ValueOf(c).FieldByIndex(f.index).Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				e.add(f.key, "must be a finite number, got %s", formatFloat(x))
			}
		}
	}

	oneOf(&e, "data.dataset", c.Data.Dataset, Datasets)
	c.validateData(&e) // the folder and conversion keys (validate_data.go)
	atLeast(&e, "data.train_subset", c.Data.TrainSubset, 0)

	m := c.Model
	if m.BaseChannels < 8 || m.BaseChannels%8 != 0 {
		e.add("model.base_channels", "must be a multiple of 8 and >= 8 (GroupNorm has 8 groups), got %d", m.BaseChannels)
	}
	if m.TimeEmbDim < 4 || m.TimeEmbDim%2 != 0 {
		e.add("model.time_emb_dim", "must be even and >= 4, got %d", m.TimeEmbDim)
	}

	d := c.Diffusion
	if d.Timesteps < 1 || d.Timesteps > MaxTimesteps {
		e.add("diffusion.timesteps", "must be in 1..%d, got %d", MaxTimesteps, d.Timesteps)
	}
	oneOf(&e, "diffusion.schedule", d.Schedule, Schedules)
	if d.Schedule == "linear" {
		if !(d.BetaStart > 0 && d.BetaStart < 1) {
			e.add("diffusion.beta_start", "must be in (0, 1), got %s", formatFloat(d.BetaStart))
		}
		if !(d.BetaEnd > 0 && d.BetaEnd < 1) {
			e.add("diffusion.beta_end", "must be in (0, 1), got %s", formatFloat(d.BetaEnd))
		} else if d.BetaStart > 0 && !(d.BetaStart < d.BetaEnd) {
			e.add("diffusion.beta_end", "must be > diffusion.beta_start (%s), got %s",
				formatFloat(d.BetaStart), formatFloat(d.BetaEnd))
		}
	}

	t := c.Train
	atLeast(&e, "train.epochs", t.Epochs, 0)
	atLeast(&e, "train.batch_size", t.BatchSize, 1)
	if !(t.LR > 0) {
		e.add("train.lr", "must be > 0, got %s", formatFloat(t.LR))
	} else if !(t.LR < 1) {
		e.add("train.lr", "must be < 1, got %s", formatFloat(t.LR))
	}
	if !(t.GradClip >= 0) {
		e.add("train.grad_clip", "must be >= 0 (0 = off), got %s", formatFloat(t.GradClip))
	}
	if !(t.EMADecay >= 0 && t.EMADecay < 1) {
		e.add("train.ema_decay", "must be 0 (off) or in (0, 1), got %s", formatFloat(t.EMADecay))
	}
	if !(t.PUncond >= 0 && t.PUncond <= 1) {
		e.add("train.p_uncond", "must be in [0, 1], got %s", formatFloat(t.PUncond))
	}
	atLeast(&e, "train.checkpoint_every", t.CheckpointEvery, 0)
	atLeast(&e, "train.sample_every", t.SampleEvery, 0)
	c.validateRecipe(&e) // the model's architecture keys, diffusion.prediction and the training recipe
	oneOf(&e, "train.precision", t.Precision, Precisions)

	s := c.Sample
	oneOf(&e, "sample.sampler", s.Sampler, Samplers)
	oneOf(&e, "sample.spacing", s.Spacing, Spacings)
	oneOf(&e, "sample.precision", s.Precision, Precisions)
	if s.FromRun != "" && store.CheckPrefix(s.FromRun) != nil {
		e.add("sample.from_run", "must be a run hash (4 to 64 hex digits, see `runner list`), got %q", s.FromRun)
	}
	// For a sampling-only run the model and the timesteps are the source run's: these two
	// checks are made again once the source is known.
	if s.Steps < 0 || s.Steps > d.Timesteps && d.Timesteps >= 1 && s.FromRun == "" {
		e.add("sample.steps", "must be 0 (all) or in 1..diffusion.timesteps (%d), got %d", d.Timesteps, s.Steps)
	}
	if !(s.Eta >= 0 && s.Eta <= 1) {
		e.add("sample.eta", "must be in [0, 1], got %s", formatFloat(s.Eta))
	}
	if s.NumImages < 1 || s.NumImages > MaxNumImages {
		e.add("sample.num_images", "must be in 1..%d, got %d", MaxNumImages, s.NumImages)
	}
	if !(s.Guidance >= 0) {
		e.add("sample.guidance", "must be >= 0, got %s", formatFloat(s.Guidance))
	} else if s.Guidance > 0 && !m.Conditional && s.FromRun == "" {
		e.add("sample.guidance", "needs model.conditional = true (got guidance %s on an unconditional model)", formatFloat(s.Guidance))
	}

	if !(s.AutoGuidance >= 0 && s.AutoGuidance <= MaxAutoGuidance) {
		e.add("sample.autoguidance", "must be in [0, %g] (0 = off), got %s", float64(MaxAutoGuidance), formatFloat(s.AutoGuidance))
	} else if s.AutoGuidance > 0 && s.GuideRun == "" && s.GuideStep == 0 {
		e.add("sample.autoguidance", "needs a guide: sample.guide_run (a weaker run of the same data) or sample.guide_step (a snapshot of this run's own training) (got autoguidance %s)", formatFloat(s.AutoGuidance))
	}
	if s.GuideRun != "" {
		if store.CheckPrefix(s.GuideRun) != nil {
			e.add("sample.guide_run", "must be a run hash (4 to 64 hex digits, see `runner list`), got %q", s.GuideRun)
		} else if s.AutoGuidance == 0 {
			e.add("sample.guide_run", "is only used with sample.autoguidance > 0; set both or neither")
		}
	}
	if s.GuideStep < 0 {
		e.add("sample.guide_step", "must be >= 0 (0 = the guide's final weights), got %d", s.GuideStep)
	} else if s.GuideStep > 0 && s.AutoGuidance == 0 {
		e.add("sample.guide_step", "is only used with sample.autoguidance > 0; set both or neither")
	}

	if n := c.Eval.NumSamples; n != 0 && n < 10 {
		e.add("eval.num_samples", "must be 0 (skip) or >= 10, got %d", n)
	}

	oneOf(&e, "runtime.device", c.Runtime.Device, Devices)
	atLeast(&e, "runtime.threads", c.Runtime.Threads, 0)
	return e.Err()
}

func oneOf(e *ErrorList, key, v string, allowed []string) {
	if !containsStr(allowed, v) {
		q := make([]string, len(allowed))
		for i, a := range allowed {
			q[i] = strconv.Quote(a)
		}
		e.add(key, "must be one of %s, got %q", strings.Join(q, " | "), v)
	}
}

func atLeast(e *ErrorList, key string, v, lo int) {
	if v < lo {
		e.add(key, "must be >= %d, got %d", lo, v)
	}
}
