package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"
)

// DPM-Solver++(2M), Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
// Probabilistic Models", Algorithm 2: a second-order multistep solver of the diffusion ODE written
// for the data prediction x_θ, in λ. k-diffusion's sample_dpmpp_2m is the same method in σ̃.
//
// Notation (the paper's, with our index: step i goes from t_i to t_{i+1}):
//
//	α_i = √ᾱ_{t_i}, σ_i = √(1 − ᾱ_{t_i})   signal and noise scale; after the last step α = 1, σ = 0
//	λ_i = log(α_i/σ_i)                      half log-SNR, rising as i grows (+∞ at the data)
//	h_i = λ_{i+1} − λ_i                     the step in λ
//	r_i = h_{i−1}/h_i                       ratio of the previous step to this one
//	x̂0_i = (x_i − σ_i·ε̂_i)/α_i              the data prediction x_θ from the model's ε̂ (§2)
//	D_i                                     the x̂0 the update integrates: x̂0_i, or its
//	                                        extrapolation from x̂0_i and x̂0_{i−1} (second order)
//
// The exact solution of the data-prediction ODE from t_i to t_{i+1} (§4.1) is
//
//	x_{i+1} = (σ_{i+1}/σ_i)·x_i + σ_{i+1} ∫_{λ_i}^{λ_{i+1}} e^λ x̂0(λ) dλ,
//
// and taking x̂0 constant (D_i = x̂0_i) gives the first-order step, which is DDIM (η = 0):
//
//	x_{i+1} = (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·D_i.
//
// Algorithm 2 takes x̂0 linear in λ through the last two predictions:
//
//	D_i = (1 + 1/(2r_i))·x̂0_i − 1/(2r_i)·x̂0_{i−1} = x̂0_i + (x̂0_i − x̂0_{i−1})/(2r_i).
//
// Step 0 has no history and is first order. The last step lands on σ = 0, where h = ∞ and
// r = 0: it is first order too (diffusers' lower_order_final with final_sigmas_type = "zero";
// k-diffusion's "denoising step"), and its coefficients reduce to x_0 = x̂0_{n−1}.
//
// With clipX0, x̂0_i is clamped to [-1, 1] before it is used or kept (the static form of
// DPM-Solver++'s thresholding). The update needs only x and x̂0, never ε, so a
// first-order step is then exactly DDIM's clipped step with ε re-derived from the clipped x̂0
// (sampler_ddim.go, step 1b), and a second-order step extrapolates between two clipped x̂0.

// dpmSolverMultistep is the second-order multistep update shared by DPM-Solver++(2M) and its
// SDE variant (sampler_dpmpp_2m_sde.go); only the per-step coefficients differ:
//
//	x_{i+1} = xCoef_i·x_i + x0Coef_i·x̂0_i + diffCoef_i·(x̂0_i − x̂0_{i−1}) + noise_i·z
//
// It is stateful: Step keeps x̂0_i for the next call, so steps must come in order from i = 0.
type dpmSolverMultistep struct {
	name      string // "dpm-solver++(2M)" or "dpm-solver++(2M) SDE"
	timesteps []int
	spacing   string
	clipX0    bool
	// Per visited step i, precomputed in float64.
	sqrtAlphaCum, sqrtOneMinus []float64 // α_i, σ_i (for x̂0_i)
	xCoef, x0Coef              []float64 // first-order coefficients of x_i and x̂0_i
	diffCoef                   []float64 // coefficient of x̂0_i − x̂0_{i−1}; 0 for a first-order step
	noise                      []float64 // standard deviation of the noise added; 0 for the ODE
	// old is x̂0_{i−1}, the multistep history, and oldStep is its i; old is owned by the sampler
	// and freed when replaced, after the last step, or by Close.
	old     *ts.Tensor
	oldStep int
}

// newDPMPP2MSampler builds DPM-Solver++(2M) (Algorithm 2) over the given descending timesteps.
func newDPMPP2MSampler(s *Schedule, timesteps []int, spacing string, clipX0 bool) *dpmSolverMultistep {
	d := &dpmSolverMultistep{name: "dpm-solver++(2M)", timesteps: timesteps, spacing: spacing, clipX0: clipX0}
	g := newLambdaGrid(s, timesteps)
	for i := range timesteps {
		alphaNext, sigmaRatio, h := g.alpha[i+1], g.sigmaRatio(i), g.h(i)
		// first-order step: x_{i+1} = (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·x̂0_i
		x0Coef := -alphaNext * math.Expm1(-h)
		d.appendStep(g, i, sigmaRatio, x0Coef, 0)
	}
	return d
}

