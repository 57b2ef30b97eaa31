package ddpm

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/nlpodyssey/safetensors"
)

// The safetensors format (github.com/huggingface/safetensors), which PyTorch, JAX and
// Hugging Face's tools read:
//
//	8 bytes    N, the header's length, an unsigned little-endian integer
//	N bytes    a JSON object: for every tensor {"dtype": "F32", "shape": [...], "data_offsets":
//	           [begin, end]} under its name, plus "__metadata__", a string-to-string map;
//	           padded with spaces to a multiple of 8 bytes
//	the rest   the tensors' bytes, little-endian and row-major, at their data_offsets
//
// github.com/nlpodyssey/safetensors writes and reads it; this file turns Arrays into its views
// and back.

// Array is a tensor copied out of libtorch into Go: its name, shape and row-major values.
type Array struct {
	Name  string
	Shape []int64
	Data  []float32
}

// WriteSafetensors writes arrays to w as a safetensors file of float32 ("F32") tensors, with
// metadata as the header's "__metadata__". Every array must have a distinct name and as many
// values as its shape holds. The bytes depend only on the arguments (tensors in name order,
// header keys sorted), so writing the same weights twice gives the same file.
func WriteSafetensors(w io.Writer, arrays []Array, metadata map[string]string) error {
	views := make(map[string]safetensors.TensorView, len(arrays))
	for _, a := range arrays {
		if _, dup := views[a.Name]; dup {
			return fmt.Errorf("safetensors: tensor %q appears twice", a.Name)
		}
		shape := make([]uint64, len(a.Shape))
		n := int64(1)
		for i, d := range a.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors: tensor %q has shape %v", a.Name, a.Shape)
			}
			shape[i], n = uint64(d), n*d
		}
		if n != int64(len(a.Data)) {
			return fmt.Errorf("safetensors: tensor %q has shape %v (%d values) but %d values", a.Name, a.Shape, n, len(a.Data))
		}
		data := make([]byte, 0, 4*len(a.Data))
		for _, v := range a.Data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		view, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", a.Name, err)
		}
		views[a.Name] = view
	}
	if err := safetensors.SerializeToWriter(views, metadata, w); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// ReadSafetensors parses a safetensors file of float32 tensors: the tensors in name order, and
// the header's metadata. Another dtype is an error.
func ReadSafetensors(file []byte) ([]Array, map[string]string, error) {
	st, err := safetensors.Deserialize(file)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	names := st.Names()
	slices.Sort(names)
	arrays := make([]Array, 0, len(names))
	for _, name := range names {
		view, _ := st.Tensor(name)
		if view.DType() != safetensors.F32 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q is %s, want F32", name, view.DType())
		}
		a := Array{Name: name, Shape: make([]int64, len(view.Shape()))}
		for i, d := range view.Shape() {
			a.Shape[i] = int64(d)
		}
		raw := view.Data()
		a.Data = make([]float32, len(raw)/4)
		for i := range a.Data {
			a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		arrays = append(arrays, a)
	}
	_, meta, err := safetensors.ReadMetadata(file)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	return arrays, meta.Metadata(), nil
}
