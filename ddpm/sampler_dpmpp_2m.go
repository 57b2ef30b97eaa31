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

// dpmSolverMultistep is the multistep update shared by DPM-Solver++(2M), (3M) and their SDE
// variants (sampler_dpmpp_2m_sde.go, sampler_dpmpp_3m.go), and UniPC's predictor
// (sampler_unipc.go); only the per-step coefficients differ:
//
//	x_{i+1} = xCoef_i·x_i + x0Coef_i·x̂0_i + diffCoef_i·(x̂0_i − x̂0_{i−1})
//	          + diff2Coef_i·(x̂0_{i−1} − x̂0_{i−2}) + noise_i·z
//
// It is stateful: Step keeps the last x̂0 for the next calls, so steps must come in order from
// i = 0.
type dpmSolverMultistep struct {
	name      string // "dpm-solver++(2M)", "dpm-solver++(3M) SDE", …
	timesteps []int
	spacing   string
	clipX0    bool
	// Per visited step i, precomputed in float64.
	sqrtAlphaCum, sqrtOneMinus []float64 // α_i, σ_i (for x̂0_i)
	xCoef, x0Coef              []float64 // first-order coefficients of x_i and x̂0_i
	diffCoef                   []float64 // coefficient of x̂0_i − x̂0_{i−1}; 0 for a first-order step
	diff2Coef                  []float64 // coefficient of x̂0_{i−1} − x̂0_{i−2}; 0 below third order
	noise                      []float64 // standard deviation of the noise added; 0 for the ODE
	// history holds x̂0_{i−1}, x̂0_{i−2}, …: as many as the highest order needs (depth).
	history x0History
	depth   int
}

// newDPMPP2MSampler builds DPM-Solver++(2M) (Algorithm 2) over the given descending timesteps.
func newDPMPP2MSampler(s *Schedule, timesteps []int, spacing string, clipX0 bool) *dpmSolverMultistep {
	return newDPMSolverPP("dpm-solver++(2M)", s, timesteps, spacing, 2, 0, clipX0)
}

// newDPMSolverPP builds DPM-Solver++ of the given multistep order (2 or 3) with stochasticity eta
// in [0, 1] (0 = the ODE solver; sampler_dpmpp_2m_sde.go derives the η > 0 coefficients).
func newDPMSolverPP(name string, s *Schedule, timesteps []int, spacing string, order int, eta float64, clipX0 bool) *dpmSolverMultistep {
	d := &dpmSolverMultistep{name: name, timesteps: timesteps, spacing: spacing, clipX0: clipX0, depth: order - 1}
	g := newLambdaGrid(s, timesteps)
	for i := range timesteps {
		h := g.h(i)
		etaH := eta * h // ηh_i; 0 when η = 0, even on the last step where h = ∞
		if eta == 0 {
			etaH = 0
		}
		// first-order step (η = 0: x_{i+1} = (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·x̂0_i)
		xCoef := g.sigmaRatio(i) * math.Exp(-etaH)              // (σ_{i+1}/σ_i)·e^{−ηh}
		noise := g.sigma[i+1] * math.Sqrt(-math.Expm1(-2*etaH)) // σ_{i+1}·√(1 − e^{−2ηh})
		d.appendStep(g, i, multistepOrder(order, i, len(timesteps)), xCoef, h+etaH, noise)
	}
	return d
}

// multistepOrder is the order of step i of n for a multistep solver of the given order: lower
// while the history fills (step i has i earlier x̂0) and on the last steps (diffusers'
// lower_order_final: order n − i, so the step onto σ = 0 is first order).
func multistepOrder(order, i, n int) int { return min(order, i+1, n-i) }

// appendStep records step i's coefficients for a step of the given order, where H = (1 + η)·h_i
// is the step the x̂0 terms integrate over (h_i for the ODE). x0Coef = α_{i+1}·(1 − e^{−H});
// a second-order step adds x0Coef/(2r_i)·(x̂0_i − x̂0_{i−1}) (Algorithm 2's D_i), a third-order
// one the terms of sampler_dpmpp_3m.go.
func (d *dpmSolverMultistep) appendStep(g lambdaGrid, i, order int, xCoef, H, noise float64) {
	x0Coef := -g.alpha[i+1] * math.Expm1(-H)
	diff, diff2 := 0.0, 0.0
	switch order {
	case 2:
		r := g.h(i-1) / g.h(i) // r_i = h_{i−1}/h_i
		diff = x0Coef / (2 * r)
	case 3:
		diff, diff2 = thirdOrderCoefficients(g, i, H)
	}
	d.sqrtAlphaCum = append(d.sqrtAlphaCum, g.alpha[i])
	d.sqrtOneMinus = append(d.sqrtOneMinus, g.sigma[i])
	d.xCoef = append(d.xCoef, xCoef)
	d.x0Coef = append(d.x0Coef, x0Coef)
	d.diffCoef = append(d.diffCoef, diff)
	d.diff2Coef = append(d.diff2Coef, diff2)
	d.noise = append(d.noise, noise)
}

