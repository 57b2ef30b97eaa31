package quality

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// This file holds the few libtorch helpers the package needs: a tensor scope like package ddpm's.

// scope owns the tensors made inside one function: do registers an op's result (or records its
// error, after which later ops are skipped), drop frees them all, newest first.
//
// TODO: switch to ddpm's scope once it is exported (ddpm.Scope with Keep/Do/Release/Drop).
type scope struct {
	tensors []*ts.Tensor
	err     error
}

// do records the result of one fallible op: on error it stores the first one and returns nil.
func (s *scope) do(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return nil
	}
	if t != nil {
		s.tensors = append(s.tensors, t)
	}
	return t
}

// ok reports whether no op has failed and every input is non-nil.
func (s *scope) ok(inputs ...*ts.Tensor) bool {
	if s.err != nil {
		return false
	}
	for _, in := range inputs {
		if in == nil {
			s.err = errors.New("internal error: nil tensor input")
			return false
		}
	}
	return true
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

// images copies n images of the network's shape (Go values in [-1, 1], each CHW) into a new
// (n, C, H, W) tensor on device.
func (s *scope) images(pixels []float32, n int, shape NetShape, device gotch.Device) *ts.Tensor {
	if !s.ok() {
		return nil
	}
	x := s.do(ts.NewTensorFromData(pixels, []int64{int64(n), int64(shape.Channels), int64(shape.Height), int64(shape.Width)}))
	if x == nil || device == gotch.CPU {
		return x
	}
	return s.do(x.To(device, false))
}

// labels copies class indices into a new (n) int64 tensor on device.
func (s *scope) labels(labels []int64, device gotch.Device) *ts.Tensor {
	if !s.ok() {
		return nil
	}
	y := s.do(ts.NewTensorFromData(labels, []int64{int64(len(labels))}))
	if y == nil || device == gotch.CPU {
		return y
	}
	return s.do(y.To(device, false))
}

// float32s copies a tensor's values to Go via the CPU. It does not take ownership of t.
func float32s(t *ts.Tensor) ([]float32, error) {
	var s scope
	defer s.drop()
	cpu := s.do(t.To(gotch.CPU, false))
	if !s.ok(cpu) {
		return nil, s.err
	}
	f := s.do(cpu.Totype(gotch.Float, false))
	if !s.ok(f) {
		return nil, s.err
	}
	c := s.do(f.Contiguous(false))
	if !s.ok(c) {
		return nil, s.err
	}
	out := make([]float32, c.Numel())
	if err := c.CopyData(out, uint(len(out))); err != nil {
		return nil, fmt.Errorf("copy tensor to Go: %w", err)
	}
	return out, nil
}
