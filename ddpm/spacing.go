package ddpm

import (
	"fmt"
	"math"
	"sort"
)

// Timestep grids: which k of the T trained timesteps a sampler visits.
//
// Notation (Lu et al. 2022, "DPM-Solver", §2; Karras et al. 2022, "EDM", §3 and Table 1):
//
//	α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t)   signal and noise scale of q(x_t | x_0) = N(α_t·x_0, σ_t²·I)
//	λ_t = log(α_t/σ_t)               half the log signal-to-noise ratio; it rises as t falls
//	σ̃_t = σ_t/α_t = e^{−λ_t}         Karras's σ: the noise level of x_t/α_t (the VE form)
//
// Every grid starts at t = T−1 (pure noise) and descends strictly. The sampler's last step then
// jumps from the last visited t to x_0 (σ = 0), so no residual noise is left in the output
// (the "final_sigmas_type = zero" fix of diffusers #5689).

// Spacings accepted by SampleTimesteps and NewSpacedSampler.
const (
	Trailing = "trailing" // t_i = round(T − i·T/k) − 1 (Lin et al. 2024, Table 2)
	LogSNR   = "logsnr"   // uniform in λ from λ_{T−1} to λ_0 (DPM-Solver's "logSNR" steps)
	Karras   = "karras"   // Karras et al. 2022, eq. 5, ρ = 7, from σ̃_{T−1} to σ̃_0
)

// karrasRho is Karras et al.'s ρ (eq. 5); 7 is their choice for every model they test.
const karrasRho = 7

// Spacings lists the accepted spacings, the default first.
func Spacings() []string { return []string{Trailing, LogSNR, Karras} }

// SampleTimesteps returns the k descending timesteps of sched that a sampler visits with the
// named spacing ("" means trailing). The first is always T−1. For logsnr and karras the last is
// 0 (the smallest noise level the model was trained on), and each grid point is mapped to the
// trained timestep nearest in λ; where the discrete schedule is coarser than the grid (near
// t = 0) neighbours are moved to the next free timesteps, so exactly k distinct steps remain.
func SampleTimesteps(sched *Schedule, spacing string, k int) ([]int, error) {
	T := sched.T
	if k < 1 || k > T {
		return nil, fmt.Errorf("sampling steps must be in 1..%d (the number of timesteps), got %d", T, k)
	}
	switch spacing {
	case Trailing, "":
		return SpacedTimesteps(T, k)
	case LogSNR:
		lo, hi := logSNR(sched, T-1), logSNR(sched, 0)
		return nearestTimesteps(sched, linspace(lo, hi, k)), nil
	case Karras:
		// eq. 5: σ̃_i = (σ̃_max^{1/ρ} + i/(k−1)·(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ, i = 0..k−1,
		// here in λ = −log σ̃.
		maxInvRho := math.Exp(-logSNR(sched, T-1) / karrasRho) // σ̃_max^{1/ρ}
		minInvRho := math.Exp(-logSNR(sched, 0) / karrasRho)   // σ̃_min^{1/ρ}
		lambdas := linspace(maxInvRho, minInvRho, k)
		for i, r := range lambdas {
			lambdas[i] = -karrasRho * math.Log(r) // λ = −log σ̃ = −ρ·log(σ̃^{1/ρ})
		}
		return nearestTimesteps(sched, lambdas), nil
	default:
		return nil, fmt.Errorf("unknown timestep spacing %q (want %q, %q or %q)", spacing, Trailing, LogSNR, Karras)
	}
}

// logSNR is λ_t = log(α_t/σ_t) = ½·log(ᾱ_t/(1 − ᾱ_t)); +Inf for t = −1, the data (σ = 0).
func logSNR(s *Schedule, t int) float64 {
	if t < 0 {
		return math.Inf(1)
	}
	a := s.AlphasCumprod[t]
	return 0.5 * (math.Log(a) - math.Log1p(-a))
}

// linspace returns k evenly spaced values from a to b inclusive (a alone when k = 1).
func linspace(a, b float64, k int) []float64 {
	out := make([]float64, k)
	for i := range out {
		if k == 1 {
			out[i] = a
			continue
		}
		out[i] = a + (b-a)*float64(i)/float64(k-1)
	}
	return out
}

// nearestTimesteps maps ascending λ targets to the trained timesteps nearest in λ, then makes
// them strictly descending: grid point i may use only timesteps k−1−i..T−1−i (so the others
// still fit), and a collision moves the earlier point up to the next free timestep.
func nearestTimesteps(s *Schedule, lambdas []float64) []int {
	T, k := s.T, len(lambdas)
	out := make([]int, k)
	for i, l := range lambdas {
		// λ_t falls as t rises: the first t with λ_t <= l, or its neighbour below.
		t := sort.Search(T, func(t int) bool { return logSNR(s, t) <= l })
		if t == T || t > 0 && logSNR(s, t-1)-l < l-logSNR(s, t) {
			t--
		}
		out[i] = max(k-1-i, min(T-1-i, t))
	}
	for i := k - 2; i >= 0; i-- {
		out[i] = max(out[i], out[i+1]+1)
	}
	return out
}