func (d *dpmSolverMultistep) Timesteps() []int { return d.timesteps }

func (d *dpmSolverMultistep) Name() string {
	return fmt.Sprintf("%s (%d steps, %s spacing%s)", d.name, len(d.timesteps), spacingName(d.spacing), clipNote(d.clipX0))
}

// Step maps x_i and ε̂_i to x_{i+1}. It must be called for i = 0, 1, …, n−1 in order (a new
// pass may start again at 0); it keeps x̂0_i for the next steps and frees them after the last.
func (d *dpmSolverMultistep) Step(s *scope, i int, eps, x *ts.Tensor) (prev, predX0 *ts.Tensor) {
	if s.failed(eps, x) || !d.history.begin(s, d.name, i) {
		return nil, nil
	}
	predX0 = d.predX0(s, i, eps, x)
	prev = d.update(s, i, x, predX0)
	d.history.push(s, i, predX0, d.depth, i+1 == len(d.timesteps))
	return prev, predX0
}

// predX0 is step 1: the data prediction x̂0_i = (x_i − σ_i·ε̂_i)/α_i, clipped to [-1, 1] if asked.
func (d *dpmSolverMultistep) predX0(s *scope, i int, eps, x *ts.Tensor) *ts.Tensor {
	return s.clamp(s.scale(s.sub(x, s.scale(eps, d.sqrtOneMinus[i])), 1/d.sqrtAlphaCum[i]), d.clipX0)
}

// update is steps 2–4: x_{i+1} from x_i, x̂0_i and the history x̂0_{i−1}, x̂0_{i−2}.
func (d *dpmSolverMultistep) update(s *scope, i int, x, predX0 *ts.Tensor) *ts.Tensor {
	// 2. first-order part: (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·x̂0_i (SDE: see its file)
	prev := s.add(s.scale(x, d.xCoef[i]), s.scale(predX0, d.x0Coef[i]))
	// 3. second-order part of D_i: (x̂0_i − x̂0_{i−1})/(2r_i), times the x̂0 coefficient
	//    (third order: D1 and D2 of sampler_dpmpp_3m.go, in the same two differences)
	if d.diffCoef[i] != 0 {
		prev = s.add(prev, s.scale(s.sub(predX0, d.history.at(1)), d.diffCoef[i]))
	}
	if d.diff2Coef[i] != 0 {
		prev = s.add(prev, s.scale(s.sub(d.history.at(1), d.history.at(2)), d.diff2Coef[i]))
	}
	// 4. noise, for the SDE variants only
	return s.addNoise(prev, d.noise[i])
}

// Close frees the kept x̂0 history. Sample calls it when a pass ends early (an error, a
// cancelled context); after a complete pass there is nothing left to free.
func (d *dpmSolverMultistep) Close() { d.history.Close() }

// x0History is a multistep sampler's memory between Step calls: the data predictions of the last
// few steps, newest first, each a tensor handle of its own (so the caller's scope can free the
// x̂0 it was handed). It is freed when an entry falls out, after the last step, or by Close.
type x0History struct {
	x0   []*ts.Tensor // during step i, x0[j] is x̂0_{i−1−j}
	next int          // the step the history was left for
}

// begin starts step i: step 0 starts a new pass and forgets any history an interrupted one left;
// any other step must follow the one before. It reports false, with s.err set, when out of order.
func (h *x0History) begin(s *scope, name string, i int) bool {
	if i == 0 {
		h.Close()
		return true
	}
	if h.next != i || len(h.x0) == 0 {
		s.err = fmt.Errorf("%s: Step(%d) called out of order (want step %d); steps must run in order from 0", name, i, h.next)
		return false
	}
	return true
}

// at is x̂0_{i−j} during step i, for 1 <= j <= the depth kept.
func (h *x0History) at(j int) *ts.Tensor { return h.x0[j-1] }

// push ends step i (step 5): it keeps x̂0_i, as a handle of its own, and the newest depth−1 older
// ones, freeing the rest; after the last step (last) it frees everything.
func (h *x0History) push(s *scope, i int, predX0 *ts.Tensor, depth int, last bool) {
	if last || s.err != nil {
		h.Close()
		return
	}
	clone := s.do(predX0.ShallowClone())
	if clone == nil {
		h.Close()
		return
	}
	h.x0 = append([]*ts.Tensor{s.release(clone)}, h.x0...)
	for len(h.x0) > max(depth, 1) {
		h.x0[len(h.x0)-1].MustDrop()
		h.x0 = h.x0[:len(h.x0)-1]
	}
	h.next = i + 1
}

// Close frees every kept x̂0.
func (h *x0History) Close() {
	for _, x := range h.x0 {
		x.MustDrop()
	}
	h.x0 = nil
	h.next = 0
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