// appendStep records step i's coefficients; the second-order correction x0Coef/(2r_i) applies
// to every step that has a predecessor and does not land on σ = 0 (Algorithm 2's D_i).
func (d *dpmSolverMultistep) appendStep(g lambdaGrid, i int, xCoef, x0Coef, noise float64) {
	diff := 0.0
	if i > 0 && !g.final(i) {
		r := g.h(i-1) / g.h(i) // r_i = h_{i−1}/h_i
		diff = x0Coef / (2 * r)
	}
	d.sqrtAlphaCum = append(d.sqrtAlphaCum, g.alpha[i])
	d.sqrtOneMinus = append(d.sqrtOneMinus, g.sigma[i])
	d.xCoef = append(d.xCoef, xCoef)
	d.x0Coef = append(d.x0Coef, x0Coef)
	d.diffCoef = append(d.diffCoef, diff)
	d.noise = append(d.noise, noise)
}

func (d *dpmSolverMultistep) Timesteps() []int { return d.timesteps }

func (d *dpmSolverMultistep) Name() string {
	return fmt.Sprintf("%s (%d steps, %s spacing%s)", d.name, len(d.timesteps), spacingName(d.spacing), clipNote(d.clipX0))
}

// Step maps x_i and ε̂_i to x_{i+1}. It must be called for i = 0, 1, …, n−1 in order (a new
// pass may start again at 0); it keeps x̂0_i for step i+1 and frees it after the last step.
func (d *dpmSolverMultistep) Step(s *scope, i int, eps, x *ts.Tensor) (prev, predX0 *ts.Tensor) {
	if s.failed(eps, x) {
		return nil, nil
	}
	if i == 0 {
		d.Close() // a new pass: forget a history left by an interrupted one
	} else if d.old == nil || d.oldStep != i-1 {
		s.err = fmt.Errorf("%s: Step(%d) called out of order (want step %d); steps must run in order from 0", d.name, i, d.oldStep+1)
		return nil, nil
	}
	// 1. data prediction x̂0_i = (x_i − σ_i·ε̂_i)/α_i, clipped to [-1, 1] if asked
	predX0 = s.clamp(s.scale(s.sub(x, s.scale(eps, d.sqrtOneMinus[i])), 1/d.sqrtAlphaCum[i]), d.clipX0)
	// 2. first-order part: (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·x̂0_i (SDE: see its file)
	prev = s.add(s.scale(x, d.xCoef[i]), s.scale(predX0, d.x0Coef[i]))
	// 3. second-order part of D_i: (x̂0_i − x̂0_{i−1})/(2r_i), times the x̂0 coefficient
	if d.diffCoef[i] != 0 {
		prev = s.add(prev, s.scale(s.sub(predX0, d.old), d.diffCoef[i]))
	}
	// 4. noise, for the SDE variant only
	prev = s.addNoise(prev, d.noise[i])
	// 5. history: keep x̂0_i for step i+1 (as a handle of our own, so the caller's scope can
	//    free predX0), or free it after the last step
	d.Close()
	if i+1 < len(d.timesteps) && s.err == nil {
		d.old = s.release(s.do(predX0.ShallowClone()))
		d.oldStep = i
	}
	return prev, predX0
}

// Close frees the kept x̂0 history. Sample calls it when a pass ends early (an error, a
// cancelled context); after a complete pass there is nothing left to free.
func (d *dpmSolverMultistep) Close() {
	if d.old != nil {
		d.old.MustDrop()
		d.old = nil
	}
}

// lambdaGrid holds α, σ and λ at the visited timesteps plus the final point, the data
// (index n: α = 1, σ = 0, λ = +∞).
type lambdaGrid struct {
	alpha, sigma, lambda []float64
}

func newLambdaGrid(s *Schedule, timesteps []int) lambdaGrid {
	var g lambdaGrid
	for _, t := range append(append([]int{}, timesteps...), -1) {
		a := alphaCumprodAt(s, t)
		g.alpha = append(g.alpha, math.Sqrt(a))
		g.sigma = append(g.sigma, math.Sqrt(1-a))
		g.lambda = append(g.lambda, logSNR(s, t))
	}
	return g
}

// h is h_i = λ_{i+1} − λ_i (+∞ for the last step).
func (g lambdaGrid) h(i int) float64 { return g.lambda[i+1] - g.lambda[i] }

// sigmaRatio is σ_{i+1}/σ_i (0 for the last step).
func (g lambdaGrid) sigmaRatio(i int) float64 { return g.sigma[i+1] / g.sigma[i] }

// final reports whether step i lands on the data, σ = 0.
func (g lambdaGrid) final(i int) bool { return g.sigma[i+1] == 0 }

// spacingName names a spacing for Name(); "" is the default, trailing.
func spacingName(spacing string) string {
	if spacing == "" {
		return Trailing
	}
	return spacing
}
