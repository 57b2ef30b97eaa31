package ddpm

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// UNetConfig sizes the U-Net. Its zero values beyond the first four fields are the guide's
// SimpleUNet, so a checkpoint written before those fields existed describes the same network.
type UNetConfig struct {
	ImageChannels int // 1 for MNIST and Fashion-MNIST, 3 for RGB; 0 means 1
	BaseChannels  int // 64 in the guide; a multiple of 8 (GroupNorm uses 8 groups)
	TimeEmbDim    int // 256 in the guide; even
	NumClasses    int // > 0 makes the model class-conditional (plus one "null" class for guidance)

	// ChannelMult gives each level's width as a multiple of BaseChannels; nil is the guide's
	// [1, 2]. Level i works at H/2^i, the bottleneck at H/2^L with the last level's width, so
	// its length L is the depth: at 64×64 a third level ([1, 2, 2]) keeps the bottleneck at 8×8.
	ChannelMult []int `json:",omitempty"`
	// ResBlocks is the number of blocks per level (down, up and bottleneck); 0 means 1. The
	// blocks after a level's first are residual: h + block(h).
	ResBlocks int `json:",omitempty"`
	// Attention lists the resolutions (28, 14, 7 at the guide's depth on 28×28 images: the side
	// of a level's feature maps, see LevelResolutions) after whose every block a self-attention
	// block is added.
	Attention []int `json:",omitempty"`
	// AttentionHeads is the head count of the attention blocks; 0 means DefaultAttentionHeads.
	AttentionHeads int `json:",omitempty"`
	// Activation is "silu" (the guide's, also "") | "gelu" | "relu" | "mish", used everywhere
	// the guide uses SiLU.
	Activation string `json:",omitempty"`
	// Dropout is the probability of dropping a feature in every block, between its two
	// convolutions; it acts in training passes only (ForwardT with train set).
	Dropout float64 `json:",omitempty"`
	// Prediction is what the network's output means: "eps" (also "") or "v" (prediction.go).
	Prediction string `json:",omitempty"`
	// Block is the block type: BlockGuide (also "") or BlockResNet (resblock.go), whose
	// network also normalises before its final convolution (GroupNorm, activation).
	Block string `json:",omitempty"`
	// ImageHeight and ImageWidth are the size of the images the network is built for; 0 means
	// 28 (MNIST). The network is convolutional, so they change no parameter: they fix the side
	// of each level, which Attention names, and must halve exactly once per level (divisible
	// by 2^len(ChannelMult)). A checkpoint records them, so it knows its image shape.
	ImageHeight int `json:",omitempty"`
	ImageWidth  int `json:",omitempty"`
}

// DefaultImageSide is the image side of a UNetConfig that gives none: MNIST's 28.
const DefaultImageSide = 28

// Shape returns the (C, H, W) of the images the network takes and returns, with the defaults
// (1, 28, 28) filled in.
func (c UNetConfig) Shape() (channels, height, width int) {
	return max(c.ImageChannels, 1), cmp.Or(c.ImageHeight, DefaultImageSide), cmp.Or(c.ImageWidth, DefaultImageSide)
}

// DefaultAttentionHeads is the head count of an attention block when UNetConfig gives none.
const DefaultAttentionHeads = 4

// guideChannelMult is the guide's SimpleUNet: C at full resolution, 2C at half and below.
var guideChannelMult = []int{1, 2}

