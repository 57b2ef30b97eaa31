package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// scope owns the tensors made inside one function: keep registers a tensor, drop frees them all,
// newest first. gotch frees a tensor's C memory only when Drop is called (or, eventually, by a
// finalizer), so every tensor made in a loop is registered in a scope that is dropped each
// iteration. This is what keeps resident memory flat over a long run.
//
// The op helpers below record the first error and turn every later op into a no-op, so a
// forward pass reads as straight-line code and is checked once at the end.
type scope struct {
	tensors []*ts.Tensor
	err     error
	compute Compute // how a U-Net pass's layers compute (precision.go); zero = fp32
}

// keep registers t to be freed by drop and returns it.
func (s *scope) keep(t *ts.Tensor) *ts.Tensor {
	if t != nil {
		s.tensors = append(s.tensors, t)
	}
	return t
}

// do records the result of one fallible op: on error it stores the first one and returns nil.
func (s *scope) do(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return nil
	}
	return s.keep(t)
}

// failed reports whether an earlier op failed, in which case later ops are skipped.
func (s *scope) failed(inputs ...*ts.Tensor) bool {
	if s.err != nil {
		return true
	}
	for _, in := range inputs {
		if in == nil {
			s.err = fmt.Errorf("internal error: nil tensor input")
			return true
		}
	}
	return false
}

// release removes t from the scope, so it outlives drop; the caller now owns it.
func (s *scope) release(t *ts.Tensor) *ts.Tensor {
	for i := len(s.tensors) - 1; i >= 0; i-- {
		if s.tensors[i] == t {
			s.tensors = append(s.tensors[:i], s.tensors[i+1:]...)
			break
		}
	}
	return t
}

// drop frees every registered tensor, newest first.
func (s *scope) drop() {
	for i := len(s.tensors) - 1; i >= 0; i-- {
		s.tensors[i].MustDrop()
	}
	s.tensors = nil
}

// Scope is the tensor scope for packages outside ddpm (ddpm/quality): the same bookkeeping as
// ddpm's own code uses, with its calls exported. The zero value is empty and ready; defer Drop
// right after declaring one:
//
//	var s ddpm.Scope
//	defer s.Drop()
//	y := s.Do(x.Relu(false)) // nil once an op has failed; check s.Err() at the end
type Scope struct{ s scope }

// Keep registers t to be freed by Drop and returns it; a nil t is ignored.
func (s *Scope) Keep(t *ts.Tensor) *ts.Tensor { return s.s.keep(t) }

// Do records the result of one fallible op: on error it stores the first one (see Err) and
// returns nil, else it registers t like Keep.
func (s *Scope) Do(t *ts.Tensor, err error) *ts.Tensor { return s.s.do(t, err) }

// Failed reports whether an earlier op failed or one of inputs is nil (which it records as an
// internal error); the caller then skips its op.
func (s *Scope) Failed(inputs ...*ts.Tensor) bool { return s.s.failed(inputs...) }

// Err is the first error an op of the scope returned, or nil.
func (s *Scope) Err() error { return s.s.err }

// Release removes t from the scope, so it outlives Drop; the caller now owns it.
func (s *Scope) Release(t *ts.Tensor) *ts.Tensor { return s.s.release(t) }

// Drop frees every registered tensor, newest first. The scope can be used again afterwards.
func (s *Scope) Drop() { s.s.drop() }

// Elementwise and shape helpers. Each returns nil once the scope has failed.

func (s *scope) add(a, b *ts.Tensor) *ts.Tensor {
	if s.failed(a, b) {
		return nil
	}
	return s.do(a.Add(b, false))
}

func (s *scope) sub(a, b *ts.Tensor) *ts.Tensor {
	if s.failed(a, b) {
		return nil
	}
	return s.do(a.Sub(b, false))
}

func (s *scope) mul(a, b *ts.Tensor) *ts.Tensor {
	if s.failed(a, b) {
		return nil
	}
	return s.do(a.Mul(b, false))
}

func (s *scope) div(a, b *ts.Tensor) *ts.Tensor {
	if s.failed(a, b) {
		return nil
	}
	return s.do(a.Div(b, false))
}

// scale returns a·c for a Go scalar c.
func (s *scope) scale(a *ts.Tensor, c float64) *ts.Tensor {
	if s.failed(a) {
		return nil
	}
	sc := ts.FloatScalar(c)
	defer sc.MustDrop()
	return s.do(a.MulScalar(sc, false))
}

// addScalar returns a + c for a Go scalar c.
func (s *scope) addScalar(a *ts.Tensor, c float64) *ts.Tensor {
	if s.failed(a) {
		return nil
	}
	sc := ts.FloatScalar(c)
	defer sc.MustDrop()
	return s.do(a.AddScalar(sc, false))
}

func (s *scope) silu(a *ts.Tensor) *ts.Tensor {
	if s.failed(a) {
		return nil
	}
	return s.do(a.Silu(false))
}

func (s *scope) sqrt(a *ts.Tensor) *ts.Tensor {
	if s.failed(a) {
		return nil
	}
	return s.do(a.Sqrt(false))
}

func (s *scope) view(a *ts.Tensor, shape ...int64) *ts.Tensor {
	if s.failed(a) {
		return nil
	}
	return s.do(a.View(shape, false))
}

func (s *scope) cat(dim int64, xs ...*ts.Tensor) *ts.Tensor {
	if s.failed(xs...) {
		return nil
	}
	return s.do(ts.Cat(xs, dim))
}

// randn returns standard normal noise of the given shape, from libtorch's seeded generator.
func (s *scope) randn(shape []int64, device gotch.Device) *ts.Tensor {
	if s.failed() {
		return nil
	}
	return s.do(ts.Randn(shape, gotch.Float, device))
}

// fromFloat32 copies Go values into a new tensor of the given shape on device.
func (s *scope) fromFloat32(data []float32, shape []int64, device gotch.Device) *ts.Tensor {
	if s.failed() {
		return nil
	}
	cpu := s.do(ts.NewTensorFromData(data, shape))
	if cpu == nil || device == gotch.CPU {
		return cpu
	}
	return s.do(cpu.To(device, false))
}

// fromInt64 copies Go values into a new int64 tensor on device.
func (s *scope) fromInt64(data []int64, device gotch.Device) *ts.Tensor {
	if s.failed() {
		return nil
	}
	cpu := s.do(ts.NewTensorFromData(data, []int64{int64(len(data))}))
	if cpu == nil || device == gotch.CPU {
		return cpu
	}
	return s.do(cpu.To(device, false))
}

// float32s copies a tensor's values to Go (via the CPU). It does not take ownership of t.
func float32s(t *ts.Tensor) ([]float32, error) {
	var s scope
	defer s.drop()
	cpu := s.do(t.To(gotch.CPU, false))
	f := s.do(cpu.Totype(gotch.Float, false))
	contiguous := s.do(f.Contiguous(false))
	if s.err != nil {
		return nil, s.err
	}
	out := make([]float32, contiguous.Numel())
	if err := contiguous.CopyData(out, uint(len(out))); err != nil {
		return nil, fmt.Errorf("copy tensor to Go: %w", err)
	}
	return out, nil
}

// scalar reads a one-element tensor as float64.
func scalar(t *ts.Tensor) (float64, error) {
	v, err := float32s(t)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("internal error: want a scalar, got %d values", len(v))
	}
	return float64(v[0]), nil
}

// LiveTensors reports how many gotch tensors are alive (made and not yet freed). Tests use it
// to prove that loops free what they make.
func LiveTensors() int { return len(ts.ExistingTensors) }
