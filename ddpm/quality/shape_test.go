package quality

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
)

// The MNIST network keeps the shapes every cached classifier has: one input channel, 7×7 after
// two pools, 10 classes.
func TestParamShapesMNIST(t *testing.T) {
	cfg := TrainConfig{Conv1: 32, Conv2: 64, Hidden: 128}
	want := map[string][]int64{
		"conv1.weight": {32, 1, 3, 3}, "conv1.bias": {32}, "conv2.weight": {64, 32, 3, 3}, "conv2.bias": {64},
		"fc1.weight": {128, 64 * 7 * 7}, "fc1.bias": {128}, "fc2.weight": {10, 128}, "fc2.bias": {10},
	}
	for _, p := range paramShapes(cfg, mnistShape) {
		if !slices.Equal(p.shape, want[p.name]) {
			t.Errorf("%s: shape %v, want %v", p.name, p.shape, want[p.name])
		}
	}
	rgb := paramShapes(cfg, NetShape{Channels: 3, Height: 32, Width: 32, Classes: 3})
	if rgb[0].shape[1] != 3 || rgb[0].fanIn != 27 || rgb[4].shape[1] != 64*8*8 || rgb[6].shape[0] != 3 {
		t.Errorf("3×32×32, 3 classes: conv1 %v (fan-in %d), fc1 %v, fc2 %v", rgb[0].shape, rgb[0].fanIn, rgb[4].shape, rgb[6].shape)
	}
}

// MNIST's cache key is the SHA-256 of the JSON it always was: cached classifiers keep their
// folders.
func TestCacheKeyUnchanged(t *testing.T) {
	files := map[string]string{"train-images-idx3-ubyte.gz": "ab", "t10k-labels-idx1-ubyte": "cd"}
	cfg, _, _ := DefaultConfig("mnist")
	old, _ := json.Marshal(struct {
		Format  int               `json:"format"`
		Dataset string            `json:"dataset"`
		Files   map[string]string `json:"files"`
		Config  TrainConfig       `json:"config"`
	}{cacheFormat, "mnist", files, cfg})
	sum := sha256.Sum256(old)
	got, err := cacheKey("mnist", files, cfg)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("cacheKey = %s (%v), want %x", got, err, sum)
	}
	keys := map[string]bool{got: true}
	rgb := NetShape{Channels: 3, Height: 32, Width: 32, Classes: 10}
	for _, id := range []dataIdentity{{Shape: mnistShape, Digest: "x"}, {Shape: mnistShape, Digest: "y"}, {Shape: rgb, Digest: "x"}} {
		k, _ := cacheKeyFor("mnist", files, cfg, &id)
		if keys[k] {
			t.Errorf("data identity %+v gives a key already seen", id)
		}
		keys[k] = true
	}
	b, _ := json.Marshal(Info{Config: cfg})
	for _, key := range []string{"shape", "kind", "data_digest"} {
		if strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("an MNIST classifier.json gains %q: %s", key, b)
		}
	}
}

