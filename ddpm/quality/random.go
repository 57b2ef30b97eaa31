package quality

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// randomFeaturesSeed seeds the weights of every random-feature network: fixed, so FDs of runs
// on one unlabelled dataset are measured in one feature space.
const randomFeaturesSeed = 1

// RandomFeaturesDescription is Metrics.FDFeatures for an unlabelled dataset: the space FD is
// measured in when no classifier can be trained.
const RandomFeaturesDescription = "random-init reference CNN (untrained, weights from PCG seed 1): 128 ReLU features of fc1"

// RandomFeatures returns the stand-in for a reference classifier on an unlabelled dataset of
// images of shape.Channels×Height×Width: the reference CNN with DefaultConfig's layer sizes
// (conv 32, conv 64, linear 128), not trained, its weights drawn in Go from a PCG generator
// with a fixed seed, uniform in ±1/√fan_in (PyTorch's default init), biases included. The
// features of a fixed random convolutional network still separate image statistics (edges,
// colour, texture at two scales), so FD in them compares a run's samples with the data, and
// the same network (same shape) measures every run. Its class output means nothing:
// [Classifier.Labelled] is false, and [Evaluate] reports no class metrics. It needs no
// training and no cache; the caller must have locked its OS thread.
func RandomFeatures(dataset string, shape NetShape, device gotch.Device) (*Classifier, error) {
	shape.Classes = 1 // the logits are not used
	if err := shape.validate(); err != nil {
		return nil, err
	}
	cfg := TrainConfig{Conv1: 32, Conv2: 64, Hidden: 128, Seed: randomFeaturesSeed}
	rng := rand.New(rand.NewPCG(randomFeaturesSeed, 0xfea7))
	weights := map[string]*ts.Tensor{}
	var s scope // frees everything on error; released on success
	defer s.Drop()
	for _, p := range paramShapes(cfg, shape) {
		n := int64(1)
		for _, d := range p.shape {
			n *= d
		}
		bound := 1 / math.Sqrt(float64(p.fanIn))
		values := make([]float32, n)
		for i := range values {
			values[i] = float32(bound * (2*rng.Float64() - 1))
		}
		t := s.Do(ts.NewTensorFromData(values, p.shape))
		if t != nil && device != gotch.CPU {
			t = s.Do(t.To(device, false))
		}
		if s.Failed(t) {
			return nil, fmt.Errorf("quality: random features: %s: %w", p.name, s.Err())
		}
		weights[p.name] = t
	}
	for _, t := range weights {
		s.Release(t)
	}
	info := Info{Format: cacheFormat, Dataset: dataset, Kind: KindRandomFeatures, Config: cfg, Shape: &shape, Device: device.Name}
	return newClassifier(dataset, weights, device, info), nil
}
