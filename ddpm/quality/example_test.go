package quality_test

import (
	"context"
	"fmt"
	"os"

	"gonum.org/v1/gonum/mat"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/quality"
)

// FD between N((0,0), diag(1, 4)) and N((3,4), diag(1, 1)): ‖μ1−μ2‖² = 25, and the covariance
// term is (1 + 1 − 2·1) + (4 + 1 − 2·2) = 1.
func ExampleFrechetDistance() {
	sigma1 := mat.NewSymDense(2, []float64{1, 0, 0, 4})
	sigma2 := mat.NewSymDense(2, []float64{1, 0, 0, 1})
	fd, err := quality.FrechetDistance([]float64{0, 0}, sigma1, []float64{3, 4}, sigma2)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.6f\n", fd)
	// Output: 26.000000
}

// Evaluating a run's samples: load (or, the first time, train) the dataset's classifier, then
// measure the samples against the test split.
func ExampleEvaluate() {
	// runtime.LockOSThread() first: libtorch's grad mode is per OS thread.
	c, err := quality.LoadOrTrain(context.Background(), "mnist", "", os.Stderr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	test, err := data.Load("mnist", "", data.Test)
	if err != nil {
		panic(err)
	}
	var samples []float32 // n·28·28 values in [-1, 1] from the sampler
	n := len(samples) / (28 * 28)
	m, err := quality.Evaluate(c, samples, n, test)
	if err != nil {
		panic(err)
	}
	fmt.Printf("FD %.2f (real data: %.2f), recognizable %.0f%%, class entropy %.2f bits\n",
		m.FD, m.FDReal, 100*m.Recognizable, m.ClassEntropy)
}