// compact returns c with every value that equals the guide's default replaced by the zero
// value, so that two configs of one network compare equal and the checkpoint state of a guide
// U-Net reads as it always did.
func (c UNetConfig) compact() UNetConfig {
	if slices.Equal(c.ChannelMult, guideChannelMult) || len(c.ChannelMult) == 0 {
		c.ChannelMult = nil
	}
	if c.ResBlocks == 1 {
		c.ResBlocks = 0
	}
	if len(c.Attention) == 0 {
		c.Attention, c.AttentionHeads = nil, 0 // the head count means nothing without attention
	}
	if c.AttentionHeads == DefaultAttentionHeads {
		c.AttentionHeads = 0
	}
	if c.Activation == "silu" {
		c.Activation = ""
	}
	if c.Prediction == PredictEps {
		c.Prediction = ""
	}
	if c.Block == BlockGuide {
		c.Block = ""
	}
	if c.ImageHeight == DefaultImageSide {
		c.ImageHeight = 0
	}
	if c.ImageWidth == DefaultImageSide {
		c.ImageWidth = 0
	}
	return c
}

// Equal reports whether c and o describe the same network (defaults spelt out or not).
func (c UNetConfig) Equal(o UNetConfig) bool { return reflect.DeepEqual(c.compact(), o.compact()) }

// levels is the number of levels of the down (and up) path: len(ChannelMult), 2 for the guide's.
func (c UNetConfig) levels() int { return len(c.widths()) - 1 }

// LevelResolutions returns the side of each level's feature maps, full resolution first, then
// the bottleneck's: 28, 14, 7 for the guide's network, 64, 32, 16, 8 for three levels at 64×64.
// For images that are not square the side is the height. These are the values Attention takes.
func (c UNetConfig) LevelResolutions() []int {
	_, h, _ := c.Shape()
	return levelResolutions(c.levels(), h)
}

// widths returns the channels of each level and of the bottleneck (last), from ChannelMult.
func (c UNetConfig) widths() []int64 {
	mult := c.ChannelMult
	if len(mult) == 0 {
		mult = guideChannelMult
	}
	w := make([]int64, 0, len(mult)+1)
	for _, k := range mult {
		w = append(w, int64(c.BaseChannels*k))
	}
	return append(w, w[len(w)-1])
}

// UNet is the guide's SimpleUNet, generalised to any number of levels, blocks per level and
// optional self-attention; its default configuration is the guide's network exactly:
//
//	x (B,1,28,28) ─ initConv ─ down1 ─┬─ pool ─ down2 ─┬─ pool ─ bottleneck ─ up1 ─ up2 ─ finalConv ─ ε̂ (B,1,28,28)
//	                       (B,C,28,28)│      (B,2C,14,14)│          (B,2C,7,7)  ↑      ↑
//	                                  └──────── skip1 ───┼──────────────────────┼──────┘
//	                                                     └──────── skip2 ───────┘
//
// Each level of the down path (down1, down2, …) runs its blocks and hands its output to the up
// path as a skip connection, then halves the resolution. The bottleneck runs at the lowest
// resolution. Each level of the up path (up1 is the lowest) doubles the resolution with a
// transposed convolution, concatenates the skip of its level and runs its blocks.
//
// The timestep t goes through a sinusoidal embedding and an MLP, and every block adds a learned
// projection of it to its features. A conditional model adds a class embedding to it as well.
// The blocks are the guide's DownBlock, or with Config.Block = BlockResNet Ho et al.'s residual
// block (resblock.go), which also puts a GroupNorm and the activation before finalConv.
type UNet struct {
	Config UNetConfig

	act                activation
	dropout            float64
	timeMLP1, timeMLP2 linear
	classEmbedding     *ts.Tensor // (NumClasses+1, TimeEmbDim); row NumClasses is "no class"
	initConv           conv2d
	down               []level // full resolution first
	bottleneck         level
	up                 []upLevel  // lowest resolution first
	outNorm            *groupNorm // before finalConv, with the activation; resnet blocks only
	finalConv          conv2d
	compute            Compute // precision and layout of its passes (SetCompute, precision.go)
}

// level is the blocks of one resolution, each followed by its attention block when the level
// has attention (attention[j] is nil otherwise).
type level struct {
	blocks    []unetBlock
	attention []*attention
}

// upLevel doubles the resolution, concatenates the skip connection, then runs its level.
type upLevel struct {
	upsample convTranspose2d
	level
}

