package ddpm

import (
	"fmt"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Dataset is a whole image set held as one tensor on the training device, so a batch is a
// single index_select.
type Dataset struct {
	N, Channels, Height, Width int
	images                     *ts.Tensor // (N, C, H, W) float in [-1, 1]
	labels                     *ts.Tensor // (N) int64
}

// NewDataset copies images (N·C·H·W values in [-1, 1]) and labels (N) to device.
func NewDataset(images []float32, labels []uint8, n, channels, height, width int, device gotch.Device) (*Dataset, error) {
	if len(images) != n*channels*height*width || len(labels) != n {
		return nil, fmt.Errorf("dataset: %d values and %d labels do not match %d images of %dx%dx%d", len(images), len(labels), n, channels, height, width)
	}
	var s scope
	defer s.drop()
	x := s.fromFloat32(images, []int64{int64(n), int64(channels), int64(height), int64(width)}, device)
	l := make([]int64, n)
	for i, v := range labels {
		l[i] = int64(v)
	}
	y := s.fromInt64(l, device)
	if s.err != nil {
		return nil, fmt.Errorf("dataset: %w", s.err)
	}
	return &Dataset{N: n, Channels: channels, Height: height, Width: width, images: s.release(x), labels: s.release(y)}, nil
}

// Close frees the dataset's tensors.
func (d *Dataset) Close() {
	d.images.MustDrop()
	d.labels.MustDrop()
}

// Batch gathers the images and labels at indices. The caller owns (and drops) both.
func (d *Dataset) Batch(indices []int64) (images, labels *ts.Tensor, err error) {
	var s scope
	defer s.drop()
	device, err := d.images.Device()
	if err != nil {
		return nil, nil, err
	}
	idx := s.fromInt64(indices, device)
	if s.failed(idx) {
		return nil, nil, s.err
	}
	x := s.do(d.images.IndexSelect(0, idx, false))
	y := s.do(d.labels.IndexSelect(0, idx, false))
	if s.err != nil {
		return nil, nil, fmt.Errorf("batch: %w", s.err)
	}
	return s.release(x), s.release(y), nil
}

// EpochOrder is the order in which an epoch visits the n images: a permutation that depends
// only on the run's seed and the epoch number (1-based).
func EpochOrder(seed int64, epoch, n int) []int64 {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(epoch)))
	out := make([]int64, n)
	for i, p := range r.Perm(n) {
		out[i] = int64(p)
	}
	return out
}
