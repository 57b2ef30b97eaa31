package ddpm

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Sampler is one reverse-process algorithm, in the shape of diffusers' schedulers: it never
// calls the model; the loop in Sample does, and hands each prediction to Step.
type Sampler interface {
	// Timesteps is the descending sequence of timesteps the sampler visits.
	Timesteps() []int
	// Step maps x_t and the model's ε̂ at timestep index i (t = Timesteps()[i]) to x_{prev}.
	// It returns x_prev and the current estimate of x_0; both are owned by the caller.
	Step(s *scope, i int, modelOutput, sample *ts.Tensor) (prev, predX0 *ts.Tensor)
	// Name describes the sampler for logs and reports, e.g. "ddim(η=0, 50 steps, trailing)".
	Name() string
}

// Closer is implemented by a Sampler that keeps tensors between Step calls (a multistep
// history). Sample calls Close when it stops, so a pass cut short frees them too.
type Closer interface {
	Close()
}

// Sampler names accepted by NewSampler.
const (
	SamplerDDPM       = "ddpm"         // ancestral sampling, Ho et al. 2020, Algorithm 2
	SamplerDDIM       = "ddim"         // Song et al. 2021, eq. 12 (η from the caller)
	SamplerDPMPP2M    = "dpmpp_2m"     // DPM-Solver++(2M), Lu et al. 2022, Algorithm 2
	SamplerDPMPP2MSDE = "dpmpp_2m_sde" // its stochastic variant (η = 1)
	SamplerDPMPP3M    = "dpmpp_3m"     // DPM-Solver++(3M), the third-order multistep solver
	SamplerDPMPP3MSDE = "dpmpp_3m_sde" // its stochastic variant (η = 1)
	SamplerUniPC      = "unipc"        // UniPC-2 with B(h) = e^h − 1, Zhao et al. 2023
)

// Samplers lists the sampler names NewSampler accepts.
func Samplers() []string {
	return []string{SamplerDDPM, SamplerDDIM, SamplerDPMPP2M, SamplerDPMPP2MSDE, SamplerDPMPP3M, SamplerDPMPP3MSDE, SamplerUniPC}
}

// NewSampler builds the named sampler (see Samplers) over steps timesteps (0 = all T) with
// trailing spacing. With clipX0 the predicted x_0 is clamped to the data range [-1, 1] at every
// step before the next x is formed from it, as Ho et al.'s released code and diffusers do by
// default; it keeps an imperfect model's samples from drifting into saturated black or white.
// eta is DDIM's η; the other samplers ignore it.
func NewSampler(kind string, sched *Schedule, steps int, eta float64, clipX0 bool) (Sampler, error) {
	return NewSpacedSampler(kind, Trailing, sched, steps, eta, clipX0)
}

// NewSpacedSampler is NewSampler on the timestep grid named by spacing (see Spacings and
// SampleTimesteps; "" = trailing). Whatever the grid, the last step lands on x_0.
func NewSpacedSampler(kind, spacing string, sched *Schedule, steps int, eta float64, clipX0 bool) (Sampler, error) {
	if steps == 0 {
		steps = sched.T
	}
	timesteps, err := SampleTimesteps(sched, spacing, steps)
	if err != nil {
		return nil, err
	}
	switch kind {
	case SamplerDDPM:
		d := newDDPMSampler(sched, timesteps, clipX0)
		d.spacing = spacing
		return d, nil
	case SamplerDDIM:
		if eta < 0 || eta > 1 {
			return nil, fmt.Errorf("ddim: eta must be in [0, 1], got %g", eta)
		}
		d := newDDIMSampler(sched, timesteps, eta, clipX0)
		d.spacing = spacing
		return d, nil
	case SamplerDPMPP2M:
		return newDPMPP2MSampler(sched, timesteps, spacing, clipX0), nil
	case SamplerDPMPP2MSDE:
		return newDPMPP2MSDESampler(sched, timesteps, spacing, sdeEta, clipX0), nil
	case SamplerDPMPP3M:
		return newDPMPP3MSampler(sched, timesteps, spacing, clipX0), nil
	case SamplerDPMPP3MSDE:
		return newDPMPP3MSDESampler(sched, timesteps, spacing, sdeEta, clipX0), nil
	case SamplerUniPC:
		return newUniPCSampler(sched, timesteps, spacing, uniPCOrder, true, clipX0), nil
	default:
		return nil, fmt.Errorf("unknown sampler %q (want one of %s)", kind, quotedList(Samplers()))
	}
}

