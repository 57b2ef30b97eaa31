package ddpm

import (
	"fmt"
	"sort"

	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// namedTensor is a parameter (or an optimizer or EMA buffer) with its stable name.
type namedTensor struct {
	name   string
	tensor *ts.Tensor
}

// namedParams lists the variables of vs sorted by name, so that optimizer moments, EMA weights
// and checkpoints pair up with parameters the same way in every process.
func namedParams(vs *nn.VarStore) []namedTensor {
	vars := vs.Variables() // name → tensor sharing the parameter's storage and C handle
	out := make([]namedTensor, 0, len(vars))
	for name, v := range vars {
		v := v
		out = append(out, namedTensor{name: name, tensor: &v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// zerosLike makes one zero buffer per parameter, without gradient tracking.
func zerosLike(params []namedTensor) ([]namedTensor, error) {
	out := make([]namedTensor, len(params))
	for i, p := range params {
		z, err := p.tensor.ZerosLike(false)
		if err != nil {
			return nil, fmt.Errorf("allocate buffer for %s: %w", p.name, err)
		}
		out[i] = namedTensor{name: p.name, tensor: z}
	}
	return out, nil
}

// copyInto overwrites dst's values with src's, in place, without gradient tracking and without
// replacing dst's C handle (gotch's in-place ops leak the old handle; the out= form does not).
func copyInto(dst, src *ts.Tensor) error {
	return NoGrad(func() error {
		r, err := dst.CopyOut(dst, src, false, false)
		if err != nil {
			return err
		}
		r.MustDrop()
		return nil
	})
}

// NoGrad runs fn with libtorch's gradient tracking off for the calling OS thread and restores
// the previous mode after, so calls nest correctly (gotch's ts.NoGrad always re-enables it, and
// its ts.GradSetEnabled misreports the previous mode). The caller must be locked to its OS
// thread (runtime.LockOSThread): grad mode is per thread.
func NoGrad(fn func() error) error {
	prev, err := setGradEnabled(false)
	if err != nil {
		return fmt.Errorf("disable grad: %w", err)
	}
	defer setGradEnabled(prev)
	return fn()
}
