package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"
)

// ddimSampler is DDIM, Song, Meng & Ermon 2021, eq. 12, with σ from eq. 16:
//
//	predX0  = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t
//	σ_t     = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)
//	x_prev  = √ᾱ_prev · predX0 + √(1 − ᾱ_prev − σ_t²) · ε̂ + σ_t·z
//
// where "prev" is the next visited timestep (ᾱ_prev = 1 after the last). η = 0 is deterministic;
// η = 1 over all T steps has exactly the DDPM posterior variance β̃_t.
type ddimSampler struct {
	timesteps []int
	spacing   string // the grid's name, for Name(); "" = trailing
	eta       float64
	clipX0    bool
	// Per visited step i.
	sqrtAlphaCum, sqrtOneMinus []float64 // √ᾱ_t, √(1 − ᾱ_t)
	sqrtAlphaCumPrev           []float64 // √ᾱ_prev
	directionCoefficient       []float64 // √(1 − ᾱ_prev − σ²)
	sigma                      []float64 // σ_t
}

func newDDIMSampler(s *Schedule, timesteps []int, eta float64, clipX0 bool) *ddimSampler {
	d := &ddimSampler{timesteps: timesteps, eta: eta, clipX0: clipX0}
	for i, t := range timesteps {
		prevT := -1
		if i+1 < len(timesteps) {
			prevT = timesteps[i+1]
		}
		alphaCum, alphaCumPrev := alphaCumprodAt(s, t), alphaCumprodAt(s, prevT)
		// eq. 16: σ_t(η) = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
		sigma := eta * math.Sqrt((1-alphaCumPrev)/(1-alphaCum)) * math.Sqrt(1-alphaCum/alphaCumPrev)
		d.sqrtAlphaCum = append(d.sqrtAlphaCum, math.Sqrt(alphaCum))
		d.sqrtOneMinus = append(d.sqrtOneMinus, math.Sqrt(1-alphaCum))
		d.sqrtAlphaCumPrev = append(d.sqrtAlphaCumPrev, math.Sqrt(alphaCumPrev))
		d.directionCoefficient = append(d.directionCoefficient, math.Sqrt(math.Max(0, 1-alphaCumPrev-sigma*sigma)))
		d.sigma = append(d.sigma, sigma)
	}
	return d
}

func (d *ddimSampler) Timesteps() []int { return d.timesteps }

func (d *ddimSampler) Name() string {
	note := clipNote(d.clipX0)
	if d.clipX0 {
		note += ", ε from x̂0" // step 1b below; runs before it say only "x̂0 clipped"
	}
	return fmt.Sprintf("ddim (η=%g, %d steps, %s spacing%s)", d.eta, len(d.timesteps), spacingName(d.spacing), note)
}

// Variance is σ_i², the variance of the noise added at visited step i.
func (d *ddimSampler) Variance(i int) float64 { return d.sigma[i] * d.sigma[i] }

func (d *ddimSampler) Step(s *scope, i int, eps, x *ts.Tensor) (prev, predX0 *ts.Tensor) {
	if s.failed(eps, x) {
		return nil, nil
	}
	// 1. predicted x_0 (eq. 12, first term's "predicted x_0"), clipped to [-1, 1] if asked
	predX0 = s.clamp(s.scale(s.sub(x, s.scale(eps, d.sqrtOneMinus[i])), 1/d.sqrtAlphaCum[i]), d.clipX0)
	if d.clipX0 {
		// 1b. the noise that the clipped x_0 implies, ε = (x_t − √ᾱ_t·predX0) / √(1 − ᾱ_t) (as GLIDE
		// does; diffusers' use_clipped_model_output), so x_prev stays between predX0 and x_t.
		// Mixing the clipped predX0 with the unclipped ε̂ biases every step the same way, and the
		// bias grows with the number of steps.
		eps = s.scale(s.sub(x, s.scale(predX0, d.sqrtAlphaCum[i])), 1/d.sqrtOneMinus[i])
	}
	// 2. direction pointing to x_t (eq. 12, second term)
	direction := s.scale(eps, d.directionCoefficient[i])
	// 3. x_prev without noise
	prev = s.add(s.scale(predX0, d.sqrtAlphaCumPrev[i]), direction)
	// 4. random noise σ_t·z (eq. 12, third term); none when η = 0
	return s.addNoise(prev, d.sigma[i]), predX0
}
