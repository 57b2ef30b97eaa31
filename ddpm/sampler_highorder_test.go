package ddpm

import (
	"fmt"
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Tests of the third-order samplers: DPM-Solver++(3M) and its SDE variant
// (sampler_dpmpp_3m.go), and UniPC (sampler_unipc.go). Point masses on every sampler and grid
// (the loop over Samplers()), seeds, the SDE's distribution and the live tensor count are
// checked with the 2M's tests in sampler_dpmpp_test.go.

// odePathError solves from λ = −3 to λ = 3 in m equal steps of λ (m a multiple of 10) with the
// exact ε of N(0.3, 0.5²) data, in float64, and returns the largest error against the exact ODE
// solution over the pixels and the ten checkpoints λ = −2.4, −1.8, …, 3 that every m shares.
// Taking the largest error along the path, not only at its end, keeps an error that happens to
// cross zero at λ = 3 for some m from faking a higher order.
//
// The grid has one more point past λ = 3, so the steps measured are not the last ones (which
// lower_order_final makes lower order). For a sampler with a corrector (UniPC), corrected reads
// the corrected x^c_i that Step(i) keeps, at λ_i; otherwise the x that Step(i) returns, at λ_{i+1}.
func odePathError(t *testing.T, m int, warp, corrected bool, build func(sched *Schedule, timesteps []int) Sampler) float64 {
	t.Helper()
	g := gaussianData{mu: 0.3, s: 0.5}
	// λ_i = −3 + 6·w(i/m) at timestep m+1−i, with w(u) = u, or w(u) = (e^u − 1)/(e − 1) for a
	// grid whose steps grow e-fold from λ = −3 to 3 (so r ≠ 1 at every step).
	sched := &Schedule{T: m + 2, AlphasCumprod: make([]float64, m+2)}
	timesteps := make([]int, m+2)
	for i := range timesteps {
		timesteps[i] = m + 1 - i
		u := float64(i) / float64(m)
		if warp {
			u = math.Expm1(u) / (math.E - 1)
		}
		sched.AlphasCumprod[m+1-i] = 1 / (1 + math.Exp(-2*(-3+6*u))) // ᾱ = 1/(1 + e^{−2λ})
	}
	sampler := build(sched, timesteps)
	defer sampler.(Closer).Close()
	zs := []float64{-2.5, -1, -0.3, 0.4, 1.2, 2.8}
	start := make([]float64, len(zs))
	for k, z := range zs {
		start[k] = g.exact(z, sched.AlphasCumprod[m+1])
	}
	worst := 0.0
	check := func(x *ts.Tensor, i int) { // x estimates the solution at λ_i
		if i == 0 || i%(m/10) != 0 {
			return
		}
		got := x.Float64Values()
		for k, z := range zs {
			worst = math.Max(worst, math.Abs(got[k]-g.exact(z, sched.AlphasCumprod[m+1-i])))
		}
	}
	var xs scope
	defer xs.drop()
	x := xs.do(ts.NewTensorFromData(start, []int64{int64(len(zs))}))
	err := NoGrad(func() error {
		steps := m
		if corrected {
			steps = m + 1 // Step(m) corrects x at λ_m = 3
		}
		for i := range steps {
			var s scope
			prev, _ := sampler.Step(&s, i, g.eps(&s, x, sched.AlphasCumprod[timesteps[i]]), x)
			if s.err != nil {
				s.drop()
				return s.err
			}
			if corrected {
				check(sampler.(*uniPC).last, i)
			} else {
				check(prev, i+1)
			}
			xs.keep(s.release(prev))
			s.drop()
			x = prev
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return worst
}

// convergenceRatios returns err(m)/err(2m) at m = 20, 40, 80 (errors at 20, 40, 80, 160 steps).
func convergenceRatios(t *testing.T, warp, corrected bool, build func(*Schedule, []int) Sampler) (errs, ratios []float64) {
	t.Helper()
	for _, m := range []int{20, 40, 80, 160} {
		errs = append(errs, odePathError(t, m, warp, corrected, build))
	}
	for k := 1; k < len(errs); k++ {
		ratios = append(ratios, errs[k-1]/errs[k])
	}
	return errs, ratios
}

// halvedD2 is DPM-Solver++(3M) in the form of diffusers, k-diffusion and the DPM-Solver code,
// whose D2 = (D1_0 − D1_1)/(r0 + r1) is half the second difference.
func halvedD2(sched *Schedule, timesteps []int) Sampler {
	d := newDPMPP3MSampler(sched, timesteps, "", false)
	g := newLambdaGrid(sched, timesteps)
	for i := range timesteps {
		if d.diff2Coef[i] == 0 {
			continue
		}
		h := g.h(i)
		r0, r1 := g.h(i-1)/h, g.h(i-2)/h
		phi2, phi3 := h*expPhi(2, -h), h*expPhi(3, -h)
		d.diffCoef[i] = g.alpha[i+1] * (phi2*(1+r0/(r0+r1))/r0 + phi3/((r0+r1)*r0))
		d.diff2Coef[i] = -g.alpha[i+1] * (phi2*r0/((r0+r1)*r1) + phi3/((r0+r1)*r1))
	}
	return d
}

// Halving the step in λ must cut the error of DPM-Solver++(3M) about 8× (third order) at every
// halving from 20 to 160 steps, on a uniform grid and on one whose steps grow e-fold; the SDE
// variant at η = 0 is the same solver. The form with D2 halved (as in diffusers and k-diffusion)
// is second order: about 4× once asymptotic (80→160).
func TestDPMSolver3MOrderOfConvergence(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name   string
		build  func(*Schedule, []int) Sampler
		lo, hi float64 // bounds on err(m)/err(2m)
		skip   int     // leading ratios not yet asymptotic
	}{
		{"dpmpp_3m", func(s *Schedule, ts []int) Sampler { return newDPMPP3MSampler(s, ts, "", false) }, 6, 10, 0},
		{"dpmpp_3m_sde(η=0)", func(s *Schedule, ts []int) Sampler { return newDPMPP3MSDESampler(s, ts, "", 0, false) }, 6, 10, 0},
		{"dpmpp_2m", func(s *Schedule, ts []int) Sampler { return newDPMPP2MSampler(s, ts, "", false) }, 3.5, 5, 0},
		{"3m with D2 halved", halvedD2, 3.5, 5, 2}, // 6.6× and 7.1× at 20→40 before it settles
	}
	for _, tt := range tests {
		for _, warp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/warped=%v", tt.name, warp), func(t *testing.T) {
				checkRatios(t, tt.lo, tt.hi, tt.skip)(convergenceRatios(t, warp, false, tt.build))
			})
		}
	}
}

