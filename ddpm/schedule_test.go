package ddpm

import (
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	tests := []struct {
		name      string
		kind      string
		T         int
		firstBeta float64
		lastBeta  float64 // NaN: not checked
		maxLastAC float64 // ᾱ_{T−1} must be below this
	}{
		{name: "linear-1000", kind: Linear, T: 1000, firstBeta: 1e-4, lastBeta: 0.02, maxLastAC: 1e-4},
		{name: "linear-500", kind: Linear, T: 500, firstBeta: 1e-4, lastBeta: 0.02, maxLastAC: 0.01},
		{name: "cosine-1000", kind: Cosine, T: 1000, firstBeta: cosineFirstBeta(1000), lastBeta: 0.999, maxLastAC: 1e-6},
		{name: "cosine-2000", kind: Cosine, T: 2000, firstBeta: cosineFirstBeta(2000), lastBeta: 0.999, maxLastAC: 1e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSchedule(tt.kind, tt.T, 1e-4, 0.02)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Betas[0]; math.Abs(got-tt.firstBeta) > 1e-12 {
				t.Errorf("β_1 = %.12g, want %.12g", got, tt.firstBeta)
			}
			if got := s.Betas[tt.T-1]; math.Abs(got-tt.lastBeta) > 1e-12 {
				t.Errorf("β_T = %.12g, want %.12g", got, tt.lastBeta)
			}
			for i := 1; i < tt.T; i++ {
				if !(s.AlphasCumprod[i] < s.AlphasCumprod[i-1]) {
					t.Fatalf("ᾱ not strictly decreasing at t=%d: %g >= %g", i, s.AlphasCumprod[i], s.AlphasCumprod[i-1])
				}
			}
			if got := s.AlphasCumprod[tt.T-1]; got > tt.maxLastAC {
				t.Errorf("ᾱ_T = %g, want < %g", got, tt.maxLastAC)
			}
			for i := 0; i < tt.T; i++ {
				if d := s.SqrtAlphasCumprod[i]*s.SqrtAlphasCumprod[i] + s.SqrtOneMinusAlphasCumprod[i]*s.SqrtOneMinusAlphasCumprod[i] - 1; math.Abs(d) > 1e-12 {
					t.Fatalf("t=%d: signal and noise variances do not sum to 1 (off by %g)", i, d)
				}
				// β̃_t lies between 0 and β_t (Ho et al. §3.2: the two extreme choices of σ_t²).
				if pv := s.PosteriorVariance[i]; pv < 0 || pv > s.Betas[i]+1e-15 {
					t.Fatalf("t=%d: posterior variance %g outside [0, β_t=%g]", i, pv, s.Betas[i])
				}
			}
			if s.PosteriorVariance[0] != 0 {
				t.Errorf("β̃_0 = %g, want 0", s.PosteriorVariance[0])
			}
		})
	}
}

// cosineFirstBeta is β_1 of the cosine schedule in closed form: 1 − f(1)/f(0).
func cosineFirstBeta(T int) float64 {
	f := func(t float64) float64 { c := math.Cos((t/float64(T) + 0.008) / 1.008 * math.Pi / 2); return c * c }
	return 1 - f(1)/f(0)
}

func TestLinearClosedForm(t *testing.T) {
	s, err := LinearSchedule(1000, 1e-4, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	// ᾱ_t = ∏ (1 − β_s); check t = 499 by a direct log-sum.
	logProd := 0.0
	for i := 0; i <= 499; i++ {
		logProd += math.Log1p(-(1e-4 + (0.02-1e-4)*float64(i)/999))
	}
	if got, want := s.AlphasCumprod[499], math.Exp(logProd); math.Abs(got-want) > 1e-12 {
		t.Errorf("ᾱ_499 = %.15g, want %.15g", got, want)
	}
	// Halfway through the linear schedule about 28% of the signal's scale is left. (The guide's
	// "x_500 ≈ 0.44·x0 + 0.90·ε" is illustrative; this is the linear schedule's own value.)
	if got := s.SqrtAlphasCumprod[499]; math.Abs(got-0.2789) > 0.002 {
		t.Errorf("√ᾱ_499 = %.4f, want ≈ 0.2789", got)
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, tt := range []struct {
		kind        string
		T           int
		start, stop float64
	}{
		{Linear, 0, 1e-4, 0.02},
		{Linear, 10, -1, 0.02},
		{Linear, 10, 0.5, 0.1},
		{Cosine, 0, 0, 0},
		{"quadratic", 10, 1e-4, 0.02},
	} {
		if _, err := NewSchedule(tt.kind, tt.T, tt.start, tt.stop); err == nil {
			t.Errorf("NewSchedule(%q, %d, %g, %g): want an error", tt.kind, tt.T, tt.start, tt.stop)
		}
	}
}
