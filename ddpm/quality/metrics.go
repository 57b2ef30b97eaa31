package quality

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/mat"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// RecognizableThreshold is the classifier confidence (max class probability) at which a sample
// counts as recognizable.
const RecognizableThreshold = 0.9

// Metrics measures a set of generated images against a dataset's test split with the dataset's
// reference classifier. The JSON names match summary.json's "metrics".
type Metrics struct {
	// FD is the Fréchet distance between the samples' and the reference images' features
	// (the classifier's feature layer). Lower is better; 0 means equal means and covariances.
	FD float64 `json:"fd"`
	// FDReal is the same distance between two halves of the reference (even- vs odd-numbered
	// images): what real data scores, the floor to read FD against. FD is biased upwards at small
	// sample sizes, so compare FDs of equal n; the halves have N/2 images each.
	FDReal float64 `json:"fd_real"`
	// FDRealN is the FD that n real images reach against the reference (see [RealFloor]): the
	// floor for this sample count, which FD approaches for a perfect model. Set by callers
	// that have a second real set; 0 when not measured.
	FDRealN float64 `json:"fd_real_n,omitempty"`
	// Recognizable is the share of samples the classifier assigns some class with probability
	// at least RecognizableThreshold.
	Recognizable float64 `json:"recognizable"`
	// ClassEntropy is the entropy, in bits, of the histogram of predicted classes (the argmax):
	// log2(10) ≈ 3.32 when every class is equally frequent, 0 when all samples look alike.
	ClassEntropy float64 `json:"class_entropy"`
	// MinClassShare is the smallest entry of ClassShares: 0.1 at best, 0 when a class is missing.
	MinClassShare float64 `json:"min_class_share"`
	// ClassShares is the share of samples predicted as each class (one entry per class).
	ClassShares []float64 `json:"class_shares"`
	N           int       `json:"n"` // samples measured

	// Classifier is ClassifierNone when the dataset has no labels, so there is no reference
	// classifier: FD and FDReal are then measured in the space FDFeatures names, and the class
	// metrics (Recognizable, ClassEntropy, MinClassShare, ClassShares) are not measured. Their
	// zero values mean nothing then, and the JSON leaves them out instead of writing 0. Empty
	// for a trained classifier.
	Classifier string `json:"classifier,omitempty"`
	FDFeatures string `json:"fd_features,omitempty"`
}

// ClassifierNone is Metrics.Classifier for a dataset without labels.
const ClassifierNone = "none"

// Measured reports whether the class metrics (Recognizable, ClassEntropy, MinClassShare,
// ClassShares) were measured, i.e. a trained classifier was at hand.
func (m Metrics) Measured() bool { return m.Classifier != ClassifierNone }

// MarshalJSON writes every field, except that without a classifier the class metrics are
// left out rather than written as 0.
func (m Metrics) MarshalJSON() ([]byte, error) {
	type plain Metrics // without the method
	if m.Measured() {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		FD         float64 `json:"fd"`
		FDReal     float64 `json:"fd_real"`
		FDRealN    float64 `json:"fd_real_n,omitempty"`
		N          int     `json:"n"`
		Classifier string  `json:"classifier"`
		FDFeatures string  `json:"fd_features"`
	}{m.FD, m.FDReal, m.FDRealN, m.N, m.Classifier, m.FDFeatures})
}

// Evaluate measures n samples (n·C·H·W values in [-1, 1], the classifier's shape: 28×28 grey for
// MNIST) against reference, normally the test split of the classifier's dataset. With the
// random-feature network of an unlabelled dataset (RandomFeatures) it measures FD and FDReal
// only, and says so (Classifier = ClassifierNone). The reference's feature statistics and FDReal are computed
// once per reference and cached in memory and in the classifier's cache folder. n must be >= 2.
func Evaluate(c *Classifier, samples []float32, n int, reference *data.Set) (Metrics, error) {
	m, _, _, err := evaluate(c, samples, n, reference)
	return m, err
}

// evaluate is Evaluate that also returns the samples' features (n × the feature width) and the
// reference's statistics they were measured against, for EvaluateWithInterval.
func evaluate(c *Classifier, samples []float32, n int, reference *data.Set) (Metrics, *mat.Dense, referenceStats, error) {
	if n < 2 {
		return Metrics{}, nil, referenceStats{}, fmt.Errorf("quality: evaluate needs at least 2 samples, got %d", n)
	}
	ref, err := c.referenceStats(reference)
	if err != nil {
		return Metrics{}, nil, referenceStats{}, err
	}
	features, probs, err := c.Features(samples, n)
	if err != nil {
		return Metrics{}, nil, referenceStats{}, err
	}
	mu, sigma, err := Stats(features)
	if err != nil {
		return Metrics{}, nil, referenceStats{}, err
	}
	fd, err := FrechetDistance(mu, sigma, ref.Mu, ref.sigma())
	if err != nil {
		return Metrics{}, nil, referenceStats{}, err
	}
	m := Metrics{N: n, Classifier: ClassifierNone, FDFeatures: RandomFeaturesDescription}
	if c.Labelled() {
		m = classStats(probs)
	}
	m.FD, m.FDReal = fd, ref.FDReal
	return m, features, ref, nil
}