// NewUNet creates the model's parameters under p. Parameters are named by their place in the
// guide's network (down1.conv1.weight, up1.upsample.bias, …); extra blocks of a level are
// down1_2, down1_3, …, and an attention block sits under its block as down2.attn.
func NewUNet(p *nn.Path, cfg UNetConfig) (*UNet, error) {
	if cfg.BaseChannels < 8 || cfg.BaseChannels%8 != 0 {
		return nil, fmt.Errorf("unet: base channels must be a positive multiple of 8, got %d", cfg.BaseChannels)
	}
	if cfg.TimeEmbDim < 2 || cfg.TimeEmbDim%2 != 0 {
		return nil, fmt.Errorf("unet: time embedding size must be even and >= 2, got %d", cfg.TimeEmbDim)
	}
	if cfg.ImageChannels < 1 {
		cfg.ImageChannels = 1
	}
	if cfg.ImageHeight < 0 || cfg.ImageWidth < 0 {
		return nil, fmt.Errorf("unet: image size must be positive, got %d×%d", cfg.ImageHeight, cfg.ImageWidth)
	}
	cfg = cfg.compact()
	act, err := activationFor(cfg.Activation)
	if err != nil {
		return nil, err
	}
	if !(cfg.Dropout >= 0 && cfg.Dropout < 1) {
		return nil, fmt.Errorf("unet: dropout must be in [0, 1), got %g", cfg.Dropout)
	}
	if cfg.Prediction != "" && cfg.Prediction != PredictV {
		return nil, fmt.Errorf("unet: unknown prediction %q (want %q or %q)", cfg.Prediction, PredictEps, PredictV)
	}
	if cfg.Block != "" && cfg.Block != BlockResNet {
		return nil, fmt.Errorf("unet: unknown block type %q (want %q or %q)", cfg.Block, BlockGuide, BlockResNet)
	}
	if slices.ContainsFunc(cfg.ChannelMult, func(k int) bool { return k < 1 }) {
		return nil, fmt.Errorf("unet: channel multipliers must be >= 1, got %v", cfg.ChannelMult)
	}
	blocks := max(1, cfg.ResBlocks)
	heads := int64(cmp.Or(cfg.AttentionHeads, DefaultAttentionHeads))
	widths := cfg.widths() // per level, then the bottleneck
	levels := len(widths) - 1
	_, height, width := cfg.Shape()
	// Max-pooling halves the side at every level and the transposed convolutions double it back,
	// so the skip connections only line up when both sides divide by 2^levels.
	if height%(1<<levels) != 0 || width%(1<<levels) != 0 {
		return nil, fmt.Errorf("unet: %d×%d images do not halve exactly %d times (once per level); use sides divisible by %d or fewer levels",
			height, width, levels, 1<<levels)
	}
	resolutions := levelResolutions(levels, height)
	for _, r := range cfg.Attention {
		if !slices.Contains(resolutions, r) {
			return nil, fmt.Errorf("unet: no level at resolution %d (have %v)", r, resolutions)
		}
	}
	c, d := int64(cfg.BaseChannels), int64(cfg.TimeEmbDim)
	var b builder
	m := &UNet{Config: cfg, act: act, dropout: cfg.Dropout}
	m.timeMLP1 = b.linear(p.Sub("time_mlp1"), d, d)
	m.timeMLP2 = b.linear(p.Sub("time_mlp2"), d, d)
	if cfg.NumClasses > 0 {
		m.classEmbedding = b.param(p.Sub("class_embedding"), "weight", []int64{int64(cfg.NumClasses) + 1, d}, nn.NewRandnInit(0, 1))
	}
	m.initConv = b.conv2d(p.Sub("init_conv"), int64(cfg.ImageChannels), c, 3)
	// newLevel builds the blocks of one resolution: the first maps in to out channels, the
	// others out to out (guide blocks after the first as h + block(h)).
	newLevel := func(name string, resolution int, in, out int64) level {
		attend := slices.Contains(cfg.Attention, resolution)
		var lv level
		for j := range blocks {
			bp := p.Sub(blockName(name, j))
			if j > 0 {
				in = out
			}
			lv.blocks = append(lv.blocks, b.newBlock(cfg.Block, bp, j, in, out, d))
			var a *attention
			if attend {
				if out%heads != 0 {
					b.fail(fmt.Errorf("%s: %d attention heads do not divide %d channels", name, heads, out))
				}
				a = b.attention(bp.Sub("attn"), out, heads)
			}
			lv.attention = append(lv.attention, a)
		}
		return lv
	}
	in := c
	for i := range levels {
		m.down = append(m.down, newLevel(fmt.Sprintf("down%d", i+1), resolutions[i], in, widths[i]))
		in = widths[i]
	}
	m.bottleneck = newLevel("bottleneck", resolutions[levels], widths[levels], widths[levels])
	x := widths[levels] // channels coming up from below
	for k := range levels {
		i := levels - 1 - k // the level this up block returns to
		name := fmt.Sprintf("up%d", k+1)
		u := upLevel{upsample: b.convTranspose2d(p.Sub(name).Sub("upsample"), x, x)}
		u.level = newLevel(name, resolutions[i], x+widths[i], widths[i]) // concat the skip (widths[i])
		m.up = append(m.up, u)
		x = widths[i]
	}
	if cfg.Block == BlockResNet {
		// Pre-activation blocks hand on their sum unnormalised: Ho et al. end with GN and SiLU,
		// and a last convolution that starts at zero (their conv_out), so ε̂ starts at 0.
		n := b.groupNorm(p.Sub("out_norm"), widths[0])
		m.outNorm = &n
		m.finalConv = b.zeroConv(p.Sub("final_conv"), widths[0], int64(cfg.ImageChannels), 1)
	} else {
		m.finalConv = b.conv2dK(p.Sub("final_conv"), widths[0], int64(cfg.ImageChannels), 1, 0)
	}
	if b.err != nil {
		return nil, fmt.Errorf("unet: create parameters: %w", b.err)
	}
	return m, nil
}

