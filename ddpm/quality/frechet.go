package quality

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// Stats returns the mean μ and the covariance Σ (unbiased, divided by n−1) of the rows of
// features, one row per image. It needs at least two rows.
func Stats(features *mat.Dense) (mu []float64, sigma *mat.SymDense, err error) {
	n, d := features.Dims()
	if n < 2 {
		return nil, nil, fmt.Errorf("quality: stats need at least 2 feature vectors, got %d", n)
	}
	mu = make([]float64, d)
	for j := range mu {
		mu[j] = stat.Mean(mat.Col(nil, j, features), nil)
	}
	sigma = mat.NewSymDense(d, nil)
	stat.CovarianceMatrix(sigma, features, nil)
	return mu, sigma, nil
}

// FrechetDistance is the squared Fréchet (2-Wasserstein) distance between the Gaussians
// N(μ1, Σ1) and N(μ2, Σ2) (Dowson & Landau 1982; as FID, Heusel et al. 2017):
//
//	d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2·(Σ1^½ Σ2 Σ1^½)^½)
//
// Both square roots are of symmetric positive semi-definite matrices, taken through an
// eigendecomposition with eigenvalues below zero (rounding) clamped to zero. The result can be
// a tiny negative number when the two distributions are equal.
func FrechetDistance(mu1 []float64, sigma1 mat.Symmetric, mu2 []float64, sigma2 mat.Symmetric) (float64, error) {
	d := len(mu1)
	if len(mu2) != d || sigma1.SymmetricDim() != d || sigma2.SymmetricDim() != d {
		return 0, fmt.Errorf("quality: frechet distance: dimensions differ (μ1 %d, Σ1 %d, μ2 %d, Σ2 %d)",
			d, sigma1.SymmetricDim(), len(mu2), sigma2.SymmetricDim())
	}
	meanTerm := 0.0
	for i := range mu1 {
		diff := mu1[i] - mu2[i]
		meanTerm += diff * diff
	}

	// (Σ1^½ Σ2 Σ1^½) is symmetric PSD, and its square root has the same trace as (Σ1Σ2)^½.
	root1, err := sqrtSym(sigma1)
	if err != nil {
		return 0, err
	}
	var m mat.Dense
	m.Mul(root1, sigma2)
	m.Mul(&m, root1)
	product := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			product.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2) // symmetric up to rounding
		}
	}
	values, _, err := eigenSym(product, false)
	if err != nil {
		return 0, err
	}
	traceRoot := 0.0
	for _, v := range values {
		traceRoot += math.Sqrt(math.Max(v, 0))
	}
	return meanTerm + mat.Trace(sigma1) + mat.Trace(sigma2) - 2*traceRoot, nil
}

// sqrtSym returns the symmetric square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix.
func sqrtSym(a mat.Symmetric) (*mat.SymDense, error) {
	values, vectors, err := eigenSym(a, true)
	if err != nil {
		return nil, err
	}
	d := len(values)
	scaled := mat.DenseCopyOf(vectors) // V·diag(√λ)
	for j, v := range values {
		r := math.Sqrt(math.Max(v, 0))
		for i := 0; i < d; i++ {
			scaled.Set(i, j, scaled.At(i, j)*r)
		}
	}
	var root mat.Dense
	root.Mul(scaled, vectors.T())
	out := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			out.SetSym(i, j, (root.At(i, j)+root.At(j, i))/2)
		}
	}
	return out, nil
}

func eigenSym(a mat.Symmetric, vectors bool) ([]float64, *mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(a, vectors) {
		return nil, nil, errors.New("quality: symmetric eigendecomposition did not converge")
	}
	values := eig.Values(nil)
	if !vectors {
		return values, nil, nil
	}
	var v mat.Dense
	eig.VectorsTo(&v)
	return values, &v, nil
}
