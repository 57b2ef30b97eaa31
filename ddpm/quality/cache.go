package quality

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// cacheFormat is bumped when the network, the files or the training code change in a way that
// makes old cached classifiers wrong; it is part of the cache key.
const cacheFormat = 1

// Files inside a classifier's cache folder.
const (
	weightsFile = "weights.ot"      // the network's tensors (gotch SaveMultiNew)
	infoFile    = "classifier.json" // Info
)

// Info is what classifier.json records about a trained classifier.
type Info struct {
	Format       int               `json:"format"`
	Dataset      string            `json:"dataset"`
	Key          string            `json:"key"`        // the full cache key (hex SHA-256)
	DataFiles    map[string]string `json:"data_files"` // file name → hex SHA-256 of its bytes
	Config       TrainConfig       `json:"config"`
	TestAccuracy float64           `json:"test_accuracy"` // share of the test split classified right
	TestImages   int               `json:"test_images"`
	TrainImages  int               `json:"train_images"` // images actually trained on
	TrainSeconds float64           `json:"train_seconds"`
	Device       string            `json:"device"`
	Created      time.Time         `json:"created"`
	// Kind is "" for a classifier trained on the dataset's labels and KindRandomFeatures for
	// the untrained stand-in of an unlabelled dataset (RandomFeatures).
	Kind string `json:"kind,omitempty"`
	// Shape is the network's image shape and class count; absent (every MNIST and
	// Fashion-MNIST classifier, and those cached before shapes were recorded) means 1×28×28
	// with 10 classes.
	Shape *NetShape `json:"shape,omitempty"`
	// DataDigest identifies the data of a dataset without IDX files (DataFiles is empty then):
	// the SHA-256 of both splits' content and the dataset's own digest, if it has one.
	DataDigest string `json:"data_digest,omitempty"`
}

// KindRandomFeatures is Info.Kind of the random-feature network of an unlabelled dataset.
const KindRandomFeatures = "random_features"

// shape returns the network shape Info records, mnistShape when it records none.
func (i Info) shape() NetShape {
	if i.Shape == nil {
		return mnistShape
	}
	return *i.Shape
}

// Options says where LoadOrTrainWith finds data and keeps classifiers. Zero values are defaults.
type Options struct {
	Dataset string // "mnist" or "fashion_mnist"
	DataDir string // as for data.Locate; "" searches the usual places
	// CacheDir holds the classifier folders; "" is $DDPMLAB_CACHE/classifiers, else
	// ~/.cache/ddpmlab/classifiers.
	CacheDir string
	Device   gotch.Device // where to train and run; the zero value is the CPU
	Config   *TrainConfig // nil: DefaultConfig(Dataset), or GenericConfig for other datasets
	Log      io.Writer    // progress lines; nil for none

	// Train and Test are the dataset's splits, already loaded, or nil. A dataset without IDX
	// files (cifar10, folder: any but mnist and fashion_mnist at 1×28×28) needs both: the
	// network's shape is theirs, it trains on Train and is measured on Test, and their content
	// is part of the cache key. For mnist and fashion_mnist nil splits are read from DataDir;
	// given ones are used as they are (the key stays the IDX files' bytes).
	Train, Test *data.Set
	// Classes is the number of classes of a dataset without IDX files; 0 takes the largest
	// label plus one.
	Classes int
	// Digest is the dataset's own content digest when it has one (a folder's); it joins the
	// cache key of a dataset without IDX files.
	Digest string
}

// LoadOrTrain returns the reference classifier of dataset, training it on first use.
// See LoadOrTrainWith.
func LoadOrTrain(ctx context.Context, dataset, dataDir string, log io.Writer) (*Classifier, error) {
	return LoadOrTrainWith(ctx, Options{Dataset: dataset, DataDir: dataDir, Log: log})
}

