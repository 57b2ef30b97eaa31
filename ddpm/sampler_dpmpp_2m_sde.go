package ddpm

// DPM-Solver++(2M) SDE: the stochastic variant of DPM-Solver++(2M) (Lu et al. 2022), solving the
// reverse diffusion SDE instead of the ODE, as in k-diffusion's sample_dpmpp_2m_sde with
// solver_type = "midpoint" (and diffusers' algorithm_type = "sde-dpmsolver++"). The noise it
// adds every step lets the sampler correct errors of an imperfect network that a deterministic
// solver carries to the end.
//
// Notation as in sampler_dpmpp_2m.go (α_i, σ_i, λ_i, h_i = λ_{i+1} − λ_i, r_i = h_{i−1}/h_i,
// x̂0_i), plus
//
//	η     how much of the step is stochastic: 0 is the ODE solver DPM-Solver++(2M), 1 the
//	      reverse SDE (the default of k-diffusion and diffusers, and ours)
//	z     standard normal noise from libtorch's generator (seeded by ManualSeed)
//
// Taking x̂0 constant over the step, the reverse SDE integrates in closed form (the linear
// part exactly, the noise exactly in distribution):
//
//	x_{i+1} = (σ_{i+1}/σ_i)·e^{−ηh_i}·x_i + α_{i+1}·(1 − e^{−(1+η)h_i})·x̂0_i + σ_{i+1}·√(1 − e^{−2ηh_i})·z.
//
// With η = 1 this first-order step is exactly DDPM's ancestral step, DDIM with η = 1 (the
// posterior q(x_{i+1} | x_i, x̂0_i), Ho et al. 2020 eq. 7); with η = 0 it is DPM-Solver++1,
// which is DDIM with η = 0. The midpoint second-order correction adds, as in the ODE solver,
//
//	α_{i+1}·(1 − e^{−(1+η)h_i})·(x̂0_i − x̂0_{i−1})/(2r_i),
//
// so η = 0 gives DPM-Solver++(2M) exactly. The first step and the last (onto σ = 0, which
// returns x̂0_{n−1} and adds no noise) are first order.

// sdeEta is the η of "dpmpp_2m_sde": the reverse SDE itself.
const sdeEta = 1

// newDPMPP2MSDESampler builds DPM-Solver++(2M) SDE with stochasticity eta in [0, 1]; the
// coefficients above are newDPMSolverPP's (sampler_dpmpp_2m.go), with H = (1 + η)·h_i.
func newDPMPP2MSDESampler(s *Schedule, timesteps []int, spacing string, eta float64, clipX0 bool) *dpmSolverMultistep {
	return newDPMSolverPP("dpm-solver++(2M) SDE", s, timesteps, spacing, 2, eta, clipX0)
}
