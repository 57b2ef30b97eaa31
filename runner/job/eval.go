package job

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/quality"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// evalBatch is how many images are sampled at once for the metrics.
const evalBatch = 250

// evalSeed seeds the metrics' start noise; distinct from GridSeed so metrics are not measured on
// the grid's images, and the same for every run so that runs are compared on equal noise.
const evalSeed = 77_000_000

// featuresFile (under metrics/) holds the classifier features of the evaluation samples, one
// row per sample, as a NumPy .npy file (quality.FeaturesNPY).
const featuresFile = "features.npy"

// Quality is what evaluate measures, as written to metrics/quality.json.
type Quality struct {
	Metrics         quality.Metrics      `json:"metrics"`
	Class           *quality.ClassReport `json:"class,omitempty"`          // conditional models
	DiversityReal   []float64            `json:"diversity_real,omitempty"` // per class, real test images
	FDInterval      *quality.FDInterval  `json:"fd_interval,omitempty"`    // FD's bootstrap over the samples
	Classifier      quality.Info         `json:"classifier"`
	Sampler         string               `json:"sampler"`
	Weights         string               `json:"weights"`
	SampleSeconds   float64              `json:"sample_seconds"`
	EvaluateSeconds float64              `json:"evaluate_seconds"`
}

// evaluate samples cfg.Eval.NumSamples images and measures them with the dataset's reference
// classifier (trained once per dataset and cached), filling summary.Metrics and writing
// metrics/quality.json. An unlabelled dataset has no classifier: FD is measured in a fixed
// random network's features (quality.RandomFeatures) and the class metrics stay unset.
func (r *run) evaluate(ctx context.Context, sched *ddpm.Schedule, model *ddpm.Model, weights string, summary *store.Summary) error {
	n := r.cfg.Eval.NumSamples
	if n == 0 {
		return nil
	}
	cfg := r.cfg
	train, err := loadSplit(cfg, data.Train)
	if err != nil {
		return err
	}
	test, err := loadSplit(cfg, data.Test)
	if err != nil {
		return err
	}
	classifier, err := quality.LoadOrTrainWith(ctx, quality.Options{Dataset: cfg.Data.Dataset, DataDir: cfg.Data.Dir,
		Log: logWriter{r}, Train: train, Test: test, Classes: len(train.Classes), Digest: train.Digest})
	if err != nil {
		return fmt.Errorf("reference classifier: %w", err)
	}
	defer classifier.Close()

	conditional := model.Net.Config.NumClasses > 0
	var requested []int
	samples := make([]float32, 0, n*r.imageShape().len())
	start := time.Now()
	for done := 0; done < n; done += evalBatch {
		b := min(evalBatch, n-done)
		var labels []int64
		if conditional {
			// Balanced classes: sample i asks for class i mod 10.
			for i := done; i < done+b; i++ {
				labels = append(labels, int64(i%model.Net.Config.NumClasses))
				requested = append(requested, i%model.Net.Config.NumClasses)
			}
		}
		batch := &run{Options: r.Options, cfg: cfg, device: r.device, shape: r.shape, noiseSeed: evalSeed + int64(done), classes: labels, guide: r.guide,
			phase: fmt.Sprintf("eval images %d-%d of %d:", done+1, done+b, n)}
		res, _, _, err := batch.sample(ctx, sched, model, b, nil)
		if err != nil {
			return fmt.Errorf("eval samples: %w", err)
		}
		samples = append(samples, res.Images...)
		r.Log.Info().Int("done", done+b).Int("of", n).Msg("eval sampling")
	}
	q := Quality{Classifier: classifier.Info, Weights: weights, SampleSeconds: time.Since(start).Seconds()}
	evalStart := time.Now()
	var fdInterval quality.FDInterval
	var features *mat.Dense
	if q.Metrics, fdInterval, features, err = quality.EvaluateWithInterval(classifier, samples, n, test); err != nil {
		return err
	}
	if q.Metrics.FDRealN, err = realFloor(classifier, train, n, test); err != nil {
		return err
	}
	m := &summary.Metrics
	m.FD, m.FDReal = ptr(q.Metrics.FD), ptr(q.Metrics.FDReal)
	if q.Metrics.FDRealN > 0 {
		m.FDRealN = ptr(q.Metrics.FDRealN)
	}
	m.N = &q.Metrics.N
	if err := os.MkdirAll(r.path("metrics"), 0o755); err != nil {
		return err
	}
	// The per-sample features FD and its bootstrap were computed from, to recompute either.
	if err := writeFile(r.path("metrics", featuresFile), quality.FeaturesNPY(features)); err != nil {
		return err
	}
	q.FDInterval = &fdInterval
	m.FDLow, m.FDHigh, m.FDBootstrap = ptr(fdInterval.Low), ptr(fdInterval.High), fdInterval.Replicates
	if q.Metrics.Measured() { // absent, not 0, without a classifier
		m.Recognizable = ptr(q.Metrics.Recognizable)
		m.ClassEntropy, m.MinClassShare = ptr(q.Metrics.ClassEntropy), ptr(q.Metrics.MinClassShare)
	}
	if conditional && classifier.Labelled() {
		report, err := quality.ClassAccuracy(classifier, samples, requested)
		if err != nil {
			return err
		}
		labels := make([]int, test.N)
		for i, l := range test.Labels {
			labels[i] = int(l)
		}
		real, err := quality.ClassDiversity(classifier, test.Images, labels)
		if err != nil {
			return err
		}
		q.Class, q.DiversityReal = &report, real
		m.ClassAccuracy, m.Diversity, m.DiversityReal = ptr(report.Accuracy), ptr(mean(report.Diversity)), ptr(mean(real))
	}
	q.EvaluateSeconds = time.Since(evalStart).Seconds()
	q.Sampler = summary.Sampler
	js, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.path("metrics"), 0o755); err != nil { // sampling-only runs have no loss metrics
		return err
	}
	return writeFile(r.path("metrics", "quality.json"), js)
}

func ptr(v float64) *float64 { return &v }

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// logWriter sends the classifier's training progress to the run's log.
type logWriter struct{ r *run }

func (w logWriter) Write(p []byte) (int, error) {
	w.r.Log.Info().Str("classifier", string(p)).Msg("reference classifier")
	return len(p), nil
}

// realFloor is FD's floor at n samples: n real images of the train split against the test
// split (quality.RealFloor). Train splits smaller than n give 0, not measured.
func realFloor(classifier *quality.Classifier, train *data.Set, n int, test *data.Set) (float64, error) {
	if train.N < n {
		return 0, nil
	}
	return quality.RealFloor(classifier, train, n, test)
}
