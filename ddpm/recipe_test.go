package ddpm

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// Tests of the recipe keys (lr schedule, Min-SNR-γ, stratified timesteps, EMA schedule,
// v-prediction) and the architecture keys (levels, blocks, attention, activation, dropout).

func TestLRAt(t *testing.T) {
	const base = 1e-3
	tests := []struct {
		name                string
		schedule            string
		warmup, total, step int64
		want                float64
	}{
		{"constant", LRConstant, 0, 0, 123, base},
		{"constant, empty name", "", 0, 0, 0, base},
		{"warm-up first step", LRConstant, 100, 1000, 0, base / 100},
		{"warm-up half way", LRCosine, 100, 1000, 49, base / 2},
		{"warm-up last step", LRCosine, 100, 1000, 99, base},
		{"cosine start", LRCosine, 100, 1000, 100, base},
		{"cosine quarter", LRCosine, 100, 1000, 325, base * 0.5 * (1 + math.Cos(math.Pi/4))},
		{"cosine half", LRCosine, 100, 1000, 550, base / 2},
		{"cosine end", LRCosine, 100, 1000, 1000, 0},
		{"cosine past the end", LRCosine, 0, 1000, 5000, 0},
		{"cosine no warm-up", LRCosine, 0, 400, 100, base * 0.5 * (1 + math.Cos(math.Pi/4))},
		{"linear quarter", LRLinear, 0, 400, 100, base * 0.75},
		{"linear after warm-up", LRLinear, 200, 400, 300, base / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LRAt(tt.schedule, base, tt.warmup, tt.total, tt.step)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-15 {
				t.Errorf("LRAt = %.10g; want %.10g", got, tt.want)
			}
		})
	}
	if _, err := LRAt(LRCosine, base, 0, 0, 5); err == nil {
		t.Error("cosine without a total: no error")
	}
	if _, err := LRAt("step", base, 0, 10, 5); err == nil {
		t.Error("unknown schedule: no error")
	}
}

func TestMinSNRWeights(t *testing.T) {
	s, _ := LinearSchedule(1000, 1e-4, 0.02)
	const gamma = 5
	for _, step := range []int{0, 50, 100, 250, 500, 999} {
		a := s.AlphasCumprod[step]
		snr := a / (1 - a)
		wantEps, wantV := 1.0, snr/(snr+1) // SNR below γ: ε weight 1, v weight SNR/(SNR+1)
		if snr > gamma {
			wantEps, wantV = gamma/snr, gamma/(snr+1)
		}
		eps := MinSNRWeights(s.AlphasCumprod, gamma, PredictEps)[step]
		v := MinSNRWeights(s.AlphasCumprod, gamma, PredictV)[step]
		if math.Abs(eps-wantEps) > 1e-12 || math.Abs(v-wantV) > 1e-12 {
			t.Errorf("t=%d (SNR %.4g): weights ε %.6g, v %.6g; want %.6g, %.6g", step, snr, eps, v, wantEps, wantV)
		}
	}
	// t = 0 of the linear schedule: SNR = (1 − 1e-4)/1e-4 = 9999, so the ε weight is 5/9999.
	if w := MinSNRWeights(s.AlphasCumprod, gamma, PredictEps)[0]; math.Abs(w-5.0/9999) > 1e-12 {
		t.Errorf("ε weight at t=0 = %.8g; want 5/9999", w)
	}
	// A huge γ weighs every ε timestep by 1: the loss is plain MSE.
	for i, w := range MinSNRWeights(s.AlphasCumprod, 1e12, PredictEps) {
		if w != 1 {
			t.Fatalf("γ = 1e12: weight %g at t=%d; want 1", w, i)
		}
	}
}

