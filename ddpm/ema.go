package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"
)

// EMA keeps an exponential moving average of the model's parameters (not of buffers; the U-Net
// has none):
//
//	θ_ema ← d·θ_ema + (1 − d)·θ
//
// With warm-up the decay starts small and approaches Decay, d_n = min(Decay, (1 + n)/(10 + n)),
// so early averages are not dominated by the random initialisation. The power warm-up of
// diffusers' EMAModel (use_ema_warmup, inv_gamma = 1) is d_n = min(Decay, 1 − (1 + n)^−Power):
// d_0 = 0 copies the weights, and the average then spans about 1/(1 − d_n) = (1 + n)^Power
// updates: with Power = 3/4, n = 1000 gives d ≈ 0.9944, a window of about 180 updates, which
// suits runs of a few thousand steps.
//
// AfterStep schedules the updates: until optimizer step Start the average just follows the
// weights, then it is updated every Every steps; n counts the updates made.
type EMA struct {
	Decay   float64
	Warmup  bool
	Power   float64 // > 0: the power warm-up (and not Warmup's)
	Every   int64   // optimizer steps between updates; ≤ 1 means every step
	Start   int64   // optimizer steps before averaging starts
	Updates int64   // n, the number of updates made (saved in checkpoints)

	params  []namedTensor // the live model's parameters
	average []namedTensor // the averaged copies, same order
	flat    *emaBuffers   // nil: one op per parameter (useFlatBuffers)
}

// emaBuffers are the flat buffers (flat.go) that the parameters and their averages are views of.
type emaBuffers struct{ param, average *ts.Tensor }

// useFlatBuffers lays the average out in one buffer; param is the buffer the parameters are
// views of (Adam.useFlatBuffers). Updates are then one op instead of one per parameter.
func (e *EMA) useFlatBuffers(param *ts.Tensor) error {
	average, err := flattenNamed(e.average)
	if err != nil {
		return fmt.Errorf("ema: %w", err)
	}
	e.flat = &emaBuffers{param: param, average: average}
	return nil
}

// NewEMA starts the average at the current parameter values.
func NewEMA(params []namedTensor, decay float64, warmup bool) (*EMA, error) {
	average, err := zerosLike(params)
	if err != nil {
		return nil, fmt.Errorf("ema: %w", err)
	}
	for i := range params {
		if err := copyInto(average[i].tensor, params[i].tensor); err != nil {
			return nil, fmt.Errorf("ema: copy %s: %w", params[i].name, err)
		}
	}
	return &EMA{Decay: decay, Warmup: warmup, params: params, average: average}, nil
}

// CurrentDecay is the decay the next update uses.
func (e *EMA) CurrentDecay() float64 {
	n := float64(e.Updates)
	switch {
	case e.Power > 0:
		return min(e.Decay, 1-math.Pow(1+n, -e.Power)) // diffusers EMAModel.get_decay
	case e.Warmup:
		return min(e.Decay, (1+n)/(10+n))
	}
	return e.Decay
}

// AfterStep is called after optimizer step number step (1 for the first): up to Start the
// average is set to the weights; after it, every Every-th step updates it. Every decision
// depends on step alone, so a resumed run updates on the same steps.
func (e *EMA) AfterStep(step int64) error {
	if step <= e.Start {
		if e.flat != nil {
			if err := copyInto(e.flat.average, e.flat.param); err != nil {
				return fmt.Errorf("ema: copy: %w", err)
			}
			return nil
		}
		for i, p := range e.params {
			if err := copyInto(e.average[i].tensor, p.tensor); err != nil {
				return fmt.Errorf("ema: copy %s: %w", p.name, err)
			}
		}
		return nil
	}
	if (step-e.Start)%max(1, e.Every) != 0 {
		return nil
	}
	return e.Update()
}

// Update moves the average towards the current parameters.
func (e *EMA) Update() error {
	d := e.CurrentDecay()
	e.Updates++
	return NoGrad(func() error {
		var s scope
		defer s.drop()
		// θ_ema ← θ_ema + (1 − d)(θ − θ_ema) = d·θ_ema + (1 − d)·θ
		lerp := func(avg, param *ts.Tensor) {
			s.outInto(avg, func(w *ts.Scalar) (*ts.Tensor, error) { return avg.LerpScalarOut(avg, param, w, false) }, 1-d)
		}
		if e.flat != nil {
			if lerp(e.flat.average, e.flat.param); s.err != nil {
				return fmt.Errorf("ema update: %w", s.err)
			}
			return nil
		}
		for i, p := range e.params {
			if lerp(e.average[i].tensor, p.tensor); s.err != nil {
				return fmt.Errorf("ema update of %s: %w", p.name, s.err)
			}
		}
		return nil
	})
}

// CopyTo writes the averaged weights into params (another model with the same layout), e.g.
// to sample with EMA weights.
func (e *EMA) CopyTo(params []namedTensor) error {
	if len(params) != len(e.average) {
		return fmt.Errorf("ema: model has %d parameters, average has %d", len(params), len(e.average))
	}
	for i := range params {
		if params[i].name != e.average[i].name {
			return fmt.Errorf("ema: parameter %d is %s, average has %s", i, params[i].name, e.average[i].name)
		}
		if err := copyInto(params[i].tensor, e.average[i].tensor); err != nil {
			return fmt.Errorf("ema: copy %s: %w", params[i].name, err)
		}
	}
	return nil
}