// LoadOrTrainWith loads the reference classifier for o.Dataset from the cache, or trains it on
// the train split, measures it on the test split and caches it first.
//
// The cache folder is <CacheDir>/<dataset>-<key12>, where key is the SHA-256 of the cache format,
// the dataset name, the SHA-256 of each of the four IDX files' bytes as stored (.gz or raw) and
// the training config. Different data or config → a different folder; the same → trained once.
//
// The folder is written beside its final name and renamed into place, so it is complete or
// absent. Concurrent processes take <folder>.lock (durable.TryLock, the lock type the run store
// uses too: host, pid and time, created with link(2)): one trains, the others wait for the
// folder (or for ctx). A lock whose process is gone (same host) is broken; a lock from another
// host is waited for.
//
// A dataset given as loaded splits (o.Train and o.Test: any dataset but MNIST and
// Fashion-MNIST at 1×28×28) gets a network of its own shape and class count, trained with
// GenericConfig, in <CacheDir>/<dataset>-<key12>, where the key adds the network shape and a
// digest of both splits' content and o.Digest. An unlabelled dataset gets RandomFeatures: no
// training and no cache folder.
//
// Training takes about a minute on 2 CPU cores and reseeds libtorch's generator. The caller must
// have locked its OS thread.
func LoadOrTrainWith(ctx context.Context, o Options) (*Classifier, error) {
	if o.Device.Name == "" {
		o.Device = gotch.CPU
	}
	if _, _, err := DefaultConfig(o.Dataset); err != nil || (o.Train != nil && setShape(o.Train, NumClasses) != mnistShape) {
		return loadOrTrainSets(ctx, o)
	}
	base, floor, err := DefaultConfig(o.Dataset)
	if err != nil {
		return nil, err
	}
	cfg, root, err := o.configAndRoot(base)
	if err != nil {
		return nil, err
	}
	dataDir, err := data.Locate(o.Dataset, o.DataDir)
	if err != nil {
		return nil, err
	}
	files, err := hashDataFiles(dataDir)
	if err != nil {
		return nil, err
	}
	key, err := cacheKey(o.Dataset, files, cfg)
	if err != nil {
		return nil, err
	}
	splits := func() (*data.Set, *data.Set, error) {
		trainSet, testSet := o.Train, o.Test
		var err error
		if trainSet == nil {
			if trainSet, err = data.Load(o.Dataset, dataDir, data.Train); err != nil {
				return nil, nil, err
			}
		}
		if testSet == nil {
			if testSet, err = data.Load(o.Dataset, dataDir, data.Test); err != nil {
				return nil, nil, err
			}
		}
		return trainSet, testSet, nil
	}
	info := Info{Format: cacheFormat, Dataset: o.Dataset, Key: key, DataFiles: files, Config: cfg}
	return loadOrTrainInto(ctx, o, filepath.Join(root, o.Dataset+"-"+key[:12]), mnistShape, floor, info, splits)
}

// GenericConfig is the training config of a reference classifier for a dataset without a
// measured DefaultConfig (cifar10, folder datasets), with n training images: DefaultConfig's
// network and optimiser, and about 100,000 images' worth of steps (⌈100,000/n⌉ epochs, at
// least 2 and at most 20). Its accuracy is not known in advance; classifier.json records it.
func GenericConfig(n int) TrainConfig {
	epochs := 2
	if n > 0 {
		epochs = min(20, max(2, (100_000+n-1)/n))
	}
	return TrainConfig{Conv1: 32, Conv2: 64, Hidden: 128, Epochs: epochs, BatchSize: 64, LR: 2e-3, Seed: 1}
}

// setShape is the network shape for a data set's images with k classes.
func setShape(set *data.Set, k int) NetShape {
	return NetShape{Channels: set.C(), Height: set.Height, Width: set.Width, Classes: k}
}

