package ddpm

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Prediction targets: what the U-Net's output means. The samplers always consume ε̂; a
// v-prediction model's output is turned into ε̂ in one place, Model.toEps.
//
// With α = √ᾱ_t and σ = √(1 − ᾱ_t), so that x_t = α·x_0 + σ·ε and α² + σ² = 1, Salimans & Ho
// 2022 (§4, eq. 9 and appendix D) define
//
//	v = α·ε − σ·x_0,   and then   ε = α·v + σ·x_t,   x_0 = α·x_t − σ·v
//
// (α·v + σ·x_t = α²ε − ασx_0 + σαx_0 + σ²ε = ε).
const (
	PredictEps = "eps" // the noise ε (Ho et al. 2020)
	PredictV   = "v"   // the velocity v (Salimans & Ho 2022)
)

// VTarget is the v-prediction training target v = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0 for x0 and noise
// (B,C,H,W) at timesteps t (B). The result is owned by the caller.
func (d *Diffusion) VTarget(x0, t, noise *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	alpha := s.gather(d.sqrtAlphasCumprod, t)         // (B,1,1,1) √ᾱ_t
	sigma := s.gather(d.sqrtOneMinusAlphasCumprod, t) // (B,1,1,1) √(1 − ᾱ_t)
	v := s.sub(s.mul(alpha, noise), s.mul(sigma, x0))
	if s.err != nil {
		return nil, fmt.Errorf("v target: %w", s.err)
	}
	return s.release(v), nil
}

// EpsFromV turns a v prediction at x_t into ε̂ = √ᾱ_t·v + √(1 − ᾱ_t)·x_t. The result is owned
// by the caller.
func (d *Diffusion) EpsFromV(v, xt, t *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	eps := s.epsFromV(d, v, xt, t)
	if s.err != nil {
		return nil, fmt.Errorf("eps from v: %w", s.err)
	}
	return s.release(eps), nil
}

func (s *scope) epsFromV(d *Diffusion, v, xt, t *ts.Tensor) *ts.Tensor {
	alpha := s.gather(d.sqrtAlphasCumprod, t)
	sigma := s.gather(d.sqrtOneMinusAlphasCumprod, t)
	return s.add(s.mul(alpha, v), s.mul(sigma, xt))
}

// SetSchedule gives a v-prediction model the noise schedule it was trained with, which turning
// its output into ε̂ needs; sampling such a model without it is an error. For an ε-prediction
// model it does nothing. Calling it again with the same schedule costs nothing.
func (m *Model) SetSchedule(sched *Schedule) error {
	if m.Net.Config.Prediction != PredictV || (m.schedule != nil && m.schedule.Schedule == sched) {
		return nil
	}
	d, err := NewDiffusion(sched, m.VS.Device())
	if err != nil {
		return fmt.Errorf("v-prediction model: %w", err)
	}
	if m.schedule != nil {
		m.schedule.Close()
	}
	m.schedule = d
	return nil
}

// errNoSchedule is the error of sampling a v-prediction model before SetSchedule.
var errNoSchedule = errors.New("a v-prediction model needs its noise schedule: call Model.SetSchedule before sampling")

// toEps turns the network's output at x_t into ε̂: the output itself for an ε-prediction model,
// √ᾱ_t·v̂ + √(1 − ᾱ_t)·x_t for a v-prediction one. The map is affine in the output with the same
// x_t term, so it commutes with the guidance combination (1 + w)·c − w·u.
func (m *Model) toEps(s *scope, x, t, out *ts.Tensor) *ts.Tensor {
	if m.Net.Config.Prediction != PredictV || s.failed(out) {
		return out
	}
	if m.schedule == nil {
		s.err = errNoSchedule
		return nil
	}
	return s.epsFromV(m.schedule, out, x, t)
}