// quotedList joins names as "a", "b" or "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// SpacedTimesteps returns k timesteps out of 0..T-1, descending, with "trailing" spacing
// (Lin et al. 2024, table 2): t_i = round(T − i·T/k) − 1 for i = 0..k−1. The first step is always
// T−1, so sampling starts from pure noise, and k = T gives every step T−1, T−2, …, 0.
// Example: T = 1000, k = 10 gives 999, 899, 799, …, 99; the last step then jumps to x_0.
func SpacedTimesteps(T, k int) ([]int, error) {
	if k < 1 || k > T {
		return nil, fmt.Errorf("sampling steps must be in 1..%d (the number of timesteps), got %d", T, k)
	}
	out := make([]int, k)
	for i := range out {
		// Integer form of round(T − i·T/k) − 1, exact for all T, k.
		out[i] = (2*T*(k-i)+k)/(2*k) - 1
	}
	return out, nil
}

// clamp limits x to the data range [-1, 1] when on is set.
func (s *scope) clamp(x *ts.Tensor, on bool) *ts.Tensor {
	if !on || s.failed(x) {
		return x
	}
	lo, hi := ts.FloatScalar(-1), ts.FloatScalar(1)
	defer lo.MustDrop()
	defer hi.MustDrop()
	return s.do(x.Clamp(lo, hi, false))
}

// alphaCumprodAt is ᾱ_t, with ᾱ_{−1} = 1 for the step that lands on x_0.
func alphaCumprodAt(s *Schedule, t int) float64 {
	if t < 0 {
		return 1
	}
	return s.AlphasCumprod[t]
}

// SampleOptions controls one call of Sample.
type SampleOptions struct {
	Labels   []int64 // class per image for a conditional model; nil for unconditional
	Guidance float64 // classifier-free guidance scale w; 0 = the conditional prediction alone
	// AutoGuide, if set, guides the model with a weaker version of itself (autoguidance, see
	// autoGuidedNoise) at scale AutoGuidance; it must share the model's timesteps and classes.
	AutoGuide    *Model
	AutoGuidance float64
	// KeepFrames lists timesteps whose x_t (after the step, so x_{t−1}) is kept as a frame; a
	// -1 entry keeps the final x_0.
	KeepFrames map[int]bool
	// Progress, if set, is called after every step with the number of steps done.
	Progress func(done, total int)
	// Context, if set, is checked before every step; sampling stops with its error once it is
	// done (for example on Ctrl-C).
	Context context.Context
	// OnFrame, if set, is handed the sampler's state after every FrameEvery-th step and after
	// the last one (FrameEvery below 1 means every step), for a live view of the denoising.
	// A non-nil error from it stops sampling and is returned.
	OnFrame    func(StepFrame) error
	FrameEvery int
}

// StepFrame is what SampleOptions.OnFrame sees after one step: x after the step (at the next
// visited timestep; x_0 after the last) and the sampler's predicted x̂_0 at that step, both as
// Go values clamped to [-1, 1] in the layout of x_T (B·C·H·W).
type StepFrame struct {
	Step, Steps int // steps done (1..Steps) and the number of steps
	T           int // the timestep the step started from
	X, PredX0   []float32
}

// wantFrame reports whether OnFrame sees step done (1-based) of steps.
func (o SampleOptions) wantFrame(done, steps int) bool {
	if o.OnFrame == nil {
		return false
	}
	return done == steps || done%max(1, o.FrameEvery) == 0
}

// SampleResult holds the final images and any kept frames, as Go values in [-1, 1] (clamped).
type SampleResult struct {
	Images     []float32         // (B·C·H·W)
	Labels     []int64           // the class of each image for a conditional model, else nil
	Frames     map[int][]float32 // timestep → x at that point
	FrameOrder []int             // timesteps of Frames in the order they were made
}

// Sample runs the reverse process from the start noise xT (B,C,H,W) to x_0 with gradient
// tracking off. Every tensor made per step is freed before the next.
func Sample(model *Model, sampler Sampler, xT *ts.Tensor, opts SampleOptions) (*SampleResult, error) {
	var guide noisePredictor
	if opts.AutoGuide != nil {
		if g, m := opts.AutoGuide.numClasses(), model.numClasses(); g != m {
			return nil, fmt.Errorf("autoguidance: the guiding model has %d classes, the model %d", g, m)
		}
		guide = opts.AutoGuide
	}
	return sample(model, guide, sampler, xT, opts)
}

// noisePredictor is what the sampling loop needs of a model: ε̂ for a batch (with guidance), and
// its number of classes. Tests substitute an exact predictor for a known distribution.
type noisePredictor interface {
	guidedNoise(s *scope, x, t, labels *ts.Tensor, w float64) *ts.Tensor
	numClasses() int
}

func (m *Model) numClasses() int { return m.Net.Config.NumClasses }

