package ddpm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// expectedParamsShape counts a U-Net's parameters from its widths, independently of the code
// that builds it: C = base, D = time embedding, ch image channels (taken by the first
// convolution, returned by the last), mult per level, r blocks per level, attention at the
// listed resolutions (4c² + 6c each: GroupNorm 2c, qkv 3c² + 3c, output c² + c), matched
// against level sides side, side/2, ….
func expectedParamsShape(C, D, ch int64, mult []int64, r int64, attention []int, side int) int64 {
	return expectedParamsBlocks(C, D, ch, mult, r, attention, side, BlockGuide)
}

// expectedParamsBlocks is expectedParamsShape for either block type: a guide block has two
// 3×3 convolutions, its time projection and two GroupNorms over its output (4·out); a residual
// block (BlockResNet) normalises its input instead of its first convolution's output
// (2·in + 2·out), adds a 1×1 shortcut convolution when in ≠ out, and its network one more
// GroupNorm before the last convolution (2·w_0).
func expectedParamsBlocks(C, D, ch int64, mult []int64, r int64, attention []int, side int, kind string) int64 {
	linear := func(in, out int64) int64 { return in*out + out }
	conv := func(in, out, k int64) int64 { return in*out*k*k + out }
	block := func(in, out int64) int64 { return conv(in, out, 3) + conv(out, out, 3) + 4*out + linear(D, out) }
	if kind == BlockResNet {
		block = func(in, out int64) int64 {
			n := 2*in + conv(in, out, 3) + linear(D, out) + 2*out + conv(out, out, 3)
			if in != out {
				n += conv(in, out, 1)
			}
			return n
		}
	}
	attn := func(c int64, res int) int64 {
		if slices.Contains(attention, res) {
			return 4*c*c + 6*c
		}
		return 0
	}
	L := len(mult)
	w := make([]int64, L+1)
	for i, k := range mult {
		w[i] = C * k
	}
	w[L] = w[L-1]
	res := func(i int) int { return side >> i }
	n := 2*linear(D, D) + conv(ch, C, 3) + conv(w[0], ch, 1) // time MLP, first and last convolutions
	in := C
	for i := range L { // down: first block in → w_i, then r − 1 of w_i → w_i
		n += block(in, w[i]) + (r-1)*block(w[i], w[i]) + r*attn(w[i], res(i))
		in = w[i]
	}
	n += r*block(w[L], w[L]) + r*attn(w[L], res(L)) // bottleneck
	x := w[L]
	for i := L - 1; i >= 0; i-- { // up: upsample x → x, block(x + w_i → w_i), r − 1 more
		n += conv(x, x, 2) + block(x+w[i], w[i]) + (r-1)*block(w[i], w[i]) + r*attn(w[i], res(i))
		x = w[i]
	}
	if kind == BlockResNet {
		n += 2 * w[0] // out_norm
	}
	return n
}