// RealFloor is the Fréchet distance between n real images and reference: n images of real,
// evenly spaced through it, against the reference's cached statistics. With real a split
// disjoint from reference (the train split when reference is the test split), it is what a
// perfect generator scores with n samples, which puts a run's FD at the same n in scale: FD's
// upward bias at small n is part of both. n must be in [2, real.N].
func RealFloor(c *Classifier, real *data.Set, n int, reference *data.Set) (float64, error) {
	if real == nil || n < 2 || n > real.N {
		return 0, fmt.Errorf("quality: real floor needs 2 <= n <= the real set's size, got n=%d", n)
	}
	ref, err := c.referenceStats(reference)
	if err != nil {
		return 0, err
	}
	images := make([]float32, 0, n*real.ImageLen())
	for i := 0; i < n; i++ {
		k := i * real.N / n // evenly spaced, so no class or writer run dominates
		images = append(images, real.Image(k)...)
	}
	features, _, err := c.Features(images, n)
	if err != nil {
		return 0, err
	}
	mu, sigma, err := Stats(features)
	if err != nil {
		return 0, err
	}
	return FrechetDistance(mu, sigma, ref.Mu, ref.sigma())
}

// classStats computes the classifier-only metrics from a probability table (one row per sample).
func classStats(probs *mat.Dense) Metrics {
	n, k := probs.Dims()
	m := Metrics{N: n, ClassShares: make([]float64, k)}
	counts := make([]int, k)
	recognizable := 0
	for i := 0; i < n; i++ {
		row := probs.RawRowView(i)
		k := argmax(row)
		counts[k]++
		if row[k] >= RecognizableThreshold {
			recognizable++
		}
	}
	m.Recognizable = float64(recognizable) / float64(n)
	m.MinClassShare = 1
	for k, count := range counts {
		p := float64(count) / float64(n)
		m.ClassShares[k] = p
		m.MinClassShare = math.Min(m.MinClassShare, p)
		if p > 0 {
			m.ClassEntropy -= p * math.Log2(p)
		}
	}
	return m
}

// referenceStats are a reference set's feature statistics, as cached in reference-<key>.json.
type referenceStats struct {
	Key    string    `json:"key"` // see referenceKey
	N      int       `json:"n"`
	Mu     []float64 `json:"mu"`
	Sigma  []float64 `json:"sigma"` // row-major d×d
	FDReal float64   `json:"fd_real"`
}

func (r referenceStats) sigma() *mat.SymDense {
	return mat.NewSymDense(len(r.Mu), r.Sigma)
}

// referenceStats returns reference's statistics from memory, from the cache folder, or computes
// (and caches) them.
func (c *Classifier) referenceStats(reference *data.Set) (referenceStats, error) {
	if reference == nil || reference.N < 4 {
		return referenceStats{}, errors.New("quality: the reference set needs at least 4 images")
	}
	key := referenceKey(reference)
	if r, ok := c.refs[key]; ok {
		return r, nil
	}
	path := ""
	if c.Dir != "" {
		path = filepath.Join(c.Dir, "reference-"+key[:12]+".json")
		if b, err := os.ReadFile(path); err == nil {
			var r referenceStats
			if json.Unmarshal(b, &r) == nil && r.Key == key && len(r.Sigma) == len(r.Mu)*len(r.Mu) {
				c.refs[key] = r
				return r, nil
			}
		}
	}

	features, _, err := c.Features(reference.Images, reference.N)
	if err != nil {
		return referenceStats{}, err
	}
	mu, sigma, err := Stats(features)
	if err != nil {
		return referenceStats{}, err
	}
	fdReal, err := halvesFD(features)
	if err != nil {
		return referenceStats{}, err
	}
	r := referenceStats{Key: key, N: reference.N, Mu: mu, Sigma: mat.DenseCopyOf(sigma).RawMatrix().Data, FDReal: fdReal}
	c.refs[key] = r
	if path != "" {
		// Two processes may both write it; each writes the same bytes atomically.
		b, err := json.Marshal(r)
		if err != nil {
			return referenceStats{}, err
		}
		if err := durable.WriteFile(path, b, 0o644); err != nil {
			return referenceStats{}, fmt.Errorf("quality: %w", err)
		}
	}
	return r, nil
}

