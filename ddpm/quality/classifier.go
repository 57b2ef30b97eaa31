package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
	"gonum.org/v1/gonum/mat"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// NumClasses is the number of classes of MNIST and Fashion-MNIST. Other datasets have their
// own count ([Classifier.NumClasses]).
const NumClasses = 10

// imageSide is the height and width of MNIST and Fashion-MNIST images.
const imageSide = 28

// NetShape is what a reference network takes and gives: images of Channels×Height×Width and
// Classes class probabilities.
type NetShape struct {
	Channels int `json:"channels"`
	Height   int `json:"height"`
	Width    int `json:"width"`
	Classes  int `json:"classes"`
}

// mnistShape is the shape of the MNIST and Fashion-MNIST networks, and of every classifier
// cached before shapes were recorded.
var mnistShape = NetShape{Channels: 1, Height: imageSide, Width: imageSide, Classes: NumClasses}

// imageLen is the number of values per image, C·H·W.
func (s NetShape) imageLen() int { return s.Channels * s.Height * s.Width }

func (s NetShape) validate() error {
	if s.Channels < 1 || s.Height < 4 || s.Width < 4 || s.Classes < 1 {
		return fmt.Errorf("quality: no reference network for %d×%d×%d images of %d classes (need C >= 1, H, W >= 4, classes >= 1)",
			s.Channels, s.Height, s.Width, s.Classes)
	}
	return nil
}

// TrainConfig sizes and trains the reference classifier. It is part of the cache key: changing
// any field trains a new classifier.
type TrainConfig struct {
	Conv1  int `json:"conv1"`  // channels of the first 3×3 convolution
	Conv2  int `json:"conv2"`  // channels of the second
	Hidden int `json:"hidden"` // width of the feature layer, the space FD is measured in

	Epochs      int     `json:"epochs"`
	BatchSize   int     `json:"batch_size"`
	LR          float64 `json:"lr"`           // Adam's peak learning rate, decayed to 0 on a cosine
	TrainImages int     `json:"train_images"` // 0: the whole train split; else a seeded random subset of this size
	Seed        int64   `json:"seed"`
}

// DefaultConfig returns the training config used for a dataset and the test accuracy it is
// expected to reach (the floor the tests check). Both were measured on 2 CPU cores: see the
// package documentation for the times.
func DefaultConfig(dataset string) (cfg TrainConfig, floor float64, err error) {
	cfg = TrainConfig{Conv1: 32, Conv2: 64, Hidden: 128, BatchSize: 64, LR: 2e-3, Seed: 1}
	switch dataset {
	case "mnist":
		cfg.Epochs = 6
		return cfg, 0.98, nil
	case "fashion_mnist":
		cfg.Epochs = 2
		return cfg, 0.90, nil
	}
	return TrainConfig{}, 0, fmt.Errorf("quality: no reference classifier for dataset %q (have mnist, fashion_mnist)", dataset)
}

func (c TrainConfig) validate() error {
	switch {
	case c.Conv1 < 1 || c.Conv2 < 1 || c.Hidden < 1:
		return fmt.Errorf("quality: layer sizes must be positive, got conv1=%d conv2=%d hidden=%d", c.Conv1, c.Conv2, c.Hidden)
	case c.Epochs < 1 || c.BatchSize < 1:
		return fmt.Errorf("quality: epochs and batch size must be positive, got %d and %d", c.Epochs, c.BatchSize)
	case !(c.LR > 0):
		return fmt.Errorf("quality: learning rate must be positive, got %v", c.LR)
	case c.TrainImages < 0:
		return fmt.Errorf("quality: train_images must be >= 0, got %d", c.TrainImages)
	}
	return nil
}

// network is the reference CNN, drawn for MNIST:
//
//	x (B,1,28,28) ─ conv3×3 ─ ReLU ─ pool ─ conv3×3 ─ ReLU ─ pool ─ flatten ─ linear ─ ReLU ─┬─ linear ─ logits (B,10)
//	                 (B,C1,28,28)  (B,C1,14,14) (B,C2,14,14) (B,C2,7,7) (B,C2·49)  (B,H)   │
//	                                                                           features ───┘
//
// For other shapes (NetShape) the input has C channels, the flattened size is C2·⌊H/4⌋·⌊W/4⌋
// and there are K logits.
//
// Its fields are the weights, named as in the saved file.
type network struct {
	conv1W, conv1B, conv2W, conv2B *ts.Tensor
	fc1W, fc1B, fc2W, fc2B         *ts.Tensor
}