// With unit weights the Min-SNR loss is exactly MSE; with others it is the weighted mean of
// the per-image MSEs.
func TestMinSNRLossEqualsMSEWhenGammaHuge(t *testing.T) {
	lockThread(t)
	var s scope
	defer s.drop()
	ManualSeed(5)
	pred := s.randn([]int64{4, 1, 6, 6}, gotch.CPU)
	target := s.randn([]int64{4, 1, 6, 6}, gotch.CPU)
	tt := s.fromInt64([]int64{0, 3, 3, 9}, gotch.CPU)
	sched, _ := LinearSchedule(10, 1e-4, 0.02)
	huge := s.keep(mustCoefficients(t, MinSNRWeights(sched.AlphasCumprod, 1e12, PredictEps)))
	mse := s.do(pred.MseLoss(target, ts.ReductionMean, false))
	weighted := s.weightedMSE(pred, target, tt, huge)
	ramp := s.keep(mustCoefficients(t, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	rampLoss := s.weightedMSE(pred, target, tt, ramp)
	if s.err != nil {
		t.Fatal(s.err)
	}
	got, want := mustScalar(t, weighted), mustScalar(t, mse)
	if math.Abs(got-want) > 1e-6*want {
		t.Errorf("weighted loss with γ = 1e12: %.8g; plain MSE %.8g", got, want)
	}
	// Closed form: (1/4) Σ_b t_b · mean_pixels (pred − target)².
	p, q := mustValues(t, pred), mustValues(t, target)
	steps := []float64{0, 3, 3, 9}
	wantRamp := 0.0
	for b := range 4 {
		m := 0.0
		for i := b * 36; i < (b+1)*36; i++ {
			d := float64(p[i] - q[i])
			m += d * d / 36
		}
		wantRamp += steps[b] * m / 4
	}
	if got := mustScalar(t, rampLoss); math.Abs(got-wantRamp) > 1e-5*wantRamp {
		t.Errorf("weighted loss %.8g; closed form %.8g", got, wantRamp)
	}
}

func TestStratifiedTimesteps(t *testing.T) {
	tests := []struct {
		T    int
		n    int64
		u    float64
		want []int64
	}{
		{1000, 4, 0.1, []int64{100, 350, 600, 850}},
		{1000, 4, 0.875, []int64{875, 125, 375, 625}}, // wraps around: 1.125 → 0.125
		{10, 10, 0, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{1000, 1, 0.99999, []int64{999}},
	}
	for _, tt := range tests {
		got := stratifiedTimesteps(tt.T, tt.n, tt.u)
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("stratifiedTimesteps(%d, %d, %g) = %v; want %v", tt.T, tt.n, tt.u, got, tt.want)
				break
			}
		}
	}
}

// The power schedule's decays against 1 − (1 + n)^−p, capped at the decay.
func TestEMAPowerDecay(t *testing.T) {
	tests := []struct {
		power, decay float64
		updates      int64
		want         float64
	}{
		{0.75, 0.9999, 0, 0},
		{0.75, 0.9999, 1, 1 - math.Pow(2, -0.75)},
		{0.75, 0.9999, 1000, 1 - math.Pow(1001, -0.75)}, // ≈ 0.99438
		{2.0 / 3, 0.9999, 999, 1 - math.Pow(1000, -2.0/3)},
		{0.75, 0.99, 1000, 0.99}, // capped
	}
	for _, tt := range tests {
		e := &EMA{Decay: tt.decay, Power: tt.power, Updates: tt.updates}
		if got := e.CurrentDecay(); math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("power %g, n = %d: decay %.10g; want %.10g", tt.power, tt.updates, got, tt.want)
		}
	}
	if got := (&EMA{Decay: 0.9999, Power: 0.75, Updates: 1000}).CurrentDecay(); math.Abs(got-0.99438) > 1e-5 {
		t.Errorf("power 3/4 at n = 1000: %.6f; want about 0.99438", got)
	}
	// ema_warmup stays today's (1 + n)/(10 + n).
	if got := (&EMA{Decay: 0.999, Warmup: true, Updates: 5}).CurrentDecay(); got != 6.0/15 {
		t.Errorf("warm-up at n = 5: %g; want 6/15", got)
	}
}