// halvesFD is the Fréchet distance between the even- and the odd-numbered rows of features.
func halvesFD(features *mat.Dense) (float64, error) {
	n, d := features.Dims()
	even, odd := mat.NewDense((n+1)/2, d, nil), mat.NewDense(n/2, d, nil)
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			even.SetRow(i/2, features.RawRowView(i))
		} else {
			odd.SetRow(i/2, features.RawRowView(i))
		}
	}
	mu1, s1, err := Stats(even)
	if err != nil {
		return 0, err
	}
	mu2, s2, err := Stats(odd)
	if err != nil {
		return 0, err
	}
	return FrechetDistance(mu1, s1, mu2, s2)
}

// referenceKey names a reference set by content: the hex SHA-256 of its name, split, size,
// pixels and labels.
func referenceKey(set *data.Set) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%d\x00", set.Name, set.Split, set.N, set.Height, set.Width)
	buf := make([]byte, 0, 1<<16)
	for _, v := range set.Images {
		bits := math.Float32bits(v)
		buf = append(buf, byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	h.Write(set.Labels)
	return hex.EncodeToString(h.Sum(nil))
}

// ClassReport measures class-conditional samples: how often the classifier sees the class that
// was asked for, and how varied the samples of each class are.
// Each per-class slice has one entry per class of the classifier.
type ClassReport struct {
	Accuracy  float64   `json:"accuracy"`  // share of samples classified as their requested class
	PerClass  []float64 `json:"per_class"` // that share per requested class; 0 where Requested is 0
	Requested []int     `json:"requested"` // samples requested per class
	// Diversity is the mean pairwise Euclidean distance between the feature vectors of the
	// samples requested as each class (0 with fewer than 2). Compare with ClassDiversity of real
	// images: much lower means the model repeats itself within a class.
	Diversity []float64 `json:"diversity"`
}

// ClassAccuracy classifies len(requested) samples, where requested[i] is the class sample i was
// generated for, and reports accuracy overall and per class, and within-class diversity.
func ClassAccuracy(c *Classifier, samples []float32, requested []int) (ClassReport, error) {
	K := c.NumClasses()
	r := ClassReport{PerClass: make([]float64, K), Requested: make([]int, K)}
	if !c.Labelled() {
		return r, errors.New("quality: class accuracy needs a classifier trained on labels; this dataset has none")
	}
	for i, k := range requested {
		if k < 0 || k >= K {
			return r, fmt.Errorf("quality: requested class %d of sample %d is outside 0..%d", k, i, K-1)
		}
	}
	features, probs, err := c.Features(samples, len(requested))
	if err != nil {
		return r, err
	}
	correct := make([]int, K)
	total := 0
	for i, k := range requested {
		r.Requested[k]++
		if argmax(probs.RawRowView(i)) == k {
			correct[k]++
			total++
		}
	}
	r.Accuracy = float64(total) / float64(len(requested))
	for k := range r.PerClass {
		if r.Requested[k] > 0 {
			r.PerClass[k] = float64(correct[k]) / float64(r.Requested[k])
		}
	}
	r.Diversity = withinClassDistance(features, requested, K)
	return r, nil
}

// ClassDiversity is the mean pairwise feature distance within each class of labelled images
// (n = len(labels)), e.g. a test split with its true labels: the yardstick for
// ClassReport.Diversity. Cost grows with the square of the images per class.
func ClassDiversity(c *Classifier, images []float32, labels []int) ([]float64, error) {
	K := c.NumClasses()
	for i, k := range labels {
		if k < 0 || k >= K {
			return nil, fmt.Errorf("quality: label %d of image %d is outside 0..%d", k, i, K-1)
		}
	}
	features, _, err := c.Features(images, len(labels))
	if err != nil {
		return nil, err
	}
	return withinClassDistance(features, labels, K), nil
}

// withinClassDistance averages ‖f_i − f_j‖ over pairs i < j of rows with the same label, for
// each of k classes.
func withinClassDistance(features *mat.Dense, labels []int, k int) []float64 {
	members := make([][]int, k)
	for i, k := range labels {
		members[k] = append(members[k], i)
	}
	out := make([]float64, k)
	for k, rows := range members {
		if len(rows) < 2 {
			continue
		}
		sum := 0.0
		for a := 0; a < len(rows); a++ {
			fa := features.RawRowView(rows[a])
			for b := a + 1; b < len(rows); b++ {
				fb := features.RawRowView(rows[b])
				sq := 0.0
				for j := range fa {
					d := fa[j] - fb[j]
					sq += d * d
				}
				sum += math.Sqrt(sq)
			}
		}
		out[k] = sum / float64(len(rows)*(len(rows)-1)/2)
	}
	return out
}