// checkRatios returns a check that every error ratio after the first skip is in [lo, hi],
// logging them all.
func checkRatios(t *testing.T, lo, hi float64, skip int) func(errs, ratios []float64) {
	return func(errs, ratios []float64) {
		t.Helper()
		for k, ratio := range ratios {
			if k >= skip && (ratio < lo || ratio > hi) {
				t.Errorf("error ratio %d→%d steps = %.3f, want in [%g, %g] (errors %.3g)", 20<<k, 40<<k, ratio, lo, hi, errs)
			}
		}
		t.Logf("max error at 20, 40, 80, 160 steps: %.3g; ratios %.3f", errs, ratios)
	}
}

// UniPC-p has order p + 1 (Zhao et al. 2023, Theorem 3.1): the corrected x must converge 8× per
// halving for p = 2 and 16× for p = 3, while the predictor alone (UniP-p) has order p: 4× and 8×.
func TestUniPCOrderOfConvergence(t *testing.T) {
	lockThread(t)
	tests := []struct {
		order     int
		corrector bool
		lo, hi    float64
	}{
		{2, false, 3.5, 5},
		{3, false, 6, 10},
		{2, true, 6, 10},
		{3, true, 12, 22},
	}
	for _, tt := range tests {
		u := newUniPCSampler(&Schedule{T: 1, AlphasCumprod: []float64{0.5}}, []int{0}, "", tt.order, tt.corrector, false)
		for _, warp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/warped=%v", u.label(), warp), func(t *testing.T) {
				checkRatios(t, tt.lo, tt.hi, 0)(convergenceRatios(t, warp, tt.corrector, func(s *Schedule, ts []int) Sampler {
					return newUniPCSampler(s, ts, "", tt.order, tt.corrector, false)
				}))
			})
		}
	}
}

