package quality

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// FD's bootstrap over the samples. Notation (Efron & Tibshirani 1993, "An Introduction to the
// Bootstrap"; Davison & Hinkley 1997, "Bootstrap Methods and their Application", §5.2):
//
//	θ̂        the FD of the n samples' features against the reference statistics (μ_r, Σ_r)
//	FD_n     E[θ̂], what FD measures at n samples: the true distance plus FD's upward bias at n,
//	         the same for every run of n samples (so FDs are compared at equal n)
//	θ*_b     the FD of resample b: n rows drawn with replacement, b = 1..B
//	m*, q_α  the mean and the α-quantile of the θ*_b
//
// The reference statistics are held fixed: the interval is the noise of the n generated
// samples, which is what differs between runs; every run is measured against the same test split.

// FDResamples is B, the number of bootstrap resamples behind every run's FD interval, and
// FDBootstrapSeed seeds them. Runs with the same number of samples draw the same resamples, so
// their replicates pair up (sample i of every run starts from the same noise): the report's
// bootstrapped FD differences use that.
const (
	FDResamples     = 200
	FDBootstrapSeed = 17_000_017
)

// FDInterval is a bootstrap interval of the Fréchet distance of a sample set.
type FDInterval struct {
	// Low and High bound the 95% basic bootstrap interval of FD_n, the pivot θ̂ − FD_n
	// approximated by θ*_b − m* (Davison & Hinkley §5.2, for the estimand E[θ̂]):
	//
	//	[θ̂ − (q_0.975 − m*), θ̂ + (m* − q_0.025)]
	//
	// with Low clamped at 0. It brackets θ̂, and is the noise of the measurement itself.
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Replicates are the θ*_b in resample order; Seed seeded the resamples.
	Replicates []float64 `json:"replicates"`
	Seed       uint64    `json:"seed"`
}

// EvaluateWithInterval is Evaluate, plus the bootstrap interval of the FD it measured
// (FDResamples resamples, FDBootstrapSeed) and the samples' features both were computed from
// (n × the feature width), for the caller to keep (FeaturesNPY). The classifier runs over the
// samples once.
func EvaluateWithInterval(c *Classifier, samples []float32, n int, reference *data.Set) (Metrics, FDInterval, *mat.Dense, error) {
	m, features, ref, err := evaluate(c, samples, n, reference)
	if err != nil {
		return Metrics{}, FDInterval{}, nil, err
	}
	iv, err := BootstrapFD(features, ref.Mu, ref.sigma(), m.FD, FDResamples, FDBootstrapSeed)
	if err != nil {
		return Metrics{}, FDInterval{}, nil, fmt.Errorf("quality: FD bootstrap: %w", err)
	}
	return m, iv, features, nil
}

// BootstrapFD resamples the rows of features (one per generated sample) with replacement
// resamples times, drawing the row indices from a PCG seeded with seed, and computes each
// resample's Fréchet distance against the reference (mu, sigma). fd is θ̂, the distance of
// features itself. It needs at least two rows and one resample.
func BootstrapFD(features *mat.Dense, mu []float64, sigma mat.Symmetric, fd float64, resamples int, seed uint64) (FDInterval, error) {
	n, d := features.Dims()
	if n < 2 || resamples < 1 {
		return FDInterval{}, fmt.Errorf("quality: bootstrap needs at least 2 samples and 1 resample, got %d and %d", n, resamples)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	resample := mat.NewDense(n, d, nil)
	replicates := make([]float64, resamples)
	for b := range replicates {
		for i := 0; i < n; i++ {
			resample.SetRow(i, features.RawRowView(rng.IntN(n)))
		}
		muB, sigmaB, err := Stats(resample)
		if err != nil {
			return FDInterval{}, err
		}
		if replicates[b], err = FrechetDistance(muB, sigmaB, mu, sigma); err != nil {
			return FDInterval{}, fmt.Errorf("quality: bootstrap resample %d: %w", b+1, err)
		}
	}
	lo, hi, err := BasicInterval(fd, replicates, 0.95)
	if err != nil {
		return FDInterval{}, err
	}
	return FDInterval{Low: math.Max(0, lo), High: hi, Replicates: replicates, Seed: seed}, nil
}

// BasicInterval is the basic bootstrap interval at the given level for the mean E[θ̂] of an
// estimator, from its estimate θ̂ and bootstrap replicates θ*_b (Davison & Hinkley 1997,
// §5.2 with the pivot θ̂ − E[θ̂] approximated by θ*_b − m*):
//
//	[θ̂ − (q_{1−α/2} − m*), θ̂ + (m* − q_{α/2})],   α = 1 − level,
//
// with the quantiles of the empirical distribution of the replicates.
func BasicInterval(estimate float64, replicates []float64, level float64) (lo, hi float64, err error) {
	if len(replicates) == 0 || !(level > 0 && level < 1) {
		return 0, 0, errors.New("quality: a bootstrap interval needs replicates and a level in (0, 1)")
	}
	sorted := slices.Clone(replicates)
	slices.Sort(sorted)
	alpha := 1 - level
	mean := stat.Mean(sorted, nil)
	qLo := stat.Quantile(alpha/2, stat.Empirical, sorted, nil)
	qHi := stat.Quantile(1-alpha/2, stat.Empirical, sorted, nil)
	return estimate - (qHi - mean), estimate + (mean - qLo), nil
}