// A one-scalar "model" whose weight is set to the step number before each AfterStep: the
// average follows the closed form of the update steps only.
func TestEMAEveryAndStart(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name         string
		every, start int64
		steps        int64
		wantUpdates  int64
		want         float64
	}{
		// decay 0.5, every step: a_s = (a_{s−1} + s)/2 from a_0 = 0.
		{"every step", 1, 0, 4, 4, ((((0+1)/2.0+2)/2+3)/2 + 4) / 2},
		// every 2nd: updates at steps 2, 4, 6: 1, 2.5, 4.25.
		{"every 2", 2, 0, 7, 3, 4.25},
		// start 3: steps 1..3 copy (a = 3), then every 2nd step after it (5, 7): 4, 5.5.
		{"start 3, every 2", 2, 3, 8, 2, 5.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ts.MustZeros([]int64{1}, gotch.Float, gotch.CPU)
			defer w.MustDrop()
			params := []namedTensor{{name: "w", tensor: w}}
			e, err := NewEMA(params, 0.5, false)
			if err != nil {
				t.Fatal(err)
			}
			e.Every, e.Start = tt.every, tt.start
			for step := int64(1); step <= tt.steps; step++ {
				v := ts.MustOfSlice([]float32{float32(step)})
				if err := copyInto(w, v); err != nil {
					t.Fatal(err)
				}
				v.MustDrop()
				if err := e.AfterStep(step); err != nil {
					t.Fatal(err)
				}
			}
			got := mustValues(t, e.average[0].tensor)[0]
			if e.Updates != tt.wantUpdates || math.Abs(float64(got)-tt.want) > 1e-6 {
				t.Errorf("after %d steps: %d updates, average %g; want %d, %g", tt.steps, e.Updates, got, tt.wantUpdates, tt.want)
			}
		})
	}
}

// With the exact ε of a known x_0, the v target turned back gives ε (and x_0 = α·x_t − σ·v).
func TestVPredictionRoundTrip(t *testing.T) {
	lockThread(t)
	sched, _ := NewSchedule("cosine", 1000, 0, 0)
	d, err := NewDiffusion(sched, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var s scope
	defer s.drop()
	ManualSeed(9)
	x0 := s.do(ts.Rand([]int64{5, 1, 4, 4}, gotch.Float, gotch.CPU))
	noise := s.randn([]int64{5, 1, 4, 4}, gotch.CPU)
	steps := []int64{0, 10, 500, 900, 999}
	tt := s.fromInt64(steps, gotch.CPU)
	xt := s.do(d.QSample(x0, tt, noise))
	v := s.do(d.VTarget(x0, tt, noise))
	eps := s.do(d.EpsFromV(v, xt, tt))
	if s.err != nil {
		t.Fatal(s.err)
	}
	want, got := mustValues(t, noise), mustValues(t, eps)
	vs, xs, x0s := mustValues(t, v), mustValues(t, xt), mustValues(t, x0)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 2e-6 {
			t.Fatalf("element %d: ε from v = %.7f; ε = %.7f", i, got[i], want[i])
		}
		step := steps[i/16]
		alpha, sigma := sched.SqrtAlphasCumprod[step], sched.SqrtOneMinusAlphasCumprod[step]
		if wantV := alpha*float64(want[i]) - sigma*float64(x0s[i]); math.Abs(float64(vs[i])-wantV) > 2e-6 {
			t.Fatalf("element %d: v = %.7f; √ᾱ·ε − √(1−ᾱ)·x0 = %.7f", i, vs[i], wantV)
		}
		if x := alpha*float64(xs[i]) - sigma*float64(vs[i]); math.Abs(x-float64(x0s[i])) > 2e-6 {
			t.Fatalf("element %d: √ᾱ·x_t − √(1−ᾱ)·v = %.7f; x0 = %.7f", i, x, x0s[i])
		}
	}
}

