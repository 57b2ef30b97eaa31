package quality

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// FeaturesNPY encodes features (one row per sample) as a NumPy .npy file, format version 1.0
// (numpy.lib.format): the magic "\x93NUMPY", the version bytes 1 0, a little-endian uint16
// header length, an ASCII dict "{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }"
// padded with spaces and ended by "\n" so that the data starts at a multiple of 64 bytes, then
// the n·d values as little-endian float32, row-major. numpy.load reads it; so does ReadFeaturesNPY.
func FeaturesNPY(features *mat.Dense) []byte {
	n, d := features.Dims()
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, d)
	const prefix = 10 // magic (6) + version (2) + header length (2)
	pad := 64 - (prefix+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.Grow(prefix + len(header) + 4*n*d)
	b.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	row := make([]byte, 4*d)
	for i := 0; i < n; i++ {
		for j, v := range features.RawRowView(i) {
			binary.LittleEndian.PutUint32(row[4*j:], math.Float32bits(float32(v)))
		}
		b.Write(row)
	}
	return b.Bytes()
}

// ReadFeaturesNPY decodes what FeaturesNPY wrote: a version 1.0 .npy file of little-endian
// float32 in C order with a two-dimensional shape.
func ReadFeaturesNPY(data []byte) (*mat.Dense, error) {
	const prefix = 10
	if len(data) < prefix || string(data[:8]) != "\x93NUMPY\x01\x00" {
		return nil, errors.New("quality: not a version 1.0 .npy file")
	}
	hlen := int(binary.LittleEndian.Uint16(data[8:10]))
	if len(data) < prefix+hlen {
		return nil, errors.New("quality: .npy header is cut off")
	}
	header := string(data[prefix : prefix+hlen])
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") {
		return nil, fmt.Errorf("quality: .npy header %q: want little-endian float32 in C order", strings.TrimSpace(header))
	}
	_, shape, ok := strings.Cut(header, "'shape': (")
	shape, _, ok2 := strings.Cut(shape, ")")
	dims := strings.Split(shape, ",")
	if !ok || !ok2 || len(dims) != 2 {
		return nil, fmt.Errorf("quality: .npy header %q: want a two-dimensional shape", strings.TrimSpace(header))
	}
	n, errN := strconv.Atoi(strings.TrimSpace(dims[0]))
	d, errD := strconv.Atoi(strings.TrimSpace(dims[1]))
	body := data[prefix+hlen:]
	if errN != nil || errD != nil || n < 1 || d < 1 || len(body) != 4*n*d {
		return nil, fmt.Errorf("quality: .npy shape (%s) does not match its %d data bytes", shape, len(body))
	}
	values := make([]float64, n*d)
	for k := range values {
		values[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(body[4*k:])))
	}
	return mat.NewDense(n, d, values), nil
}