// levelResolutions is the side of each level of a U-Net with levels levels on images of the
// given side, then the bottleneck's: 28, 14, 7 for the guide's.
func levelResolutions(levels, side int) []int {
	r := make([]int, levels+1)
	for i := range r {
		r[i] = side >> i
	}
	return r
}

// blockName is the parameter path of block j of a level: the level's name for the first (as
// in the guide's network), then name_2, name_3, ….
func blockName(name string, j int) string {
	if j == 0 {
		return name
	}
	return fmt.Sprintf("%s_%d", name, j+1)
}

// Forward predicts ε̂ = ε_θ(x_t, t[, y]) (or v̂, for a v-prediction model) in evaluation mode:
// no dropout, so the output is a deterministic function of the weights. See ForwardT.
func (m *UNet) Forward(x, t, y *ts.Tensor) (*ts.Tensor, error) { return m.ForwardT(x, t, y, false) }

// ForwardT runs the network; train turns dropout on (training passes only). x is
// (B,C,H,W) float with the config's Shape, t is (B) int64 in 0..T-1 and y is (B) int64 class labels (NumClasses
// means "no class"), or nil for unconditional models. The returned tensor is owned by the
// caller.
func (m *UNet) ForwardT(x, t, y *ts.Tensor, train bool) (*ts.Tensor, error) {
	s := scope{compute: m.compute}
	defer s.drop()
	f := forwardPass{s: &s, net: m, train: train}

	// Time embedding: sinusoidal features, then an MLP (Linear, SiLU, Linear).
	emb := s.sinusoidalEmbedding(t, m.Config.TimeEmbDim) // (B, D)
	emb = m.timeMLP2.forward(&s, m.act(&s, m.timeMLP1.forward(&s, emb)))
	if m.classEmbedding != nil {
		if y == nil {
			return nil, fmt.Errorf("unet: conditional model needs class labels")
		}
		// Class conditioning: add a learned class vector to the time embedding (the guide's hint).
		emb = s.add(emb, s.do(ts.Embedding(m.classEmbedding, y, -1, false, false)))
	}
	f.emb = emb

	h := m.initConv.forward(&s, x) // (B, base, H, W)
	skips := make([]*ts.Tensor, len(m.down))
	for i, lv := range m.down {
		skips[i] = f.level(lv, h) // (B, base·mult[i], H/2^i, W/2^i)
		h = f.maxPool2(skips[i])  // halve the resolution
	}
	h = f.level(m.bottleneck, h) // (B, base·mult[L−1], H/2^L, W/2^L)
	for k, u := range m.up {
		skip := skips[len(skips)-1-k]
		h = u.upsample.forward(&s, h, !train) // double the resolution
		// In a bf16 pass h is bf16 and skip fp32. Casting h first is exact (fp32 holds every
		// bf16) and it spares cat its scalar conversion loop for mixed dtypes (4.3 ms at
		// 64 × 128 × 28 × 28, against about 1 ms when both halves have one dtype).
		h = f.level(u.level, s.cat(1, s.fp32(h), skip)) // (B, base·mult[i], H/2^i, W/2^i)
	}
	if m.outNorm != nil {
		h = m.act(&s, m.outNorm.forward(&s, h))
	}
	out := s.fp32(m.finalConv.forward(&s, h)) // (B, C, H, W), fp32 for the loss and the samplers
	if s.err != nil {
		return nil, fmt.Errorf("unet forward: %w", s.err)
	}
	return s.release(out), nil
}

