package ddpm

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// A U-Net of residual blocks has the closed form's parameter count at every layout, keeps the
// image shape, and starts by predicting ε̂ = 0 exactly (its last convolution starts at zero).
func TestResNetUNet(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name string
		cfg  UNetConfig
		mult []int64
	}{
		{"guide layout", UNetConfig{BaseChannels: 16, TimeEmbDim: 32}, []int64{1, 2}},
		{"two blocks, widths 1,1", UNetConfig{BaseChannels: 16, TimeEmbDim: 32, ChannelMult: []int{1, 1}, ResBlocks: 2}, []int64{1, 1}},
		{"one level", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ChannelMult: []int{2}}, []int64{2}},
		{"attention at 7, three blocks", UNetConfig{BaseChannels: 8, TimeEmbDim: 16, ResBlocks: 3, Attention: []int{7}, AttentionHeads: 2}, []int64{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ManualSeed(0)
			tt.cfg.ImageChannels, tt.cfg.Block = 1, BlockResNet
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			r := int64(max(1, tt.cfg.ResBlocks))
			want := expectedParamsBlocks(int64(tt.cfg.BaseChannels), int64(tt.cfg.TimeEmbDim), 1, tt.mult, r, tt.cfg.Attention, 28, BlockResNet)
			if got := m.ParamCount(); got != want {
				t.Errorf("ParamCount = %d, want %d", got, want)
			}
			checkForwardShape(t, m, 1, 28, 28)

			var s scope
			defer s.drop()
			x := s.randn([]int64{2, 1, 28, 28}, gotch.CPU)
			steps := s.keep(ts.MustOfSlice([]int64{3, 900}))
			out, err := m.Net.Forward(x, steps, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.keep(out)
			for i, v := range mustValues(t, out) {
				if v != 0 {
					t.Fatalf("a fresh residual U-Net predicts %g at %d; want 0", v, i)
				}
			}
		})
	}
	// The guide's block stays the default, under either spelling.
	if !(UNetConfig{BaseChannels: 64, Block: BlockGuide}).Equal(UNetConfig{BaseChannels: 64}) {
		t.Error(`Block "guide" does not Equal the zero value`)
	}
	if (UNetConfig{BaseChannels: 64, Block: BlockResNet}).Equal(UNetConfig{BaseChannels: 64}) {
		t.Error("a residual U-Net Equals the guide's")
	}
	if _, err := NewModel(UNetConfig{BaseChannels: 16, TimeEmbDim: 32, Block: "dense"}, gotch.CPU); err == nil {
		t.Error(`block "dense": no error`)
	}
}

// A fresh residual block is its shortcut, to the bit: x itself when the channels match, the
// 1×1 convolution of x when they do not. Once its second convolution is not zero it is not.
func TestResBlockStartsAsShortcut(t *testing.T) {
	lockThread(t)
	ManualSeed(1)
	act, err := activationFor("silu")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, out int64 }{{16, 16}, {16, 32}, {48, 16}} {
		vs := nn.NewVarStore(gotch.CPU)
		var b builder
		rb := b.resBlock(vs.Root().Sub("block"), tc.in, tc.out, 32)
		if b.err != nil {
			t.Fatal(b.err)
		}
		if (rb.shortcut != nil) != (tc.in != tc.out) {
			t.Errorf("%d → %d: shortcut convolution %v; want one only when the channels differ", tc.in, tc.out, rb.shortcut != nil)
		}
		var s scope
		f := forwardPass{s: &s, net: &UNet{act: act}, emb: s.randn([]int64{2, 32}, gotch.CPU)}
		x := s.randn([]int64{2, tc.in, 7, 7}, gotch.CPU)
		want := x
		if rb.shortcut != nil {
			want = rb.shortcut.forward(&s, x)
		}
		out := rb.forward(f, x)
		if s.err != nil {
			t.Fatal(s.err)
		}
		ws, os := mustValues(t, want), mustValues(t, out)
		if len(ws) != len(os) {
			t.Fatalf("%d → %d: %d values; want %d", tc.in, tc.out, len(os), len(ws))
		}
		for i := range ws {
			if ws[i] != os[i] {
				t.Fatalf("%d → %d: a fresh block differs from its shortcut at %d: %g vs %g", tc.in, tc.out, i, os[i], ws[i])
			}
		}
		// With conv2 = 1 everywhere the residual branch is on, and the block is no longer its shortcut.
		if err := NoGrad(func() error { return rb.conv2.weight.Fill_(ts.FloatScalar(1)) }); err != nil {
			t.Fatal(err)
		}
		changed := mustValues(t, rb.forward(f, x))
		same := true
		for i := range ws {
			same = same && changed[i] == ws[i]
		}
		if same {
			t.Errorf("%d → %d: the block ignores its residual branch", tc.in, tc.out)
		}
		s.drop()
		vs.Destroy()
	}
}