// checkForwardShape runs m on two random c×h×w images at t = 0 and 999 and checks that the
// predicted noise has their shape, (2, c, h, w).
func checkForwardShape(t *testing.T, m *Model, c, h, w int64) {
	t.Helper()
	x := ts.MustRandn([]int64{2, c, h, w}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	steps := ts.MustOfSlice([]int64{0, 999})
	defer steps.MustDrop()
	out, err := m.PredictNoise(x, steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.MustDrop()
	if got, want := out.MustSize(), []int64{2, c, h, w}; !slices.Equal(got, want) {
		t.Errorf("output shape %v, want %v", got, want)
	}
}

// The U-Net takes any (C, H, W) whose sides halve once per level: output shape = input shape,
// and the parameter count is the closed form for that channel count (the sides change none).
func TestUNetImageShapes(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name    string
		cfg     UNetConfig
		mult    []int64
		c, h, w int64
		levels  []int // LevelResolutions
	}{
		{name: "guide 1×28×28", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 64, TimeEmbDim: 256},
			mult: []int64{1, 2}, c: 1, h: 28, w: 28, levels: []int{28, 14, 7}},
		{name: "RGB 3×32×32", cfg: UNetConfig{ImageChannels: 3, BaseChannels: 8, TimeEmbDim: 16, ImageHeight: 32, ImageWidth: 32},
			mult: []int64{1, 2}, c: 3, h: 32, w: 32, levels: []int{32, 16, 8}},
		{name: "RGB 3×64×64, three levels, attention at 16", cfg: UNetConfig{ImageChannels: 3, BaseChannels: 8, TimeEmbDim: 16,
			ImageHeight: 64, ImageWidth: 64, ChannelMult: []int{1, 2, 2}, Attention: []int{16}, AttentionHeads: 2},
			mult: []int64{1, 2, 2}, c: 3, h: 64, w: 64, levels: []int{64, 32, 16, 8}},
		{name: "grey 1×16×32", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16, ImageHeight: 16, ImageWidth: 32},
			mult: []int64{1, 2}, c: 1, h: 16, w: 32, levels: []int{16, 8, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ManualSeed(0)
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			want := expectedParamsShape(int64(tt.cfg.BaseChannels), int64(tt.cfg.TimeEmbDim), tt.c, tt.mult, 1, tt.cfg.Attention, int(tt.h))
			if got := m.ParamCount(); got != want {
				t.Errorf("ParamCount = %d, want %d", got, want)
			}
			if got := m.Net.Config.LevelResolutions(); !slices.Equal(got, tt.levels) {
				t.Errorf("LevelResolutions = %v, want %v", got, tt.levels)
			}
			if c, h, w := m.Net.Config.Shape(); int64(c) != tt.c || int64(h) != tt.h || int64(w) != tt.w {
				t.Errorf("Shape = %d×%d×%d, want %d×%d×%d", c, h, w, tt.c, tt.h, tt.w)
			}
			checkForwardShape(t, m, tt.c, tt.h, tt.w)
		})
	}
	if n := expectedParamsShape(64, 256, 1, []int64{1, 2}, 1, nil, 28); n != 1_577_921 {
		t.Errorf("closed form gives %d for the guide's U-Net; want 1,577,921", n)
	}
}

// The default shape spelt out is the default: old checkpoints (no ImageHeight/ImageWidth)
// describe the same network, with the same parameter names.
func TestUNetDefaultShapeSpeltOut(t *testing.T) {
	lockThread(t)
	old := UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32}
	spelt := UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, ImageHeight: 28, ImageWidth: 28}
	if !old.Equal(spelt) {
		t.Error("ImageHeight = ImageWidth = 28 does not Equal the zero values")
	}
	if old.Equal(UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, ImageHeight: 32, ImageWidth: 32}) {
		t.Error("a 32×32 network Equals the 28×28 one")
	}
	a, err := NewModel(old, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewModel(spelt, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	names := func(m *Model) []string {
		var out []string
		for _, p := range m.params {
			out = append(out, p.name)
		}
		return out
	}
	if !slices.Equal(names(a), names(b)) {
		t.Errorf("parameter names differ:\n%v\n%v", names(a), names(b))
	}
	if a.Net.Config.ImageHeight != 0 || b.Net.Config.ImageHeight != 0 {
		t.Errorf("the built configs keep a 28: %+v, %+v", a.Net.Config, b.Net.Config)
	}
}

func TestUNetShapeErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  UNetConfig
		want string
	}{
		{"30×30 does not halve twice", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ImageHeight: 30, ImageWidth: 30}, "do not halve exactly 2 times"},
		{"28×28 does not halve three times", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ChannelMult: []int{1, 2, 2}}, "divisible by 8"},
		{"attention at 7 on 32×32", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ImageHeight: 32, ImageWidth: 32, Attention: []int{7}}, "no level at resolution 7 (have [32 16 8])"},
		{"negative size", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ImageHeight: -4}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewModel(tt.cfg, gotch.CPU)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestInferenceUpsampleEqualsFused checks that an inference pass, which adds the transposed