// forwardPass holds what every block of one forward pass needs.
type forwardPass struct {
	s     *scope
	net   *UNet
	emb   *ts.Tensor // (B, D) time (and class) embedding
	train bool
}

// level runs a level's blocks, each followed by its attention block if it has one.
func (f forwardPass) level(lv level, h *ts.Tensor) *ts.Tensor {
	for j, b := range lv.blocks {
		h = b.forward(f, h)
		if a := lv.attention[j]; a != nil {
			h = a.forward(f.s, h)
		}
	}
	return h
}

// sinusoidalEmbedding maps integer timesteps (B) to (B, dim) features: for i < dim/2,
// emb[:, i] = sin(t·ω_i) and emb[:, dim/2+i] = cos(t·ω_i), with ω_i = 10000^(−i/(dim/2−1))
// (Vaswani et al. 2017, as used by Ho et al.).
func (s *scope) sinusoidalEmbedding(t *ts.Tensor, dim int) *ts.Tensor {
	if s.failed(t) {
		return nil
	}
	half := dim / 2
	freqs := make([]float32, half)
	for i := range freqs {
		denom := math.Max(float64(half-1), 1)
		freqs[i] = float32(math.Exp(-math.Log(10000) * float64(i) / denom))
	}
	device, err := t.Device()
	if err != nil {
		s.err = err
		return nil
	}
	omega := s.fromFloat32(freqs, []int64{1, int64(half)}, device)
	tf := s.do(t.Totype(gotch.Float, false))
	angles := s.mul(s.view(tf, -1, 1), omega) // (B, half)
	if s.failed(angles) {
		return nil
	}
	return s.cat(1, s.do(angles.Sin(false)), s.do(angles.Cos(false)))
}

