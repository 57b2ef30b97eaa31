package quality

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
)

// lockThread pins the test to one OS thread: libtorch's grad mode is per thread.
func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// intLabels returns set's labels as the []int that ClassAccuracy and ClassDiversity take.
func intLabels(set *data.Set) []int {
	labels := make([]int, len(set.Labels))
	for i, y := range set.Labels {
		labels[i] = int(y)
	}
	return labels
}

// realData lists the datasets the classifier tests run on, with where the data lives here
// (relative to this package's folder) and the accuracy the classifier must reach.
var realData = []struct {
	dataset string
	dir     string
}{
	{"mnist", datatest.MNIST10k()},                         // shared/data/mnist-10k: 9,003 / 997 images
	{"fashion_mnist", "/usr/share/datasets/fashion-mnist"}, // apt-get install dataset-fashion-mnist
}

// loadReal returns the cached (or freshly trained) classifier and the test split, or skips when
// the data is not on this machine. The classifier lives in the user's cache (or $DDPMLAB_CACHE),
// so only the first run on a machine pays for training.
func loadReal(t *testing.T, dataset, dir string) (*Classifier, *data.Set) {
	t.Helper()
	if _, err := data.Locate(dataset, dir); err != nil {
		t.Skipf("%s data not found, skipping: %v", dataset, err)
	}
	if testing.Short() && !isCached(t, dataset, dir) {
		t.Skipf("-short: the %s classifier is not cached and training it takes minutes", dataset)
	}
	start := time.Now()
	c, err := LoadOrTrainWith(context.Background(), Options{Dataset: dataset, DataDir: dir, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Logf("%s classifier ready in %v (trained in %.0fs on %s at %s)", dataset, time.Since(start).Round(time.Millisecond),
		c.Info.TrainSeconds, c.Info.Device, c.Info.Created.Format(time.RFC3339))
	test, err := data.Load(dataset, dir, data.Test)
	if err != nil {
		t.Fatal(err)
	}
	return c, test
}

// isCached reports whether the default classifier for dataset is already in the cache.
func isCached(t *testing.T, dataset, dir string) bool {
	cfg, _, err := DefaultConfig(dataset)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cacheRoot("")
	if err != nil {
		return false
	}
	files, err := hashDataFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cacheKey(dataset, files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(root, dataset+"-"+key[:12], infoFile))
	return err == nil
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestClassifierAccuracy checks each reference classifier against its floor on the test split,
// measured again here rather than read from classifier.json.
func TestClassifierAccuracy(t *testing.T) {
	for _, tc := range realData {
		t.Run(tc.dataset, func(t *testing.T) {
			lockThread(t)
			c, test := loadReal(t, tc.dataset, tc.dir)
			_, floor, err := DefaultConfig(tc.dataset)
			if err != nil {
				t.Fatal(err)
			}
			acc, err := c.accuracy(test)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: test accuracy %.2f%% on %d images (recorded %.2f%%)", tc.dataset, 100*acc, test.N, 100*c.Accuracy)
			if acc < floor {
				t.Errorf("%s: test accuracy %.2f%%, want >= %.0f%%", tc.dataset, 100*acc, 100*floor)
			}
			if d := acc - c.Accuracy; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s: measured %.4f but classifier.json says %.4f", tc.dataset, acc, c.Accuracy)
			}
		})
	}
}

// TestEvaluateReal checks the metrics on real and on noise images: real test images score near
// FDReal and are recognizable and balanced; uniform noise is far away and unrecognizable.
func TestEvaluateReal(t *testing.T) {
	for _, tc := range realData {
		t.Run(tc.dataset, func(t *testing.T) {
			lockThread(t)
			c, test := loadReal(t, tc.dataset, tc.dir)
			const n = 1000
			train, err := data.Load(tc.dataset, tc.dir, data.Train)
			if err != nil {
				t.Fatal(err)
			}
			// Real images (ones the classifier was trained on), every (N/n)th: mnist-10k's train
			// split is not shuffled well enough for its first 1000 images to be balanced.
			realImages := make([]float32, 0, n*28*28)
			for i := 0; i < n; i++ {
				realImages = append(realImages, train.Image(i*train.N/n)...)
			}
			live := len(ts.ExistingTensors)
			start := time.Now()
			real, err := Evaluate(c, realImages, n, test)
			if err != nil {
				t.Fatal(err)
			}
			first := time.Since(start)
			rng := rand.New(rand.NewPCG(1, 2))
			noiseImages := make([]float32, n*28*28)
			for i := range noiseImages {
				noiseImages[i] = 2*rng.Float32() - 1
			}
			start = time.Now()
			noise, err := Evaluate(c, noiseImages, n, test)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ts.ExistingTensors); got != live {
				t.Errorf("Evaluate leaked tensors: %d live before, %d after", live, got)
			}
			t.Logf("real (n=%d): %+v (%v, including reference stats)", n, real, first.Round(time.Millisecond))
			t.Logf("noise (n=%d): %+v (%v)", n, noise, time.Since(start).Round(time.Millisecond))

			if !(real.FDReal >= 0 && real.FDReal < noise.FD/20) {
				t.Errorf("FDReal %.3g is not small next to FD(noise) %.3g", real.FDReal, noise.FD)
			}
			if !(real.FD < noise.FD/10) {
				t.Errorf("FD(real train images) %.3g is not small next to FD(noise) %.3g", real.FD, noise.FD)
			}
			// Fashion-MNIST's shirts, T-shirts, pullovers and coats look alike: only ~77% of real
			// images reach 90% confidence there (98% on MNIST).
			if real.Recognizable < 0.7 || real.ClassEntropy < 3.2 || real.MinClassShare < 0.05 {
				t.Errorf("real images: recognizable %.2f, entropy %.2f bits, min share %.3f; want >= 0.7, 3.2, 0.05",
					real.Recognizable, real.ClassEntropy, real.MinClassShare)
			}

			// RealFloor draws the same evenly spaced train images, so it is real.FD exactly;
			// the whole reference against itself is 0; and FD's small-sample bias shows as a
			// higher floor at n/10.
			floor, err := RealFloor(c, train, n, test)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(floor-real.FD) > 1e-9*real.FD {
				t.Errorf("RealFloor(train, %d) = %.6g, want Evaluate's FD of the same images %.6g", n, floor, real.FD)
			}
			self, err := RealFloor(c, test, test.N, test)
			if err != nil {
				t.Fatal(err)
			}
			small, err := RealFloor(c, train, n/10, test)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("real floor: n=%d %.3f, n=%d %.3f, the whole reference against itself %.2g", n/10, small, n, floor, self)
			if math.Abs(self) > 1e-4*real.FD { // rounding in the matrix square root
				t.Errorf("RealFloor(reference, all) = %.3g, want 0", self)
			}
			if !(small > floor) {
				t.Errorf("RealFloor at n=%d is %.3f, not above n=%d's %.3f: FD's small-sample bias is missing", n/10, small, n, floor)
			}
			if _, err := RealFloor(c, train, train.N+1, test); err == nil {
				t.Error("RealFloor with n larger than the real set: no error")
			}
		})
	}
}

// TestClassAccuracyReal checks the class-conditional metrics on real labelled images.
func TestClassAccuracyReal(t *testing.T) {
	tc := realData[0]
	lockThread(t)
	c, test := loadReal(t, tc.dataset, tc.dir)
	labels := intLabels(test)
	report, err := ClassAccuracy(c, test.Images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if report.Accuracy != c.Accuracy {
		t.Errorf("class accuracy of the test split with true labels %.4f, want the classifier's accuracy %.4f", report.Accuracy, c.Accuracy)
	}
	realDiversity, err := ClassDiversity(c, test.Images, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(realDiversity, report.Diversity) {
		t.Errorf("diversity differs: %v vs %v", realDiversity, report.Diversity)
	}
	// One image repeated per class has no diversity.
	const perClass = 5
	var repeated []float32
	var requested []int
	for k := 0; k < NumClasses; k++ {
		for i := 0; i < test.N; i++ {
			if int(test.Labels[i]) == k {
				for r := 0; r < perClass; r++ {
					repeated = append(repeated, test.Image(i)...)
					requested = append(requested, k)
				}
				break
			}
		}
	}
	rep, err := ClassAccuracy(c, repeated, requested)
	if err != nil {
		t.Fatal(err)
	}
	for k := range rep.Diversity {
		if rep.Requested[k] != perClass || rep.Diversity[k] > 1e-9*realDiversity[k] {
			t.Errorf("class %d: %d requested, diversity %.3g of one repeated image; want %d, 0", k, rep.Requested[k], rep.Diversity[k], perClass)
		}
		if realDiversity[k] <= 0 {
			t.Errorf("class %d: real diversity %.3g, want > 0", k, realDiversity[k])
		}
	}
	t.Logf("per-class accuracy %.3f, real diversity %.2f", report.PerClass, realDiversity)
}
