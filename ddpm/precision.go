package ddpm

// Mixed precision and memory layout of a U-Net pass.
//
// gotch v0.9.1 does not wrap libtorch's CPU autocast, so a bf16 pass casts explicitly, with
// the op lists of PyTorch's autocast (torch.amp docs, "Ops that can autocast to float32"):
//
//	weights, Adam's moments, the EMA     fp32 always (the master copy; Adam updates it)
//	convolution, linear, attention q·k, a·v  inputs and weights cast to bf16 at the op
//	GroupNorm, softmax, the loss          input cast back to fp32 first
//	elementwise sums of bf16 and fp32     promoted to fp32 by libtorch (a residual, emb + class)
//
// The casts are differentiable ops, so backward takes each gradient through its cast back to
// the fp32 weight it came from: the weights' gradients are fp32.
//
// Channels-last (NHWC strides) is a layout, not a change of values. gotch drops the
// memory_format argument of contiguous, so ChannelsLast uses the permute, contiguous, permute
// trick, and a pass with Compute.ChannelsLast applies it to every convolution's input and
// weight; libtorch's oneDNN convolutions keep a channels-last input's layout in their output.

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Precision names the arithmetic of a U-Net pass's convolutions and matrix products.
type Precision string

// The precisions a UNet computes in.
const (
	FP32 Precision = "fp32" // float32 throughout (also "")
	BF16 Precision = "bf16" // bf16 convolutions and matmuls, fp32 for the rest (see above)
)

// ParsePrecision returns the Precision named s: "fp32" (also "") or "bf16".
func ParsePrecision(s string) (Precision, error) {
	switch Precision(s) {
	case FP32, "":
		return FP32, nil
	case BF16:
		return BF16, nil
	}
	return "", fmt.Errorf("unknown precision %q (want %q or %q)", s, FP32, BF16)
}

// Compute says how a UNet computes its passes. It changes the arithmetic and the memory
// layout, not the network: it is no part of UNetConfig, so checkpoints, Equal and run hashes
// ignore it. The zero Compute is fp32 in libtorch's default (NCHW) layout.
type Compute struct {
	Precision Precision
	// ChannelsLast lays every convolution's input and weight out channels-last (ChannelsLast)
	// before the convolution; a layout for speed, with the same values.
	ChannelsLast bool
}

// String describes c for logs: "fp32", "bf16", "bf16, channels-last".
func (c Compute) String() string {
	p := string(c.Precision)
	if p == "" {
		p = string(FP32)
	}
	if c.ChannelsLast {
		p += ", channels-last"
	}
	return p
}

// SetCompute makes every later pass of m compute as c.
func (m *UNet) SetCompute(c Compute) error {
	p, err := ParsePrecision(string(c.Precision))
	if err != nil {
		return fmt.Errorf("unet: %w", err)
	}
	c.Precision = p
	m.compute = c
	return nil
}

// Compute reports how m's passes compute (SetCompute).
func (m *UNet) Compute() Compute { return m.compute }

// lowp casts x to the dtype of the pass's convolutions and matmuls: bf16 in a BF16 pass. In
// an fp32 pass, or when x already has that dtype, it returns x itself.
func (s *scope) lowp(x *ts.Tensor) *ts.Tensor {
	if s.compute.Precision != BF16 {
		return x
	}
	return s.toDType(x, gotch.BFloat16)
}

// fp32 casts x back to float32, before GroupNorm and softmax and for the network's output (so
// the loss and the samplers compute in fp32); x itself when it is float32 already.
func (s *scope) fp32(x *ts.Tensor) *ts.Tensor { return s.toDType(x, gotch.Float) }

func (s *scope) toDType(x *ts.Tensor, dtype gotch.DType) *ts.Tensor {
	if s.failed(x) || x.DType() == dtype {
		return x
	}
	return s.do(x.Totype(dtype, false))
}

// convIn prepares a convolution's input or weight: lowp, then channels-last in a ChannelsLast
// pass (a no-op for a tensor that is already channels-last, as the output of a channels-last
// convolution is).
func (s *scope) convIn(x *ts.Tensor) *ts.Tensor {
	x = s.lowp(x)
	if !s.compute.ChannelsLast || s.failed(x) {
		return x
	}
	cl, err := isChannelsLast(x)
	if err != nil {
		s.err = err
		return nil
	}
	if cl {
		return x
	}
	return s.do(channelsLast(s, x))
}