// maxPool2 halves the resolution with a 2×2 max pool (floor mode: an odd last row or column
// is dropped). An NCHW inference pass takes the elementwise maximum of the four strided views
// x[:, :, a::2, b::2] instead: the same values to the bit, since a maximum is exact, in a fifth
// of the time of libtorch 2.1's NCHW max-pool kernel, which also computes the argmax of every
// window (BenchmarkMaxPool2: 3.4–3.9 against 17.6–17.8 ms for the U-Net's two pools at base 64
// and 64 images). Training keeps max_pool2d: its backward sends a tie's gradient to one input
// where maximum's splits it, so stored runs train again to the bit. Channels-last keeps it too
// (its kernel is vectorized).
func (f forwardPass) maxPool2(x *ts.Tensor) *ts.Tensor {
	s := f.s
	if s.failed(x) {
		return nil
	}
	if f.train || s.compute.ChannelsLast {
		return s.do(x.MaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, false))
	}
	size, err := x.Size()
	if err != nil {
		s.err = err
		return nil
	}
	h, w := size[2]/2*2, size[3]/2*2     // the rows and columns that windows cover
	tap := func(a, b int64) *ts.Tensor { // x[:, :, a:h:2, b:w:2]
		rows := s.do(x.Slice(2, []int64{a}, []int64{h}, 2, false))
		if s.failed(rows) {
			return nil
		}
		return s.do(rows.Slice(3, []int64{b}, []int64{w}, 2, false))
	}
	maximum := func(a, b *ts.Tensor) *ts.Tensor {
		if s.failed(a, b) {
			return nil
		}
		return s.do(a.Maximum(b, false))
	}
	return maximum(maximum(tap(0, 0), tap(0, 1)), maximum(tap(1, 0), tap(1, 1)))
}

// block is the guide's DownBlock (also used as the bottleneck), with SiLU as the default
// activation act: h = act(GN(conv1(x))) + W_t·act(emb); out = act(GN(conv2(dropout(h)))).
type block struct {
	conv1, conv2 conv2d
	norm1, norm2 groupNorm
	timeMLP      linear
}

func (b block) forward(f forwardPass, x *ts.Tensor) *ts.Tensor {
	s, act := f.s, f.net.act
	h := act(s, b.norm1.forward(s, b.conv1.forward(s, x)))
	h = f.addTime(b.timeMLP, h)
	if f.train && f.net.dropout > 0 {
		h = s.dropout(h, f.net.dropout)
	}
	return act(s, b.norm2.forward(s, b.conv2.forward(s, h)))
}

// addTime injects the timestep into h: the block's projection timeMLP of act(emb), (B, C_out),
// added to h broadcast over H×W.
func (f forwardPass) addTime(timeMLP linear, h *ts.Tensor) *ts.Tensor {
	s := f.s
	t := timeMLP.forward(s, f.net.act(s, f.emb))
	if s.failed(t) {
		return nil
	}
	size, err := t.Size()
	if err != nil {
		s.err = err
		return nil
	}
	return s.add(h, s.view(t, size[0], size[1], 1, 1))
}

// Layers hold only parameters; their forward methods are the matching libtorch functions.

type linear struct{ weight, bias *ts.Tensor } // weight (out, in)

func (l linear) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	x, w, b := s.lowp(x), s.lowp(l.weight), s.lowp(l.bias) // bf16 in a bf16 pass (precision.go)
	if s.failed(x, w, b) {
		return nil
	}
	return s.do(ts.Linear(x, w, b))
}

type conv2d struct {
	weight, bias *ts.Tensor // (out, in, k, k), (out)
	padding      int64
}

func (c conv2d) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	x, w, b := s.convIn(x), s.convIn(c.weight), s.lowp(c.bias) // bf16 and/or NHWC (precision.go)
	if s.failed(x, w, b) {
		return nil
	}
	return s.do(ts.Conv2d(x, w, b, []int64{1, 1}, []int64{c.padding, c.padding}, []int64{1, 1}, 1))
}

type convTranspose2d struct{ weight, bias *ts.Tensor } // (in, out, 2, 2), stride 2