// loadOrTrainSets is LoadOrTrainWith for a dataset given as loaded splits (o.Train, o.Test):
// a classifier trained on Train's labels and cached under a key of the splits' content, or for
// an unlabelled Train the random-feature network (RandomFeatures), which needs no training.
func loadOrTrainSets(ctx context.Context, o Options) (*Classifier, error) {
	if o.Train == nil || o.Test == nil {
		return nil, fmt.Errorf("quality: no reference classifier for dataset %q without its loaded train and test splits", o.Dataset)
	}
	if o.Train.Labels == nil || o.Test.Labels == nil {
		return RandomFeatures(o.Dataset, setShape(o.Train, 1), o.Device)
	}
	k := o.Classes
	if k == 0 {
		for _, set := range []*data.Set{o.Train, o.Test} {
			for _, y := range set.Labels {
				k = max(k, int(y)+1)
			}
		}
	}
	shape := setShape(o.Train, k)
	if err := shape.validate(); err != nil {
		return nil, err
	}
	if got := setShape(o.Test, k); got != shape {
		return nil, fmt.Errorf("quality: %s: test images are %d×%d×%d, train images %d×%d×%d",
			o.Dataset, got.Channels, got.Height, got.Width, shape.Channels, shape.Height, shape.Width)
	}
	for _, set := range []*data.Set{o.Train, o.Test} {
		for i, y := range set.Labels {
			if int(y) >= k {
				return nil, fmt.Errorf("quality: %s %s image %d has label %d, outside 0..%d", o.Dataset, set.Split, i, y, k-1)
			}
		}
	}
	cfg, root, err := o.configAndRoot(GenericConfig(o.Train.N))
	if err != nil {
		return nil, err
	}
	// The data's identity: both splits' content (referenceKey hashes name, split, size, values
	// and labels) and the dataset's own digest.
	sum := sha256.Sum256([]byte(referenceKey(o.Train) + "\x00" + referenceKey(o.Test) + "\x00" + o.Digest))
	digest := hex.EncodeToString(sum[:])
	key, err := cacheKeyFor(o.Dataset, nil, cfg, &dataIdentity{Shape: shape, Digest: digest})
	if err != nil {
		return nil, err
	}
	info := Info{Format: cacheFormat, Dataset: o.Dataset, Key: key, Config: cfg, Shape: &shape, DataDigest: digest}
	splits := func() (*data.Set, *data.Set, error) { return o.Train, o.Test, nil }
	return loadOrTrainInto(ctx, o, filepath.Join(root, safeName(o.Dataset)+"-"+key[:12]), shape, 0, info, splits)
}

// configAndRoot returns the training config, o.Config or else base, once it is valid, and the
// cache folder o.CacheDir resolves to (see cacheRoot).
func (o Options) configAndRoot(base TrainConfig) (TrainConfig, string, error) {
	cfg := base
	if o.Config != nil {
		cfg = *o.Config
	}
	if err := cfg.validate(); err != nil {
		return TrainConfig{}, "", err
	}
	root, err := cacheRoot(o.CacheDir)
	if err != nil {
		return TrainConfig{}, "", err
	}
	return cfg, root, nil
}

// safeName keeps a dataset name usable as part of a folder name.
func safeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "data"
	}
	return string(b)
}

