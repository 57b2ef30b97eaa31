package ddpm

import (
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// expectedParams counts the SimpleUNet's parameters from its architecture, independently of the
// code that builds it: C = base channels, D = time-embedding size, K = number of classes.
func expectedParams(C, D, K int64) int64 {
	linear := func(in, out int64) int64 { return in*out + out }
	conv := func(in, out, k int64) int64 { return in*out*k*k + out }
	norm := func(c int64) int64 { return 2 * c }
	block := func(in, out int64) int64 {
		return conv(in, out, 3) + conv(out, out, 3) + norm(out) + norm(out) + linear(D, out)
	}
	up := func(x, skip, out int64) int64 { return conv(x, x, 2) /* transposed 2×2 */ + block(x+skip, out) }
	n := 2*linear(D, D) + conv(1, C, 3) +
		block(C, C) + block(C, 2*C) + block(2*C, 2*C) +
		up(2*C, 2*C, 2*C) + up(2*C, C, C) + conv(C, 1, 1)
	if K > 0 {
		n += (K + 1) * D
	}
	return n
}

func TestUNetShapeAndParamCount(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name string
		cfg  UNetConfig
	}{
		{"guide", UNetConfig{ImageChannels: 1, BaseChannels: 64, TimeEmbDim: 256}},
		{"quick", UNetConfig{ImageChannels: 1, BaseChannels: 32, TimeEmbDim: 128}},
		{"conditional", UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, NumClasses: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ManualSeed(0)
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			want := expectedParams(int64(tt.cfg.BaseChannels), int64(tt.cfg.TimeEmbDim), int64(tt.cfg.NumClasses))
			if got := m.ParamCount(); got != want {
				t.Errorf("ParamCount = %d, want %d", got, want)
			}
			x := ts.MustRandn([]int64{3, 1, 28, 28}, gotch.Float, gotch.CPU)
			defer x.MustDrop()
			tt0 := ts.MustOfSlice([]int64{0, 500, 999})
			defer tt0.MustDrop()
			var y *ts.Tensor
			if tt.cfg.NumClasses > 0 {
				y = ts.MustOfSlice([]int64{1, 7, 10})
				defer y.MustDrop()
			}
			out, err := m.PredictNoise(x, tt0, y)
			if err != nil {
				t.Fatal(err)
			}
			defer out.MustDrop()
			if got := out.MustSize(); len(got) != 4 || got[0] != 3 || got[1] != 1 || got[2] != 28 || got[3] != 28 {
				t.Errorf("output shape %v, want [3 1 28 28]", got)
			}
		})
	}
	// The guide says "about 2M" at base 64; the exact figure is stated in the README.
	if n := expectedParams(64, 256, 0); n != 1_577_921 {
		t.Errorf("guide U-Net has %d parameters, README says 1,577,921", n)
	}
}