// forward is the stride-2 transposed convolution. In a bf16 or channels-last pass it computes
// it as a sub-pixel convolution (subPixel). In the default fp32 NCHW pass it keeps libtorch's
// op, so that stored runs train and sample again to the bit; with inference set (sampling,
// evaluation) it then adds the bias as a broadcast add of its own: oneDNN adds a transposed
// convolution's bias with reference code (ref_deconvolution_fwd_t), and the separate add is
// the same arithmetic (one rounding of conv + b, so the output is equal to the bit) in 0.5–0.7×
// the op's time (BENCHMARKS.md). Training keeps the fused op: the bias's gradient would
// then be summed in another order, and a stored run would no longer train again to the bit.
func (c convTranspose2d) forward(s *scope, x *ts.Tensor, inference bool) *ts.Tensor {
	if s.compute.Precision == BF16 || s.compute.ChannelsLast {
		return c.subPixel(s, x)
	}
	x, w, b := s.convIn(x), s.convIn(c.weight), s.lowp(c.bias)
	if s.failed(x, w, b) {
		return nil
	}
	stride, padding, outputPadding, dilation := []int64{2, 2}, []int64{0, 0}, []int64{0, 0}, []int64{1, 1}
	if !inference || s.compute.Precision == BF16 {
		return s.do(ts.ConvTranspose2d(x, w, b, stride, padding, outputPadding, 1, dilation))
	}
	noBias := s.keep(ts.NewTensor()) // an undefined tensor: libtorch's "no bias"
	y := s.do(ts.ConvTranspose2d(x, w, noBias, stride, padding, outputPadding, 1, dilation))
	return s.add(y, s.view(b, 1, -1, 1, 1))
}

// subPixel is the same stride-2, 2×2 transposed convolution as a 1×1 convolution to 4·out
// channels followed by a pixel shuffle (Shi et al. 2016, "sub-pixel convolution"). The
// kernel's 2×2 taps do not overlap at stride 2, so every output pixel is one dot product over
// the input channels:
//
//	y[n, o, 2h+a, 2w+b] = bias[o] + Σ_i x[n, i, h, w] · W[i, o, a, b]
//
// which is the 1×1 convolution with weight W'[4o + 2a + b, i] = W[i, o, a, b] and bias
// b'[4o + 2a + b] = bias[o], then PixelShuffle(2), which moves channel 4o + 2a + b to
// (o, 2h+a, 2w+b). The values are the transposed convolution's up to the order of the sum, and
// the ops are oneDNN's fastest: its bf16 deconvolution kernel is 7–20× slower than this on an
// AVX512-BF16 CPU (BENCHMARKS.md), and in fp32 channels-last this is 2× faster.
func (c convTranspose2d) subPixel(s *scope, x *ts.Tensor) *ts.Tensor {
	size, err := c.weight.Size() // (in, out, 2, 2)
	if err != nil {
		s.err = fmt.Errorf("unet: upsample weight: %w", err)
		return nil
	}
	in, out := size[0], size[1]
	taps := s.do(c.weight.Permute([]int64{1, 2, 3, 0}, false)) // (out, a, b, in)
	if s.failed(taps) {
		return nil
	}
	w1 := s.do(taps.Reshape([]int64{4 * out, in, 1, 1}, false)) // W'[4o + 2a + b, i]
	b1 := s.view(c.bias, out, 1)
	if s.failed(w1, b1) {
		return nil
	}
	b4 := s.do(b1.Expand([]int64{out, 4}, false, false))
	if s.failed(b4) {
		return nil
	}
	b4 = s.do(b4.Reshape([]int64{4 * out}, false)) // b'[4o + 2a + b] = bias[o]
	if s.failed(b4) {
		return nil
	}
	x, w1, b4 = s.convIn(x), s.convIn(w1), s.lowp(b4)
	if s.failed(x, w1, b4) {
		return nil
	}
	y := s.do(ts.Conv2d(x, w1, b4, []int64{1, 1}, []int64{0, 0}, []int64{1, 1}, 1))
	if s.failed(y) {
		return nil
	}
	return s.do(y.PixelShuffle(2, false))
}

