package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Adam is Kingma & Ba's optimizer (2015, Algorithm 1), written out so that its moments can be
// checkpointed: a resumed run continues exactly where it stopped.
//
//	g_t = ∇θ L
//	m_t = β1·m_{t−1} + (1 − β1)·g_t
//	v_t = β2·v_{t−1} + (1 − β2)·g_t²
//	θ_t = θ_{t−1} − lr · (m_t / (1 − β1^t)) / (√(v_t / (1 − β2^t)) + ε)
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	Step                  int64 // t, the number of updates made

	params []namedTensor
	m, v   []namedTensor
	flat   *adamBuffers // nil: one op per parameter (useFlatBuffers)
}

// adamBuffers are the flat buffers (flat.go) that the parameters, their gradients and the two
// moments are views of; grad is nil until every parameter has a gradient.
type adamBuffers struct{ param, grad, m, v *ts.Tensor }

// useFlatBuffers lays the parameters (the model's own tensors, in place) and both moments out
// in flat buffers, and the gradients too once they exist, so that Update and ZeroGrad make one
// op per step instead of one per parameter. It returns the parameters' buffer.
func (a *Adam) useFlatBuffers() (*ts.Tensor, error) {
	param, err := flattenNamed(a.params)
	if err != nil {
		return nil, fmt.Errorf("adam: parameters: %w", err)
	}
	m, err := flattenNamed(a.m)
	if err != nil {
		return nil, fmt.Errorf("adam: first moments: %w", err)
	}
	v, err := flattenNamed(a.v)
	if err != nil {
		return nil, fmt.Errorf("adam: second moments: %w", err)
	}
	a.flat = &adamBuffers{param: param, m: m, v: v}
	return param, nil
}

// NewAdam makes an optimizer over params with PyTorch's defaults β1 = 0.9, β2 = 0.999, ε = 1e-8.
func NewAdam(params []namedTensor, lr float64) (*Adam, error) {
	m, err := zerosLike(params)
	if err != nil {
		return nil, fmt.Errorf("adam: %w", err)
	}
	v, err := zerosLike(params)
	if err != nil {
		return nil, fmt.Errorf("adam: %w", err)
	}
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, params: params, m: m, v: v}, nil
}

// Update applies one Adam step using the gradients currently stored on the parameters.
func (a *Adam) Update() error {
	a.Step++
	biasCorrection1 := 1 - math.Pow(a.Beta1, float64(a.Step)) // 1 − β1^t
	biasCorrection2 := 1 - math.Pow(a.Beta2, float64(a.Step)) // 1 − β2^t
	return NoGrad(func() error {
		if a.flat != nil && a.flat.grad == nil {
			grad, err := flattenGrads(a.params) // nil while some parameter has no gradient yet
			if err != nil {
				return fmt.Errorf("adam: gradients: %w", err)
			}
			a.flat.grad = grad
		}
		if a.flat != nil && a.flat.grad != nil {
			if err := a.update(a.flat.param, a.flat.grad, a.flat.m, a.flat.v, biasCorrection1, biasCorrection2); err != nil {
				return fmt.Errorf("adam step: %w", err)
			}
			return nil
		}
		for i, p := range a.params {
			if err := a.updateParam(p.tensor, a.m[i].tensor, a.v[i].tensor, biasCorrection1, biasCorrection2); err != nil {
				return fmt.Errorf("adam step for %s: %w", p.name, err)
			}
		}
		return nil
	})
}

// updateParam is update for one parameter, with the gradient stored on it.
func (a *Adam) updateParam(param, m, v *ts.Tensor, biasCorrection1, biasCorrection2 float64) error {
	var s scope
	defer s.drop()
	grad := s.do(param.Grad(false))
	if grad == nil {
		return s.err
	}
	if defined, err := grad.Defined(); err != nil || !defined {
		return err // a parameter the loss does not depend on
	}
	return a.update(param, grad, m, v, biasCorrection1, biasCorrection2)
}

