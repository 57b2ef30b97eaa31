package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// exportRunSpec is a tiny run for the export tests: base 8, so everything takes milliseconds.
type exportRunSpec struct {
	conditional bool
	emaDecay    float64
	checkpoint  bool // train two steps and write checkpoints/last.ckpt
}

// exportFixture adds a run to the store at root and, if asked, trains it for two steps (so every
// parameter, GroupNorm's included, has left its initial value) and checkpoints it. It returns
// the run's hash, its U-Net configuration and the trainer (nil without a checkpoint).
func exportFixture(t *testing.T, root string, spec exportRunSpec) (string, ddpm.UNetConfig, *ddpm.Trainer) {
	t.Helper()
	lockTorchThread(t)
	cfg := config.Default()
	sets := map[string]string{"model.base_channels": "8", "model.time_emb_dim": "16",
		"model.conditional": fmt.Sprint(spec.conditional), "train.ema_decay": fmt.Sprint(spec.emaDecay)}
	for _, k := range sortedKeys(sets) {
		if err := cfg.Set(k, sets[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	hash := cfg.Hash().String()
	if _, err := st.Create(hash, cfg.TOML(), cfg.Canonical()); err != nil {
		t.Fatal(err)
	}
	unet := ddpm.UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16}
	if spec.conditional {
		unet.NumClasses = 10
	}
	if !spec.checkpoint {
		return hash, unet, nil
	}
	sched, err := ddpm.NewSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Timesteps, cfg.Diffusion.BetaStart, cfg.Diffusion.BetaEnd)
	if err != nil {
		t.Fatal(err)
	}
	diffusion, err := ddpm.NewDiffusion(sched, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	ddpm.ManualSeed(1)
	model, err := ddpm.NewModel(unet, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ddpm.NewTrainer(model, diffusion, ddpm.TrainConfig{LR: 1e-2, EMADecay: spec.emaDecay, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	x0, err := ddpm.NoiseFor(2, 4, 1, 28, 28, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x0.MustDrop()
	var labels *ts.Tensor
	if spec.conditional {
		labels = ts.MustOfSlice([]int64{1, 2, 3, 4})
		defer labels.MustDrop()
	}
	for range 2 {
		if _, err := tr.Step(x0, labels); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.SaveCheckpoint(st.Path(hash, "checkpoints/last.ckpt"), 1, 0); err != nil {
		t.Fatal(err)
	}
	return hash, unet, tr
}

// lockTorchThread pins the test's goroutine to its OS thread, as main does: libtorch's grad mode
// is per thread.
func lockTorchThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// runExportCmd runs `runner export ARGS --store root` in this process.
func runExportCmd(t *testing.T, root string, args ...string) result {
	t.Helper()
	lockTorchThread(t)
	var stdout, stderr bytes.Buffer
	code := mainCode(append([]string{"export", "--store", root}, args...), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func readExport(t *testing.T, dir string) ([]ddpm.Array, map[string]string, job.ExportConfig) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, job.ExportWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	arrays, meta, err := ddpm.ReadSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	var ec job.ExportConfig
	b, err = os.ReadFile(filepath.Join(dir, job.ExportConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ec); err != nil {
		t.Fatal(err)
	}
	return arrays, meta, ec
}

// TestExportCommand exports a tiny run and reads the files back: the raw weights must be the
// trainer's, bit for bit, under their names and shapes, with the run's canonical config and
// hash in the metadata; exporting again is a no-op, and bad requests fail with a clear error.
func TestExportCommand(t *testing.T) {
	root := t.TempDir()
	hash, _, tr := exportFixture(t, root, exportRunSpec{emaDecay: 0.5, checkpoint: true})
	st := &store.Store{Root: root}
	canonical, err := os.ReadFile(st.Path(hash, store.CanonicalFile))
	if err != nil {
		t.Fatal(err)
	}
	rawDir := filepath.Join(t.TempDir(), "raw")
	if res := runExportCmd(t, root, hash[:8], "--weights", "raw", "--out", rawDir); res.code != 0 {
		t.Fatalf("runner export: %s", res)
	}
	arrays, meta, ec := readExport(t, rawDir)
	want, err := tr.Model.Weights()
	if err != nil {
		t.Fatal(err)
	}
	if len(arrays) != len(want) {
		t.Fatalf("%d tensors, want %d", len(arrays), len(want))
	}
	for i, w := range want {
		g := arrays[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || !slices.Equal(g.Data, w.Data) {
			t.Errorf("tensor %d: %s %v differs from the trainer's %s %v", i, g.Name, g.Shape, w.Name, w.Shape)
		}
	}
	wantMeta := map[string]string{"format": "pt", "hash": hash, "config": string(canonical), "weights": "raw"}
	for k, v := range wantMeta {
		if meta[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], v)
		}
	}
	wantEC := job.ExportConfig{Format: job.ExportFormat, Version: job.ExportVersion, Run: hash, Weights: "raw",
		Dataset: "mnist", ImageChannels: 1, ImageSize: 28,
		Model:     map[string]any{"base_channels": 8.0, "time_emb_dim": 16.0, "conditional": false},
		Diffusion: map[string]any{"timesteps": 1000.0, "schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}}
	if fmt.Sprint(ec) != fmt.Sprint(wantEC) {
		t.Errorf("config.json:\n got %+v\nwant %+v", ec, wantEC)
	}

	noCkpt, _, _ := exportFixture(t, root, exportRunSpec{conditional: true})
	noEMA, _, _ := exportFixture(t, root, exportRunSpec{checkpoint: true})
	samplingOnly := config.Default()
	if err := samplingOnly.Set("sample.from_run", hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(samplingOnly.Hash().String(), samplingOnly.TOML(), samplingOnly.Canonical()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout on success, in stderr on failure
	}{
		{"again is a no-op", []string{hash[:8], "--weights", "raw", "--out", rawDir}, 0, "already exported"},
		{"default folder and weights", []string{hash}, 0, st.Path(hash, "export/ema/model.safetensors")},
		{"other weights into the same folder", []string{hash, "--out", rawDir}, 1,
			"already holds a different model.safetensors (run " + store.Short(hash) + ", raw weights)"},
		{"unknown hash", []string{"ffff0000"}, 1, "no such run"},
		{"no checkpoint", []string{noCkpt}, 1, "has no checkpoint yet"},
		{"sampling-only run", []string{samplingOnly.Hash().String()}, 1, "export that run (runner export " + store.Short(hash) + ")"},
		{"no EMA", []string{noEMA, "--weights", "ema"}, 1, "has no EMA weights"},
		{"bad weights flag", []string{hash, "--weights", "best"}, 2, "--weights must be ema or raw"},
		{"two hashes", []string{hash, noEMA}, 2, "want one run hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(filepath.Join(rawDir, job.ExportWeightsFile))
			res := runExportCmd(t, root, tt.args...)
			out := res.stdout
			if tt.code != 0 {
				out = res.stderr
			}
			if res.code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", res.code, tt.code, tt.want, res)
			}
			if after, _ := os.ReadFile(filepath.Join(rawDir, job.ExportWeightsFile)); !bytes.Equal(before, after) {
				t.Errorf("%s changed", filepath.Join(rawDir, job.ExportWeightsFile))
			}
		})
	}
}

// torchPython is the benchmark venv's python, or "" with the reason.
func torchPython() (string, string) {
	cache := os.Getenv("DDPMLAB_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "ddpmlab")
	}
	venv := filepath.Join(cache, "bench-venv")
	if _, err := os.Stat(filepath.Join(venv, ".ddpmlab-complete")); err != nil {
		return "", fmt.Sprintf("no PyTorch venv at %s; make it with `bash runner/scripts/bench.sh --prepare-only` to run this test", venv)
	}
	return filepath.Join(venv, "bin", "python"), ""
}

// runTorch runs runner/scripts/ddpm_torch.py in the venv on one thread (the venv's CUDA
// libraries are stand-ins, so CUDA is hidden), failing the test if it fails.
func runTorch(t *testing.T, python string, args ...string) string {
	t.Helper()
	out, err := torchCmd(python, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ddpm_torch.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func torchCmd(python string, args ...string) *exec.Cmd {
	cmd := exec.Command(python, append([]string{"-W", "ignore", filepath.Join("scripts", "ddpm_torch.py")}, args...)...)
	cmd.Env = append(os.Environ(), "CUDA_VISIBLE_DEVICES=", "DDPMLAB_THREADS=1", "OMP_NUM_THREADS=1")
	return cmd
}

func writeArrays(t *testing.T, path string, arrays ...ddpm.Array) {
	t.Helper()
	var buf bytes.Buffer
	if err := ddpm.WriteSafetensors(&buf, arrays, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readArray(t *testing.T, path, name string) ddpm.Array {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	arrays, _, err := ddpm.ReadSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arrays {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("%s has no tensor %s", path, name)
	return ddpm.Array{}
}

func maxAbsDiff(t *testing.T, got []float32, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	d := 0.0
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-want[i]))
	}
	return d
}

// TestExportMatchesPyTorch loads an export in PyTorch (runner/scripts/ddpm_torch.py) and checks
// that its network predicts the same ε̂ as Go's on fixed inputs, within 1e-5, for a
// class-conditional model (labels 0, 3, 9 and the null class 10); and that its DDPM sampler,
// started from Go's x_T with the same seed, draws the same images as ddpm.Sample (the per-step
// noise comes from the same libtorch generator on both sides).
func TestExportMatchesPyTorch(t *testing.T) {
	python, why := torchPython()
	if python == "" {
		t.Skip(why)
	}
	root := t.TempDir()
	hash, unet, _ := exportFixture(t, root, exportRunSpec{conditional: true, emaDecay: 0.5, checkpoint: true})
	dir := filepath.Join(t.TempDir(), "export")
	if res := runExportCmd(t, root, hash, "--out", dir); res.code != 0 {
		t.Fatalf("runner export: %s", res)
	}
	st := &store.Store{Root: root}
	model, err := ddpm.NewModel(unet, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ddpm.LoadWeights(st.Path(hash, "checkpoints/last.ckpt"), model, true); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()

	t.Run("prediction", func(t *testing.T) {
		lockTorchThread(t)
		const n = 4
		steps, labels := []int64{0, 1, 500, 999}, []int64{0, 3, 9, 10}
		xs := ddpm.GaussianNoise(3, n*28*28)
		x := ts.MustOfSlice(xs).MustView([]int64{n, 1, 28, 28}, true)
		defer x.MustDrop()
		tt, y := ts.MustOfSlice(steps), ts.MustOfSlice(labels)
		defer tt.MustDrop()
		defer y.MustDrop()
		eps, err := model.PredictNoise(x, tt, y)
		if err != nil {
			t.Fatal(err)
		}
		defer eps.MustDrop()
		goEps := eps.Float64Values()

		asFloats := func(v []int64) []float32 { // exact: every value is below 2^24
			out := make([]float32, len(v))
			for i := range v {
				out[i] = float32(v[i])
			}
			return out
		}
		inputs, out := filepath.Join(work, "inputs.safetensors"), filepath.Join(work, "eps.safetensors")
		writeArrays(t, inputs, ddpm.Array{Name: "x", Shape: []int64{n, 1, 28, 28}, Data: xs},
			ddpm.Array{Name: "t", Shape: []int64{n}, Data: asFloats(steps)},
			ddpm.Array{Name: "y", Shape: []int64{n}, Data: asFloats(labels)})
		runTorch(t, python, "predict", dir, inputs, out)
		got := readArray(t, out, "eps")
		if !slices.Equal(got.Shape, []int64{n, 1, 28, 28}) {
			t.Fatalf("PyTorch ε̂ has shape %v", got.Shape)
		}
		d := maxAbsDiff(t, got.Data, goEps)
		t.Logf("ε̂: max |PyTorch − Go| = %.3g over %d values", d, len(goEps))
		if d > 1e-5 {
			t.Errorf("PyTorch's ε̂ differs from Go's by up to %g (> 1e-5)", d)
		}
	})

	// A U-Net key that ddpm_torch.py does not implement must be refused, not ignored.
	t.Run("unknown model key", func(t *testing.T) {
		other := filepath.Join(work, "attention")
		if err := os.MkdirAll(other, 0o755); err != nil {
			t.Fatal(err)
		}
		weights, err := os.ReadFile(filepath.Join(dir, job.ExportWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		_, _, ec := readExport(t, dir)
		ec.Model["attention"] = "14"
		js, err := json.Marshal(ec)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{job.ExportWeightsFile: weights, job.ExportConfigFile: js} {
			if err := os.WriteFile(filepath.Join(other, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := torchCmd(python, "sample", other, "--out", filepath.Join(work, "never.png"), "--num-images", "1", "--steps", "1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `model.attention = '14' is not implemented by ddpm_torch.py`) {
			t.Errorf("ddpm_torch.py sample with model.attention set: %v\n%s", err, out)
		}
	})

	t.Run("sampling", func(t *testing.T) {
		lockTorchThread(t)
		const n, seed, steps, class, guidance = 4, 9, 5, 3, 2.0
		xT, err := ddpm.NoiseFor(seed, n, 1, 28, 28, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer xT.MustDrop()
		sched, err := ddpm.NewSchedule("linear", 1000, 1e-4, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		sampler, err := ddpm.NewSampler("ddpm", sched, steps, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		ddpm.ManualSeed(seed)
		res, err := ddpm.Sample(model, sampler, xT, ddpm.SampleOptions{Labels: []int64{class, class, class, class}, Guidance: guidance})
		if err != nil {
			t.Fatal(err)
		}
		noise, grid, x0 := filepath.Join(work, "x_T.safetensors"), filepath.Join(work, "grid.png"), filepath.Join(work, "x_0.safetensors")
		writeArrays(t, noise, ddpm.Array{Name: "x_T", Shape: []int64{n, 1, 28, 28}, Data: ddpm.GaussianNoise(seed, n*28*28)})
		runTorch(t, python, "sample", dir, "--noise", noise, "--seed", fmt.Sprint(seed), "--steps", fmt.Sprint(steps),
			"--num-images", fmt.Sprint(n), "--class", fmt.Sprint(class), "--guidance", fmt.Sprint(guidance),
			"--out", grid, "--save-tensors", x0)
		got := readArray(t, x0, "x_0")
		want := make([]float64, len(res.Images))
		for i, v := range res.Images {
			want[i] = float64(v)
		}
		d := maxAbsDiff(t, got.Data, want)
		t.Logf("x_0 after %d DDPM steps: max |PyTorch − Go| = %.3g", steps, d)
		if d > 1e-4 {
			t.Errorf("PyTorch's samples differ from Go's by up to %g (> 1e-4)", d)
		}

		// The grid: 2×2 images of 28 pixels with 2-pixel gaps and border; pixel (r, c) of image
		// k is round((x_0 + 1)·127.5).
		img := readPNG(t, grid)
		if b := img.Bounds(); b.Dx() != 62 || b.Dy() != 62 {
			t.Fatalf("grid is %dx%d, want 62x62", b.Dx(), b.Dy())
		}
		for _, p := range []struct{ k, r, c int }{{0, 0, 0}, {1, 13, 20}, {3, 27, 27}} {
			y, x := 2+(p.k/2)*30+p.r, 2+(p.k%2)*30+p.c
			gray, _, _, _ := img.At(x, y).RGBA()
			v := got.Data[p.k*784+p.r*28+p.c]
			if want := uint32(math.RoundToEven(float64((v + 1) * 127.5))); gray>>8 != want { // float32, as torch
				t.Errorf("grid pixel of image %d at (%d, %d) = %d, want %d", p.k, p.r, p.c, gray>>8, want)
			}
		}
	})
}

// readPNG decodes the PNG file at path.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