// UniP-p's coefficients, from the order conditions Σ_m a_m·r_m^{k−1} = k!·hh·φ_{k+1}(hh)/B(hh),
// must be DPM-Solver++'s: the 2M's at second-order steps (a = ½) and the 3M's at third-order
// ones, on a non-uniform grid (Karras's, on the cosine schedule).
func TestUniPPredictorIsDPMSolver(t *testing.T) {
	sched, _ := NewSchedule(Cosine, 1000, 1e-4, 0.02)
	timesteps, _ := SampleTimesteps(sched, Karras, 15)
	g := newLambdaGrid(sched, timesteps)
	d := newDPMPP3MSampler(sched, timesteps, Karras, false)
	u := newUniPCSampler(sched, timesteps, Karras, 3, true, false)
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	for i := range timesteps {
		order := multistepOrder(3, i, len(timesteps))
		// UniP: x_{i+1} = … + x0Coef·Σ_m a_m·(x̂0_{i−m} − x̂0_i)/r_m, with −α_{i+1}·B(h) = x0Coef.
		var w []float64 // weights of x̂0_{i−m} − x̂0_i
		switch order {
		case 2:
			r := (g.lambda[i-1] - g.lambda[i]) / g.h(i)
			w = []float64{d.x0Coef[i] * 0.5 / r}
		case 3:
			rks := []float64{(g.lambda[i-1] - g.lambda[i]) / g.h(i), (g.lambda[i-2] - g.lambda[i]) / g.h(i)}
			a := uniCoefficients(g.h(i), rks)
			w = []float64{d.x0Coef[i] * a[0] / rks[0], d.x0Coef[i] * a[1] / rks[1]}
		}
		// In the 3M's differences: Σ w_m·(x̂0_{i−m} − x̂0_i) = −(w1 + w2)·(x̂0_i − x̂0_{i−1}) − w2·(x̂0_{i−1} − x̂0_{i−2}).
		wantDiff, wantDiff2 := 0.0, 0.0
		for _, v := range w {
			wantDiff -= v
		}
		if len(w) == 2 {
			wantDiff2 = -w[1]
		}
		if !close(d.diffCoef[i], wantDiff) || !close(d.diff2Coef[i], wantDiff2) {
			t.Errorf("step %d (order %d): 3M coefficients (%.12g, %.12g), UniP's (%.12g, %.12g)", i, order, d.diffCoef[i], d.diff2Coef[i], wantDiff, wantDiff2)
		}
		if u.pred.diffCoef[i] != d.diffCoef[i] || u.pred.diff2Coef[i] != d.diff2Coef[i] || u.pred.xCoef[i] != d.xCoef[i] {
			t.Errorf("step %d: UniPC-3's predictor differs from DPM-Solver++(3M)", i)
		}
	}
}

// uniCoefficients must meet the order conditions it solves, and UniC-1 (a = ½) must be their
// limit as h → 0 (b_1 = hh·φ_2(hh)/B(hh) → ½).
func TestUniPCCorrectorCoefficients(t *testing.T) {
	for _, h := range []float64{0.05, 0.4, 1.5} {
		rks := []float64{-0.8, -1.9, 1}
		a := uniCoefficients(h, rks)
		fact := 1.0
		for k := 1; k <= 3; k++ {
			fact *= float64(k)
			lhs := 0.0
			for m, r := range rks {
				lhs += a[m] * math.Pow(r, float64(k-1))
			}
			// the right side by the recurrence φ_{k+1}(z) = (φ_k(z) − 1/k!)/z from φ_1 = (e^z − 1)/z
			z := -h
			phi := math.Expm1(z) / z
			for j := 1; j <= k; j++ {
				f := 1.0
				for n := 2; n <= j; n++ {
					f *= float64(n)
				}
				phi = (phi - 1/f) / z
			}
			if want := fact * z * phi / math.Expm1(z); math.Abs(lhs-want) > 1e-10 {
				t.Errorf("h=%g, k=%d: Σ a_m r_m^{k−1} = %.12g, want %.12g", h, k, lhs, want)
			}
		}
	}
	if b1 := -1e-6 * expPhi(2, -1e-6) / math.Expm1(-1e-6); math.Abs(b1-0.5) > 1e-6 {
		t.Errorf("b_1 as h → 0 = %.9f, want ½", b1)
	}
}

// expPhi must match φ_1(z) = (e^z − 1)/z, φ_2 and φ_3 in closed form on both sides of the switch
// between series and recurrence.
func TestDPMSolverPhiFunctions(t *testing.T) {
	for _, z := range []float64{-3, -1.2, -0.999, -0.3, -1e-3, 0.5, 2} {
		phi1 := math.Expm1(z) / z
		phi2 := (math.Exp(z) - 1 - z) / (z * z)
		phi3 := (math.Exp(z) - 1 - z - z*z/2) / (z * z * z)
		tol := 1e-9 / (z * z * z) // the closed forms lose digits near 0
		for k, want := range []float64{math.Exp(z), phi1, phi2, phi3} {
			if got := expPhi(k, z); math.Abs(got-want) > math.Max(1e-12, math.Abs(tol)) {
				t.Errorf("φ_%d(%g) = %.15g, want %.15g", k, z, got, want)
			}
		}
	}
	if got := expPhi(3, 0); math.Abs(got-1.0/6) > 1e-15 {
		t.Errorf("φ_3(0) = %g, want 1/6", got)
	}
}

