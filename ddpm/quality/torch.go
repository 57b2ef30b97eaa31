package quality

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm"
)

// This file holds the few libtorch helpers the package needs.

// scope is ddpm's tensor scope (ddpm.Scope) with the package's two copy helpers, images and
// labels, added.
type scope struct{ ddpm.Scope }

// images copies n images of the network's shape (Go values in [-1, 1], each CHW) into a new
// (n, C, H, W) tensor on device.
func (s *scope) images(pixels []float32, n int, shape NetShape, device gotch.Device) *ts.Tensor {
	if s.Failed() {
		return nil
	}
	x := s.Do(ts.NewTensorFromData(pixels, []int64{int64(n), int64(shape.Channels), int64(shape.Height), int64(shape.Width)}))
	if x == nil || device == gotch.CPU {
		return x
	}
	return s.Do(x.To(device, false))
}

// labels copies class indices into a new (n) int64 tensor on device.
func (s *scope) labels(labels []int64, device gotch.Device) *ts.Tensor {
	if s.Failed() {
		return nil
	}
	y := s.Do(ts.NewTensorFromData(labels, []int64{int64(len(labels))}))
	if y == nil || device == gotch.CPU {
		return y
	}
	return s.Do(y.To(device, false))
}

// float32s copies a tensor's values to Go via the CPU. It does not take ownership of t.
func float32s(t *ts.Tensor) ([]float32, error) {
	var s scope
	defer s.Drop()
	cpu := s.Do(t.To(gotch.CPU, false))
	if s.Failed(cpu) {
		return nil, s.Err()
	}
	f := s.Do(cpu.Totype(gotch.Float, false))
	if s.Failed(f) {
		return nil, s.Err()
	}
	c := s.Do(f.Contiguous(false))
	if s.Failed(c) {
		return nil, s.Err()
	}
	out := make([]float32, c.Numel())
	if err := c.CopyData(out, uint(len(out))); err != nil {
		return nil, fmt.Errorf("copy tensor to Go: %w", err)
	}
	return out, nil
}