// loadOrTrainInto loads the classifier cached in dir, or trains one on the splits that splits
// returns, measures it on the test split and caches it in dir, under dir's lock (see
// LoadOrTrainWith). info holds what is known before training; floor is the test accuracy
// below which a warning is logged (0: none).
func loadOrTrainInto(ctx context.Context, o Options, dir string, shape NetShape, floor float64, info Info, splits func() (trainSet, testSet *data.Set, err error)) (*Classifier, error) {
	root, cfg := filepath.Dir(dir), info.Config
	if c, err := load(dir, o.Device); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("quality: %w", err)
	}
	unlock, err := acquireLock(ctx, dir, o.Log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have trained it while we waited.
	if c, err := load(dir, o.Device); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	trainSet, testSet, err := splits()
	if err != nil {
		return nil, err
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "quality: training the %s reference classifier (%d images, %d epochs) into %s\n",
			o.Dataset, trainSet.N, cfg.Epochs, dir)
	}
	res, err := train(ctx, cfg, shape, trainSet, testSet, o.Device, o.Log)
	if err != nil {
		return nil, fmt.Errorf("quality: train %s classifier: %w", o.Dataset, err)
	}
	c := newClassifier(o.Dataset, res.weights, o.Device, Info{Config: cfg, Shape: info.Shape})
	acc, err := c.accuracy(testSet)
	if err != nil {
		c.Close()
		return nil, err
	}
	trained := trainSet.N
	if cfg.TrainImages > 0 && cfg.TrainImages < trained {
		trained = cfg.TrainImages
	}
	info.TestAccuracy, info.TestImages, info.TrainImages, info.TrainSeconds = acc, testSet.N, trained, res.seconds
	info.Device, info.Created = o.Device.Name, time.Now().UTC().Truncate(time.Second)
	c.Info = info
	c.Accuracy, c.Dir = acc, dir
	if err := save(c, dir); err != nil {
		c.Close()
		return nil, err
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "quality: %s classifier: test accuracy %.2f%% in %.0fs\n", o.Dataset, 100*acc, res.seconds)
		if acc < floor {
			fmt.Fprintf(o.Log, "quality: warning: %s classifier accuracy %.2f%% is below the expected %.0f%%\n", o.Dataset, 100*acc, 100*floor)
		}
	}
	return c, nil
}

func newClassifier(dataset string, weights map[string]*ts.Tensor, device gotch.Device, info Info) *Classifier {
	c := &Classifier{Dataset: dataset, Info: info, device: device, shape: info.shape(), refs: map[string]referenceStats{}}
	c.net.bind(weights)
	for _, p := range paramShapes(info.Config, c.shape) {
		c.weights = append(c.weights, weights[p.name])
	}
	return c
}