// convolutions' bias as an op of its own and max-pools by strided maxima, gives the same output
// to the bit as a training pass (without dropout), which leaves the bias to the fused op and
// pools with max_pool2d: sampling a stored run draws the images it drew before the split, and
// frees every tensor it makes. Both layouts, one and two levels, and a class-conditional net.
func TestInferenceUpsampleEqualsFused(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name    string
		cfg     UNetConfig
		compute Compute
	}{
		{name: "two levels", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 32, TimeEmbDim: 64}},
		{name: "one level", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, ChannelMult: []int{2}}},
		{name: "channels last", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32}, compute: Compute{ChannelsLast: true}},
		{name: "conditional", cfg: UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 32, NumClasses: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lockThread(t)
			ManualSeed(5)
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Net.SetCompute(tt.compute); err != nil {
				t.Fatal(err)
			}
			var s scope
			defer s.drop()
			x := s.randn([]int64{6, 1, 28, 28}, gotch.CPU)
			tt6 := s.fromInt64([]int64{0, 1, 250, 500, 750, 999}, gotch.CPU)
			var y *ts.Tensor
			if tt.cfg.NumClasses > 0 {
				y = s.fromInt64([]int64{0, 3, 9, 10, 10, 7}, gotch.CPU)
			}
			if s.err != nil {
				t.Fatal(s.err)
			}
			var out [2][]float32
			err = NoGrad(func() error {
				for i, train := range []bool{false, true} {
					o, err := m.Net.ForwardT(x, tt6, y, train)
					if err != nil {
						return err
					}
					out[i] = mustValues(t, s.keep(o))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// The inference pass frees what it makes, the undefined "no bias" tensor included.
			settleTensors(t)
			before := LiveTensors()
			for range 3 {
				forwardAndDrop(t, m.Net, x, tt6, y, false)
			}
			if after := LiveTensors(); after != before {
				t.Errorf("%d live tensors before three inference passes, %d after", before, after)
			}
			if !sameBits(out[0], out[1]) {
				diff := 0
				for i := range out[0] {
					if out[0][i] != out[1][i] {
						diff++
					}
				}
				t.Errorf("%d of %d outputs differ between the inference and the fused pass", diff, len(out[0]))
			}
		})
	}
}

// An inference pass's max-pool (the maximum of four strided views) equals libtorch's
// max_pool2d to the bit, odd sizes included (floor mode drops the last row or column).
func TestMaxPool2InferenceEqualsMaxPool(t *testing.T) {
	lockThread(t)
	ManualSeed(7)
	for _, shape := range [][]int64{{2, 3, 28, 28}, {1, 8, 14, 14}, {2, 2, 7, 9}, {1, 1, 2, 2}, {3, 4, 5, 3}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			var s scope
			defer s.drop()
			x := s.randn(shape, gotch.CPU)
			want := s.do(x.MaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, false))
			got := forwardPass{s: &s}.maxPool2(x) // an NCHW inference pass
			if s.err != nil {
				t.Fatal(s.err)
			}
			if gs, ws := got.MustSize(), want.MustSize(); !slices.Equal(gs, ws) {
				t.Fatalf("shape %v, want %v", gs, ws)
			}
			if g, w := mustValues(t, got), mustValues(t, want); !sameBits(g, w) {
				t.Errorf("values differ from max_pool2d: %v… want %v…", g[:min(4, len(g))], w[:min(4, len(w))])
			}
		})
	}
}

// forwardAndDrop runs one pass of net without gradients and frees its output: a pass whose
// cost or leftovers are what is measured.
func forwardAndDrop(tb testing.TB, net *UNet, x, t, y *ts.Tensor, train bool) {
	tb.Helper()
	err := NoGrad(func() error {
		out, err := net.ForwardT(x, t, y, train)
		if err == nil {
			out.MustDrop()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}