// ChannelsLast returns x (N, C, H, W) with the same shape and values laid out channels-last,
// strides (H·W·C, 1, W·C, C), like PyTorch's x.contiguous(memory_format=torch.channels_last):
// it permutes to (N, H, W, C), makes that contiguous and permutes back, a view. The caller
// owns the result; x is left as it is.
func ChannelsLast(x *ts.Tensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	out, err := channelsLast(&s, x)
	if err != nil {
		return nil, err
	}
	return out, nil // not registered in s: the caller owns it
}

// channelsLast is ChannelsLast with its intermediate tensors kept in s; the result is not.
func channelsLast(s *scope, x *ts.Tensor) (*ts.Tensor, error) {
	if n := x.Dim(); n != 4 {
		return nil, fmt.Errorf("channels-last: want a 4-D (N, C, H, W) tensor, got %d dimensions", n)
	}
	nhwc := s.do(x.Permute([]int64{0, 2, 3, 1}, false)) // (N, H, W, C), a view with NCHW strides
	if s.failed(nhwc) {
		return nil, s.err
	}
	dense := s.do(nhwc.Contiguous(false)) // copied so that C varies fastest
	if s.failed(dense) {
		return nil, s.err
	}
	nchw, err := dense.Permute([]int64{0, 3, 1, 2}, false) // (N, C, H, W) again, NHWC in memory
	if err != nil {
		return nil, err
	}
	// With a dimension of size 1 (one channel: the U-Net's input and first weight; 1×1
	// kernels) nhwc may already count as contiguous, and then Contiguous copies nothing and nchw
	// keeps x's strides. The memory is NHWC's all the same (C = 1: n·HW + h·W + w either way),
	// but libtorch picks a convolution's layout from the strides, so such an input would run
	// as NCHW, and its output with it, until the next convolution copied it back. AsStrided
	// gives the same memory the exact strides that torch's channels_last gives it.
	cl, err := isChannelsLast(nchw)
	if err == nil && cl {
		return nchw, nil
	}
	s.keep(nchw) // a view to re-stride: freed with s
	if err != nil {
		return nil, err
	}
	size, err := nchw.Size()
	if err != nil {
		return nil, err
	}
	return nchw.AsStrided(size, channelsLastStrides(size), nil, false)
}

// isChannelsLast reports whether the 4-D tensor x has the strides of a dense channels-last
// layout, (H·W·C, 1, W·C, C).
func isChannelsLast(x *ts.Tensor) (bool, error) {
	if x.Dim() != 4 {
		return false, nil
	}
	size, err := x.Size()
	if err != nil {
		return false, err
	}
	stride, err := x.Stride()
	if err != nil {
		return false, err
	}
	return slices.Equal(stride, channelsLastStrides(size)), nil
}

// channelsLastStrides returns the strides of a dense channels-last (N, C, H, W) tensor of
// the given size: (H·W·C, 1, W·C, C).
func channelsLastStrides(size []int64) []int64 {
	c, h, w := size[1], size[2], size[3]
	return []int64{h * w * c, 1, w * c, c}
}

// BF16CPUFlags names the /proc/cpuinfo flags of the x86 instruction sets that compute bf16 in
// hardware (AVX-512 BF16 and AMX), as the errors and the run fingerprint spell them.
const BF16CPUFlags = "avx512_bf16/amx_bf16"

// CPUHasBF16 reports whether this machine's CPU computes bf16 in hardware: whether
// /proc/cpuinfo lists the flag avx512_bf16 or amx_bf16. Without either, libtorch still
// computes a bf16 pass, emulated through fp32 and slower than fp32 itself. It is false where
// /proc/cpuinfo cannot be read (outside Linux).
func CPUHasBF16() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	return err == nil && cpuinfoHasBF16(string(b))
}

// cpuinfoHasBF16 reports whether a "flags" line of the /proc/cpuinfo text lists avx512_bf16
// or amx_bf16.
func cpuinfoHasBF16(cpuinfo string) bool {
	for line := range strings.Lines(cpuinfo) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for flag := range strings.FieldsSeq(value) {
			if flag == "avx512_bf16" || flag == "amx_bf16" {
				return true
			}
		}
	}
	return false
}