// paramShapes lists every parameter's name, shape and fan-in for a config and network shape,
// in a fixed order. For mnistShape they are the shapes every cached MNIST classifier has.
func paramShapes(c TrainConfig, s NetShape) []struct {
	name  string
	shape []int64
	fanIn int64
} {
	c1, c2, h := int64(c.Conv1), int64(c.Conv2), int64(c.Hidden)
	in, k := int64(s.Channels), int64(s.Classes)
	flat := c2 * int64(s.Height/4) * int64(s.Width/4) // two 2×2 pools: 28 → 14 → 7
	return []struct {
		name  string
		shape []int64
		fanIn int64
	}{
		{"conv1.weight", []int64{c1, in, 3, 3}, in * 9}, {"conv1.bias", []int64{c1}, in * 9},
		{"conv2.weight", []int64{c2, c1, 3, 3}, c1 * 9}, {"conv2.bias", []int64{c2}, c1 * 9},
		{"fc1.weight", []int64{h, flat}, flat}, {"fc1.bias", []int64{h}, flat},
		{"fc2.weight", []int64{k, h}, h}, {"fc2.bias", []int64{k}, h},
	}
}

// bind points the network's fields at tensors by name.
func (n *network) bind(byName map[string]*ts.Tensor) {
	n.conv1W, n.conv1B = byName["conv1.weight"], byName["conv1.bias"]
	n.conv2W, n.conv2B = byName["conv2.weight"], byName["conv2.bias"]
	n.fc1W, n.fc1B = byName["fc1.weight"], byName["fc1.bias"]
	n.fc2W, n.fc2B = byName["fc2.weight"], byName["fc2.bias"]
}

// forward returns the feature-layer activations (B,H) and the logits (B,K). Both belong to s.
func (n *network) forward(s *scope, x *ts.Tensor) (features, logits *ts.Tensor) {
	h := n.convBlock(s, x, n.conv1W, n.conv1B) // (B, C1, H/2, W/2)
	h = n.convBlock(s, h, n.conv2W, n.conv2B)  // (B, C2, H/4, W/4)
	if s.Failed(h) {
		return nil, nil
	}
	h = s.Do(h.Flatten(1, -1, false)) // (B, C2·⌊H/4⌋·⌊W/4⌋)
	if s.Failed(h) {
		return nil, nil
	}
	h = s.Do(ts.Linear(h, n.fc1W, n.fc1B))
	if s.Failed(h) {
		return nil, nil
	}
	features = s.Do(h.Relu(false)) // (B, H)
	if s.Failed(features) {
		return nil, nil
	}
	logits = s.Do(ts.Linear(features, n.fc2W, n.fc2B)) // (B, K)
	return features, logits
}

// convBlock is a padded 3×3 convolution, ReLU and a 2×2 max pool.
func (n *network) convBlock(s *scope, x, w, b *ts.Tensor) *ts.Tensor {
	if s.Failed(x) {
		return nil
	}
	h := s.Do(ts.Conv2d(x, w, b, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1))
	if s.Failed(h) {
		return nil
	}
	h = s.Do(h.Relu(false))
	if s.Failed(h) {
		return nil
	}
	return s.Do(h.MaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, false))
}

// Classifier is a trained reference classifier for one dataset, or for an unlabelled dataset
// its untrained stand-in (Info.Kind = KindRandomFeatures: see [RandomFeatures]). Its methods call libtorch, so
// the caller must have locked its OS thread (runtime.LockOSThread): libtorch's grad mode is per
// thread. A Classifier is not safe for concurrent use.
type Classifier struct {
	Dataset  string
	Accuracy float64 // on the dataset's test split, measured when it was trained
	Info     Info    // what classifier.json records
	Dir      string  // the cache folder it was loaded from

	device  gotch.Device
	shape   NetShape
	net     network
	weights []*ts.Tensor
	refs    map[string]referenceStats // reference statistics by reference key
}

// NumClasses is the number of classes the classifier tells apart (10 for MNIST).
func (c *Classifier) NumClasses() int { return c.shape.Classes }

// Shape is the image shape and class count of the network.
func (c *Classifier) Shape() NetShape { return c.shape }

// Labelled reports whether the network was trained on labels, so that its class probabilities
// mean something; false for the random-feature network of an unlabelled dataset.
func (c *Classifier) Labelled() bool { return c.Info.Kind != KindRandomFeatures }