// sample is Sample for any noise predictor; guide, if not nil, autoguides model at
// opts.AutoGuidance.
func sample(model, guide noisePredictor, sampler Sampler, xT *ts.Tensor, opts SampleOptions) (*SampleResult, error) {
	res := &SampleResult{Frames: map[int][]float32{}}
	err := NoGrad(func() error {
		device, err := xT.Device()
		if err != nil {
			return err
		}
		size, err := xT.Size()
		if err != nil {
			return err
		}
		batch := size[0]
		x, err := xT.ShallowClone()
		if err != nil {
			return err
		}
		defer func() { x.MustDrop() }()

		var labels *ts.Tensor
		if model.numClasses() > 0 {
			var ls scope
			defer ls.drop()
			res.Labels = classLabels(opts.Labels, batch, model.numClasses())
			labels = ls.fromInt64(res.Labels, device)
			if ls.err != nil {
				return ls.err
			}
		}
		if c, ok := sampler.(Closer); ok {
			defer c.Close()
		}
		timesteps := sampler.Timesteps()
		for i, t := range timesteps {
			if opts.Context != nil && opts.Context.Err() != nil {
				return opts.Context.Err()
			}
			var s scope
			tt := s.fromInt64(repeatInt64(int64(t), batch), device)
			eps := model.guidedNoise(&s, x, tt, labels, opts.Guidance)
			if guide != nil {
				eps = autoGuidedNoise(&s, eps, guide.guidedNoise(&s, x, tt, labels, opts.Guidance), opts.AutoGuidance)
			}
			prev, predX0 := sampler.Step(&s, i, eps, x)
			if s.err != nil {
				s.drop()
				return fmt.Errorf("sampling step t=%d: %w", t, s.err)
			}
			var frame *StepFrame
			if opts.wantFrame(i+1, len(timesteps)) {
				frame = &StepFrame{Step: i + 1, Steps: len(timesteps), T: t}
				if frame.X, err = clampedValues(prev); err == nil {
					frame.PredX0, err = clampedValues(predX0)
				}
				if err != nil {
					s.drop()
					return fmt.Errorf("sampling step t=%d: frame: %w", t, err)
				}
			}
			s.release(prev)
			s.drop()
			x.MustDrop()
			x = prev
			if opts.KeepFrames[t] {
				v, err := clampedValues(x)
				if err != nil {
					return err
				}
				res.Frames[t] = v
				res.FrameOrder = append(res.FrameOrder, t)
			}
			if opts.Progress != nil {
				opts.Progress(i+1, len(timesteps))
			}
			if frame != nil {
				if err := opts.OnFrame(*frame); err != nil {
					return err
				}
			}
		}
		res.Images, err = clampedValues(x)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// guidedNoise is ε̂ with classifier-free guidance (Ho & Salimans 2022, eq. 6):
//
//	ε̂ = (1 + w)·ε_θ(x, t, c) − w·ε_θ(x, t, ∅)
//
// For an unconditional model, or w = 0, it is the plain prediction ε_θ(x, t[, c]).
func (m *Model) guidedNoise(s *scope, x, t, labels *ts.Tensor, w float64) *ts.Tensor {
	if s.failed(x, t) {
		return nil
	}
	if labels == nil || w == 0 {
		return m.toEps(s, x, t, s.do(m.Net.Forward(x, t, labels)))
	}
	nullClass := ts.IntScalar(int64(m.Net.Config.NumClasses))
	defer nullClass.MustDrop()
	null := s.do(labels.FullLike(nullClass, false))
	conditional := s.do(m.Net.Forward(x, t, labels))
	unconditional := s.do(m.Net.Forward(x, t, null))
	return m.toEps(s, x, t, s.sub(s.scale(conditional, 1+w), s.scale(unconditional, w))) // v → ε (prediction.go)
}

// classLabels expands the requested labels to the batch; missing ones are the null class.
func classLabels(labels []int64, batch int64, numClasses int) []int64 {
	out := make([]int64, batch)
	for i := range out {
		out[i] = int64(numClasses)
		if i < len(labels) {
			out[i] = labels[i]
		}
	}
	return out
}

func repeatInt64(v, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// clampedValues copies x to Go, clamped to the data range [-1, 1].
func clampedValues(x *ts.Tensor) ([]float32, error) {
	v, err := float32s(x)
	if err != nil {
		return nil, err
	}
	for i, f := range v {
		v[i] = max(-1, min(1, f))
	}
	return v, nil
}

// NoiseFor makes the start noise x_T for n images of shape (c, h, w) from a seed, in Go, so
// every run of a sweep can start from the same x_T whatever its device or libtorch state.
func NoiseFor(seed int64, n, c, h, w int, device gotch.Device) (*ts.Tensor, error) {
	values := GaussianNoise(seed, n*c*h*w)
	var s scope
	defer s.drop()
	x := s.fromFloat32(values, []int64{int64(n), int64(c), int64(h), int64(w)}, device)
	if s.err != nil {
		return nil, fmt.Errorf("start noise: %w", s.err)
	}
	return s.release(x), nil
}