func TestQSampleMoments(t *testing.T) {
	lockThread(t)
	s, _ := LinearSchedule(1000, 1e-4, 0.02)
	d, err := NewDiffusion(s, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ManualSeed(1)
	const n, x0Value = 20000, 0.7
	for _, step := range []int{0, 250, 999} {
		var sc scope
		x0 := sc.do(ts.Full([]int64{n, 1, 1, 1}, ts.FloatScalar(x0Value), gotch.Float, gotch.CPU))
		tIdx := sc.fromInt64(repeatInt64(int64(step), n), gotch.CPU)
		noise := sc.randn([]int64{n, 1, 1, 1}, gotch.CPU)
		xt := sc.do(d.QSample(x0, tIdx, noise))
		if sc.err != nil {
			t.Fatal(sc.err)
		}
		v, err := float32s(xt)
		sc.drop()
		if err != nil {
			t.Fatal(err)
		}
		mean, variance := moments(v)
		wantMean := s.SqrtAlphasCumprod[step] * x0Value // E[x_t] = √ᾱ_t·x_0
		wantVar := 1 - s.AlphasCumprod[step]            // Var[x_t] = 1 − ᾱ_t
		// Standard errors: σ/√n for the mean; about σ²·√(2/n) for the variance.
		if tol := 5 * math.Sqrt(wantVar/n); math.Abs(mean-wantMean) > tol+1e-6 {
			t.Errorf("t=%d: mean %.5f, want %.5f ± %.5f", step, mean, wantMean, tol)
		}
		if tol := 5 * wantVar * math.Sqrt(2.0/n); math.Abs(variance-wantVar) > tol+1e-9 {
			t.Errorf("t=%d: variance %.5f, want %.5f ± %.5f", step, variance, wantVar, tol)
		}
	}
}

func moments(v []float32) (mean, variance float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		variance += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, variance / float64(len(v)-1)
}

func TestSpacedTimesteps(t *testing.T) {
	lockThread(t)
	tests := []struct {
		T, k        int
		first, last int
		second      int
	}{
		{1000, 1000, 999, 0, 998},
		{1000, 10, 999, 99, 899},
		{1000, 50, 999, 19, 979},
		{1000, 1, 999, 999, -1},
		{500, 20, 499, 24, 474},
		{7, 3, 6, 1, 4},
	}
	for _, tt := range tests {
		ts, err := SpacedTimesteps(tt.T, tt.k)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != tt.k || ts[0] != tt.first || ts[len(ts)-1] != tt.last || (tt.k > 1 && ts[1] != tt.second) {
			t.Errorf("SpacedTimesteps(%d, %d) = %v…, want len %d, first %d, second %d, last %d", tt.T, tt.k, head(ts), tt.k, tt.first, tt.second, tt.last)
		}
		for i := 1; i < len(ts); i++ {
			if ts[i] >= ts[i-1] {
				t.Fatalf("SpacedTimesteps(%d, %d) not strictly descending at %d", tt.T, tt.k, i)
			}
		}
	}
	for _, k := range []int{0, 1001} {
		if _, err := SpacedTimesteps(1000, k); err == nil {
			t.Errorf("SpacedTimesteps(1000, %d): want an error", k)
		}
	}
}

func head(v []int) []int { return v[:min(len(v), 4)] }

func TestDDIMEtaOneHasDDPMPosteriorVariance(t *testing.T) {
	lockThread(t)
	for _, kind := range []string{Linear, Cosine} {
		s, _ := NewSchedule(kind, 1000, 1e-4, 0.02)
		all, _ := SpacedTimesteps(1000, 1000)
		ddim := newDDIMSampler(s, all, 1, false)
		ddpm := newDDPMSampler(s, all, false)
		for i, step := range all {
			want := s.PosteriorVariance[step] // β̃_t
			if got := ddim.Variance(i); math.Abs(got-want) > 1e-12*math.Max(1, want) {
				t.Fatalf("%s: DDIM(η=1) σ² at t=%d = %.15g, want β̃_t = %.15g", kind, step, got, want)
			}
			if got := ddpm.Variance(i); math.Abs(got-want) > 1e-12*math.Max(1, want) {
				t.Fatalf("%s: DDPM σ² at t=%d = %.15g, want β̃_t = %.15g", kind, step, got, want)
			}
		}
		if v := newDDIMSampler(s, all, 0, false).Variance(500); v != 0 {
			t.Errorf("DDIM(η=0) variance %g, want 0", v)
		}
	}
}

// TestDDIMClippedStepStaysBetweenX0AndXt checks a DDIM (η = 0) step whose predicted x_0 is
// clipped against its closed form: with the noise re-derived from the clipped x̂0,
// x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev)·(x_t − √ᾱ_t·x̂0)/√(1 − ᾱ_t), a point on the line from x̂0 to x_t.
// Without clipping the step is eq. 12 with the model's ε̂ as it is.
func TestDDIMClippedStepStaysBetweenX0AndXt(t *testing.T) {
	lockThread(t)
	sched, _ := NewSchedule(Linear, 1000, 1e-4, 0.02)
	timesteps, _ := SpacedTimesteps(1000, 20)
	x := []float32{0.9, -0.4, 0.05, 0.7}
	eps := []float32{-1.5, 2.0, 0.1, -0.3} // at t = 749 all but the third push x̂0 outside [-1, 1]
	for _, clip := range []bool{false, true} {
		d := newDDIMSampler(sched, timesteps, 0, clip)
		const i = 5
		at, atPrev := alphaCumprodAt(sched, timesteps[i]), alphaCumprodAt(sched, timesteps[i+1])
		var s scope
		prev, predX0 := d.Step(&s, i, s.fromFloat32(eps, []int64{4}, gotch.CPU), s.fromFloat32(x, []int64{4}, gotch.CPU))
		gotPrev, err := float32s(prev)
		if err != nil {
			t.Fatal(err)
		}
		gotX0, _ := float32s(predX0)
		s.drop()
		clipped := 0
		for k := range x {
			x0 := (float64(x[k]) - math.Sqrt(1-at)*float64(eps[k])) / math.Sqrt(at) // eq. 12's predicted x_0
			e := float64(eps[k])
			if clip && math.Abs(x0) > 1 {
				clipped++
				x0 = math.Max(-1, math.Min(1, x0))
				e = (float64(x[k]) - math.Sqrt(at)*x0) / math.Sqrt(1-at)
			}
			want := math.Sqrt(atPrev)*x0 + math.Sqrt(1-atPrev)*e
			if math.Abs(float64(gotX0[k])-x0) > 1e-5 || math.Abs(float64(gotPrev[k])-want) > 1e-5 {
				t.Errorf("clip=%v, pixel %d: x̂0 %.6f, x_prev %.6f; want %.6f, %.6f", clip, k, gotX0[k], gotPrev[k], x0, want)
			}
		}
		if clip && clipped != 3 {
			t.Fatalf("the test meant to clip 3 pixels, clipped %d", clipped)
		}
	}
}

func tinyModel(t testing.TB, classes int) *Model {
	t.Helper()
	ManualSeed(3)
	m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, NumClasses: classes}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sampleOnce(t *testing.T, m *Model, kind string, steps int, eta float64, noiseSeed, torchSeed int64) []float32 {
	t.Helper()
	s, _ := LinearSchedule(100, 1e-4, 0.02)
	sampler, err := NewSampler(kind, s, steps, eta, false)
	if err != nil {
		t.Fatal(err)
	}
	xT, err := NoiseFor(noiseSeed, 4, 1, 28, 28, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer xT.MustDrop()
	ManualSeed(torchSeed)
	res, err := Sample(m, sampler, xT, SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Images
}

func TestSamplingReproducible(t *testing.T) {
	lockThread(t)
	m := tinyModel(t, 0)
	a := sampleOnce(t, m, "ddpm", 0, 0, 7, 11)
	b := sampleOnce(t, m, "ddpm", 0, 0, 7, 11)
	if !equal(a, b) {
		t.Error("DDPM: same seeds gave different samples")
	}
	if c := sampleOnce(t, m, "ddpm", 0, 0, 7, 12); equal(a, c) {
		t.Error("DDPM: a different torch seed gave identical samples (noise is not being added)")
	}
	// DDIM with η = 0 is deterministic given x_T, whatever libtorch's generator state.
	d1 := sampleOnce(t, m, "ddim", 20, 0, 7, 1)
	d2 := sampleOnce(t, m, "ddim", 20, 0, 7, 2)
	if !equal(d1, d2) {
		t.Error("DDIM(η=0): different generator states gave different samples")
	}
	if d3 := sampleOnce(t, m, "ddim", 20, 0, 8, 1); equal(d1, d3) {
		t.Error("DDIM(η=0): a different x_T gave identical samples")
	}
	for _, v := range a {
		if v < -1 || v > 1 || math.IsNaN(float64(v)) {
			t.Fatalf("sample value %v outside [-1, 1]", v)
		}
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGuidance checks the guided prediction against the two predictions made directly:
// ε̂ = (1 + w)·ε(x, t, c) − w·ε(x, t, ∅), which at w = 0 is exactly the conditional one.
func TestGuidance(t *testing.T) {
	lockThread(t)
	m := tinyModel(t, 10)
	var s scope
	defer s.drop()
	ManualSeed(6)
	x := s.randn([]int64{2, 1, 28, 28}, gotch.CPU)
	tt := s.fromInt64([]int64{10, 900}, gotch.CPU)
	y := s.fromInt64([]int64{3, 7}, gotch.CPU)
	null := s.fromInt64([]int64{10, 10}, gotch.CPU)
	var conditional, unconditional []float32
	err := NoGrad(func() error {
		var err error
		if conditional, err = float32s(s.do(m.Net.Forward(x, tt, y))); err != nil {
			return err
		}
		unconditional, err = float32s(s.do(m.Net.Forward(x, tt, null)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []float64{0, 2.5} {
		var guided []float32
		err := NoGrad(func() error {
			var err error
			guided, err = float32s(m.guidedNoise(&s, x, tt, y, w))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 && !equal(guided, conditional) {
			t.Error("w = 0 differs from the conditional prediction")
		}
		for i := range guided {
			want := (1+w)*float64(conditional[i]) - w*float64(unconditional[i])
			if math.Abs(float64(guided[i])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("w = %g: ε̂[%d] = %g, want (1+w)·%g − w·%g = %g", w, i, guided[i], conditional[i], unconditional[i], want)
			}
		}
	}
}

// mnistTrain loads the first n images of the local mnist-10k subset, or skips.
func mnistTrain(t testing.TB, n int) *data.Set {
	t.Helper()
	dir := datatest.MNIST10k()
	if dir == "" {
		t.Skip("MNIST not found: neither shared/data/mnist-10k beside the checkout nor a dataset folder (go tool task setup)")
	}
	set, err := data.Load("mnist", dir, data.Train)
	if err != nil {
		t.Fatal(err)
	}
	if n < set.N {
		set.N, set.Images, set.Labels = n, set.Images[:n*28*28], set.Labels[:n]
	}
	return set
}

func newTinyTrainer(t testing.TB, set *data.Set, cfg TrainConfig) (*Trainer, *Dataset) {
	t.Helper()
	s, _ := LinearSchedule(1000, 1e-4, 0.02)
	d, err := NewDiffusion(s, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := NewDataset(set.Images, set.Labels, set.N, 1, 28, 28, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(tinyModel(t, 0), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr, ds
}

// trainSteps runs n steps over batches of 32 in the seed's epoch order and returns the losses.
func trainSteps(t testing.TB, tr *Trainer, ds *Dataset, n int) []float64 {
	t.Helper()
	var losses []float64
	for len(losses) < n {
		step := int(tr.Steps())
		perEpoch := ds.N / 32
		order := EpochOrder(tr.Config.Seed, step/perEpoch+1, ds.N)
		i := step % perEpoch
		x, y, err := ds.Batch(order[i*32 : (i+1)*32])
		if err != nil {
			t.Fatal(err)
		}
		loss, err := tr.Step(x, y)
		x.MustDrop()
		y.MustDrop()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, loss)
	}
	return losses
}

func TestTrainingLossFallsOnMNIST(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 2048)
	tr, ds := newTinyTrainer(t, set, TrainConfig{LR: 2e-3, Seed: 1, EMADecay: 0.99})
	losses := trainSteps(t, tr, ds, 200)
	first, last := mean(losses[:20]), mean(losses[len(losses)-20:])
	t.Logf("mean loss: first 20 steps %.4f, last 20 steps %.4f", first, last)
	if !(last < 0.5*first) {
		t.Errorf("loss did not clearly fall: first 20 steps %.4f, last 20 steps %.4f", first, last)
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func TestTrainStepFreesTensors(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 256)
	tr, ds := newTinyTrainer(t, set, TrainConfig{LR: 1e-3, Seed: 2, GradClip: 1, EMADecay: 0.9, EMAWarmup: true})
	trainSteps(t, tr, ds, 5)
	after5 := LiveTensors()
	trainSteps(t, tr, ds, 20)
	if after25 := LiveTensors(); after25 != after5 {
		t.Errorf("live tensors grew from %d after 5 steps to %d after 25", after5, after25)
	}
}

func TestCheckpointResumesExactly(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 256)
	cfg := TrainConfig{LR: 1e-3, Seed: 4, EMADecay: 0.9}
	straight, ds := newTinyTrainer(t, set, cfg)
	want := trainSteps(t, straight, ds, 6)

	first, _ := newTinyTrainer(t, set, cfg)
	got := trainSteps(t, first, ds, 3)
	dir := filepath.Join(t.TempDir(), "last.ckpt")
	if err := first.SaveCheckpoint(dir, 0, 3); err != nil {
		t.Fatal(err)
	}
	resumed, _ := newTinyTrainer(t, set, cfg) // fresh weights, overwritten by the checkpoint
	if _, err := resumed.LoadCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	got = append(got, trainSteps(t, resumed, ds, 3)...)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: resumed loss %.8f, uninterrupted %.8f", i, got[i], want[i])
		}
	}
}

// lockThread pins the test's goroutine to its OS thread: libtorch's grad mode is per thread, and
// Go may otherwise move a goroutine between threads between two cgo calls.
func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

func TestNoGradRestoresMode(t *testing.T) {
	lockThread(t)
	if _, err := setGradEnabled(true); err != nil {
		t.Fatal(err)
	}
	NoGrad(func() error {
		if on, _ := setGradEnabled(false); on {
			t.Error("grad mode on inside noGrad")
		}
		return NoGrad(func() error { return nil }) // nested: must not re-enable
	})
	if on, _ := setGradEnabled(true); !on {
		t.Error("noGrad did not restore grad mode")
	}
}

// Without clipping, the DDPM step's posterior-mean form (eq. 7 with x̂_0 from eq. 15) is the
// ε form of Algorithm 2 (eq. 11): compare the coefficients of x_t and of ε̂.
func TestDDPMMeanForms(t *testing.T) {
	lockThread(t)
	s, _ := LinearSchedule(1000, 1e-4, 0.02)
	for _, k := range []int{1000, 50} {
		steps, _ := SpacedTimesteps(1000, k)
		d := newDDPMSampler(s, steps, false)
		for i, step := range steps {
			prev := -1
			if i+1 < len(steps) {
				prev = steps[i+1]
			}
			alphaCum, alphaCumPrev := alphaCumprodAt(s, step), alphaCumprodAt(s, prev)
			alpha := alphaCum / alphaCumPrev
			// eq. 11: x_{t−1} mean = x_t/√α_t − β_t/(√α_t·√(1 − ᾱ_t))·ε̂
			wantX, wantEps := 1/math.Sqrt(alpha), (1-alpha)/(math.Sqrt(alpha)*math.Sqrt(1-alphaCum))
			gotX := d.x0Coefficient[i]/math.Sqrt(alphaCum) + d.xtCoefficient[i]
			gotEps := d.x0Coefficient[i] * math.Sqrt(1-alphaCum) / math.Sqrt(alphaCum)
			if math.Abs(gotX-wantX) > 1e-9*wantX || math.Abs(gotEps-wantEps) > 1e-9*math.Max(wantEps, 1e-12) {
				t.Fatalf("k=%d t=%d: eq. 7 coefficients (x %.12g, ε %.12g) differ from eq. 11 (x %.12g, ε %.12g)", k, step, gotX, gotEps, wantX, wantEps)
			}
		}
	}
}

// pointMass is the exact noise predictor for data that is always the image x*: since
// x_t = √ᾱ_t·x* + √(1 − ᾱ_t)·ε, the true noise is ε = (x_t − √ᾱ_t·x*)/√(1 − ᾱ_t).
type pointMass struct {
	sched *Schedule
	x     float64 // every pixel of x*
}

func (p pointMass) numClasses() int { return 0 }

func (p pointMass) guidedNoise(s *scope, x, t, _ *ts.Tensor, _ float64) *ts.Tensor {
	step := int(t.Int64Values()[0]) // the loop gives every image the same timestep
	a := p.sched.AlphasCumprod[step]
	return s.scale(s.addScalar(x, -math.Sqrt(a)*p.x), 1/math.Sqrt(1-a))
}

// With the exact ε of a point mass, every sampler must land on that point: a check of the
// sampling equations that does not depend on training.
func TestSamplersRecoverPointMass(t *testing.T) {
	lockThread(t)
	for _, kind := range []string{Linear, Cosine} {
		s, _ := NewSchedule(kind, 1000, 1e-4, 0.02)
		for _, tc := range []struct {
			sampler string
			steps   int
			eta     float64
			clip    bool
		}{
			{"ddpm", 0, 0, false}, {"ddpm", 0, 0, true}, {"ddpm", 20, 0, false},
			{"ddim", 50, 0, false}, {"ddim", 10, 1, false}, {"ddim", 1000, 0, true},
		} {
			sampler, err := NewSampler(tc.sampler, s, tc.steps, tc.eta, tc.clip)
			if err != nil {
				t.Fatal(err)
			}
			checkRecoversPointMass(t, s, kind, sampler, 1e-3)
		}
	}
}

// checkRecoversPointMass samples 2 images of 4×4 from a fixed x_T with the exact ε of data that
// is the constant 0.3, and fails unless every pixel comes out within tol of 0.3.
func checkRecoversPointMass(t *testing.T, s *Schedule, kind string, sampler Sampler, tol float64) {
	t.Helper()
	xT, _ := NoiseFor(1, 2, 1, 4, 4, gotch.CPU)
	ManualSeed(2)
	res, err := sample(pointMass{sched: s, x: 0.3}, nil, sampler, xT, SampleOptions{})
	xT.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Images {
		if math.Abs(float64(v)-0.3) > tol {
			t.Fatalf("%s schedule, %s: sample pixel %.6f, want 0.3", kind, sampler.Name(), v)
		}
	}
}

// Label dropout at p_uncond = 1 trains the unconditional model only: every label becomes the
// null class; at 0 the labels pass through.
func TestLabelDropout(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 64)
	s, _ := LinearSchedule(100, 1e-4, 0.02)
	d, _ := NewDiffusion(s, gotch.CPU)
	defer d.Close()
	for _, tc := range []struct {
		p        float64
		wantNull bool
	}{{1, true}, {0, false}} {
		tr, err := NewTrainer(tinyModel(t, 10), d, TrainConfig{LR: 1e-3, PUncond: tc.p, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var sc scope
		labels := make([]int64, 64)
		for i := range labels {
			labels[i] = int64(set.Labels[i])
		}
		y := sc.fromInt64(labels, gotch.CPU)
		got, err := float32s(sc.do(tr.dropLabels(&sc, y).Totype(gotch.Float, false)))
		sc.drop()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if tc.wantNull && v != 10 {
				t.Fatalf("p_uncond=1: label %d is %v, want the null class 10", i, v)
			}
			if !tc.wantNull && int64(v) != labels[i] {
				t.Fatalf("p_uncond=0: label %d is %v, want %d", i, v, labels[i])
			}
		}
	}
}
