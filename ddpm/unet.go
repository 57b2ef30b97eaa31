package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// UNetConfig sizes the guide's SimpleUNet.
type UNetConfig struct {
	ImageChannels int // 1 for MNIST and Fashion-MNIST
	BaseChannels  int // 64 in the guide; a multiple of 8 (GroupNorm uses 8 groups)
	TimeEmbDim    int // 256 in the guide; even
	NumClasses    int // > 0 makes the model class-conditional (plus one "null" class for guidance)
}

// UNet is the guide's SimpleUNet: a timestep-conditioned U-Net that predicts the noise ε in x_t.
//
//	x (B,1,28,28) ─ initConv ─ down1 ─┬─ pool ─ down2 ─┬─ pool ─ bottleneck ─ up1 ─ up2 ─ finalConv ─ ε̂ (B,1,28,28)
//	                       (B,C,28,28)│      (B,2C,14,14)│          (B,2C,7,7)  ↑      ↑
//	                                  └──────── skip1 ───┼──────────────────────┼──────┘
//	                                                     └──────── skip2 ───────┘
//
// The timestep t goes through a sinusoidal embedding and an MLP, and every block adds a learned
// projection of it to its features. A conditional model adds a class embedding to it as well.
type UNet struct {
	Config UNetConfig

	timeMLP1, timeMLP2 linear
	classEmbedding     *ts.Tensor // (NumClasses+1, TimeEmbDim); row NumClasses is "no class"
	initConv           conv2d
	down1, down2       block
	bottleneck         block
	up1, up2           upBlock
	finalConv          conv2d
}

// NewUNet creates the model's parameters under p.
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
	c, d := int64(cfg.BaseChannels), int64(cfg.TimeEmbDim)
	var b builder
	m := &UNet{Config: cfg}
	m.timeMLP1 = b.linear(p.Sub("time_mlp1"), d, d)
	m.timeMLP2 = b.linear(p.Sub("time_mlp2"), d, d)
	if cfg.NumClasses > 0 {
		m.classEmbedding = b.param(p.Sub("class_embedding"), "weight", []int64{int64(cfg.NumClasses) + 1, d}, nn.NewRandnInit(0, 1))
	}
	m.initConv = b.conv2d(p.Sub("init_conv"), int64(cfg.ImageChannels), c, 3)
	m.down1 = b.block(p.Sub("down1"), c, c, d)
	m.down2 = b.block(p.Sub("down2"), c, 2*c, d)
	m.bottleneck = b.block(p.Sub("bottleneck"), 2*c, 2*c, d)
	m.up1 = b.upBlock(p.Sub("up1"), 2*c, 2*c, 2*c, d) // 7→14, concat skip2 (2C)
	m.up2 = b.upBlock(p.Sub("up2"), 2*c, c, c, d)     // 14→28, concat skip1 (C)
	m.finalConv = b.conv2dK(p.Sub("final_conv"), c, int64(cfg.ImageChannels), 1, 0)
	if b.err != nil {
		return nil, fmt.Errorf("unet: create parameters: %w", b.err)
	}
	return m, nil
}