type groupNorm struct{ weight, bias *ts.Tensor }

// groupNormGroups is the guide's GroupNorm(8, C).
const groupNormGroups = 8

func (g groupNorm) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	x = s.fp32(x) // normalisation statistics in fp32, also in a bf16 pass
	if s.failed(x) {
		return nil
	}
	return s.do(ts.GroupNorm(x, groupNormGroups, g.weight, g.bias, 1e-5, false))
}

// builder creates parameters with PyTorch's default initialisation (uniform in ±1/√fan_in for
// weights and biases of linear and convolution layers), keeping the first error.
type builder struct{ err error }

func (b *builder) param(p *nn.Path, name string, shape []int64, init nn.Init) *ts.Tensor {
	if b.err != nil {
		return nil
	}
	t, err := p.NewVar(name, shape, init)
	if err != nil {
		b.err = fmt.Errorf("%s: %w", name, err)
	}
	return t
}

func (b *builder) uniform(p *nn.Path, name string, shape []int64, fanIn int64) *ts.Tensor {
	bound := 1 / math.Sqrt(float64(fanIn))
	return b.param(p, name, shape, nn.NewUniformInit(-bound, bound))
}

func (b *builder) linear(p *nn.Path, in, out int64) linear {
	return linear{weight: b.uniform(p, "weight", []int64{out, in}, in), bias: b.uniform(p, "bias", []int64{out}, in)}
}

func (b *builder) conv2d(p *nn.Path, in, out, k int64) conv2d { return b.conv2dK(p, in, out, k, k/2) }

func (b *builder) conv2dK(p *nn.Path, in, out, k, padding int64) conv2d {
	fanIn := in * k * k
	return conv2d{weight: b.uniform(p, "weight", []int64{out, in, k, k}, fanIn), bias: b.uniform(p, "bias", []int64{out}, fanIn), padding: padding}
}

// zeroConv is a k×k convolution (padding k/2) with zero weights and bias: Ho et al.'s layers
// whose initialisation scale is 0 (an attention block's output projection, a residual
// block's second convolution), so that the block starts as its identity path.
func (b *builder) zeroConv(p *nn.Path, in, out, k int64) conv2d {
	zero := nn.NewConstInit(0)
	return conv2d{weight: b.param(p, "weight", []int64{out, in, k, k}, zero), bias: b.param(p, "bias", []int64{out}, zero), padding: k / 2}
}

func (b *builder) convTranspose2d(p *nn.Path, in, out int64) convTranspose2d {
	fanIn := out * 2 * 2 // PyTorch computes fan-in of a transposed conv from weight.size(1)·k·k
	return convTranspose2d{weight: b.uniform(p, "weight", []int64{in, out, 2, 2}, fanIn), bias: b.uniform(p, "bias", []int64{out}, fanIn)}
}

func (b *builder) groupNorm(p *nn.Path, channels int64) groupNorm {
	return groupNorm{weight: b.param(p, "weight", []int64{channels}, nn.NewConstInit(1)), bias: b.param(p, "bias", []int64{channels}, nn.NewConstInit(0))}
}

func (b *builder) block(p *nn.Path, in, out, embDim int64) block {
	return block{
		conv1: b.conv2d(p.Sub("conv1"), in, out, 3), conv2: b.conv2d(p.Sub("conv2"), out, out, 3),
		norm1: b.groupNorm(p.Sub("norm1"), out), norm2: b.groupNorm(p.Sub("norm2"), out),
		timeMLP: b.linear(p.Sub("time_mlp"), embDim, out),
	}
}

// ParamCount is the number of trainable scalars in vs.
func ParamCount(vs *nn.VarStore) int64 {
	var n int64
	for _, t := range vs.TrainableVariables() {
		n += int64(t.Numel())
	}
	return n
}