// A v-prediction model samples with ε̂ = √ᾱ·v̂ + √(1−ᾱ)·x_t, and refuses without its schedule.
func TestVPredictionModelGivesEps(t *testing.T) {
	lockThread(t)
	sched, _ := LinearSchedule(100, 1e-4, 0.02)
	ManualSeed(3)
	m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, Prediction: PredictV}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	var s scope
	defer s.drop()
	x := s.randn([]int64{2, 1, 28, 28}, gotch.CPU)
	tt := s.fromInt64([]int64{7, 70}, gotch.CPU)
	if s.err != nil {
		t.Fatal(s.err)
	}
	var probe scope
	if probe.keep(m.guidedNoise(&probe, x, tt, nil, 0)); probe.err == nil {
		t.Error("v model sampled without SetSchedule")
	}
	probe.drop()
	if err := m.SetSchedule(sched); err != nil {
		t.Fatal(err)
	}
	var eps, vHat []float32
	err = NoGrad(func() error {
		eps = mustValues(t, m.guidedNoise(&s, x, tt, nil, 0))
		vHat = mustValues(t, s.do(m.Net.Forward(x, tt, nil)))
		return s.err
	})
	if err != nil {
		t.Fatal(err)
	}
	xs := mustValues(t, x)
	for i := range eps {
		step := []int{7, 70}[i/784]
		want := sched.SqrtAlphasCumprod[step]*float64(vHat[i]) + sched.SqrtOneMinusAlphasCumprod[step]*float64(xs[i])
		if math.Abs(float64(eps[i])-want) > 1e-5 {
			t.Fatalf("element %d: ε̂ %.6f; √ᾱ·v̂ + √(1−ᾱ)·x_t = %.6f", i, eps[i], want)
		}
	}
}

// expectedParamsArch counts the parameters of a U-Net for MNIST's 1×28×28 images from its
// widths, independently of the code that builds it: expectedParamsShape's closed form.
func expectedParamsArch(C, D int64, mult []int64, r int64, attention []int) int64 {
	return expectedParamsShape(C, D, 1, mult, r, attention, 28) // MNIST: 1×28×28
}

func TestUNetArchitectures(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name string
		cfg  UNetConfig
		mult []int64
	}{
		{"guide spelt out", UNetConfig{BaseChannels: 64, TimeEmbDim: 256, ChannelMult: []int{1, 2}, ResBlocks: 1, Activation: "silu", AttentionHeads: 4}, []int64{1, 2}},
		{"two blocks, widths 1,1", UNetConfig{BaseChannels: 16, TimeEmbDim: 32, ChannelMult: []int{1, 1}, ResBlocks: 2}, []int64{1, 1}},
		{"one level", UNetConfig{BaseChannels: 16, TimeEmbDim: 32, ChannelMult: []int{2}}, []int64{2}},
		{"attention at 7 and 14", UNetConfig{BaseChannels: 16, TimeEmbDim: 32, Attention: []int{7, 14}, AttentionHeads: 2}, []int64{1, 2}},
		{"deep and wide, attention at 7", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ChannelMult: []int{1, 3}, ResBlocks: 3, Attention: []int{7}}, []int64{1, 3}},
		{"attention at 28", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, Attention: []int{28}, AttentionHeads: 1}, []int64{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ManualSeed(0)
			tt.cfg.ImageChannels = 1
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			r := int64(max(1, tt.cfg.ResBlocks))
			want := expectedParamsArch(int64(tt.cfg.BaseChannels), int64(tt.cfg.TimeEmbDim), tt.mult, r, tt.cfg.Attention)
			if got := m.ParamCount(); got != want {
				t.Errorf("ParamCount = %d, want %d", got, want)
			}
			checkForwardShape(t, m, 1, 28, 28)
		})
	}
	// The closed form agrees with the guide's own count, and the guide spelt out is the guide.
	if n := expectedParamsArch(64, 256, []int64{1, 2}, 1, nil); n != 1_577_921 || n != expectedParams(64, 256, 0) {
		t.Errorf("closed form gives %d for the guide's U-Net; want 1,577,921", n)
	}
	if !(UNetConfig{BaseChannels: 64, ChannelMult: []int{1, 2}, ResBlocks: 1, Activation: "silu", Prediction: "eps"}).Equal(UNetConfig{BaseChannels: 64}) {
		t.Error("the guide's defaults spelt out do not Equal the zero values")
	}
	if _, err := NewModel(UNetConfig{BaseChannels: 16, TimeEmbDim: 32, Attention: []int{14}, AttentionHeads: 5}, gotch.CPU); err == nil {
		t.Error("5 heads over 32 channels: no error")
	}
}

