package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"
)

// UniPC, Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
// Diffusion Models" (NeurIPS 2023), multistep, data prediction, with B(h) = e^h − 1 ("bh2", their
// B_2(h)). Each step corrects the x that the previous step predicted, using the model evaluation
// the loop made at that x anyway (UniC, §3.1), then predicts the next x (UniP, §3.2): the
// corrector raises the order by one at no extra network evaluation. UniPC-p, a UniP-p predictor
// followed by UniC-p, has order of accuracy p + 1 (their Theorem 3.1); TestUniPCOrderOfConvergence
// measures 8× per halving for p = 2 and 16× for p = 3.
//
// Notation as in sampler_dpmpp_2m.go (α_i, σ_i, λ_i, h_i = λ_{i+1} − λ_i, x̂0_i), plus
//
//	x̃_i      the predicted x_i, where the model is evaluated (what Step receives)
//	x^c_i    the corrected x_i, from which the next prediction starts
//	r_m      (λ_{s−m} − λ_s)/h for the step from λ_s of length h (negative: earlier points)
//	D_m      (x̂0_{s−m} − x̂0_s)/r_m
//	φ_k      as in sampler_dpmpp_3m.go (expPhi); B(h) = e^{−h} − 1 in data prediction (hh = −h)
//
// Both halves are the exponential-integrator step of DPM-Solver++ with x̂0's polynomial terms
// written as Σ_m a_m·D_m (§3):
//
//	x_{s+1} = (σ_{s+1}/σ_s)·x_s − α_{s+1}·(e^{−h} − 1)·x̂0_s − α_{s+1}·B(h)·Σ_m a_m·D_m,
//
// where a solves the order conditions Σ_m a_m·r_m^{k−1} = k!·hh·φ_{k+1}(hh)/B(hh), k = 1..p
// (Theorem 3.1's R_p(h)·a_p = g_p(h)/B(h), in data prediction).
//
//   - UniP-p (predictor) from x^c_i: the p − 1 earlier x̂0_{i−1}, …, x̂0_{i−p+1} (k = 1..p−1);
//     for p = 2 a = ½ (the reference code's and diffusers' simplified UniP-2). With
//     B(h) = e^h − 1 it is exactly DPM-Solver++(2M) for p = 2, and our DPM-Solver++(3M) for p = 3 (both
//     integrate the polynomial through the same points; TestUniPPredictorIsDPMSolver checks the
//     coefficients), so the predictor here is that sampler, dpmSolverMultistep.
//   - UniC-p (corrector) at step i, from x^c_{i−1}: the same p points as step i−1's predictor
//     plus the new x̂0_i at r = 1 (k = 1..p); for p = 1 a = ½ (likewise simplified UniC-1).
//
// The orders follow multistepOrder (sampler_dpmpp_2m.go): warm-up from order 1, and the last
// steps lower (diffusers' lower_order_final); the corrector at step i has step i−1's order. The
// last step lands on σ = 0 and returns x̂0_{n−1}, so its correction, which nothing would use, is
// skipped: a pass makes n model evaluations, as every other sampler. With clipX0 each x̂0 is
// clipped as in DPM-Solver++.

// uniPCOrder is the p of "unipc": UniPC-2, a DPM-Solver++(2M) predictor with a UniC-2
// corrector, third order in all. It is diffusers' default and its advice for guided sampling
// (p = 3 for unconditional). On the Gaussian problem of TestHighOrderSamplersSolveGaussianODE,
// with the exact ε, UniPC-3 (like DPM-Solver++(3M)) has 3× to 75× UniPC-2's error at 8 and 10
// steps on the log-SNR and Karras grids, where h ≈ 1 in λ and a quadratic extrapolation of x̂0
// overshoots, and wins only from 15–20 steps; dpmpp_3m already covers that end.
const uniPCOrder = 2

