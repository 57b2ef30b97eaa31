package quality

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// rotated returns R·diag(values)·Rᵀ for the 2×2 rotation R by angle theta.
func rotated(theta float64, values [2]float64) *mat.SymDense {
	c, s := math.Cos(theta), math.Sin(theta)
	// R = [[c, −s], [s, c]]
	return mat.NewSymDense(2, []float64{
		c*c*values[0] + s*s*values[1], c * s * (values[0] - values[1]),
		c * s * (values[0] - values[1]), s*s*values[0] + c*c*values[1],
	})
}

func TestFrechetDistance(t *testing.T) {
	// For 2×2 PSD matrices, Tr(√M) = √(Tr M + 2√det M): an independent route to the trace term,
	// since Tr((Σ1Σ2)^½) = Tr((Σ1^½Σ2Σ1^½)^½) and det(Σ1Σ2) = det Σ1 · det Σ2.
	twoByTwo := func(mu1, mu2 [2]float64, s1, s2 *mat.SymDense) float64 {
		var p mat.Dense
		p.Mul(s1, s2)
		traceRoot := math.Sqrt(mat.Trace(&p) + 2*math.Sqrt(mat.Det(s1)*mat.Det(s2)))
		d0, d1 := mu1[0]-mu2[0], mu1[1]-mu2[1]
		return d0*d0 + d1*d1 + mat.Trace(s1) + mat.Trace(s2) - 2*traceRoot
	}
	tests := []struct {
		name           string
		mu1, mu2       []float64
		sigma1, sigma2 *mat.SymDense
		want           float64
	}{
		{
			name: "1-D: (m1−m2)² + (σ1−σ2)²",
			mu1:  []float64{1}, sigma1: mat.NewSymDense(1, []float64{4}),
			mu2: []float64{-2}, sigma2: mat.NewSymDense(1, []float64{9}),
			want: 9 + 1,
		},
		{
			name: "diagonal: Σ(μ1−μ2)² + Σ(s1 + s2 − 2√(s1·s2))",
			mu1:  []float64{0, 1, 2}, sigma1: mat.NewSymDense(3, []float64{1, 0, 0, 0, 4, 0, 0, 0, 0.25}),
			mu2: []float64{1, 1, 0}, sigma2: mat.NewSymDense(3, []float64{9, 0, 0, 0, 1, 0, 0, 0, 0.25}),
			want: (1 + 0 + 4) + (1 + 9 - 2*3) + (4 + 1 - 2*2) + (0.25 + 0.25 - 2*0.25),
		},
		{
			name: "commuting 2×2 (same eigenvectors): ‖μ1−μ2‖² + Σ(√a − √b)²",
			mu1:  []float64{0, 0}, sigma1: rotated(0.6, [2]float64{4, 1}),
			mu2: []float64{3, 4}, sigma2: rotated(0.6, [2]float64{1, 9}),
			want: 25 + (2-1)*(2-1) + (1-3)*(1-3),
		},
		{
			name: "non-commuting 2×2",
			mu1:  []float64{1, 2}, sigma1: rotated(0.3, [2]float64{5, 0.5}),
			mu2: []float64{0, 0}, sigma2: rotated(1.2, [2]float64{2, 3}),
			want: twoByTwo([2]float64{1, 2}, [2]float64{0, 0}, rotated(0.3, [2]float64{5, 0.5}), rotated(1.2, [2]float64{2, 3})),
		},
		{
			name: "singular covariances, equal: 0 (clamped eigenvalues, no NaN)",
			mu1:  []float64{1, 1}, sigma1: mat.NewSymDense(2, []float64{1, 1, 1, 1}),
			mu2: []float64{1, 1}, sigma2: mat.NewSymDense(2, []float64{1, 1, 1, 1}),
			want: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FrechetDistance(tc.mu1, tc.sigma1, tc.mu2, tc.sigma2)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tc.want) > 1e-9*math.Max(1, math.Abs(tc.want)) {
				t.Errorf("FD = %.12g, want %.12g", got, tc.want)
			}
			back, err := FrechetDistance(tc.mu2, tc.sigma2, tc.mu1, tc.sigma1)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(back-got) > 1e-9*math.Max(1, math.Abs(got)) {
				t.Errorf("FD is not symmetric: %.12g one way, %.12g the other", got, back)
			}
		})
	}
}

func TestFrechetDistanceOfSetWithItself(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ n, d int }{{50, 8}, {500, 128}} {
		// Correlated features, like a ReLU layer's: x = max(0, A·z).
		a := mat.NewDense(tc.d, tc.d, nil)
		for i := 0; i < tc.d; i++ {
			for j := 0; j < tc.d; j++ {
				a.Set(i, j, rng.NormFloat64())
			}
		}
		features := mat.NewDense(tc.n, tc.d, nil)
		z := make([]float64, tc.d)
		for i := 0; i < tc.n; i++ {
			for j := range z {
				z[j] = rng.NormFloat64()
			}
			var x mat.VecDense
			x.MulVec(a, mat.NewVecDense(tc.d, z))
			for j := 0; j < tc.d; j++ {
				features.Set(i, j, math.Max(0, x.AtVec(j)))
			}
		}
		mu, sigma, err := Stats(features)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := FrechetDistance(mu, sigma, mu, sigma)
		if err != nil {
			t.Fatal(err)
		}
		// Relative to the size of the terms that cancel: 2·Tr Σ.
		if rel := math.Abs(fd) / (2 * mat.Trace(sigma)); rel > 1e-6 {
			t.Errorf("n=%d d=%d: FD of a set with itself = %.3g (%.3g of 2·Tr Σ), want ≈ 0", tc.n, tc.d, fd, rel)
		}
	}
}

func TestStats(t *testing.T) {
	features := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 0})
	mu, sigma, err := Stats(features)
	if err != nil {
		t.Fatal(err)
	}
	wantMu := []float64{3, 2}
	wantSigma := []float64{4, -2, -2, 4} // divided by n−1 = 2
	for i := range wantMu {
		if math.Abs(mu[i]-wantMu[i]) > 1e-12 {
			t.Errorf("μ = %v, want %v", mu, wantMu)
		}
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			if math.Abs(sigma.At(i, j)-wantSigma[2*i+j]) > 1e-12 {
				t.Errorf("Σ[%d,%d] = %v, want %v", i, j, sigma.At(i, j), wantSigma[2*i+j])
			}
		}
	}
	if _, _, err := Stats(mat.NewDense(1, 2, nil)); err == nil {
		t.Error("Stats of one row: no error")
	}
}

func TestFrechetDistanceDimensionMismatch(t *testing.T) {
	_, err := FrechetDistance([]float64{0, 0}, mat.NewSymDense(2, nil), []float64{0}, mat.NewSymDense(1, nil))
	if err == nil {
		t.Error("no error for mismatched dimensions")
	}
}