// Close frees the classifier's weights.
func (c *Classifier) Close() {
	for _, w := range c.weights {
		w.MustDrop()
	}
	c.weights = nil
}

// inferenceBatch is how many images one forward pass takes in Features.
const inferenceBatch = 500

// Features runs n images (n·C·H·W values in [-1, 1], image after image, each CHW: 28×28 grey
// for MNIST) through the classifier without gradient tracking and returns the feature-layer
// activations (n × Hidden) and the class probabilities (n × K), one row per image.
func (c *Classifier) Features(images []float32, n int) (features, probs *mat.Dense, err error) {
	pixels, k := c.shape.imageLen(), c.shape.Classes
	if n < 1 || len(images) != n*pixels {
		return nil, nil, fmt.Errorf("quality: features: %d values are not %d images of %d×%d×%d",
			len(images), n, c.shape.Channels, c.shape.Height, c.shape.Width)
	}
	if c.weights == nil {
		return nil, nil, errors.New("quality: features: classifier is closed")
	}
	dim := c.Info.Config.Hidden
	features, probs = mat.NewDense(n, dim, nil), mat.NewDense(n, k, nil)
	err = ddpm.NoGrad(func() error {
		for lo := 0; lo < n; lo += inferenceBatch {
			hi := min(lo+inferenceBatch, n)
			f, p, err := c.forwardBatch(images[lo*pixels:hi*pixels], hi-lo)
			if err != nil {
				return err
			}
			for i := lo; i < hi; i++ {
				row := features.RawRowView(i)
				for j := range row {
					row[j] = float64(f[(i-lo)*dim+j])
				}
				row = probs.RawRowView(i)
				for j := range row {
					row[j] = float64(p[(i-lo)*k+j])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("quality: features: %w", err)
	}
	return features, probs, nil
}

// forwardBatch returns the features and softmax probabilities of one batch as Go values.
func (c *Classifier) forwardBatch(images []float32, n int) (features, probs []float32, err error) {
	var s scope
	defer s.Drop()
	x := s.images(images, n, c.shape, c.device)
	f, logits := c.net.forward(&s, x)
	if s.Failed(f, logits) {
		return nil, nil, s.Err()
	}
	p := s.Do(logits.Softmax(1, gotch.Float, false))
	if s.Failed(p) {
		return nil, nil, s.Err()
	}
	if features, err = float32s(f); err != nil {
		return nil, nil, err
	}
	probs, err = float32s(p)
	return features, probs, err
}

// accuracy is the share of set's images whose most probable class is their label.
func (c *Classifier) accuracy(set *data.Set) (float64, error) {
	_, probs, err := c.Features(set.Images, set.N)
	if err != nil {
		return 0, err
	}
	correct := 0
	for i := 0; i < set.N; i++ {
		if argmax(probs.RawRowView(i)) == int(set.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(set.N), nil
}

// trainResult is what train hands back: the weights by name (owned by the caller) and timings.
type trainResult struct {
	weights map[string]*ts.Tensor
	seconds float64
}

// train fits a fresh network to train with Adam and cross-entropy and returns its weights.
// Each epoch it logs the mean loss and the accuracy on test (never used to choose anything).
func train(ctx context.Context, cfg TrainConfig, shape NetShape, trainSet, testSet *data.Set, device gotch.Device, log io.Writer) (res trainResult, err error) {
	start := time.Now()
	ddpm.ManualSeed(cfg.Seed) // the initial weights

	vs := nn.NewVarStore(device)
	defer vs.Destroy()
	byName := map[string]*ts.Tensor{}
	var params []*ts.Tensor
	for _, p := range paramShapes(cfg, shape) {
		// PyTorch's default init for conv and linear layers: uniform in ±1/√fan_in.
		bound := 1 / math.Sqrt(float64(p.fanIn))
		layer, name, _ := strings.Cut(p.name, ".") // gotch's paths reject "." inside a name
		t, err := vs.Root().Sub(layer).NewVar(name, p.shape, nn.NewUniformInit(-bound, bound))
		if err != nil {
			return res, fmt.Errorf("create %s: %w", p.name, err)
		}
		byName[p.name] = t
		params = append(params, t)
	}
	var net network
	net.bind(byName)

	// libtorch's own Adam (C++). It keeps its moments in C++; Drop frees them.
	opt, err := ts.Adam(cfg.LR, 0.9, 0.999, 0)
	if err != nil {
		return res, fmt.Errorf("adam: %w", err)
	}
	defer opt.Drop()
	if err := opt.AddParameters(params); err != nil {
		return res, fmt.Errorf("adam: %w", err)
	}

	// The whole train split lives in two tensors; a batch is one index_select.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
	subset := rng.Perm(trainSet.N)
	if cfg.TrainImages > 0 && cfg.TrainImages < trainSet.N {
		subset = subset[:cfg.TrainImages]
	}
	var all scope
	defer all.Drop()
	xAll := all.images(trainSet.Images, trainSet.N, shape, device)
	labels := make([]int64, trainSet.N)
	for i, y := range trainSet.Labels {
		labels[i] = int64(y)
	}
	yAll := all.labels(labels, device)
	noWeight := all.Do(ts.NewTensor(), nil) // an undefined tensor: cross-entropy without class weights
	if all.Failed(xAll, yAll, noWeight) {
		return res, all.Err()
	}

	stepsPerEpoch := (len(subset) + cfg.BatchSize - 1) / cfg.BatchSize
	totalSteps, step := cfg.Epochs*stepsPerEpoch, 0
	probe := &Classifier{Dataset: trainSet.Name, device: device, shape: shape, net: net, weights: params,
		Info: Info{Config: cfg}}
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		epochStart := time.Now()
		order := make([]int64, len(subset))
		for i, j := range rng.Perm(len(subset)) {
			order[i] = int64(subset[j])
		}
		lossSum := 0.0
		for lo := 0; lo < len(order); lo += cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			// Cosine decay from LR to 0 over all steps.
			lr := cfg.LR * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(totalSteps)))
			if err := opt.SetLearningRate(lr); err != nil {
				return res, fmt.Errorf("set learning rate: %w", err)
			}
			loss, err := trainStep(&net, opt, xAll, yAll, noWeight, order[lo:min(lo+cfg.BatchSize, len(order))])
			if err != nil {
				return res, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
			}
			lossSum += loss
			step++
		}
		acc, err := probe.accuracy(testSet)
		if err != nil {
			return res, err
		}
		if log != nil {
			fmt.Fprintf(log, "quality: %s classifier epoch %d/%d: loss %.4f, test accuracy %.2f%%, %.1fs\n",
				trainSet.Name, epoch, cfg.Epochs, lossSum/float64(stepsPerEpoch), 100*acc, time.Since(epochStart).Seconds())
		}
	}

	// Hand back detached handles: they share the parameters' storage, which outlives the var
	// store (libtorch counts references), and carry no grad.
	res.weights = map[string]*ts.Tensor{}
	for name, t := range byName {
		d, err := t.Detach(false)
		if err != nil {
			for _, w := range res.weights {
				w.MustDrop()
			}
			return res, fmt.Errorf("detach %s: %w", name, err)
		}
		res.weights[name] = d
	}
	res.seconds = time.Since(start).Seconds()
	return res, nil
}

// trainStep runs one Adam step on the images at indices and returns the mean cross-entropy.
// Every tensor it makes is freed before it returns.
func trainStep(net *network, opt *ts.COptimizer, xAll, yAll, noWeight *ts.Tensor, indices []int64) (float64, error) {
	var s scope
	defer s.Drop()
	device, err := xAll.Device()
	if err != nil {
		return 0, err
	}
	idx := s.labels(indices, device)
	if s.Failed(idx) {
		return 0, s.Err()
	}
	x := s.Do(xAll.IndexSelect(0, idx, false))
	y := s.Do(yAll.IndexSelect(0, idx, false))
	_, logits := net.forward(&s, x)
	if s.Failed(logits, y) {
		return 0, s.Err()
	}
	loss := s.Do(logits.CrossEntropyLoss(y, noWeight, 1, -100, 0, false))
	if s.Failed(loss) {
		return 0, s.Err()
	}
	if err := opt.ZeroGrad(); err != nil {
		return 0, fmt.Errorf("zero grad: %w", err)
	}
	if err := loss.Backward(); err != nil {
		return 0, fmt.Errorf("backward: %w", err)
	}
	if err := opt.Step(); err != nil {
		return 0, fmt.Errorf("adam step: %w", err)
	}
	v, err := float32s(loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(float64(v[0])) || math.IsInf(float64(v[0]), 0) {
		return 0, fmt.Errorf("loss became %v", v[0])
	}
	return float64(v[0]), nil
}

func argmax(row []float64) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}
