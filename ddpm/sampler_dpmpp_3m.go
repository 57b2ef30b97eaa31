package ddpm

import "math"

// DPM-Solver++(3M): the third-order multistep DPM-Solver++ (Lu et al. 2022, "DPM-Solver++", §4:
// the multistep solvers of data prediction, here at order 3), and its SDE variant as in
// k-diffusion's sample_dpmpp_3m_sde. It is DPM-Solver++(2M) (sampler_dpmpp_2m.go) with x̂0 taken
// quadratic in λ through the last three predictions instead of linear through two; the update,
// the history and the clipping are the 2M's (dpmSolverMultistep), with one more coefficient.
//
// Notation as in sampler_dpmpp_2m.go (α_i, σ_i, λ_i, h_i = λ_{i+1} − λ_i, x̂0_i), plus
//
//	r0 = h_{i−1}/h_i, r1 = h_{i−2}/h_i     the two previous steps relative to this one
//	H = (1 + η)·h_i                        the step the x̂0 terms integrate over (η = 0: H = h_i)
//	φ_k                                    φ_0(z) = e^z, φ_{k+1}(z) = (φ_k(z) − 1/k!)/z (expPhi)
//
// The exact solution of §4.1, x_{i+1} = (σ_{i+1}/σ_i)·x_i + σ_{i+1} ∫ e^λ x̂0(λ) dλ, with x̂0
// expanded in λ about λ_i to second order (DPM-Solver, Lu et al. 2022a, §3.2: the k-th Taylor
// term integrates to h^{k+1}·φ_{k+1}(−h)) is
//
//	x_{i+1} = (σ_{i+1}/σ_i)·x_i + α_{i+1}·[Hφ_1(−H)·x̂0_i + Hφ_2(−H)·D1 + Hφ_3(−H)·D2],
//
// with the derivatives from divided differences of the last three x̂0 (in units of h_i):
//
//	D1_0 = (x̂0_i − x̂0_{i−1})/r0,   D1_1 = (x̂0_{i−1} − x̂0_{i−2})/r1
//	D1   = D1_0 + r0/(r0 + r1)·(D1_0 − D1_1)     ≈ h_i·x̂0′(λ_i)
//	D2   = 2·(D1_0 − D1_1)/(r0 + r1)             ≈ h_i²·x̂0″(λ_i)
//
// Hφ_1(−H) = 1 − e^{−H}, Hφ_2(−H) = (e^{−H} − 1)/H + 1 and Hφ_3(−H) = ½ − φ_2(−H): the
// "phi_1", "phi_2" and "−phi_3" of the DPM-Solver code. The factor 2 in D2 matters: D2 is the
// second derivative, not half of it. diffusers' and k-diffusion's 3M (and the DPM-Solver
// reference code) use (D1_0 − D1_1)/(r0 + r1), which is h²·x̂0″/2; that leaves an O(h³) local
// error, so their 3M is second order (TestDPMSolver3MOrderOfConvergence measures both forms).
//
// For the SDE (η > 0) the linear part and the noise are the 2M SDE's (e^{−ηh_i} on x_i, noise
// σ_{i+1}·√(1 − e^{−2ηh_i})·z) and x̂0's Taylor terms integrate over H in place of h_i, which is
// all the formula above needs. η = 0 gives the ODE solver exactly. Long steps in λ hurt the SDE
// variant more than the 2M SDE: from the exact ε of N(0.1, 0.25²) data the samples' standard
// deviation comes out 56% and 70% too large at 10 log-SNR and Karras steps (2M SDE: +1%, −0.5%),
// 43% at 20 Karras steps (2M SDE: +10%), 8.5% at 50 trailing steps (+3%); within 0.5% at 50
// log-SNR or Karras steps, as the 2M SDE.
//
// Orders per step (multistepOrder): step 0 is first order (DDIM), step 1 second order (the 2M's
// step), the rest third order, except the last two: the step onto the last visited timestep is
// second order and the jump to σ = 0 first order (returning x̂0_{n−1}), as diffusers'
// lower_order_final. So the 3M differs from the 2M only on steps 2..n−3.
//
// Strictly, a multistep solver started with lower-order steps is limited by their local error:
// the first step's O(h²) makes the 3M globally second order as h → 0. That error is scaled by
// α_1 ≈ 0 near pure noise, so it shows only far below the step sizes that sampling uses.

// newDPMPP3MSampler builds DPM-Solver++(3M) over the given descending timesteps.
func newDPMPP3MSampler(s *Schedule, timesteps []int, spacing string, clipX0 bool) *dpmSolverMultistep {
	return newDPMSolverPP("dpm-solver++(3M)", s, timesteps, spacing, 3, 0, clipX0)
}

// newDPMPP3MSDESampler builds DPM-Solver++(3M) SDE with stochasticity eta in [0, 1].
func newDPMPP3MSDESampler(s *Schedule, timesteps []int, spacing string, eta float64, clipX0 bool) *dpmSolverMultistep {
	return newDPMSolverPP("dpm-solver++(3M) SDE", s, timesteps, spacing, 3, eta, clipX0)
}

// thirdOrderCoefficients returns the third-order step i's coefficients of x̂0_i − x̂0_{i−1} and
// x̂0_{i−1} − x̂0_{i−2}: α_{i+1}·(Hφ_2·D1 + Hφ_3·D2) written in those two differences.
func thirdOrderCoefficients(g lambdaGrid, i int, H float64) (diff, diff2 float64) {
	h := g.h(i)
	r0, r1 := g.h(i-1)/h, g.h(i-2)/h
	phi2 := H * expPhi(2, -H) // coefficient of D1
	phi3 := H * expPhi(3, -H) // coefficient of D2
	// With δ0 = x̂0_i − x̂0_{i−1} and δ1 = x̂0_{i−1} − x̂0_{i−2}:
	// D1 = (1 + r0/(r0+r1))/r0·δ0 − r0/((r0+r1)·r1)·δ1, D2 = 2/((r0+r1)·r0)·δ0 − 2/((r0+r1)·r1)·δ1.
	alpha := g.alpha[i+1]
	diff = alpha * (phi2*(1+r0/(r0+r1))/r0 + phi3*2/((r0+r1)*r0))
	diff2 = -alpha * (phi2*r0/((r0+r1)*r1) + phi3*2/((r0+r1)*r1))
	return diff, diff2
}

// expPhi is φ_k(z) = Σ_{n≥0} z^n/(n+k)! (φ_0 = e^z, φ_{k+1}(z) = (φ_k(z) − 1/k!)/z), the weights
// of exponential integrators: ∫_0^h e^{−(h−u)}·u^k/k! du = h^{k+1}·φ_{k+1}(−h). Near z = 0 it sums
// the series, where the recurrence would cancel.
func expPhi(k int, z float64) float64 {
	if math.Abs(z) < 1 {
		term := 1.0 // z^n/(n+k)!, from n = 0
		for j := 2; j <= k; j++ {
			term /= float64(j)
		}
		sum := 0.0
		for n := 0; n < 40 && term != 0; n++ {
			sum += term
			term *= z / float64(n+k+1)
		}
		return sum
	}
	phi, fact := math.Exp(z), 1.0 // φ_0 and 0!
	for j := range k {
		phi = (phi - 1/fact) / z
		fact *= float64(j + 1)
	}
	return phi
}
