package quality

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// gaussianRows draws n rows of N(mu, sd²) in one dimension.
func gaussianRows(rng *rand.Rand, n int, mu, sd float64) *mat.Dense {
	x := mat.NewDense(n, 1, nil)
	for i := 0; i < n; i++ {
		x.Set(i, 0, mu+sd*rng.NormFloat64())
	}
	return x
}

// c4 is E[s]/σ for the sample standard deviation s (divisor n−1) of n normal values:
// c4(n) = √(2/(n−1))·Γ(n/2)/Γ((n−1)/2).
func c4(n int) float64 {
	a, _ := math.Lgamma(float64(n) / 2)
	b, _ := math.Lgamma(float64(n-1) / 2)
	return math.Sqrt(2/float64(n-1)) * math.Exp(a-b)
}

// TestBootstrapFDCoversFDn checks the interval's coverage against a closed form. In one
// dimension FD is (m̂ − μ_r)² + (ŝ − σ_r)², so for n samples of N(μ, σ²) against a fixed
// reference (μ_r, σ_r) its mean is
//
//	FD_n = (μ − μ_r)² + σ²/n + (c4·σ − σ_r)² + σ²(1 − c4²),
//
// with E[m̂] = μ, Var m̂ = σ²/n, E[ŝ] = c4·σ, Var ŝ = σ²(1 − c4²). Over 40 seeded data sets the
// 95% interval must contain FD_n at least 34 times (the binomial 1% tail at 95% coverage is
// 35), and its width must match 2·1.96 times the spread of θ̂ across the data sets.
func TestBootstrapFDCoversFDn(t *testing.T) {
	const (
		n, sets       = 100, 40
		mu, sd        = 0.5, 1.2
		muRef, sdRef  = 0.0, 1.0
		minCovered    = 34
		widthTolerate = 0.35
	)
	k := c4(n)
	fdN := (mu-muRef)*(mu-muRef) + sd*sd/n + (k*sd-sdRef)*(k*sd-sdRef) + sd*sd*(1-k*k)
	ref := mat.NewSymDense(1, []float64{sdRef * sdRef})
	covered := 0
	var estimates, widths []float64
	for set := range sets {
		rng := rand.New(rand.NewPCG(uint64(set), 1))
		x := gaussianRows(rng, n, mu, sd)
		m, s, err := Stats(x)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := FrechetDistance(m, s, []float64{muRef}, ref)
		if err != nil {
			t.Fatal(err)
		}
		iv, err := BootstrapFD(x, []float64{muRef}, ref, fd, FDResamples, FDBootstrapSeed)
		if err != nil {
			t.Fatal(err)
		}
		if len(iv.Replicates) != FDResamples || !(iv.Low <= fd && fd <= iv.High) {
			t.Fatalf("set %d: interval [%g, %g] of %d replicates does not bracket θ̂ = %g", set, iv.Low, iv.High, len(iv.Replicates), fd)
		}
		if iv.Low <= fdN && fdN <= iv.High {
			covered++
		}
		estimates, widths = append(estimates, fd), append(widths, iv.High-iv.Low)
	}
	if covered < minCovered {
		t.Errorf("the 95%% interval covered FD_n = %.4f in %d of %d data sets, want at least %d", fdN, covered, sets, minCovered)
	}
	want := 2 * 1.96 * stat.StdDev(estimates, nil)
	if got := stat.Mean(widths, nil); math.Abs(got/want-1) > widthTolerate {
		t.Errorf("mean interval width %.4f, want 2·1.96·sd(θ̂) = %.4f within %.0f%%", got, want, 100*widthTolerate)
	}
	t.Logf("FD_n = %.4f, covered %d/%d, mean width %.4f against %.4f", fdN, covered, sets, stat.Mean(widths, nil), want)
}

// TestBootstrapFDIdenticalSets measures a set against its own statistics: θ̂ = 0, and the
// replicates are the bootstrap's bias term alone. In one dimension their mean is
// E*[(m* − m̂)²] + E*[(s* − ŝ)²] ≈ σ̂²_b/n + ŝ²/(2n) for normal data (σ̂²_b the divisor-n
// variance; Var s ≈ σ²/2n), and the interval is [0, m* − q_0.025] (its low end clamped).
func TestBootstrapFDIdenticalSets(t *testing.T) {
	const n = 400
	x := gaussianRows(rand.New(rand.NewPCG(3, 1)), n, 0, 2)
	m, s, err := Stats(x)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := FrechetDistance(m, s, m, s)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fd) > 1e-9 {
		t.Fatalf("FD of a set against its own statistics = %g, want 0", fd)
	}
	iv, err := BootstrapFD(x, m, s, fd, FDResamples, FDBootstrapSeed)
	if err != nil {
		t.Fatal(err)
	}
	v := s.At(0, 0)
	want := v*(n-1)/n/n + v/(2*n)
	if got := stat.Mean(iv.Replicates, nil); math.Abs(got/want-1) > 0.25 {
		t.Errorf("mean replicate %.5f, want the bias term %.5f within 25%%", got, want)
	}
	if mean := stat.Mean(iv.Replicates, nil); iv.Low != 0 || !(iv.High > 0 && iv.High <= mean) {
		t.Errorf("interval [%g, %g], want [0, m* − q_0.025] with 0 < m* − q_0.025 <= m* = %g", iv.Low, iv.High, mean)
	}
	// The same seed draws the same resamples.
	again, err := BootstrapFD(x, m, s, fd, FDResamples, FDBootstrapSeed)
	if err != nil {
		t.Fatal(err)
	}
	for b := range again.Replicates {
		if again.Replicates[b] != iv.Replicates[b] {
			t.Fatalf("replicate %d differs between two runs with the same seed", b)
		}
	}
}

func TestBasicInterval(t *testing.T) {
	// Replicates 1..99 (mean 50; empirical 2.5% and 97.5% quantiles 3 and 97) around θ̂ = 50:
	// [50 − (97 − 50), 50 + (50 − 3)] = [3, 97].
	reps := make([]float64, 99)
	for i := range reps {
		reps[i] = float64(i + 1)
	}
	lo, hi, err := BasicInterval(50, reps, 0.95)
	if err != nil || lo != 3 || hi != 97 {
		t.Errorf("BasicInterval = [%g, %g], %v; want [3, 97]", lo, hi, err)
	}
	if _, _, err := BasicInterval(1, nil, 0.95); err == nil {
		t.Error("no replicates: want an error")
	}
}

// TestFeaturesNPY: the .npy header has numpy's layout (data at a multiple of 64 bytes, the
// dict ending in "\n") and the features read back exactly (they are float32 to begin with).
func TestFeaturesNPY(t *testing.T) {
	for _, shape := range [][2]int{{1, 1}, {3, 2}, {250, 128}} {
		n, d := shape[0], shape[1]
		x := mat.NewDense(n, d, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				x.Set(i, j, float64(float32(float64(i)-0.25*float64(j))))
			}
		}
		b := FeaturesNPY(x)
		hlen := int(b[8]) | int(b[9])<<8
		if (10+hlen)%64 != 0 || b[10+hlen-1] != '\n' || len(b) != 10+hlen+4*n*d {
			t.Fatalf("%v: header of %d bytes, file of %d: want the data 64-byte aligned after a \\n", shape, hlen, len(b))
		}
		got, err := ReadFeaturesNPY(b)
		if err != nil {
			t.Fatal(err)
		}
		if !mat.Equal(got, x) {
			t.Errorf("%v: features do not read back", shape)
		}
	}
	if _, err := ReadFeaturesNPY([]byte("not npy")); err == nil {
		t.Error("garbage: want an error")
	}
}