// update applies Algorithm 1's step to param, in place, with its gradient and moments.
func (a *Adam) update(param, grad, m, v *ts.Tensor, biasCorrection1, biasCorrection2 float64) error {
	var s scope
	defer s.drop()
	// m_t = β1·m + (1 − β1)·g, as lerp(m, g, 1 − β1); written into m itself.
	s.outInto(m, func(w *ts.Scalar) (*ts.Tensor, error) { return m.LerpScalarOut(m, grad, w, false) }, 1-a.Beta1)
	// v_t = β2·v + (1 − β2)·g²
	gradSquared := s.mul(grad, grad)
	if s.failed(gradSquared) {
		return s.err
	}
	s.outInto(v, func(w *ts.Scalar) (*ts.Tensor, error) { return v.LerpScalarOut(v, gradSquared, w, false) }, 1-a.Beta2)
	// θ −= lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)
	denominator := s.addScalar(s.scale(s.sqrt(v), 1/math.Sqrt(biasCorrection2)), a.Eps)
	update := s.scale(s.div(m, denominator), a.LR/biasCorrection1)
	if s.failed(update) {
		return s.err
	}
	s.do(param.SubOut(param, update, false))
	return s.err
}

// outInto runs an out= op that writes into dst with a scalar weight, freeing the returned handle.
func (s *scope) outInto(dst *ts.Tensor, op func(*ts.Scalar) (*ts.Tensor, error), weight float64) {
	if s.failed(dst) {
		return
	}
	w := ts.FloatScalar(weight)
	defer w.MustDrop()
	s.do(op(w))
}

// ZeroGrad sets every parameter's gradient to zero, in place (never to undefined, which would
// detach the gradients from their flat buffer): one op when the gradients are flat.
func (a *Adam) ZeroGrad() error {
	if a.flat == nil || a.flat.grad == nil {
		return zeroGrad(a.params)
	}
	var s scope
	defer s.drop()
	s.do(a.flat.grad.ZeroOut(a.flat.grad, false))
	if s.err != nil {
		return fmt.Errorf("zero grad: %w", s.err)
	}
	return nil
}

// zeroGrad sets every parameter's gradient to zero, in place.
func zeroGrad(params []namedTensor) error {
	for _, p := range params {
		var s scope
		grad := s.do(p.tensor.Grad(false))
		if grad != nil {
			if defined, err := grad.Defined(); err == nil && defined {
				s.do(grad.ZeroOut(grad, false))
			}
		}
		s.drop()
		if s.err != nil {
			return fmt.Errorf("zero grad of %s: %w", p.name, s.err)
		}
	}
	return nil
}

// clipGradNorm rescales all gradients so their global L2 norm is at most maxNorm, like
// torch.nn.utils.clip_grad_norm_, and returns the norm before clipping.
func clipGradNorm(params []namedTensor, maxNorm float64) (float64, error) {
	var s scope
	defer s.drop()
	var squares []*ts.Tensor
	var grads []*ts.Tensor
	for _, p := range params {
		grad := s.do(p.tensor.Grad(false))
		if grad == nil {
			break
		}
		if defined, _ := grad.Defined(); !defined {
			continue
		}
		squared := s.mul(grad, grad)
		if s.failed(squared) {
			break
		}
		grads = append(grads, grad)
		squares = append(squares, s.do(squared.Sum(gotch.Float, false)))
	}
	if s.err != nil || len(squares) == 0 {
		return 0, s.err
	}
	total := s.do(ts.Stack(squares, 0))
	if s.failed(total) {
		return 0, s.err
	}
	sumOfSquares := s.do(total.Sum(gotch.Float, false))
	if s.failed(sumOfSquares) {
		return 0, s.err
	}
	sum, err := scalar(sumOfSquares)
	if err != nil {
		return 0, fmt.Errorf("grad norm: %w", err)
	}
	norm := math.Sqrt(sum)
	if norm <= maxNorm {
		return norm, nil
	}
	coefficient := maxNorm / (norm + 1e-6)
	err = NoGrad(func() error {
		for _, g := range grads {
			g := g
			s.outInto(g, func(c *ts.Scalar) (*ts.Tensor, error) { return g.MulScalarOut(g, c, false) }, coefficient)
		}
		return s.err
	})
	return norm, err
}