// cacheRoot resolves the folder that holds classifier folders.
func cacheRoot(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if c := os.Getenv("DDPMLAB_CACHE"); c != "" {
		return filepath.Join(c, "classifiers"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("quality: no cache folder: set DDPMLAB_CACHE (%w)", err)
	}
	return filepath.Join(home, ".cache", "ddpmlab", "classifiers"), nil
}

// dataFileNames are the four IDX files of a dataset, without the optional .gz.
var dataFileNames = [...]string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

// hashDataFiles returns the SHA-256 of each IDX file in dir, keyed by its name as found
// (a .gz file is hashed as stored, not decompressed).
//
// TODO: use data.Files(dir) for the file names once package data exports one.
func hashDataFiles(dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, base := range dataFileNames {
		name := base + ".gz"
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			name = base
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("quality: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("quality: hash %s: %w", f.Name(), err)
		}
		out[name] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// cacheKey hashes everything a trained classifier depends on. encoding/json sorts map keys and
// keeps struct field order, so the bytes are canonical.
func cacheKey(dataset string, files map[string]string, cfg TrainConfig) (string, error) {
	return cacheKeyFor(dataset, files, cfg, nil)
}

// dataIdentity is the part of the cache key of a dataset without IDX files.
type dataIdentity struct {
	Shape  NetShape `json:"shape"`
	Digest string   `json:"digest"` // content of both splits, see loadOrTrainSets
}

// cacheKeyFor is cacheKey with the identity of a dataset without IDX files; nil gives
// cacheKey's bytes exactly, so MNIST's cached classifiers keep their folders.
func cacheKeyFor(dataset string, files map[string]string, cfg TrainConfig, id *dataIdentity) (string, error) {
	b, err := json.Marshal(struct {
		Format  int               `json:"format"`
		Dataset string            `json:"dataset"`
		Files   map[string]string `json:"files"`
		Config  TrainConfig       `json:"config"`
		Data    *dataIdentity     `json:"data,omitempty"`
	}{cacheFormat, dataset, files, cfg, id})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// load reads a cached classifier. A missing folder gives an error wrapping os.ErrNotExist.
func load(dir string, device gotch.Device) (*Classifier, error) {
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return nil, fmt.Errorf("quality: cached classifier: %w", err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("quality: %s: %w", filepath.Join(dir, infoFile), err)
	}
	named, err := ts.LoadMulti(filepath.Join(dir, weightsFile))
	if err != nil {
		return nil, fmt.Errorf("quality: %s: %w", filepath.Join(dir, weightsFile), err)
	}
	weights := map[string]*ts.Tensor{}
	var s scope // frees everything on error; released on success
	defer s.Drop()
	for _, nt := range named {
		t := s.Do(nt.Tensor, nil)
		if device != gotch.CPU {
			t = s.Do(t.To(device, false))
		}
		weights[nt.Name] = t
	}
	for _, p := range paramShapes(info.Config, info.shape()) {
		t, ok := weights[p.name]
		if !ok || s.Failed(t) {
			return nil, fmt.Errorf("quality: %s: missing tensor %s (%v)", filepath.Join(dir, weightsFile), p.name, s.Err())
		}
		shape, err := t.Size()
		if err != nil || fmt.Sprint(shape) != fmt.Sprint(p.shape) {
			return nil, fmt.Errorf("quality: %s: %s has shape %v, want %v", filepath.Join(dir, weightsFile), p.name, shape, p.shape)
		}
	}
	for _, p := range paramShapes(info.Config, info.shape()) {
		s.Release(weights[p.name])
	}
	c := newClassifier(info.Dataset, weights, device, info)
	c.Accuracy, c.Dir = info.TestAccuracy, dir
	return c, nil
}

// save writes c's weights and info into dir with durable.CreateDir: assembled in a temporary
// folder beside it, synced and renamed into place.
func save(c *Classifier, dir string) error {
	var named []ts.NamedTensor
	for i, p := range paramShapes(c.Info.Config, c.shape) {
		named = append(named, ts.NamedTensor{Name: p.name, Tensor: c.weights[i]})
	}
	js, err := json.MarshalIndent(c.Info, "", "  ")
	if err != nil {
		return err
	}
	err = durable.CreateDir(dir, func(tmp string) error {
		// SaveMultiNew: gotch's older SaveMulti corrupts the heap.
		if err := ts.SaveMultiNew(named, filepath.Join(tmp, weightsFile)); err != nil {
			return fmt.Errorf("save weights: %w", err)
		}
		return os.WriteFile(filepath.Join(tmp, infoFile), append(js, '\n'), 0o644)
	})
	if errors.Is(err, fs.ErrExist) {
		// Without the lock (or with a broken one) another process may have won the race; its
		// folder is as good as ours.
		if _, statErr := os.Stat(filepath.Join(dir, infoFile)); statErr == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("quality: %w", err)
	}
	return nil
}

// acquireLock takes dir+".lock" (durable.TryLock: host, PID and time, created with link(2);
// a lock of a dead process on this host is broken), waiting (polling) while another live
// process holds it, and returns the function that releases it.
func acquireLock(ctx context.Context, dir string, log io.Writer) (release func(), err error) {
	path := dir + ".lock"
	waited := false
	for {
		l, err := durable.TryLock(path, "classifier folder "+dir)
		if err == nil {
			if l.Stale != nil && log != nil {
				fmt.Fprintf(log, "quality: breaking stale lock %s (%s)\n", path, l.Stale)
			}
			return func() { _ = l.Unlock() }, nil
		}
		var held *durable.AlreadyLockedError
		if !errors.As(err, &held) {
			return nil, fmt.Errorf("quality: %w", err)
		}
		if _, err := os.Stat(filepath.Join(dir, infoFile)); err == nil {
			// Finished by the holder, which is about to remove its lock: no need to hold one.
			return func() {}, nil
		}
		if !waited && log != nil {
			fmt.Fprintf(log, "quality: waiting for %s, held by %s\n", path, held.Holder)
		}
		waited = true
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
