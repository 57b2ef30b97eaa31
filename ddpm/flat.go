package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Flat buffers: the parameters, their gradients, Adam's moments and the EMA's average each live
// in one contiguous 1-D tensor, of which every per-parameter tensor is a view. An elementwise
// update is then one libtorch op on the buffer instead of one op per parameter: Adam's nine ops
// over the 62 parameters of the base-32 U-Net cost about 12 ms a step when run tensor by tensor
// (about 20 µs of gotch and dispatch overhead per op) and 1.3 ms on the buffer, of a training
// step of 80–150 ms at batch 16 on 2 cores (BenchmarkOptimizerRecipe; BENCHMARKS.md, "Per-op
// overhead"). Elementwise ops give the same value for an
// element whatever tensor it sits in, so the training is the same to the bit
// (TestFlatTrainingMatchesPerTensor).

// flatten copies the values of tensors, end to end in list order, into one new 1-D buffer and
// makes each tensor, in place, a dense view of its slice: shape, values and autograd state stay.
// Every handle to a tensor sees its new storage. The tensors must share a dtype and device; it
// runs without gradient tracking. The caller owns the buffer; the views keep its storage alive.
func flatten(tensors []*ts.Tensor) (*ts.Tensor, error) {
	if len(tensors) == 0 {
		return nil, fmt.Errorf("flatten: no tensors")
	}
	dtype, device, err := dtypeDevice(tensors[0])
	if err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	for i, t := range tensors[1:] {
		if dt, dev, err := dtypeDevice(t); err != nil || dt != dtype || dev != device {
			return nil, fmt.Errorf("flatten: tensor %d is %v on %v (%v), tensor 0 %v on %v", i+1, dt, dev, err, dtype, device)
		}
	}
	var flat *ts.Tensor
	err = NoGrad(func() error {
		var err error
		if flat, err = ts.FlattenDenseTensors(tensors); err != nil {
			return err
		}
		offset := int64(0)
		for i, t := range tensors {
			size, err := t.Size()
			if err != nil {
				return err
			}
			if err := setStorage(t, flat, offset, size, denseStrides(size)); err != nil {
				return fmt.Errorf("tensor %d: %w", i, err)
			}
			offset += int64(t.Numel())
		}
		return nil
	})
	if err != nil {
		if flat != nil {
			flat.MustDrop()
		}
		return nil, fmt.Errorf("flatten: %w", err)
	}
	return flat, nil
}

// flattenNamed is flatten over a list of named tensors.
func flattenNamed(list []namedTensor) (*ts.Tensor, error) {
	tensors := make([]*ts.Tensor, len(list))
	for i, p := range list {
		tensors[i] = p.tensor
	}
	return flatten(tensors)
}

// flattenGrads makes the gradients of params views of one buffer, once every parameter has one
// (after the first backward pass), and returns the buffer; nil when some gradient is still
// undefined. Autograd then accumulates into the views in place (AccumulateGrad adds into a
// defined gradient when grad mode is off), so the buffer stays the gradients' storage as long
// as they are zeroed in place and never reset to undefined.
func flattenGrads(params []namedTensor) (*ts.Tensor, error) {
	var s scope
	defer s.drop()
	grads := make([]*ts.Tensor, len(params))
	for i, p := range params {
		grads[i] = s.do(p.tensor.Grad(false))
		if s.err != nil {
			return nil, s.err
		}
		if defined, err := grads[i].Defined(); err != nil || !defined {
			return nil, err
		}
	}
	return flatten(grads)
}

// dtypeDevice reports a tensor's element type and device.
func dtypeDevice(t *ts.Tensor) (gotch.DType, gotch.Device, error) {
	device, err := t.Device()
	return t.DType(), device, err
}

// denseStrides are the strides of a contiguous (row-major) tensor of the given size.
func denseStrides(size []int64) []int64 {
	stride := make([]int64, len(size))
	step := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		stride[i] = step
		step *= max(size[i], 1)
	}
	return stride
}
