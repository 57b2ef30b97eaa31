package reports

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// The statistics behind the verdict. Notation:
//
//	p̂ = x/n      a measured share (recognizable %, class accuracy) of n evaluation samples
//	z = 1.96     the two-sided 95% normal quantile, z_{1−α/2} with α = 0.05
//	z_β = 0.84   the 80%-power normal quantile, z_{1−β} with β = 0.2
//	m, s, k      mean, sample standard deviation and count of per-seed values
const (
	z95     = 1.96
	zPower  = 0.84
	alpha   = 0.05
	powerK2 = (z95 + zPower) * (z95 + zPower) // (z_{1−α/2} + z_{1−β})² = 7.84
)

// wilson is the Wilson score interval for a share p̂ of n samples at normal quantile z
// (Wilson 1927, "Probable inference, the law of succession, and statistical inference";
// Agresti & Coull 1998, eq. 2):
//
//	centre = (p̂ + z²/2n) / (1 + z²/n)
//	half   = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n)
//
// Unlike p̂ ± z·√(p̂(1−p̂)/n) it stays inside [0, 1] and does not collapse to a point at p̂ = 0
// or 1. It returns NaNs for n < 1.
func wilson(p float64, n int, z float64) (lo, hi float64) {
	if n < 1 || math.IsNaN(p) {
		return math.NaN(), math.NaN()
	}
	nf := float64(n)
	z2 := z * z
	denom := 1 + z2/nf
	centre := (p + z2/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	return max(0, centre-half), min(1, centre+half)
}

// twoProportionZ is the pooled two-proportion z statistic of shares p1 of n1 and p2 of n2
// samples (e.g. Agresti, "Categorical Data Analysis", 3rd ed., §2.1.3 and §3.1.3):
//
//	p̄ = (p1·n1 + p2·n2) / (n1 + n2),   z = (p1 − p2) / √(p̄(1−p̄)(1/n1 + 1/n2))
//
// and its two-sided p-value 2·(1 − Φ(|z|)) = erfc(|z|/√2). Equal shares give z = 0, p = 1.
func twoProportionZ(p1 float64, n1 int, p2 float64, n2 int) (z, pValue float64) {
	n1f, n2f := float64(n1), float64(n2)
	pool := (p1*n1f + p2*n2f) / (n1f + n2f)
	se := math.Sqrt(pool * (1 - pool) * (1/n1f + 1/n2f))
	if se == 0 || p1 == p2 {
		return 0, 1
	}
	z = (p1 - p2) / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}

// welch is Welch's unequal-variance t-test of two samples given as mean, sd and count
// (Welch 1947, "The generalization of Student's problem…", eqs. 1 and 27):
//
//	t = (m1 − m2) / √(s1²/k1 + s2²/k2)
//	ν = (s1²/k1 + s2²/k2)² / ((s1²/k1)²/(k1−1) + (s2²/k2)²/(k2−1))   (Welch–Satterthwaite)
//
// with the two-sided p-value 2·(1 − F_ν(|t|)). ok is false when a count is below 2 or both
// spreads are 0 (the test has nothing to go on).
func welch(m1, s1 float64, k1 int, m2, s2 float64, k2 int) (t, df, pValue float64, ok bool) {
	if k1 < 2 || k2 < 2 {
		return 0, 0, 0, false
	}
	v1, v2 := s1*s1/float64(k1), s2*s2/float64(k2)
	if v1+v2 == 0 {
		return 0, 0, 0, false
	}
	t = (m1 - m2) / math.Sqrt(v1+v2)
	df = (v1 + v2) * (v1 + v2) / (v1*v1/float64(k1-1) + v2*v2/float64(k2-1))
	student := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	return t, df, 2 * student.Survival(math.Abs(t)), true
}

// tQuantile95 is the two-sided 95% quantile of Student's t with k−1 degrees of freedom:
// the factor of the confidence interval m ± t·s/√k of a mean of k values.
func tQuantile95(k int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(k - 1)}.Quantile(1 - alpha/2)
}

