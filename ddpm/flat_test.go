package ddpm

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestFlattenMakesViews(t *testing.T) {
	lockThread(t)
	var s scope
	defer s.drop()
	a := s.fromFloat32([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.CPU)
	b := s.fromFloat32([]float32{7, 8, 9, 10}, []int64{4, 1, 1}, gotch.CPU)
	c := s.do(s.fromFloat32([]float32{11}, []int64{1}, gotch.CPU).Squeeze(false)) // 0-d
	if s.err != nil {
		t.Fatal(s.err)
	}
	flat := s.do(flatten([]*ts.Tensor{a, b, c}))
	if s.err != nil {
		t.Fatal(s.err)
	}
	if got := mustValues(t, flat); !equal(got, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Errorf("buffer %v, want the tensors' values end to end", got)
	}
	for _, c := range []struct {
		x    *ts.Tensor
		size []int64
	}{{a, []int64{2, 3}}, {b, []int64{4, 1, 1}}, {c, []int64{}}} {
		if size, err := c.x.Size(); err != nil || !slices.Equal(size, c.size) {
			t.Errorf("shape %v (%v) after flatten, want %v", size, err, c.size)
		}
	}
	// One op on the buffer is seen by both tensors: they are views of it.
	s.do(flat.ZeroOut(flat, false))
	for name, x := range map[string]*ts.Tensor{"a": a, "b": b, "c": c} {
		for i, v := range mustValues(t, x) {
			if v != 0 {
				t.Errorf("%s[%d] = %g after zeroing the buffer", name, i, v)
			}
		}
	}
	if got, want := denseStrides([]int64{4, 3, 2, 5}), []int64{30, 10, 5, 1}; !slices.Equal(got, want) {
		t.Errorf("denseStrides(4,3,2,5) = %v, want %v", got, want)
	}
}

// TestFlatTrainingMatchesPerTensor trains the same model with flat buffers and with one op per
// parameter: every loss, weight, moment and EMA weight must be equal to the bit, and the
// checkpoints equal in size (a view must not drag its whole buffer into the file).
func TestFlatTrainingMatchesPerTensor(t *testing.T) {
	set := mnistTrain(t, 256)
	for _, c := range []struct {
		name string
		cfg  TrainConfig
	}{
		{"recipe", TrainConfig{LR: 2e-3, Seed: 5, LRSchedule: LRCosine, WarmupSteps: 2, TotalSteps: 8,
			LossWeighting: WeightingMinSNR, MinSNRGamma: 5, EMADecay: 0.9999, EMAPower: 0.75}},
		{"clipped, EMA from step 3 every 2", TrainConfig{LR: 1e-3, Seed: 6, GradClip: 0.05,
			EMADecay: 0.9, EMAWarmup: true, EMAStart: 3, EMAEvery: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lockThread(t) // a subtest runs on a goroutine of its own
			flat, ds := newTinyTrainer(t, set, c.cfg)
			ref := c.cfg
			ref.perTensor = true
			perTensor, _ := newTinyTrainer(t, set, ref)
			if flat.Adam.flat == nil || perTensor.Adam.flat != nil {
				t.Fatal("want flat buffers in the default trainer only")
			}
			got, want := trainSteps(t, flat, ds, 8), trainSteps(t, perTensor, ds, 8)
			if flat.Adam.flat.grad == nil {
				t.Fatal("the gradients were never laid out flat")
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("step %d: loss %.9g with flat buffers, %.9g per tensor", i+1, got[i], want[i])
				}
			}
			for _, l := range []struct {
				name      string
				got, want []namedTensor
			}{
				{"weight", flat.Model.params, perTensor.Model.params},
				{"adam.m", flat.Adam.m, perTensor.Adam.m},
				{"adam.v", flat.Adam.v, perTensor.Adam.v},
				{"ema", flat.EMA.average, perTensor.EMA.average},
			} {
				for i := range l.want {
					if !sameBits(mustValues(t, l.got[i].tensor), mustValues(t, l.want[i].tensor)) {
						t.Errorf("%s %s differs between flat and per-tensor training", l.name, l.want[i].name)
					}
				}
			}
			dir := t.TempDir()
			sizes := make([]int64, 2)
			for i, tr := range []*Trainer{flat, perTensor} {
				ckpt := filepath.Join(dir, []string{"flat", "per-tensor"}[i])
				if err := tr.SaveCheckpoint(ckpt, 0, 8); err != nil {
					t.Fatal(err)
				}
				info, err := os.Stat(filepath.Join(ckpt, checkpointTensors))
				if err != nil {
					t.Fatal(err)
				}
				sizes[i] = info.Size()
			}
			if sizes[0] != sizes[1] {
				t.Errorf("checkpoint tensors: %d bytes with flat buffers, %d per tensor", sizes[0], sizes[1])
			}
		})
	}
}

// sameBits reports whether a and b are equal bit for bit, signs of zero and NaNs included.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
