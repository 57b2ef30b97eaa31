package ddpm

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
)

// With exact predictors of two point masses, x_good and x_bad, autoguidance is itself the exact
// predictor of a point mass: (1 + w)·(x − √ᾱ·x_g)/√(1 − ᾱ) − w·(x − √ᾱ·x_b)/√(1 − ᾱ) =
// (x − √ᾱ·x*)/√(1 − ᾱ) with x* = (1 + w)·x_g − w·x_b. So every sampler must land on x*, the
// good model's point moved away from the bad model's by w times their distance. The guide's
// extra tensors are freed every step: the live count is the same after step 5 as at the end
// of the pass, and back where it started after it.
func TestAutoGuidanceExtrapolatesAwayFromTheBadModel(t *testing.T) {
	lockThread(t)
	settleTensors(t)
	s, _ := NewSchedule(Linear, 1000, 1e-4, 0.02)
	const good, bad = 0.3, 0.1
	for _, tc := range []struct {
		sampler string
		steps   int
		w       float64
	}{
		{SamplerDDIM, 50, 0}, {SamplerDDIM, 50, 1}, {SamplerDDIM, 50, 2.5},
		{SamplerDPMPP2M, 20, 1}, {SamplerDPMPP2MSDE, 20, 1}, {SamplerDDPM, 0, 1},
	} {
		sampler, err := NewSampler(tc.sampler, s, tc.steps, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		want := (1+tc.w)*good - tc.w*bad
		before := LiveTensors()
		live := map[int]int{}
		xT, _ := NoiseFor(1, 2, 1, 4, 4, gotch.CPU)
		ManualSeed(2)
		res, err := sample(pointMass{sched: s, x: good}, pointMass{sched: s, x: bad}, sampler, xT,
			SampleOptions{AutoGuidance: tc.w, Progress: func(done, _ int) { live[done] = LiveTensors() }})
		xT.MustDrop()
		if err != nil {
			t.Fatal(err)
		}
		if steps := len(sampler.Timesteps()); live[5] != live[steps-1] {
			t.Errorf("%s, w = %g: %d live tensors after step 5, %d after step %d", sampler.Name(), tc.w, live[5], live[steps-1], steps-1)
		}
		if after := LiveTensors(); after != before {
			t.Errorf("%s, w = %g: %d live tensors before sampling, %d after", sampler.Name(), tc.w, before, after)
		}
		for _, v := range res.Images {
			if math.Abs(float64(v)-want) > 1e-3 {
				t.Fatalf("%s, w = %g: sample pixel %.6f, want (1 + w)·%g − w·%g = %g", sampler.Name(), tc.w, v, good, bad, want)
			}
		}
	}
}

// Guided by an identical model, the samples must be the unguided ones at any w: (1 + w)·ε − w·ε = ε.
func TestAutoGuidanceBySelfIsNoGuidance(t *testing.T) {
	lockThread(t)
	model := tinyModel(t, 0)
	s, _ := NewSchedule(Linear, 100, 1e-4, 0.02)
	draw := func(opts SampleOptions) []float32 {
		sampler, err := NewSampler(SamplerDPMPP2MSDE, s, 10, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		xT, _ := NoiseFor(3, 4, 1, 28, 28, gotch.CPU)
		defer xT.MustDrop()
		ManualSeed(4)
		res, err := Sample(model, sampler, xT, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.Images
	}
	plain, guided := draw(SampleOptions{}), draw(SampleOptions{AutoGuide: model, AutoGuidance: 2})
	for i := range plain {
		if d := math.Abs(float64(plain[i] - guided[i])); d > 1e-4 {
			t.Fatalf("pixel %d: %.6f guided by itself, %.6f unguided", i, guided[i], plain[i])
		}
	}
}
