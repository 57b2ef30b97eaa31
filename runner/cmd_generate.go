package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/viz"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/serve"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runGenerate is the hidden child of `runner serve` that runs one generation: it samples a
// finished run's last checkpoint (with autoguidance by the run's guide when the run samples
// with it or --autoguidance asks for it, through job.NewGenerator) and prints serve.ChildEvent
// JSON lines on stdout (start, a frame every --every steps with x_t and the predicted x̂_0 as
// PNG, done with the final PNG and the denoising GIF). It reads the store and writes nothing to it. It runs in a process of
// its own because gotch's Must* ops end the process on a libtorch error.
func runGenerate(ctx context.Context, e *env, args []string) error {
	runtime.LockOSThread() // libtorch's grad mode and gotch's error slot are per thread
	fs := newFlagSet(e, serve.GenerateCommand)
	root := storeFlag(fs)
	runArg := fs.String("run", "", "the run's full hash")
	class := fs.Int("class", -1, "class of every image; -1 = unconditional")
	seed := fs.Int64("seed", 0, "start-noise seed")
	sampler := fs.String("sampler", "", "sampler (default: the run's)")
	steps := fs.Int("steps", 0, "sampling steps (0: the run's)")
	guidance := fs.Float64("guidance", 0, "classifier-free guidance scale w")
	autoGuidance := fs.Float64("autoguidance", -1, fmt.Sprintf(
		"autoguidance weight w in [0, %d] by the run's guide (sample.guide_run or its own snapshot at sample.guide_step); 0 = off; < 0 = the run's own sample.autoguidance",
		config.MaxAutoGuidance))
	n := fs.Int("n", 4, "images")
	every := fs.Int("every", 1, "a frame every this many steps")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	if err := store.CheckHash(*runArg); err != nil || !st.Exists(*runArg) {
		return usagef("--run: want the full hash of a run in %s, got %q", st.Root, *runArg)
	}
	hash := *runArg
	opened, err := job.OpenRun(st, hash)
	if err != nil {
		return err
	}
	cfg := opened.Config
	sets := map[string]string{"sample.guidance": strconv.FormatFloat(*guidance, 'g', -1, 64)}
	if *sampler != "" {
		sets["sample.sampler"] = *sampler
	}
	if *steps > 0 {
		sets["sample.steps"] = strconv.Itoa(*steps)
	}
	for _, k := range sortedKeys(sets) {
		if err := cfg.Set(k, sets[k]); err != nil {
			return usagef("%v", err)
		}
	}
	if err := setAutoGuidance(&cfg, *autoGuidance, store.Short(hash)); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if *n < 1 || *n > 64 {
		return usagef("--n must be in 1..64, got %d", *n)
	}
	if threads, _ := strconv.Atoi(os.Getenv("DDPMLAB_THREADS")); threads > 0 {
		ddpm.SetNumThreads(threads)
	}
	gen, err := job.NewGenerator(st, opened, cfg)
	if err != nil {
		if errors.As(err, new(*job.GuideError)) {
			return fmt.Errorf("%w (--autoguidance 0, or ag=0 in runner serve, generates without a guide)", err)
		}
		return err
	}
	c, h, w := gen.Shape()
	cols := int(math.Ceil(math.Sqrt(float64(*n))))
	grid := func(values []float32) image.Image { return viz.GridC(values, *n, c, h, w, cols, 2, 1) }
	emit := func(ev serve.ChildEvent) error {
		ev.Sent = time.Now().UnixNano()
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(append(b, '\n'))
		return err
	}
	var (
		frames    []image.Image
		last      = time.Now()
		lastStep  = 0
		startSent = false
	)
	result, err := gen.Generate(ctx, job.Generation{
		Seed: *seed, N: *n, Class: *class, Guidance: cfg.Sample.Guidance, Eta: cfg.Sample.Eta, FrameEvery: *every,
		OnFrame: func(f ddpm.StepFrame) error {
			now := time.Now()
			ms := float64(now.Sub(last).Microseconds()) / 1000 / float64(f.Step-lastStep)
			last, lastStep = now, f.Step
			x, x0 := grid(f.X), grid(f.PredX0)
			frames = append(frames, x)
			ev := serve.ChildEvent{Kind: serve.EventFrame, Step: f.Step, Steps: f.Steps, T: f.T, MsPerStep: ms}
			var perr error
			if ev.X, perr = encodePNG(x); perr == nil {
				ev.X0, perr = encodePNG(x0)
			}
			if perr != nil {
				return perr
			}
			return emit(ev)
		},
		OnStart: func(samplerName string, steps int) error {
			startSent = true
			last = time.Now()
			return emit(serve.ChildEvent{Kind: serve.EventStart, Sampler: samplerName, Weights: gen.Weights(), Steps: steps})
		},
	})
	if err != nil {
		return err
	}
	if !startSent {
		return fmt.Errorf("generate: no start event")
	}
	final := grid(result.Images)
	done := serve.ChildEvent{Kind: serve.EventDone, Seconds: result.Seconds}
	if done.PNG, err = encodePNG(final); err != nil {
		return err
	}
	if done.GIF, err = encodeGIF(append(frames, final)); err != nil {
		return err
	}
	return emit(done)
}

// setAutoGuidance applies --autoguidance w to cfg, the config of run short: w < 0 keeps the
// run's own sample.autoguidance, guide_run and guide_step; 0 turns autoguidance off (and drops
// the guide, which the config then may not name); w in (0, MaxAutoGuidance] samples with the
// run's own guide at weight w, and is a usage error for a run that names no guide.
func setAutoGuidance(cfg *config.Config, w float64, short string) error {
	s := &cfg.Sample
	switch {
	case math.IsNaN(w) || w > config.MaxAutoGuidance:
		return usagef("--autoguidance: want a weight in [0, %d] (or < 0 for the run's own), got %g", config.MaxAutoGuidance, w)
	case w < 0:
	case w == 0:
		s.AutoGuidance, s.GuideRun, s.GuideStep = 0, "", 0
	case s.GuideRun == "" && s.GuideStep == 0:
		return usagef("--autoguidance %g: run %s has no guide (its config sets neither sample.guide_run nor sample.guide_step); generate with --autoguidance 0", w, short)
	default:
		s.AutoGuidance = w
	}
	return nil
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	err := png.Encode(&buf, img)
	return buf.Bytes(), err
}

// encodeGIF encodes frames as the denoising animation of viz.WriteGIFImages, through a file in
// a temporary folder of the child's own (never the store).
func encodeGIF(frames []image.Image) ([]byte, error) {
	dir, err := os.MkdirTemp("", "ddpmlab-generate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "denoise.gif")
	if err := viz.WriteGIFImages(path, frames, 8); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
