package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Diffusion is a Schedule whose per-step coefficients also live on a device as (T) tensors, so a
// batch of timesteps can gather its coefficients in one op.
type Diffusion struct {
	*Schedule
	Device gotch.Device

	sqrtAlphasCumprod         *ts.Tensor // (T) √ᾱ_t
	sqrtOneMinusAlphasCumprod *ts.Tensor // (T) √(1 − ᾱ_t)
}

// NewDiffusion puts the schedule's coefficients on device.
func NewDiffusion(s *Schedule, device gotch.Device) (*Diffusion, error) {
	d := &Diffusion{Schedule: s, Device: device}
	var err error
	if d.sqrtAlphasCumprod, err = coefficients(s.SqrtAlphasCumprod, device); err != nil {
		return nil, err
	}
	if d.sqrtOneMinusAlphasCumprod, err = coefficients(s.SqrtOneMinusAlphasCumprod, device); err != nil {
		return nil, err
	}
	return d, nil
}

// Close frees the device tensors.
func (d *Diffusion) Close() {
	d.sqrtAlphasCumprod.MustDrop()
	d.sqrtOneMinusAlphasCumprod.MustDrop()
}

func coefficients(values []float64, device gotch.Device) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	f := make([]float32, len(values))
	for i, v := range values {
		f[i] = float32(v)
	}
	t := s.fromFloat32(f, []int64{int64(len(f))}, device)
	if s.err != nil {
		return nil, fmt.Errorf("schedule coefficients: %w", s.err)
	}
	return s.release(t), nil
}

// QSample draws x_t ~ q(x_t | x_0) in one jump (Ho et al. eq. 4, reparameterised):
//
//	x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε
//
// x0 and noise are (B,C,H,W); t is (B) int64. The result is owned by the caller.
func (d *Diffusion) QSample(x0, t, noise *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	signal := s.gather(d.sqrtAlphasCumprod, t)             // (B,1,1,1) √ᾱ_t
	noiseScale := s.gather(d.sqrtOneMinusAlphasCumprod, t) // (B,1,1,1) √(1 − ᾱ_t)
	xt := s.add(s.mul(signal, x0), s.mul(noiseScale, noise))
	if s.err != nil {
		return nil, fmt.Errorf("q_sample: %w", s.err)
	}
	return s.release(xt), nil
}

// gather picks coefficients[t] for each timestep of a batch, shaped (B,1,1,1) to broadcast
// over images.
func (s *scope) gather(coefficients, t *ts.Tensor) *ts.Tensor {
	if s.failed(coefficients, t) {
		return nil
	}
	picked := s.do(coefficients.IndexSelect(0, t, false))
	return s.view(picked, -1, 1, 1, 1)
}

// ForwardFrames noises each of n images (n·h·w values) to every timestep in timesteps with
// QSample and returns them row by row (image i at timesteps[0], timesteps[1], …), clamped to
// [-1, 1] for display. The noise comes from seed, so the figure is reproducible.
func ForwardFrames(d *Diffusion, images []float32, n, h, w int, timesteps []int, seed int64) ([]float32, error) {
	var s scope
	defer s.drop()
	k := len(timesteps)
	// Repeat each image k times: row i holds image i at every timestep.
	repeated := make([]float32, 0, n*k*h*w)
	steps := make([]int64, 0, n*k)
	for i := 0; i < n; i++ {
		for _, t := range timesteps {
			if t < 0 || t >= d.T {
				return nil, fmt.Errorf("forward frames: timestep %d outside 0..%d", t, d.T-1)
			}
			repeated = append(repeated, images[i*h*w:(i+1)*h*w]...)
			steps = append(steps, int64(t))
		}
	}
	shape := []int64{int64(n * k), 1, int64(h), int64(w)}
	x0 := s.fromFloat32(repeated, shape, d.Device)
	noise := s.fromFloat32(GaussianNoise(seed, n*k*h*w), shape, d.Device)
	t := s.fromInt64(steps, d.Device)
	if s.err != nil {
		return nil, s.err
	}
	xt := s.do(d.QSample(x0, t, noise))
	if s.err != nil {
		return nil, s.err
	}
	return clampedValues(xt)
}
