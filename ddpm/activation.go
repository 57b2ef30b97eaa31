package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// activation is one elementwise nonlinearity of the U-Net, applied within a scope.
type activation func(s *scope, x *ts.Tensor) *ts.Tensor

// activationFor returns the named activation: "silu" or "" (the guide's SiLU, x·σ(x)), "gelu"
// (x·Φ(x), exact), "relu" or "mish" (x·tanh(softplus(x)), Misra 2019).
func activationFor(name string) (activation, error) {
	op := map[string]func(x *ts.Tensor) (*ts.Tensor, error){
		"":     func(x *ts.Tensor) (*ts.Tensor, error) { return x.Silu(false) },
		"silu": func(x *ts.Tensor) (*ts.Tensor, error) { return x.Silu(false) },
		"gelu": func(x *ts.Tensor) (*ts.Tensor, error) { return x.Gelu("none", false) },
		"relu": func(x *ts.Tensor) (*ts.Tensor, error) { return x.Relu(false) },
		"mish": func(x *ts.Tensor) (*ts.Tensor, error) { return x.Mish(false) },
	}[name]
	if op == nil {
		return nil, fmt.Errorf("unet: unknown activation %q (want silu, gelu, relu or mish)", name)
	}
	return func(s *scope, x *ts.Tensor) *ts.Tensor {
		if s.failed(x) {
			return nil
		}
		return s.do(op(x))
	}, nil
}

// dropout zeroes each value of x with probability p and scales the rest by 1/(1 − p)
// (Srivastava et al. 2014, inverted), drawing from libtorch's seeded generator.
func (s *scope) dropout(x *ts.Tensor, p float64) *ts.Tensor {
	if s.failed(x) {
		return nil
	}
	return s.do(ts.Dropout(x, p, true))
}
