package ddpm

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
)

// OnFrame (runner serve's live view) sees the steps FrameEvery divides and the last one. With
// the exact ε of a point mass x*, DDIM's x̂_0 = (x_t − √(1 − ᾱ_t)·ε)/√ᾱ_t (Song et al. 2021,
// eq. 12) is x* at every step, and the last frame's x is the final image.
func TestSampleOnFrame(t *testing.T) {
	lockThread(t)
	s, _ := NewSchedule(Linear, 1000, 1e-4, 0.02)
	for _, tc := range []struct {
		name      string
		every     int
		wantSteps []int
	}{
		{name: "every 3 of 10", every: 3, wantSteps: []int{3, 6, 9, 10}},
		{name: "every 5 of 10", every: 5, wantSteps: []int{5, 10}},
		{name: "0 means every step", every: 0, wantSteps: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "more than the steps", every: 50, wantSteps: []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sampler, err := NewSampler(SamplerDDIM, s, 10, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			xT, _ := NoiseFor(1, 2, 1, 4, 4, gotch.CPU)
			defer xT.MustDrop()
			var frames []StepFrame
			res, err := sample(pointMass{sched: s, x: 0.3}, nil, sampler, xT, SampleOptions{
				FrameEvery: tc.every,
				OnFrame:    func(f StepFrame) error { frames = append(frames, f); return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			var steps []int
			for _, f := range frames {
				steps = append(steps, f.Step)
				if f.Steps != 10 || f.T != sampler.Timesteps()[f.Step-1] {
					t.Errorf("frame %d: Steps %d, T %d; want 10, %d", f.Step, f.Steps, f.T, sampler.Timesteps()[f.Step-1])
				}
				if len(f.X) != 2*16 || len(f.PredX0) != 2*16 {
					t.Fatalf("frame %d: %d x and %d x̂0 values, want 32", f.Step, len(f.X), len(f.PredX0))
				}
				for _, v := range f.PredX0 {
					if math.Abs(float64(v)-0.3) > 1e-4 {
						t.Fatalf("frame %d: x̂0 pixel %.6f, want 0.3", f.Step, v)
					}
				}
			}
			if !slices.Equal(steps, tc.wantSteps) {
				t.Errorf("frames at steps %v, want %v", steps, tc.wantSteps)
			}
			if last := frames[len(frames)-1]; !slices.Equal(last.X, res.Images) {
				t.Error("the last frame's x differs from the final images")
			}
		})
	}
}

// An error from OnFrame stops sampling after that step and is returned.
func TestSampleOnFrameStops(t *testing.T) {
	lockThread(t)
	s, _ := NewSchedule(Linear, 100, 1e-4, 0.02)
	sampler, err := NewSampler(SamplerDDIM, s, 10, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	xT, _ := NoiseFor(1, 1, 1, 4, 4, gotch.CPU)
	defer xT.MustDrop()
	stop := errors.New("client gone")
	calls := 0
	_, err = sample(pointMass{sched: s, x: 0.3}, nil, sampler, xT, SampleOptions{
		FrameEvery: 2,
		OnFrame: func(f StepFrame) error {
			calls++
			if f.Step == 4 {
				return stop
			}
			return nil
		},
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("err %v after %d calls, want %v after 2", err, calls, stop)
	}
}
