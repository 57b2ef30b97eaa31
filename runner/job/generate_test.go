package job

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestGeneratorAutoGuidance checks that a Generator samples with autoguidance as its config
// asks, by the same guide loader as the run's own sampling. A tiny run (base 8, untrained
// weights) gets a checkpoint, a snapshot of other weights at step 1 and a snapshot of its own
// weights at step 2. Guided by step 1, the images differ from the model's alone; guided by its
// own weights (step 2, or sample.guide_run = itself) they are the model's alone, since
// ε̂ = (1 + w)·ε − w·ε = ε; a snapshot that is gone is a *GuideError naming sample.guide_step.
func TestGeneratorAutoGuidance(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := config.Default()
	cfg.Seed = 3
	cfg.Model.BaseChannels, cfg.Model.TimeEmbDim = 8, 16
	cfg.Diffusion.Timesteps = 100
	cfg.Sample.Sampler, cfg.Sample.Steps = "ddim", 5
	cfg.Sample.AutoGuidance, cfg.Sample.GuideStep = 1, 1 // as configs/quick.toml: its own early weights
	cfg.Runtime.Device = "cpu"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, create := testStore(t)
	hash := create(string(cfg.TOML()), string(cfg.Canonical()))
	dir := st.RunDir(hash)

	sched, err := schedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	diffusion, err := ddpm.NewDiffusion(sched, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer diffusion.Close()
	trainer := func(seed int64) *ddpm.Trainer {
		t.Helper()
		ddpm.ManualSeed(seed)
		model, err := ddpm.NewModel(unetConfig(cfg, defaultShape), gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := ddpm.NewTrainer(model, diffusion, trainConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	final, other := trainer(1), trainer(2)
	if _, err := (ddpm.Checkpoints{Dir: store.CheckpointsDir(dir)}).Save(final, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := other.SaveCheckpoint(store.SnapshotDir(dir, 1), 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := final.SaveCheckpoint(store.SnapshotDir(dir, 2), 0, 1); err != nil {
		t.Fatal(err)
	}

	// generate samples two images from seed 7 with cfg's sample settings changed by set.
	generate := func(t *testing.T, set func(*config.Sample)) (GenerationResult, *Generator, error) {
		t.Helper()
		c := cfg
		set(&c.Sample)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		opened, err := OpenRun(st, hash)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := NewGenerator(st, opened, c)
		if err != nil {
			return GenerationResult{}, nil, err
		}
		res, err := gen.Generate(context.Background(), Generation{Seed: 7, N: 2, Class: -1})
		if err != nil {
			t.Fatal(err)
		}
		return res, gen, nil
	}
	alone, gen, err := generate(t, func(s *config.Sample) { s.AutoGuidance, s.GuideStep = 0, 0 })
	if err != nil {
		t.Fatal(err)
	}
	if gen.AutoGuidance() != 0 || strings.Contains(alone.Sampler, "autoguidance") {
		t.Errorf("autoguidance off: AutoGuidance() = %g, sampler %q; want 0 and no autoguidance", gen.AutoGuidance(), alone.Sampler)
	}
	for _, tc := range []struct {
		name   string
		set    func(*config.Sample)
		w      float64
		differ bool // from the model alone
	}{
		{name: "the run's own, a snapshot of other weights", set: func(*config.Sample) {}, w: 1, differ: true},
		{name: "w = 3 by the snapshot of other weights", set: func(s *config.Sample) { s.AutoGuidance = 3 }, w: 3, differ: true},
		{name: "a snapshot of the model's own weights", set: func(s *config.Sample) { s.AutoGuidance, s.GuideStep = 2.5, 2 }, w: 2.5},
		{name: "guide_run = the run itself", set: func(s *config.Sample) { s.GuideRun, s.GuideStep = hash, 0 }, w: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread() // a subtest is a goroutine of its own; libtorch state is per thread
			defer runtime.UnlockOSThread()
			res, gen, err := generate(t, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if gen.AutoGuidance() != tc.w || !strings.HasSuffix(res.Sampler, fmt.Sprintf(" + autoguidance w=%g", tc.w)) {
				t.Errorf("AutoGuidance() = %g, sampler %q; want %g and the sampler saying so", gen.AutoGuidance(), res.Sampler, tc.w)
			}
			d := maxAbsDiff(alone.Images, res.Images)
			t.Logf("%s: images differ from the model's alone by at most %g", res.Sampler, d)
			if tc.differ && d < 1e-3 {
				t.Errorf("guided by other weights, the images differ from the model's alone by at most %g; want a visible change", d)
			}
			if !tc.differ && d > 1e-4 {
				t.Errorf("guided by its own weights (ε̂ = ε), the images differ from the model's alone by %g; want rounding only", d)
			}
		})
	}
	t.Run("a snapshot that is gone", func(t *testing.T) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		_, _, err := generate(t, func(s *config.Sample) { s.GuideStep = 3 })
		var ge *GuideError
		var se *SourceError
		if !errors.As(err, &ge) || !errors.As(err, &se) || !strings.Contains(err.Error(), "sample.guide_step = 3") || !strings.Contains(err.Error(), "no intact snapshot") {
			t.Errorf("NewGenerator: %v; want a *GuideError wrapping a *SourceError naming sample.guide_step = 3", err)
		}
	})
}

// maxAbsDiff is the largest |a[i] − b[i]|; +Inf when the lengths differ.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst
}