// An attention block keeps the shape, has 4C² + 6C parameters and, with its zero-initialised
// output projection, starts as the identity.
func TestAttentionBlock(t *testing.T) {
	lockThread(t)
	for _, tc := range []struct{ c, heads, side int64 }{{16, 4, 7}, {32, 1, 14}, {8, 2, 3}} {
		vs := nn.NewVarStore(gotch.CPU)
		var b builder
		a := b.attention(vs.Root().Sub("attn"), tc.c, tc.heads)
		if b.err != nil {
			t.Fatal(b.err)
		}
		if got, want := ParamCount(vs), 4*tc.c*tc.c+6*tc.c; got != want {
			t.Errorf("C=%d: %d parameters; want 4C² + 6C = %d", tc.c, got, want)
		}
		var s scope
		x := s.randn([]int64{2, tc.c, tc.side, tc.side}, gotch.CPU)
		out := a.forward(&s, x)
		if s.err != nil {
			t.Fatal(s.err)
		}
		if got := out.MustSize(); got[0] != 2 || got[1] != tc.c || got[2] != tc.side || got[3] != tc.side {
			t.Errorf("shape %v; want [2 %d %d %d]", got, tc.c, tc.side, tc.side)
		}
		xs, os := mustValues(t, x), mustValues(t, out)
		for i := range xs {
			if xs[i] != os[i] {
				t.Fatalf("C=%d: a fresh block is not the identity at %d: %g vs %g", tc.c, i, os[i], xs[i])
			}
		}
		s.drop()
	}
}

// Dropout acts in training passes only: in evaluation the network is deterministic and equal to
// the same weights without dropout, with the same parameters.
func TestUNetDropout(t *testing.T) {
	lockThread(t)
	base := UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32}
	withDropout := base
	withDropout.Dropout = 0.5
	ManualSeed(4)
	plain, err := NewModel(base, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	ManualSeed(4)
	dropped, err := NewModel(withDropout, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if plain.ParamCount() != dropped.ParamCount() {
		t.Errorf("dropout changed the parameter count: %d vs %d", dropped.ParamCount(), plain.ParamCount())
	}
	var s scope
	defer s.drop()
	x := s.randn([]int64{2, 1, 28, 28}, gotch.CPU)
	tt := s.fromInt64([]int64{3, 600}, gotch.CPU)
	var evalA, evalB, evalPlain, train []float32
	err = NoGrad(func() error {
		evalA = mustValues(t, s.do(dropped.Net.ForwardT(x, tt, nil, false)))
		evalB = mustValues(t, s.do(dropped.Net.Forward(x, tt, nil)))
		evalPlain = mustValues(t, s.do(plain.Net.Forward(x, tt, nil)))
		train = mustValues(t, s.do(dropped.Net.ForwardT(x, tt, nil, true)))
		return s.err
	})
	if err != nil {
		t.Fatal(err)
	}
	differs := false
	for i := range evalA {
		if evalA[i] != evalB[i] || evalA[i] != evalPlain[i] {
			t.Fatalf("evaluation pass at %d: %g, %g, without dropout %g; want all equal", i, evalA[i], evalB[i], evalPlain[i])
		}
		differs = differs || train[i] != evalA[i]
	}
	if !differs {
		t.Error("a training pass with dropout 0.5 equals the evaluation pass")
	}
}

// Every activation keeps the parameter count; each gives another function of the same weights.
func TestUNetActivation(t *testing.T) {
	lockThread(t)
	var s scope
	defer s.drop()
	ManualSeed(8)
	x := s.randn([]int64{1, 1, 28, 28}, gotch.CPU)
	tt := s.fromInt64([]int64{100}, gotch.CPU)
	outputs := map[string][]float32{}
	for _, act := range []string{"silu", "gelu", "relu", "mish"} {
		ManualSeed(4)
		m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, Activation: act}, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.ParamCount(), expectedParams(16, 32, 0); got != want {
			t.Errorf("%s: %d parameters; want %d", act, got, want)
		}
		err = NoGrad(func() error {
			outputs[act] = mustValues(t, s.do(m.Net.Forward(x, tt, nil)))
			return s.err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, act := range []string{"gelu", "relu", "mish"} {
		diff := 0.0
		for i, v := range outputs[act] {
			diff = max(diff, math.Abs(float64(v-outputs["silu"][i])))
		}
		if diff < 1e-4 {
			t.Errorf("%s: output within %g of silu's", act, diff)
		}
	}
	if _, err := NewModel(UNetConfig{BaseChannels: 16, TimeEmbDim: 32, Activation: "tanh"}, gotch.CPU); err == nil {
		t.Error("unknown activation: no error")
	}
}

// Every recipe option at once (v-prediction, Min-SNR-γ, cosine with warm-up, stratified
// timesteps, dropout, a power EMA updated every 2nd step from step 2): a run resumed from a
// checkpoint takes the same steps as one that never stopped, and each step used LRAt's rate.
func TestRecipeResumesExactly(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 256)
	cfg := TrainConfig{LR: 1e-3, Seed: 6, EMADecay: 0.999, EMAPower: 0.75, EMAEvery: 2, EMAStart: 2,
		LRSchedule: LRCosine, WarmupSteps: 2, TotalSteps: 6, LossWeighting: WeightingMinSNR, MinSNRGamma: 5,
		TimestepSampling: TimestepsStratified}
	newTrainer := func() (*Trainer, *Dataset) {
		s, _ := LinearSchedule(1000, 1e-4, 0.02)
		d, err := NewDiffusion(s, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := NewDataset(set.Images, set.Labels, set.N, 1, 28, 28, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		ManualSeed(3)
		m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, Prediction: PredictV, Dropout: 0.1}, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, d, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tr, ds
	}
	straight, ds := newTrainer()
	var want []float64
	for range 6 {
		want = append(want, trainSteps(t, straight, ds, 1)...)
		wantLR, _ := LRAt(LRCosine, 1e-3, 2, 6, straight.Steps()-1)
		if straight.Adam.LR != wantLR {
			t.Errorf("step %d: lr %g; want %g", straight.Steps(), straight.Adam.LR, wantLR)
		}
	}
	if straight.EMA.Updates != 2 { // steps 4 and 6
		t.Errorf("EMA updates after 6 steps = %d; want 2", straight.EMA.Updates)
	}

	first, _ := newTrainer()
	got := trainSteps(t, first, ds, 3)
	dir := filepath.Join(t.TempDir(), "last.ckpt")
	if err := first.SaveCheckpoint(dir, 0, 3); err != nil {
		t.Fatal(err)
	}
	resumed, _ := newTrainer()
	if _, err := resumed.LoadCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	got = append(got, trainSteps(t, resumed, ds, 3)...)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: resumed loss %.8f, uninterrupted %.8f", i, got[i], want[i])
		}
	}
	a, b := mustValues(t, straight.EMA.average[0].tensor), mustValues(t, resumed.EMA.average[0].tensor)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("EMA weight %d: resumed %g, uninterrupted %g", i, b[i], a[i])
		}
	}
}

