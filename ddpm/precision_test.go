package ddpm

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// relErr is ‖a − b‖₂ / ‖b‖₂.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

// perturbZeroParams fills the parameters that start at zero (the attention blocks' output
// convolutions) with small noise, so that a test's forward pass goes through attention.
func perturbZeroParams(t *testing.T, m *Model) {
	t.Helper()
	for _, p := range m.params {
		if !strings.Contains(p.name, ".attn.out.") {
			continue
		}
		scaled := p.tensor.MustRandnLike(false).MustMulScalar(ts.FloatScalar(0.05), true)
		if err := copyInto(p.tensor, scaled); err != nil {
			t.Fatal(err)
		}
		scaled.MustDrop()
	}
}

// forwardValues runs m in evaluation mode under compute c and returns its output, checking
// that the output is fp32 whatever c's precision.
func forwardValues(t *testing.T, m *Model, c Compute, x, tt, y *ts.Tensor) []float32 {
	t.Helper()
	if err := m.Net.SetCompute(c); err != nil {
		t.Fatal(err)
	}
	out, err := m.PredictNoise(x, tt, y)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	defer out.MustDrop()
	if out.DType() != gotch.Float {
		t.Errorf("%v: output dtype %v, want float32 (the loss and the samplers compute in fp32)", c, out.DType())
	}
	return mustValues(t, out)
}

// A bf16 pass computes the fp32 pass's function to bf16's precision: bf16 keeps 8 significant
// bits (unit roundoff 2^-9 ≈ 0.002), so after a dozen layers the output agrees to about 1%, and
// it does differ (the pass really ran in bf16). Channels-last changes the layout, not the values.
func TestBF16ForwardMatchesFP32(t *testing.T) {
	lockThread(t)
	configs := []struct {
		name string
		cfg  UNetConfig
	}{
		{"guide", UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32}},
		{"attention, classes, 2 blocks", UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32,
			NumClasses: 10, ResBlocks: 2, Attention: []int{14}, AttentionHeads: 2}},
	}
	computes := []struct {
		c        Compute
		min, max float64 // bounds on the relative error against fp32
	}{
		{c: Compute{Precision: BF16}, min: 1e-4, max: 2e-2},
		{c: Compute{Precision: FP32, ChannelsLast: true}, min: 0, max: 1e-5},
		{c: Compute{Precision: BF16, ChannelsLast: true}, min: 1e-4, max: 2e-2},
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			ManualSeed(5)
			m, err := NewModel(tc.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			perturbZeroParams(t, m)
			var s scope
			defer s.drop()
			x := s.randn([]int64{4, 1, 28, 28}, gotch.CPU)
			tt := s.fromInt64([]int64{0, 10, 500, 999}, gotch.CPU)
			var y *ts.Tensor
			if tc.cfg.NumClasses > 0 {
				y = s.fromInt64([]int64{0, 3, 9, 10}, gotch.CPU) // 10 is the null class
			}
			if s.err != nil {
				t.Fatal(s.err)
			}
			want := forwardValues(t, m, Compute{}, x, tt, y)
			for _, cc := range computes {
				t.Run(cc.c.String(), func(t *testing.T) {
					got := forwardValues(t, m, cc.c, x, tt, y)
					e := relErr(got, want)
					t.Logf("relative error %.2e", e)
					if !(e >= cc.min && e <= cc.max) {
						t.Errorf("relative error against fp32 %.3g, want in [%g, %g]", e, cc.min, cc.max)
					}
				})
			}
		})
	}
}

// A bf16 sampler run computes the U-Net in bf16 and the sampler's update in fp32: its images
// agree with the fp32 run's to bf16's precision.
func TestBF16SampleMatchesFP32(t *testing.T) {
	lockThread(t)
	m := tinyModel(t, 0)
	want := sampleOnce(t, m, "ddim", 5, 0, 1, 2)
	if err := m.Net.SetCompute(Compute{Precision: BF16}); err != nil {
		t.Fatal(err)
	}
	got := sampleOnce(t, m, "ddim", 5, 0, 1, 2)
	e := relErr(got, want)
	t.Logf("DDIM-5 images, bf16 against fp32: relative error %.2e", e)
	if !(e > 0 && e < 3e-2) {
		t.Errorf("relative error %.3g, want in (0, 0.03)", e)
	}
}

