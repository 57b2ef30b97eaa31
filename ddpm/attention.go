package ddpm

import (
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// attention is a multi-head self-attention block over the H×W positions of a feature map, as
// in Ho et al. 2020's U-Net (their AttnBlock, with heads as in Nichol & Dhariwal 2021):
//
//	h = GN(x);  q, k, v = W_qkv·h (1×1 convolution, C → 3C), split into heads of d = C/heads
//	a = softmax(qᵀk / √d) over the positions (Vaswani et al. 2017, eq. 1)
//	out = x + W_o·(v·aᵀ)   (1×1 convolution C → C, zero-initialised: the block starts as the identity)
//
// Its parameters are 2C (GroupNorm) + 3C² + 3C (qkv) + C² + C (output) = 4C² + 6C.
type attention struct {
	norm  groupNorm
	qkv   conv2d // (3C, C, 1, 1)
	out   conv2d // (C, C, 1, 1)
	heads int64
}

func (b *builder) attention(p *nn.Path, channels, heads int64) *attention {
	return &attention{
		norm:  b.groupNorm(p.Sub("norm"), channels),
		qkv:   b.conv2dK(p.Sub("qkv"), channels, 3*channels, 1, 0),
		out:   b.zeroConv(p.Sub("out"), channels, channels, 1),
		heads: heads,
	}
}

// fail records err as the builder's first error.
func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (a *attention) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	size, err := x.Size()
	if err != nil {
		s.err = err
		return nil
	}
	batch, channels, height, width := size[0], size[1], size[2], size[3]
	n, d := height*width, channels/a.heads
	qkv := a.qkv.forward(s, a.norm.forward(s, x)) // (B, 3C, H, W)
	// Each of q, k, v as (B·heads, d, N): channel c of head h is channel h·d + c.
	part := func(i int64) *ts.Tensor {
		if s.failed(qkv) {
			return nil
		}
		p := s.do(qkv.Narrow(1, i*channels, channels, false)) // (B, C, H, W)
		if s.failed(p) {
			return nil
		}
		return s.do(p.Reshape([]int64{batch * a.heads, d, n}, false))
	}
	q, k, v := part(0), part(1), part(2)
	if s.failed(q, k, v) {
		return nil
	}
	qT := s.do(q.Transpose(1, 2, false))                        // (B·heads, N, d)
	scores := s.scale(s.matmul(qT, k), 1/math.Sqrt(float64(d))) // (B·heads, N, N): qᵢ·kⱼ/√d
	if s.failed(scores) {
		return nil
	}
	weights := s.do(scores.Softmax(-1, gotch.Float, false)) // rows sum to 1 over j
	if s.failed(weights) {
		return nil
	}
	weightsT := s.do(weights.Transpose(1, 2, false))
	attended := s.matmul(v, weightsT) // (B·heads, d, N): Σⱼ a_ij·vⱼ at position i
	if s.failed(attended) {
		return nil
	}
	merged := s.do(attended.Reshape([]int64{batch, channels, height, width}, false))
	return s.add(x, a.out.forward(s, merged))
}

func (s *scope) matmul(a, b *ts.Tensor) *ts.Tensor {
	a, b = s.lowp(a), s.lowp(b)
	if s.failed(a, b) {
		return nil
	}
	return s.do(a.Matmul(b, false))
}
