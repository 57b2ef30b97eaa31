package ddpm

import (
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// Block types of UNetConfig.Block.
const (
	// BlockGuide is the guide's DownBlock: conv → GroupNorm → SiLU twice, the timestep added
	// between, no residual path of its own (the default, also "").
	BlockGuide = "guide"
	// BlockResNet is the residual block of Ho et al. 2020 (their diffusion_tf resnet_block,
	// after Zagoruyko & Komodakis's wide ResNet): pre-activation, a shortcut around both
	// convolutions, and the second convolution initialised to zero.
	BlockResNet = "resnet"
)

// unetBlock is one block of a U-Net level: it maps (B, in, H, W) to (B, out, H, W), reading
// the pass's timestep embedding.
type unetBlock interface {
	forward(f forwardPass, x *ts.Tensor) *ts.Tensor
}

// residual wraps a guide block that maps out to out channels as h + block(h): the extra
// blocks of a level with ResBlocks > 1 start near the identity path.
type residual struct{ block block }

func (r residual) forward(f forwardPass, x *ts.Tensor) *ts.Tensor {
	return f.s.add(x, r.block.forward(f, x))
}

// resBlock is Ho et al. 2020's residual block:
//
//	h = conv1(act(GN(x))) + W_t·act(emb)
//	out = shortcut(x) + conv2(dropout(act(GN(h))))
//
// where the shortcut is the identity when the channels match and a 1×1 convolution when they
// do not. conv2 starts at zero (their init_scale = 0), so every block starts as its shortcut
// and the network as the path of shortcuts.
type resBlock struct {
	norm1, norm2 groupNorm
	conv1, conv2 conv2d
	timeMLP      linear
	shortcut     *conv2d // nil: the identity
}

func (b resBlock) forward(f forwardPass, x *ts.Tensor) *ts.Tensor {
	s, act := f.s, f.net.act
	h := b.conv1.forward(s, act(s, b.norm1.forward(s, x)))
	h = act(s, b.norm2.forward(s, f.addTime(b.timeMLP, h)))
	if f.train && f.net.dropout > 0 {
		h = s.dropout(h, f.net.dropout)
	}
	h = b.conv2.forward(s, h)
	if b.shortcut != nil {
		x = b.shortcut.forward(s, x)
	}
	return s.add(x, h)
}

// resBlock creates a residual block from in to out channels under p: the guide block's
// parameter names (conv1, conv2, norm1, norm2, time_mlp) with norm1 over the input's
// channels, and shortcut for the 1×1 convolution when in ≠ out.
func (b *builder) resBlock(p *nn.Path, in, out, embDim int64) resBlock {
	rb := resBlock{
		norm1: b.groupNorm(p.Sub("norm1"), in), conv1: b.conv2d(p.Sub("conv1"), in, out, 3),
		timeMLP: b.linear(p.Sub("time_mlp"), embDim, out),
		norm2:   b.groupNorm(p.Sub("norm2"), out), conv2: b.zeroConv(p.Sub("conv2"), out, out, 3),
	}
	if in != out {
		sc := b.conv2dK(p.Sub("shortcut"), in, out, 1, 0)
		rb.shortcut = &sc
	}
	return rb
}

// newBlock creates block j of a level in the given block type: the guide's block (residual
// after the first, see residual) or a resBlock.
func (b *builder) newBlock(kind string, p *nn.Path, j int, in, out, embDim int64) unetBlock {
	switch {
	case kind == BlockResNet:
		return b.resBlock(p, in, out, embDim)
	case j > 0:
		return residual{b.block(p, in, out, embDim)}
	default:
		return b.block(p, in, out, embDim)
	}
}
