package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"
)

// ddpmSampler is ancestral sampling, Ho et al. 2020, Algorithm 2:
//
//	x_{t−1} = 1/√α_t · (x_t − β_t/√(1 − ᾱ_t) · ε̂) + σ_t·z,   z ~ N(0, I), z = 0 at the last step
//
// with σ_t² = β̃_t, the posterior variance (eq. 7). The mean is computed in its equivalent
// form eq. 7, μ̃ = √ᾱ_{t−1}β_t/(1 − ᾱ_t)·x̂_0 + √α_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t with
// x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t (eq. 15), so that x̂_0 can be clipped to [-1, 1] first. Over fewer than T steps the schedule is
// respaced (Nichol & Dhariwal 2021, §4): for consecutive visited steps t and t', α_t is replaced
// by ᾱ_t/ᾱ_{t'} and β_t by 1 − ᾱ_t/ᾱ_{t'}, which is the same process on a coarser grid.
type ddpmSampler struct {
	timesteps []int
	spacing   string // the grid's name, for Name(); "" = trailing
	clipX0    bool
	// Per visited step i, precomputed in float64.
	x0Coefficient []float64 // √ᾱ_{t−1}·β_t/(1 − ᾱ_t)
	xtCoefficient []float64 // √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)
	sigma         []float64 // √β̃_i
	sqrtAlphaCum  []float64 // √ᾱ_i, for predX0
	sqrtOneMinus  []float64 // √(1 − ᾱ_i), for predX0
}

func newDDPMSampler(s *Schedule, timesteps []int, clipX0 bool) *ddpmSampler {
	d := &ddpmSampler{timesteps: timesteps, clipX0: clipX0}
	for i, t := range timesteps {
		prevT := -1
		if i+1 < len(timesteps) {
			prevT = timesteps[i+1]
		}
		alphaCum, alphaCumPrev := alphaCumprodAt(s, t), alphaCumprodAt(s, prevT)
		alpha := alphaCum / alphaCumPrev // α_t (respaced)
		beta := 1 - alpha                // β_t (respaced)
		d.x0Coefficient = append(d.x0Coefficient, math.Sqrt(alphaCumPrev)*beta/(1-alphaCum))
		d.xtCoefficient = append(d.xtCoefficient, math.Sqrt(alpha)*(1-alphaCumPrev)/(1-alphaCum))
		// β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), eq. 7
		d.sigma = append(d.sigma, math.Sqrt(beta*(1-alphaCumPrev)/(1-alphaCum)))
		d.sqrtAlphaCum = append(d.sqrtAlphaCum, math.Sqrt(alphaCum))
		d.sqrtOneMinus = append(d.sqrtOneMinus, math.Sqrt(1-alphaCum))
	}
	return d
}

func (d *ddpmSampler) Timesteps() []int { return d.timesteps }

func (d *ddpmSampler) Name() string {
	return fmt.Sprintf("ddpm (%d steps, %s spacing%s)", len(d.timesteps), spacingName(d.spacing), clipNote(d.clipX0))
}

// Variance is σ_i², the variance of the noise added at visited step i.
func (d *ddpmSampler) Variance(i int) float64 { return d.sigma[i] * d.sigma[i] }

func (d *ddpmSampler) Step(s *scope, i int, eps, x *ts.Tensor) (prev, predX0 *ts.Tensor) {
	if s.failed(eps, x) {
		return nil, nil
	}
	// 1. predicted x_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t (eq. 15), clipped to [-1, 1] if asked
	predX0 = s.clamp(s.scale(s.sub(x, s.scale(eps, d.sqrtOneMinus[i])), 1/d.sqrtAlphaCum[i]), d.clipX0)
	// 2. the mean of p(x_{t−1} | x_t), the posterior mean μ̃(x_t, x̂_0) (eq. 7); without
	//    clipping it equals 1/√α_t · (x_t − β_t/√(1 − ᾱ_t)·ε̂) (eq. 11)
	mean := s.add(s.scale(predX0, d.x0Coefficient[i]), s.scale(x, d.xtCoefficient[i]))
	// 3. add σ_t·z, except at the last step, which returns the mean (Algorithm 2, line 3)
	if i == len(d.timesteps)-1 {
		return mean, predX0
	}
	return s.addNoise(mean, d.sigma[i]), predX0
}

// addNoise returns x + σ·z with z ~ N(0, I) drawn from libtorch's generator, or x when σ = 0.
func (s *scope) addNoise(x *ts.Tensor, sigma float64) *ts.Tensor {
	if sigma == 0 || s.failed(x) {
		return x
	}
	size, err := x.Size()
	if err != nil {
		s.err = err
		return nil
	}
	device, err := x.Device()
	if err != nil {
		s.err = err
		return nil
	}
	return s.add(x, s.scale(s.randn(size, device), sigma))
}

func clipNote(clipX0 bool) string {
	if clipX0 {
		return ", x̂0 clipped"
	}
	return ""
}