// samplesToResolve is the number of evaluation samples per run at which a two-sided test at
// 95% detects the difference between shares p1 and p2 with 80% power (the normal-approximation
// sample size for two proportions, e.g. Fleiss, "Statistical Methods for Rates and
// Proportions", 3rd ed., eq. 4.14 without the continuity correction):
//
//	n ≈ (z_{1−α/2} + z_{1−β})² · (p1(1−p1) + p2(1−p2)) / (p1 − p2)²
//
// It returns 0 when p1 = p2 (no n resolves a zero difference).
func samplesToResolve(p1, p2 float64) int {
	d := p1 - p2
	if d == 0 {
		return 0
	}
	return int(math.Ceil(powerK2 * (p1*(1-p1) + p2*(1-p2)) / (d * d)))
}

// resolvableDifference inverts samplesToResolve: the smallest difference between shares near
// p1 and p2 that n samples per run detect at 95% with 80% power,
//
//	d ≈ (z_{1−α/2} + z_{1−β}) · √((p1(1−p1) + p2(1−p2)) / n).
func resolvableDifference(p1, p2 float64, n int) float64 {
	return (z95 + zPower) * math.Sqrt((p1*(1-p1)+p2*(1-p2))/float64(n))
}

// seedsToResolve is the same sample-size formula for means of per-seed values with standard
// deviations s1 and s2: the seeds per setting at which a difference d is detected at 95% with
// 80% power, k ≈ (z_{1−α/2} + z_{1−β})²·(s1² + s2²)/d², at least 2. It returns 0 when d = 0.
func seedsToResolve(s1, s2, d float64) int {
	if d == 0 {
		return 0
	}
	return max(2, int(math.Ceil(powerK2*(s1*s1+s2*s2)/(d*d))))
}

// meanSD is the mean and the sample standard deviation (divisor k−1) of xs; sd is NaN for
// fewer than two values and both are NaN for none.
func meanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// bootstrapDifference tests the difference d̂ = a − b of two runs' estimates (FD) from their
// bootstrap replicates a*_j and b*_j, j = 1..B, drawn with the same resamples (ddpm/quality's
// BootstrapFD uses one seed for every run, so replicate j of both runs is the FD of the same
// sample indices, and sample i of both starts from the same noise: a paired bootstrap).
// With d*_j = a*_j − b*_j, m* their mean and q_α their empirical quantiles, the 95% interval
// is the basic bootstrap interval of E[d̂] (Davison & Hinkley 1997, "Bootstrap Methods and
// their Application", §5.2, the basic interval, with the pivot d̂ − E[d̂] approximated by d*_j − m*):
//
//	[d̂ − (q_0.975 − m*), d̂ + (m* − q_0.025)]
//
// and the p-value of "no difference" inverts it: for d̂ > 0 the centred replicates beyond d̂,
// p = 2·(1 + #{j: d*_j − m* ≥ d̂}) / (B + 1) (mirrored for d̂ < 0; the Monte Carlo p-value of
// Davison & Hinkley ch. 4, doubled for two sides), at most 1. ok is false when the runs have no replicates or different numbers of them.
func bootstrapDifference(a, b float64, aReps, bReps []float64) (lo, hi, pValue float64, ok bool) {
	if len(aReps) == 0 || len(aReps) != len(bReps) {
		return 0, 0, 0, false
	}
	d := a - b
	diffs := make([]float64, len(aReps))
	for j := range diffs {
		diffs[j] = aReps[j] - bReps[j]
	}
	mean := stat.Mean(diffs, nil)
	slices.Sort(diffs)
	qLo := stat.Quantile(alpha/2, stat.Empirical, diffs, nil)
	qHi := stat.Quantile(1-alpha/2, stat.Empirical, diffs, nil)
	beyond := 0
	for _, x := range diffs {
		if c := x - mean; d > 0 && c >= d || d < 0 && c <= d || d == 0 {
			beyond++
		}
	}
	pValue = min(1, 2*float64(1+beyond)/float64(len(diffs)+1))
	return d - (qHi - mean), d + (mean - qLo), pValue, true
}