// A labelled RGB dataset given as loaded splits gets its own classifier: 3 input channels, 3
// classes, cached under its content, measured on its test split.
func TestClassifierRGB(t *testing.T) {
	lockThread(t)
	train := datatest.ColouredShapes(rand.New(rand.NewPCG(1, 11)), 90, 16, data.Train, true)
	test := datatest.ColouredShapes(rand.New(rand.NewPCG(2, 11)), 30, 16, data.Test, true)
	cacheDir := t.TempDir()
	cfg := TrainConfig{Conv1: 8, Conv2: 8, Hidden: 16, Epochs: 6, BatchSize: 15, LR: 1e-2, Seed: 1}
	open := func(digest string) (*Classifier, string) {
		t.Helper()
		var log strings.Builder
		c, err := LoadOrTrainWith(context.Background(), Options{Dataset: "shapes", CacheDir: cacheDir, Config: &cfg,
			Train: train, Test: test, Digest: digest, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, log.String()
	}
	c, log := open("")
	t.Logf("%s", log)
	if want := (NetShape{Channels: 3, Height: 16, Width: 16, Classes: 3}); c.Shape() != want || c.NumClasses() != 3 || !c.Labelled() {
		t.Errorf("shape %+v, %d classes, labelled %v; want %+v, labelled", c.Shape(), c.NumClasses(), c.Labelled(), want)
	}
	if c.Accuracy < 0.95 || c.Info.TestAccuracy != c.Accuracy || c.Info.TestImages != 30 || c.Info.TrainImages != 90 {
		t.Errorf("accuracy %.3f, info %+v; want >= 0.95 on 30 test images after 90 train images", c.Accuracy, c.Info)
	}
	if !regexp.MustCompile(`^shapes-[0-9a-f]{12}$`).MatchString(filepath.Base(c.Dir)) || len(c.Info.DataDigest) != 64 || len(c.Info.DataFiles) != 0 {
		t.Errorf("cache folder %s, data digest %q, files %v", c.Dir, c.Info.DataDigest, c.Info.DataFiles)
	}
	again, log := open("")
	if log != "" || again.Dir != c.Dir || again.Accuracy != c.Accuracy || again.Shape() != c.Shape() {
		t.Errorf("second open: log %q, folder %s, accuracy %.3f, shape %+v; want a silent load of %s", log, again.Dir, again.Accuracy, again.Shape(), c.Dir)
	}

	m, err := Evaluate(c, test.Images, test.N, test)
	if err != nil {
		t.Fatal(err)
	}
	if m.Classifier != "" || len(m.ClassShares) != 3 || m.Recognizable < 0.5 || m.MinClassShare < 0.2 {
		t.Errorf("metrics of the test images: %+v", m)
	}
	// The interval comes from the same single pass: the same metrics, one feature row per
	// image, and a basic bootstrap interval that brackets the FD it was drawn around (the test
	// images against their own statistics: FD is 0 up to rounding, and Low is clamped at 0).
	mi, iv, features, err := EvaluateWithInterval(c, test.Images, test.N, test)
	if err != nil {
		t.Fatal(err)
	}
	if rows, _ := features.Dims(); !reflect.DeepEqual(mi, m) || rows != test.N || len(iv.Replicates) != FDResamples {
		t.Errorf("EvaluateWithInterval: metrics %+v (Evaluate: %+v), %d feature rows, %d replicates", mi, m, rows, len(iv.Replicates))
	}
	if tol := 1e-5; m.FD < iv.Low-tol || m.FD > iv.High+tol {
		t.Errorf("FD %g outside its interval [%g, %g]", m.FD, iv.Low, iv.High)
	}
	report, err := ClassAccuracy(c, test.Images, intLabels(test))
	if err != nil {
		t.Fatal(err)
	}
	if report.Accuracy != c.Accuracy || len(report.PerClass) != 3 || !slices.Equal(report.Requested, []int{10, 10, 10}) {
		t.Errorf("class report %+v, want accuracy %.3f over 3 classes of 10", report, c.Accuracy)
	}
	if _, err := ClassAccuracy(c, test.Images[:3*16*16], []int{3}); err == nil {
		t.Error("class 3 of 3: no error")
	}
}

// An unlabelled dataset gets the random-feature network: the same weights every time, FD that
// tells real images from noise, no class metrics, and JSON that leaves them out.
func TestRandomFeatures(t *testing.T) {
	lockThread(t)
	train := datatest.ColouredShapes(rand.New(rand.NewPCG(1, 11)), 60, 16, data.Train, false)
	test := datatest.ColouredShapes(rand.New(rand.NewPCG(2, 11)), 60, 16, data.Test, false)
	live := len(ts.ExistingTensors)
	c, err := LoadOrTrainWith(context.Background(), Options{Dataset: "folder", CacheDir: t.TempDir(), Train: train, Test: test})
	if err != nil {
		t.Fatal(err)
	}
	if c.Labelled() || c.Info.Kind != KindRandomFeatures || c.Dir != "" {
		t.Errorf("labelled %v, kind %q, folder %q; want the uncached random-feature network", c.Labelled(), c.Info.Kind, c.Dir)
	}
	other, err := RandomFeatures("folder", NetShape{Channels: 3, Height: 16, Width: 16}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	f1, _, err := c.Features(test.Images, test.N)
	if err != nil {
		t.Fatal(err)
	}
	f2, _, err := other.Features(test.Images, test.N)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f1.RawMatrix().Data, f2.RawMatrix().Data) {
		t.Error("two random-feature networks of one shape give different features")
	}
	other.Close()

	real, err := Evaluate(c, train.Images, train.N, test)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	noise := make([]float32, len(train.Images))
	for i := range noise {
		noise[i] = 2*rng.Float32() - 1
	}
	fake, err := Evaluate(c, noise, train.N, test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FD in random features: real %.4g, noise %.4g, real halves %.4g", real.FD, fake.FD, real.FDReal)
	if real.Classifier != ClassifierNone || real.FDFeatures != RandomFeaturesDescription || real.Measured() {
		t.Errorf("metrics %+v: want classifier none and the feature space named", real)
	}
	if !(real.FD >= 0 && real.FD < fake.FD/10) {
		t.Errorf("FD of real images %.4g is not small next to FD of noise %.4g", real.FD, fake.FD)
	}
	b, err := json.Marshal(real)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["classifier"] != "none" || fields["fd_features"] != RandomFeaturesDescription || fields["fd"] == nil {
		t.Errorf("JSON %s: want classifier none, fd_features and fd", b)
	}
	for _, key := range []string{"recognizable", "class_entropy", "min_class_share", "class_shares"} {
		if _, ok := fields[key]; ok {
			t.Errorf("JSON %s holds %s; want it absent", b, key)
		}
	}
	if _, err := ClassAccuracy(c, test.Images, make([]int, test.N)); err == nil {
		t.Error("class accuracy without a trained classifier: no error")
	}
	c.Close()
	if got := len(ts.ExistingTensors); got != live {
		t.Errorf("%d live tensors after Close, %d before", got, live)
	}
}