func mustCoefficients(t *testing.T, v []float64) *ts.Tensor {
	t.Helper()
	c, err := coefficients(v, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustScalar(t *testing.T, x *ts.Tensor) float64 {
	t.Helper()
	v, err := scalar(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustValues(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	v, err := float32s(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The guide's network keeps the parameter names it always had, so checkpoints written before
// the architecture keys existed still load.
func TestUNetGuideParamNames(t *testing.T) {
	lockThread(t)
	m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, layer := range []string{"time_mlp1", "time_mlp2", "init_conv", "final_conv", "up1.upsample", "up2.upsample"} {
		want[layer+".weight"], want[layer+".bias"] = true, true
	}
	for _, block := range []string{"down1", "down2", "bottleneck", "up1", "up2"} {
		for _, layer := range []string{"conv1", "conv2", "norm1", "norm2", "time_mlp"} {
			want[block+"."+layer+".weight"], want[block+"."+layer+".bias"] = true, true
		}
	}
	if len(m.params) != len(want) {
		t.Errorf("%d parameters; want %d", len(m.params), len(want))
	}
	for _, p := range m.params {
		if !want[p.name] {
			t.Errorf("parameter %s is not one of the guide's", p.name)
		}
	}
}

// TestAdamMatchesClosedForm runs three Adam steps with non-default betas (train.adam_beta1,
// train.adam_beta2) on a three-element parameter whose gradient is set by a linear loss, and
// checks the weights against Algorithm 1 of Kingma & Ba (2015) written out in float64, with
// one op per parameter and with flat buffers.
func TestAdamMatchesClosedForm(t *testing.T) {
	const lr, beta1, beta2, eps = 0.1, 0.8, 0.95, 1e-8
	theta0 := []float64{0.5, -1, 2}
	grads := [][]float64{{1, -2, 0.5}, {0.3, 0.1, -4}, {-1, 1e-3, 2}}

	// The closed form: m_t = β1 m + (1−β1) g, v_t = β2 v + (1−β2) g²,
	// θ_t = θ − lr·(m_t/(1−β1^t)) / (√(v_t/(1−β2^t)) + ε).
	want := slices.Clone(theta0)
	m, v := make([]float64, 3), make([]float64, 3)
	for step, g := range grads {
		n := float64(step + 1)
		for i := range want {
			m[i] = beta1*m[i] + (1-beta1)*g[i]
			v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
			want[i] -= lr * (m[i] / (1 - math.Pow(beta1, n))) / (math.Sqrt(v[i]/(1-math.Pow(beta2, n))) + eps)
		}
	}

	for _, flat := range []bool{false, true} {
		t.Run(map[bool]string{false: "per-tensor", true: "flat"}[flat], func(t *testing.T) {
			lockThread(t)
			var s scope
			defer s.drop()
			theta := s.do(s.fromFloat32(toFloat32(theta0), []int64{3}, gotch.CPU).SetRequiresGrad(true, false))
			if s.err != nil {
				t.Fatal(s.err)
			}
			adam, err := NewAdam([]namedTensor{{name: "theta", tensor: theta}}, lr)
			if err != nil {
				t.Fatal(err)
			}
			adam.Beta1, adam.Beta2 = beta1, beta2
			if flat {
				if _, err := adam.useFlatBuffers(); err != nil {
					t.Fatal(err)
				}
			}
			for _, g := range grads {
				if err := adam.ZeroGrad(); err != nil {
					t.Fatal(err)
				}
				// L = Σ g_i θ_i, so ∇θ L = g.
				loss := s.do(s.mul(theta, s.fromFloat32(toFloat32(g), []int64{3}, gotch.CPU)).Sum(gotch.Float, false))
				if s.err != nil {
					t.Fatal(s.err)
				}
				if err := loss.Backward(); err != nil {
					t.Fatal(err)
				}
				if err := adam.Update(); err != nil {
					t.Fatal(err)
				}
			}
			if flat && adam.flat.grad == nil {
				t.Fatal("the gradient was not laid out flat")
			}
			for i, got := range mustValues(t, theta) {
				if math.Abs(float64(got)-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
					t.Errorf("θ[%d] = %.7f after 3 steps, want %.7f (Algorithm 1)", i, got, want[i])
				}
			}
		})
	}
}

// TestTrainerSetsAdamBetas checks that TrainConfig's betas reach the optimizer, that zero keeps
// PyTorch's defaults, and that a beta outside (0, 1) is refused.
func TestTrainerSetsAdamBetas(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name         string
		beta1, beta2 float64
		want1, want2 float64
		wantErr      bool
	}{
		{name: "defaults", want1: 0.9, want2: 0.999},
		{name: "beta2 only", beta2: 0.99, want1: 0.9, want2: 0.99},
		{name: "both", beta1: 0.85, beta2: 0.95, want1: 0.85, want2: 0.95},
		{name: "beta2 of 1", beta2: 1, wantErr: true},
		{name: "negative beta1", beta1: -0.1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := LinearSchedule(100, 1e-4, 0.02)
			if err != nil {
				t.Fatal(err)
			}
			diffusion, err := NewDiffusion(sched, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(tinyModel(t, 0), diffusion, TrainConfig{LR: 1e-3, AdamBeta1: tt.beta1, AdamBeta2: tt.beta2})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("betas (%g, %g) accepted", tt.beta1, tt.beta2)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Adam.Beta1 != tt.want1 || tr.Adam.Beta2 != tt.want2 {
				t.Errorf("Adam betas (%g, %g), want (%g, %g)", tr.Adam.Beta1, tr.Adam.Beta2, tt.want1, tt.want2)
			}
		})
	}
}

// toFloat32 converts float64 test values to a tensor's element type.
func toFloat32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}