// Mixed-precision training keeps the master weights, their gradients, Adam's moments and the
// EMA in fp32, and it learns: on 8 fixed images the loss falls as it does in fp32.
func TestBF16TrainingKeepsFP32State(t *testing.T) {
	lockThread(t)
	// 8 fixed 12×12 images in [-1, 1] (small, to keep emulated bf16 fast): a bright 4×4
	// square at a different place in each.
	const side = 12
	images := make([]float32, 8*side*side)
	for i := range images {
		n, r, c := i/(side*side), i/side%side, i%side
		images[i] = -1
		if r >= n && r < n+4 && c >= 2*(n%4) && c < 2*(n%4)+4 {
			images[i] = 1
		}
	}
	train := func(c Compute) (*Trainer, []float64) {
		s, _ := LinearSchedule(1000, 1e-4, 0.02)
		d, err := NewDiffusion(s, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		ManualSeed(3)
		m, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16}, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Net.SetCompute(c); err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, d, TrainConfig{LR: 2e-3, Seed: 7, EMADecay: 0.9})
		if err != nil {
			t.Fatal(err)
		}
		var sc scope
		defer sc.drop()
		x0 := sc.fromFloat32(images, []int64{8, 1, side, side}, gotch.CPU)
		if sc.err != nil {
			t.Fatal(sc.err)
		}
		var losses []float64
		for range 30 {
			loss, err := tr.Step(x0, nil)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, loss)
		}
		return tr, losses
	}
	tr, losses := train(Compute{Precision: BF16})
	_, fp32Losses := train(Compute{})

	state := map[string][]namedTensor{"weight": tr.Model.params, "adam m": tr.Adam.m, "adam v": tr.Adam.v, "ema": tr.EMA.average}
	for what, ts := range state {
		for _, p := range ts {
			if p.tensor.DType() != gotch.Float {
				t.Errorf("%s of %s is %v, want float32", what, p.name, p.tensor.DType())
			}
		}
	}
	for _, p := range tr.Model.params {
		g, err := p.tensor.Grad(false)
		if err != nil {
			t.Fatal(err)
		}
		if g.DType() != gotch.Float {
			t.Errorf("gradient of %s is %v, want float32", p.name, g.DType())
		}
		g.MustDrop()
	}

	first, last := mean(losses[:5]), mean(losses[len(losses)-5:])
	fp32First, fp32Last := mean(fp32Losses[:5]), mean(fp32Losses[len(fp32Losses)-5:])
	t.Logf("mean loss of the first and last 5 steps: bf16 %.4f → %.4f, fp32 %.4f → %.4f", first, last, fp32First, fp32Last)
	if !(last < 0.7*first) {
		t.Errorf("bf16 loss did not clearly fall: first 5 steps %.4f, last 5 steps %.4f", first, last)
	}
	// Both runs draw the same timesteps and noise (seeded by step), so their curves track.
	if math.Abs(last-fp32Last) > 0.1*fp32First {
		t.Errorf("bf16 ends at %.4f, fp32 at %.4f: further apart than 10%% of the start (%.4f)", last, fp32Last, fp32First)
	}

	// Channels-last changes the layout, not the function: its gradients (through the
	// permutes and AsStrided of ChannelsLast back to the NCHW weights) train the same curve, to
	// fp32's rounding of a different summation order.
	_, clLosses := train(Compute{ChannelsLast: true})
	for i := range clLosses {
		if d := math.Abs(clLosses[i] - fp32Losses[i]); d > 1e-3*fp32Losses[i] {
			t.Fatalf("step %d: channels-last loss %.6f, NCHW %.6f: more than 0.1%% apart", i, clLosses[i], fp32Losses[i])
		}
	}
}

// ChannelsLast keeps shape and values and gives the strides of NHWC memory, (H·W·C, 1, W·C, C).
func TestChannelsLast(t *testing.T) {
	lockThread(t)
	tests := []struct {
		shape, strides []int64
	}{
		{shape: []int64{2, 3, 4, 5}, strides: []int64{60, 1, 15, 3}},
		{shape: []int64{1, 8, 7, 7}, strides: []int64{392, 1, 56, 8}},
		{shape: []int64{16, 8, 3, 3}, strides: []int64{72, 1, 24, 8}}, // a conv weight
		// Size-1 dimensions, where permuting makes a tensor that is contiguous already.
		{shape: []int64{4, 1, 5, 6}, strides: []int64{30, 1, 6, 1}},    // the U-Net's input
		{shape: []int64{16, 1, 3, 3}, strides: []int64{9, 1, 3, 1}},    // its first weight
		{shape: []int64{1, 16, 1, 1}, strides: []int64{16, 1, 16, 16}}, // a 1×1 kernel to 1 channel
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.shape), func(t *testing.T) {
			n := tt.shape[0] * tt.shape[1] * tt.shape[2] * tt.shape[3]
			values := make([]float32, n)
			for i := range values {
				values[i] = float32(i)
			}
			x := ts.MustOfSlice(values).MustView(tt.shape, true)
			defer x.MustDrop()
			if cl, _ := isChannelsLast(x); cl {
				t.Errorf("a contiguous NCHW tensor reads as channels-last")
			}
			y, err := ChannelsLast(x)
			if err != nil {
				t.Fatal(err)
			}
			defer y.MustDrop()
			if got := y.MustSize(); !slices.Equal(got, tt.shape) {
				t.Errorf("shape %v, want %v", got, tt.shape)
			}
			if got := y.MustStride(); !slices.Equal(got, tt.strides) {
				t.Errorf("strides %v, want %v", got, tt.strides)
			}
			if cl, _ := isChannelsLast(y); !cl {
				t.Errorf("isChannelsLast(ChannelsLast(x)) = false")
			}
			if got := mustValues(t, y); !slices.Equal(got, values) {
				t.Errorf("values changed: %v… want %v…", got[:6], values[:6])
			}
		})
	}
	v := ts.MustOfSlice([]float32{1, 2, 3})
	defer v.MustDrop()
	if _, err := ChannelsLast(v); err == nil || !strings.Contains(err.Error(), "4-D") {
		t.Errorf("ChannelsLast of a 1-D tensor: err = %v, want a 4-D error", err)
	}
}

