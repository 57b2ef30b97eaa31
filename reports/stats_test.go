package reports

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      float64
		n      int
		lo, hi float64
	}{
		// Issue 17's case, by hand with z = 1.96, z² = 3.8416:
		//   1 + z²/n           = 1 + 3.8416/250 = 1.0153664
		//   centre             = (0.304 + 3.8416/500) / 1.0153664 = 0.3116832 / 1.0153664 = 0.3069662
		//   p̂(1−p̂)/n + z²/4n² = 0.211584/250 + 3.8416/250000 = 0.000846336 + 0.0000153664 = 0.0008617024
		//   half               = 1.96 · √0.0008617024 / 1.0153664 = 1.96 · 0.0293548 / 1.0153664 = 0.0566646
		// so [0.2503016, 0.3636308]: "30.4% ± 5.7".
		{"30.4% of 250", 0.304, 250, 0.2503016, 0.3636308},
		// 50 of 100: centre 0.5, half = 1.96·√(0.0025 + 0.000096)/1.038416 = 0.0961702.
		{"50% of 100", 0.5, 100, 0.4038298, 0.5961702},
		// 0 of 10: the interval is [0, z²/(n + z²)] = [0, 3.8416/13.8416] = [0, 0.2775402].
		{"0 of 10", 0, 10, 0, 0.2775402},
		// 10 of 10: the mirror image, [1 − 0.2775402, 1].
		{"10 of 10", 1, 10, 0.7224598, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := wilson(tc.p, tc.n, z95)
			if !near(lo, tc.lo, 1e-6) || !near(hi, tc.hi, 1e-6) {
				t.Errorf("wilson(%v, %d) = [%.7f, %.7f], want [%.7f, %.7f]", tc.p, tc.n, lo, hi, tc.lo, tc.hi)
			}
		})
	}
	t.Run("no samples", func(t *testing.T) {
		if lo, hi := wilson(0.5, 0, z95); !math.IsNaN(lo) || !math.IsNaN(hi) {
			t.Errorf("wilson(0.5, 0) = [%v, %v], want NaNs", lo, hi)
		}
	})
}

func TestTwoProportionZ(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p1, p2 float64
		n      int
		z, p   float64
	}{
		// p̄ = 0.3, se = √(0.3·0.7·(2/250)) = √0.00168 = 0.0409878, z = 0.008/0.0409878 = 0.1951800,
		// p = erfc(0.19518/√2) = 0.8452520: the winner is inside the noise.
		{"30.4% vs 29.6%", 0.304, 0.296, 250, 0.1951800, 0.8452520},
		// p̄ = 0.875, se = √(0.875·0.125·0.008) = 0.0295804, z = 0.09/0.0295804 = 3.0425553.
		{"92% vs 83%", 0.92, 0.83, 250, 3.0425553, 0.0023458},
		{"equal", 0.5, 0.5, 100, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, p := twoProportionZ(tc.p1, tc.n, tc.p2, tc.n)
			if !near(z, tc.z, 1e-6) || !near(p, tc.p, 1e-6) {
				t.Errorf("z, p = %.7f, %.7f, want %.7f, %.7f", z, p, tc.z, tc.p)
			}
		})
	}
}

func TestWelch(t *testing.T) {
	// [1, 2, 3] against [4, 5, 6]: means 2 and 5, s² = 1 each, so t = −3/√(1/3 + 1/3) = −3.6742346
	// and ν = (2/3)² / ((1/3)²/2 + (1/3)²/2) = 4. Student's t with 4 df has the closed-form CDF
	// F(t) = 1/2 + (3/8)·u·(1 − t²/(12(1 + t²/4))) with u = t/√(1 + t²/4), which at |t| = 3.6742346
	// gives F = 0.9893442, so p = 2·(1 − F) = 0.0213116.
	m1, s1 := meanSD([]float64{1, 2, 3})
	m2, s2 := meanSD([]float64{4, 5, 6})
	tv, df, p, ok := welch(m1, s1, 3, m2, s2, 3)
	if !ok || !near(tv, -3.6742346, 1e-6) || !near(df, 4, 1e-9) || !near(p, 0.0213116, 1e-6) {
		t.Errorf("welch = t %.7f, df %.7f, p %.7f, ok %v; want −3.6742346, 4, 0.0213116, true", tv, df, p, ok)
	}
	if _, _, _, ok := welch(1, 0, 2, 1, 0, 2); ok {
		t.Error("welch of two constant samples should not test")
	}
	if _, _, _, ok := welch(1, 1, 1, 2, 1, 3); ok {
		t.Error("welch with one value on a side should not test")
	}
}

func TestSampleSizes(t *testing.T) {
	// (1.96 + 0.84)² · (0.304·0.696 + 0.296·0.704) / 0.008² = 7.84 · 0.419968 / 0.000064 = 51446.08.
	if n := samplesToResolve(0.304, 0.296); n != 51447 {
		t.Errorf("samplesToResolve(30.4%%, 29.6%%) = %d, want 51447", n)
	}
	// 2.8 · √(0.419968/250) = 2.8 · 0.0409863 = 0.1147615: at n = 250, about 11.5 points.
	if d := resolvableDifference(0.304, 0.296, 250); !near(d, 0.1147615, 1e-6) {
		t.Errorf("resolvableDifference = %.7f, want 0.1147615", d)
	}
	// 7.84 · (0.02² + 0.03²) / 0.01² = 7.84 · 0.0013 / 0.0001 = 101.92 → 102 seeds.
	if k := seedsToResolve(0.02, 0.03, 0.01); k != 102 {
		t.Errorf("seedsToResolve = %d, want 102", k)
	}
	if k := seedsToResolve(0.001, 0.001, 1); k != 2 {
		t.Errorf("seedsToResolve of a huge difference = %d, want the minimum 2", k)
	}
	// t_{0.975, 2} = 4.3026527 (the textbook table value 4.303).
	if q := tQuantile95(3); !near(q, 4.3026527, 1e-6) {
		t.Errorf("tQuantile95(3) = %.7f, want 4.3026527", q)
	}
}

func TestMeanSD(t *testing.T) {
	// 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squares about it sum to 32, so s = √(32/7) = 2.1380899.
	m, s := meanSD([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || !near(s, 2.1380899, 1e-6) {
		t.Errorf("meanSD = %v, %v; want 5, 2.1380899", m, s)
	}
	if _, s := meanSD([]float64{3}); !math.IsNaN(s) {
		t.Errorf("sd of one value = %v, want NaN", s)
	}
}

func TestFmtCount(t *testing.T) {
	for n, want := range map[int]string{7: "7", 250: "250", 1000: "1,000", 51447: "51,447", 1234567: "1,234,567"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q, want %q", n, got, want)
		}
	}
}