// The 3M SDE at η = 0 is the 3M. At η = 1 its linear part and noise are the 2M SDE's at every
// step, and it differs from the 2M SDE only on the third-order steps 2..n−3.
func TestDPMSolver3MSDECoefficients(t *testing.T) {
	sched, _ := NewSchedule(Linear, 1000, 1e-4, 0.02)
	timesteps, _ := SampleTimesteps(sched, LogSNR, 12)
	n := len(timesteps)
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
	ode, sde0 := newDPMPP3MSampler(sched, timesteps, LogSNR, false), newDPMPP3MSDESampler(sched, timesteps, LogSNR, 0, false)
	sde, sde2 := newDPMPP3MSDESampler(sched, timesteps, LogSNR, 1, false), newDPMPP2MSDESampler(sched, timesteps, LogSNR, 1, false)
	for i := range timesteps {
		if !close(sde0.xCoef[i], ode.xCoef[i]) || !close(sde0.x0Coef[i], ode.x0Coef[i]) || !close(sde0.diffCoef[i], ode.diffCoef[i]) ||
			!close(sde0.diff2Coef[i], ode.diff2Coef[i]) || sde0.noise[i] != 0 {
			t.Errorf("step %d: η=0 3M SDE coefficients differ from the 3M's", i)
		}
		if sde.xCoef[i] != sde2.xCoef[i] || sde.x0Coef[i] != sde2.x0Coef[i] || sde.noise[i] != sde2.noise[i] {
			t.Errorf("step %d: 3M SDE linear part or noise differs from the 2M SDE's", i)
		}
		third := i >= 2 && i <= n-3
		if same := sde.diffCoef[i] == sde2.diffCoef[i] && sde.diff2Coef[i] == 0; same == third {
			t.Errorf("step %d: third order = %v, but coefficients (%g, %g) vs the 2M SDE's %g", i, third, sde.diffCoef[i], sde.diff2Coef[i], sde2.diffCoef[i])
		}
	}
}

// Through the whole loop on the trained linear schedule with the exact ε of N(μ, s²) data, the
// third-order samplers must beat DPM-Solver++(2M) where their steps are small enough in λ: at 20
// and 50 steps on the log-SNR grid and at 50 on Karras's. (At 8–10 steps, h ≈ 1 in λ, they are
// worse than the 2M on this problem; the test logs every count from 5 to 50.)
func TestHighOrderSamplersSolveGaussianODE(t *testing.T) {
	lockThread(t)
	g, zs := gaussianODEStart()
	names := []string{SamplerDDIM, SamplerDPMPP2M, SamplerDPMPP3M, SamplerUniPC}
	for _, spacing := range []string{LogSNR, Karras} {
		for _, steps := range []int{5, 8, 10, 15, 20, 50} {
			errs := map[string]float64{}
			for _, name := range names {
				errs[name] = gaussianODEError(t, g, zs, name, spacing, steps)
			}
			t.Logf("%s, %2d steps: max error ddim %.2e, dpmpp_2m %.2e, dpmpp_3m %.2e, unipc %.2e", spacing, steps,
				errs[SamplerDDIM], errs[SamplerDPMPP2M], errs[SamplerDPMPP3M], errs[SamplerUniPC])
			if steps < 20 || spacing == Karras && steps < 50 {
				continue
			}
			for _, name := range names[2:] {
				if errs[name] >= errs[SamplerDPMPP2M] {
					t.Errorf("%s, %d steps: %s max error %.3g, want under dpmpp_2m's %.3g", spacing, steps, name, errs[name], errs[SamplerDPMPP2M])
				}
			}
		}
	}
}

func TestUniPCStepsInOrder(t *testing.T) {
	lockThread(t)
	sched, _ := NewSchedule(Linear, 1000, 1e-4, 0.02)
	timesteps, _ := SampleTimesteps(sched, Trailing, 10)
	u := newUniPCSampler(sched, timesteps, Trailing, 3, true, false)
	defer u.Close()
	var s scope
	defer s.drop()
	x := s.fromFloat32([]float32{0.1, 0.2}, []int64{2}, gotch.CPU)
	u.Step(&s, 0, x, x)
	if u.Step(&s, 2, x, x); s.err == nil {
		t.Fatal("Step(2) after Step(0): want an error")
	}
}