func TestBF16CPUFlags(t *testing.T) {
	tests := []struct {
		name, cpuinfo string
		want          bool
	}{
		{"avx2 only (AMD EPYC Rome)", "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma\n", false},
		{"avx512 without bf16", "flags\t\t: avx2 avx512f avx512bw avx512_vnni\n", false},
		{"avx512_bf16 (Zen 4, Cooper Lake)", "flags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n", true},
		{"amx (Sapphire Rapids)", "flags\t\t: avx2 amx_bf16 amx_tile amx_int8\n", true},
		{"flag named in another field", "model name\t: avx512_bf16 lookalike\nflags\t\t: avx2\n", false},
		{"a flag's prefix", "flags\t\t: avx512_bf16x\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuinfoHasBF16(tt.cpuinfo); got != tt.want {
				t.Errorf("cpuinfoHasBF16 = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestPrecisionParse(t *testing.T) {
	tests := []struct {
		in   string
		want Precision
		err  bool
	}{
		{in: "", want: FP32}, {in: "fp32", want: FP32}, {in: "bf16", want: BF16},
		{in: "fp16", err: true}, {in: "BF16", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePrecision(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParsePrecision(%q) = %q, %v; want %q (error %t)", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
	lockThread(t)
	m := tinyModel(t, 0)
	if err := m.Net.SetCompute(Compute{Precision: "fp16"}); err == nil {
		t.Errorf("SetCompute(fp16) = nil, want an error")
	}
	if err := m.Net.SetCompute(Compute{}); err != nil || m.Net.Compute().Precision != FP32 {
		t.Errorf("SetCompute(zero) = %v, precision %q; want fp32", err, m.Net.Compute().Precision)
	}
}

// The sub-pixel form of the stride-2 transposed convolution (convTranspose2d.subPixel) is the
// same function as libtorch's ConvTranspose2d: equal outputs and equal gradients for the input,
// the weight and the bias, up to fp32 rounding of a sum in another order.
func TestSubPixelMatchesConvTranspose(t *testing.T) {
	lockThread(t)
	ManualSeed(3)
	var s scope
	defer s.drop()
	const in, out = 8, 6
	x := s.do(s.randn([]int64{2, in, 5, 7}, gotch.CPU).SetRequiresGrad(true, false))
	w := s.do(s.randn([]int64{in, out, 2, 2}, gotch.CPU).SetRequiresGrad(true, false))
	b := s.do(s.randn([]int64{out}, gotch.CPU).SetRequiresGrad(true, false))
	// A fixed random upstream gradient g: backward of Σ y·g gives dL/dy = g.
	g := s.randn([]int64{2, out, 10, 14}, gotch.CPU)
	if s.err != nil {
		t.Fatal(s.err)
	}
	grads := func(y *ts.Tensor) (values []float32, dx, dw, db []float32) {
		t.Helper()
		for _, p := range []*ts.Tensor{x, w, b} {
			if gr := p.MustGrad(false); gr.MustDefined() {
				gr.MustZero_()
			}
		}
		loss := s.do(s.mul(y, g).Sum(gotch.Float, false))
		if s.failed(loss) {
			t.Fatal(s.err)
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		grad := func(p *ts.Tensor) []float32 { return mustValues(t, s.do(p.Grad(false))) }
		return mustValues(t, y), grad(x), grad(w), grad(b)
	}
	stride, zero, one := []int64{2, 2}, []int64{0, 0}, []int64{1, 1}
	want := s.do(ts.ConvTranspose2d(x, w, b, stride, zero, zero, 1, one))
	if s.failed(want) {
		t.Fatal(s.err)
	}
	wy, wdx, wdw, wdb := grads(want)
	got := convTranspose2d{weight: w, bias: b}.subPixel(&s, x)
	if s.failed(got) {
		t.Fatal(s.err)
	}
	if size := got.MustSize(); !slices.Equal(size, []int64{2, out, 10, 14}) {
		t.Fatalf("shape %v, want [2 %d 10 14]", size, out)
	}
	gy, gdx, gdw, gdb := grads(got)
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"output", gy, wy}, {"dL/dx", gdx, wdx}, {"dL/dW", gdw, wdw}, {"dL/db", gdb, wdb}} {
		if e := relErr(c.got, c.want); !(e < 1e-6) {
			t.Errorf("%s: relative error %.3g against ConvTranspose2d, want < 1e-6", c.name, e)
		}
	}
}