// Forward predicts ε̂ = ε_θ(x_t, t[, y]). x is (B,C,28,28) float, t is (B) int64 in 0..T-1 and y is
// (B) int64 class labels (NumClasses means "no class"), or nil for unconditional models.
// The returned tensor is owned by the caller.
func (m *UNet) Forward(x, t, y *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()

	// Time embedding: sinusoidal features, then an MLP (Linear, SiLU, Linear).
	emb := s.sinusoidalEmbedding(t, m.Config.TimeEmbDim) // (B, D)
	emb = m.timeMLP2.forward(&s, s.silu(m.timeMLP1.forward(&s, emb)))
	if m.classEmbedding != nil {
		if y == nil {
			return nil, fmt.Errorf("unet: conditional model needs class labels")
		}
		// Class conditioning: add a learned class vector to the time embedding (the guide's hint).
		emb = s.add(emb, s.do(ts.Embedding(m.classEmbedding, y, -1, false, false)))
	}

	h := m.initConv.forward(&s, x)       // (B, C, 28, 28)
	skip1 := m.down1.forward(&s, h, emb) // (B, C, 28, 28)
	h = s.maxPool2(skip1)                // (B, C, 14, 14)
	skip2 := m.down2.forward(&s, h, emb) // (B, 2C, 14, 14)
	h = s.maxPool2(skip2)                // (B, 2C, 7, 7)
	h = m.bottleneck.forward(&s, h, emb) // (B, 2C, 7, 7)
	h = m.up1.forward(&s, h, skip2, emb) // (B, 2C, 14, 14)
	h = m.up2.forward(&s, h, skip1, emb) // (B, C, 28, 28)
	out := m.finalConv.forward(&s, h)    // (B, 1, 28, 28)
	if s.err != nil {
		return nil, fmt.Errorf("unet forward: %w", s.err)
	}
	return s.release(out), nil
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

// maxPool2 halves the resolution with a 2×2 max pool.
func (s *scope) maxPool2(x *ts.Tensor) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	return s.do(x.MaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, false))
}

// block is the guide's DownBlock (also used as the bottleneck):
// h = SiLU(GN(conv1(x))) + W_t·SiLU(emb); out = SiLU(GN(conv2(h))).
type block struct {
	conv1, conv2 conv2d
	norm1, norm2 groupNorm
	timeMLP      linear
}

func (b block) forward(s *scope, x, emb *ts.Tensor) *ts.Tensor {
	h := s.silu(b.norm1.forward(s, b.conv1.forward(s, x)))
	// Inject the timestep: project the embedding to this block's channels, broadcast over H×W.
	t := b.timeMLP.forward(s, s.silu(emb)) // (B, C_out)
	if s.failed(t) {
		return nil
	}
	size, err := t.Size()
	if err != nil {
		s.err = err
		return nil
	}
	h = s.add(h, s.view(t, size[0], size[1], 1, 1))
	return s.silu(b.norm2.forward(s, b.conv2.forward(s, h)))
}

// upBlock is the guide's UpBlock: upsample ×2 with a transposed convolution, concatenate the
// skip connection on channels, then a block.
type upBlock struct {
	upsample convTranspose2d
	block
}

func (u upBlock) forward(s *scope, x, skip, emb *ts.Tensor) *ts.Tensor {
	h := u.upsample.forward(s, x)
	return u.block.forward(s, s.cat(1, h, skip), emb)
}

// Layers hold only parameters; their forward methods are the matching libtorch functions.

type linear struct{ weight, bias *ts.Tensor } // weight (out, in)

func (l linear) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	return s.do(ts.Linear(x, l.weight, l.bias))
}

type conv2d struct {
	weight, bias *ts.Tensor // (out, in, k, k), (out)
	padding      int64
}

func (c conv2d) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	return s.do(ts.Conv2d(x, c.weight, c.bias, []int64{1, 1}, []int64{c.padding, c.padding}, []int64{1, 1}, 1))
}

type convTranspose2d struct{ weight, bias *ts.Tensor } // (in, out, 2, 2), stride 2

func (c convTranspose2d) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	return s.do(ts.ConvTranspose2d(x, c.weight, c.bias, []int64{2, 2}, []int64{0, 0}, []int64{0, 0}, 1, []int64{1, 1}))
}

type groupNorm struct{ weight, bias *ts.Tensor }

// groupNormGroups is the guide's GroupNorm(8, C).
const groupNormGroups = 8

func (g groupNorm) forward(s *scope, x *ts.Tensor) *ts.Tensor {
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

// upBlock: x has xChannels, the skip has skipChannels; the block maps their concatenation to out.
func (b *builder) upBlock(p *nn.Path, xChannels, skipChannels, out, embDim int64) upBlock {
	return upBlock{
		upsample: b.convTranspose2d(p.Sub("upsample"), xChannels, xChannels),
		block:    b.block(p, xChannels+skipChannels, out, embDim),
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