// uniPC is UniPC-p: DPM-Solver++'s multistep update as the predictor UniP-p, and UniC-p.
type uniPC struct {
	order     int
	corrector bool                // false gives UniP-p alone (tests)
	pred      *dpmSolverMultistep // UniP-p; its history keeps the p x̂0 the corrector needs
	// Per visited step i, UniC's coefficients (cOrder 0: no correction at step i):
	cOrder []int
	cNew   []float64   // of x̂0_i − x̂0_{i−1}
	cDiff  [][]float64 // cDiff[i][m−1] of x̂0_{i−1−m} − x̂0_{i−1}, m = 1..cOrder−1
	// last is x^c_{i−1}, the corrected x that step i−1's prediction started from; owned by the
	// sampler and freed when replaced, after the last step, or by Close.
	last *ts.Tensor
}

// newUniPCSampler builds UniPC-order (2 or 3) over the given descending timesteps; without
// corrector it is UniP-order alone.
func newUniPCSampler(s *Schedule, timesteps []int, spacing string, order int, corrector, clipX0 bool) *uniPC {
	order = max(2, min(3, order))
	u := &uniPC{order: order, corrector: corrector}
	u.pred = newDPMSolverPP(u.label(), s, timesteps, spacing, order, 0, clipX0)
	u.pred.depth = order // UniC-p at step i needs x̂0_{i−1}, …, x̂0_{i−p}
	g := newLambdaGrid(s, timesteps)
	n := len(timesteps)
	for i := range timesteps {
		q := 0
		if corrector && i > 0 && !g.final(i) {
			q = multistepOrder(order, i-1, n)
		}
		u.cOrder = append(u.cOrder, q)
		if q == 0 {
			u.cNew = append(u.cNew, 0)
			u.cDiff = append(u.cDiff, nil)
			continue
		}
		// UniC-q over the step from λ_{i−1} to λ_i: points x̂0_{i−1−m} (m = 1..q−1) and x̂0_i (r = 1).
		h := g.h(i - 1)
		var rks []float64
		for m := 1; m < q; m++ {
			rks = append(rks, (g.lambda[i-1-m]-g.lambda[i-1])/h)
		}
		rks = append(rks, 1)
		a := []float64{0.5} // UniC-1, simplified
		if q > 1 {
			a = uniCoefficients(h, rks)
		}
		// −α_i·B(h) = α_i·(1 − e^{−h}): the x̂0 coefficient of the first-order step i−1.
		c := u.pred.x0Coef[i-1]
		var diffs []float64
		for m := range q - 1 {
			diffs = append(diffs, c*a[m]/rks[m]) // a_m·D_m = a_m/r_m·(x̂0_{i−1−m} − x̂0_{i−1})
		}
		u.cNew = append(u.cNew, c*a[q-1]) // a_q·D_q with D_q = x̂0_i − x̂0_{i−1}
		u.cDiff = append(u.cDiff, diffs)
	}
	return u
}

// uniCoefficients solves the order conditions Σ_m a_m·r_m^{k−1} = k!·hh·φ_{k+1}(hh)/B(hh),
// k = 1..len(rks), for a step h in λ (data prediction: hh = −h, B(hh) = e^{hh} − 1).
func uniCoefficients(h float64, rks []float64) []float64 {
	hh := -h
	B := math.Expm1(hh)
	p := len(rks)
	R := make([][]float64, p)
	b := make([]float64, p)
	fact := 1.0 // k!
	for k := 1; k <= p; k++ {
		fact *= float64(k)
		b[k-1] = fact * hh * expPhi(k+1, hh) / B
		R[k-1] = make([]float64, p)
		for m, r := range rks {
			R[k-1][m] = math.Pow(r, float64(k-1))
		}
	}
	return solveLinear(R, b)
}

