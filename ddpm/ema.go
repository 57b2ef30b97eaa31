package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// EMA keeps an exponential moving average of the model's parameters (not of buffers; the U-Net
// has none):
//
//	θ_ema ← d·θ_ema + (1 − d)·θ
//
// With warm-up the decay starts small and approaches Decay, d_n = min(Decay, (1 + n)/(10 + n)),
// so early averages are not dominated by the random initialisation.
type EMA struct {
	Decay   float64
	Warmup  bool
	Updates int64

	params  []namedTensor // the live model's parameters
	average []namedTensor // the averaged copies, same order
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
	if !e.Warmup {
		return e.Decay
	}
	n := float64(e.Updates)
	return min(e.Decay, (1+n)/(10+n))
}

// Update moves the average towards the current parameters.
func (e *EMA) Update() error {
	d := e.CurrentDecay()
	e.Updates++
	return NoGrad(func() error {
		var s scope
		defer s.drop()
		for i, p := range e.params {
			avg := e.average[i].tensor
			// θ_ema ← θ_ema + (1 − d)(θ − θ_ema) = d·θ_ema + (1 − d)·θ
			s.outInto(avg, func(w *ts.Scalar) (*ts.Tensor, error) { return avg.LerpScalarOut(avg, p.tensor, w, false) }, 1-d)
			if s.err != nil {
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
