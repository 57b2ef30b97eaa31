package ddpm

import (
	"fmt"
	"math"
)

// Notation (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"; Nichol & Dhariwal 2021):
//
//	T                       number of diffusion steps; t runs over 0..T-1 here (the paper's 1..T)
//	β_t      betas          variance of the noise added at step t
//	α_t      alphas         1 − β_t
//	ᾱ_t      alphasCumprod  ∏_{s≤t} α_s, the share of signal variance left at step t
//	ᾱ_{t−1}  alphasCumprodPrev, with ᾱ_{−1} = 1
//	β̃_t      posteriorVariance = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), eq. 7

// Schedule holds a noise schedule and every per-step coefficient derived from it, in float64.
// All slices have length T and are indexed by t = 0..T-1.
type Schedule struct {
	T                         int       // number of diffusion steps
	Betas                     []float64 // β_t
	AlphasCumprod             []float64 // ᾱ_t = ∏_{s≤t} α_s
	SqrtAlphasCumprod         []float64 // √ᾱ_t, the signal scale in q(x_t | x_0)
	SqrtOneMinusAlphasCumprod []float64 // √(1 − ᾱ_t), the noise scale in q(x_t | x_0)
	PosteriorVariance         []float64 // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), eq. 7
}

// Schedule kinds accepted by NewSchedule.
const (
	Linear = "linear"
	Cosine = "cosine"
)

// NewSchedule builds the named schedule over T steps. betaStart and betaEnd are used by the
// linear schedule only.
func NewSchedule(kind string, T int, betaStart, betaEnd float64) (*Schedule, error) {
	switch kind {
	case Linear:
		return LinearSchedule(T, betaStart, betaEnd)
	case Cosine:
		return CosineSchedule(T, 0.008)
	default:
		return nil, fmt.Errorf("unknown noise schedule %q (want %q or %q)", kind, Linear, Cosine)
	}
}

// LinearSchedule is Ho et al.'s schedule: β rises linearly from betaStart to betaEnd
// (1e-4 to 0.02 in the paper, for T = 1000).
func LinearSchedule(T int, betaStart, betaEnd float64) (*Schedule, error) {
	if T < 1 {
		return nil, fmt.Errorf("linear schedule: T must be >= 1, got %d", T)
	}
	if !(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1) {
		return nil, fmt.Errorf("linear schedule: need 0 < beta_start <= beta_end < 1, got %g and %g", betaStart, betaEnd)
	}
	betas := make([]float64, T)
	for t := range betas {
		if T == 1 {
			betas[t] = betaStart
			continue
		}
		betas[t] = betaStart + (betaEnd-betaStart)*float64(t)/float64(T-1)
	}
	return fromBetas(betas), nil
}

// CosineSchedule is Nichol & Dhariwal's schedule (eq. 17): ᾱ_t = f(t)/f(0) with
// f(t) = cos²(((t/T) + s)/(1 + s) · π/2), and β_t = 1 − ᾱ_t/ᾱ_{t−1} clipped at 0.999.
func CosineSchedule(T int, s float64) (*Schedule, error) {
	if T < 1 {
		return nil, fmt.Errorf("cosine schedule: T must be >= 1, got %d", T)
	}
	f := func(t int) float64 {
		c := math.Cos((float64(t)/float64(T) + s) / (1 + s) * math.Pi / 2)
		return c * c
	}
	betas := make([]float64, T)
	for t := range betas {
		// Step t of ours is the paper's step t+1: β_{t+1} = 1 − ᾱ_{t+1}/ᾱ_t.
		betas[t] = math.Min(1-f(t+1)/f(t), 0.999)
	}
	return fromBetas(betas), nil
}

// fromBetas derives every coefficient from β.
func fromBetas(betas []float64) *Schedule {
	T := len(betas)
	s := &Schedule{
		T: T, Betas: betas,
		AlphasCumprod:             make([]float64, T),
		SqrtAlphasCumprod:         make([]float64, T),
		SqrtOneMinusAlphasCumprod: make([]float64, T),
		PosteriorVariance:         make([]float64, T),
	}
	prod := 1.0 // ᾱ_{t−1}, with ᾱ_{−1} = 1
	for t, beta := range betas {
		alphasCumprodPrev := prod
		prod *= 1 - beta // ᾱ_t = ᾱ_{t−1} · α_t, α_t = 1 − β_t
		s.AlphasCumprod[t] = prod
		s.SqrtAlphasCumprod[t] = math.Sqrt(prod)
		s.SqrtOneMinusAlphasCumprod[t] = math.Sqrt(1 - prod)
		// β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), eq. 7; β̃_0 = 0 since ᾱ_{−1} = 1.
		s.PosteriorVariance[t] = beta * (1 - alphasCumprodPrev) / (1 - prod)
	}
	return s
}