// solveLinear solves the small system A·x = b by Gaussian elimination with partial pivoting.
// A and b are overwritten.
func solveLinear(A [][]float64, b []float64) []float64 {
	n := len(b)
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(A[r][c]) > math.Abs(A[p][c]) {
				p = r
			}
		}
		A[c], A[p] = A[p], A[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := A[r][c] / A[c][c]
			for k := c; k < n; k++ {
				A[r][k] -= f * A[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		v := b[r]
		for k := r + 1; k < n; k++ {
			v -= A[r][k] * x[k]
		}
		x[r] = v / A[r][r]
	}
	return x
}

func (u *uniPC) label() string {
	if !u.corrector {
		return fmt.Sprintf("unip-%d", u.order)
	}
	return fmt.Sprintf("unipc-%d", u.order)
}

func (u *uniPC) Timesteps() []int { return u.pred.timesteps }

func (u *uniPC) Name() string {
	return fmt.Sprintf("%s (B(h) = e^h − 1, %d steps, %s spacing%s)", u.label(), len(u.pred.timesteps), spacingName(u.pred.spacing), clipNote(u.pred.clipX0))
}

// Step takes the predicted x̃_i and the model's ε̂ there, corrects x̃_i into x^c_i (UniC) and
// returns the prediction x̃_{i+1} from x^c_i (UniP) and x̂0_i. It must be called for
// i = 0, 1, …, n−1 in order (a new pass may start again at 0).
func (u *uniPC) Step(s *scope, i int, eps, x *ts.Tensor) (prev, predX0 *ts.Tensor) {
	if s.failed(eps, x) || !u.pred.history.begin(s, u.label(), i) {
		return nil, nil
	}
	if i == 0 {
		u.dropLast() // a new pass
	}
	// 1. data prediction at the predicted x̃_i
	predX0 = u.pred.predX0(s, i, eps, x)
	// 2. UniC: x^c_i from x^c_{i−1}, the history and the new x̂0_i
	xc := x
	if u.cOrder[i] > 0 {
		xc = u.correct(s, i, predX0)
	}
	// 3. UniP: x̃_{i+1} from x^c_i (DPM-Solver++'s update, sampler_dpmpp_2m.go)
	prev = u.pred.update(s, i, xc, predX0)
	// 4. history: x̂0_i and x^c_i for step i+1, or nothing after the last step
	last := i+1 == len(u.pred.timesteps)
	u.pred.history.push(s, i, predX0, u.pred.depth, last)
	u.dropLast()
	if !last && s.err == nil {
		u.last = s.release(s.do(xc.ShallowClone())) // xc may be the caller's x
	}
	return prev, predX0
}

// correct is UniC at step i:
//
//	x^c_i = (σ_i/σ_{i−1})·x^c_{i−1} + α_i(1 − e^{−h})·[x̂0_{i−1} + Σ_{m<q} a_m·D_m + a_q·(x̂0_i − x̂0_{i−1})],
//
// with h = h_{i−1} and the coefficients precomputed in cDiff and cNew.
func (u *uniPC) correct(s *scope, i int, predX0 *ts.Tensor) *ts.Tensor {
	if u.last == nil {
		s.err = fmt.Errorf("%s: step %d has no corrected x from step %d", u.label(), i, i-1)
		return nil
	}
	h := &u.pred.history
	old := h.at(1) // x̂0_{i−1}
	xc := s.add(s.scale(u.last, u.pred.xCoef[i-1]), s.scale(old, u.pred.x0Coef[i-1]))
	xc = s.add(xc, s.scale(s.sub(predX0, old), u.cNew[i]))
	for m, c := range u.cDiff[i] {
		xc = s.add(xc, s.scale(s.sub(h.at(2+m), old), c)) // x̂0_{i−1−(m+1)} − x̂0_{i−1}
	}
	return xc
}

func (u *uniPC) dropLast() {
	if u.last != nil {
		u.last.MustDrop()
		u.last = nil
	}
}

// Close frees the kept history and x^c. Sample calls it when a pass ends early.
func (u *uniPC) Close() {
	u.pred.Close()
	u.dropLast()
}
