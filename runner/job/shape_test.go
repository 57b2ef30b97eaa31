package job

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
	"github.com/ddpmlab/ddpmlab/ddpm/viz"
	"github.com/ddpmlab/ddpmlab/ddpm/viz/viztest"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// withData makes the job read train and test instead of the config's dataset.
func withData(t *testing.T, train, test *data.Set) {
	t.Helper()
	orig := loadSplit
	loadSplit = func(_ config.Config, split data.Split) (*data.Set, error) {
		if split == data.Test {
			return test, nil
		}
		return train, nil
	}
	t.Cleanup(func() { loadSplit = orig })
}

// tinyRGBConfig trains a base-8 U-Net for epochs epochs of batches of 16 and samples with 10
// DDIM steps.
func tinyRGBConfig(t *testing.T, epochs, evalSamples int) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Seed = 3
	cfg.Model.BaseChannels, cfg.Model.TimeEmbDim = 8, 16
	cfg.Diffusion.Timesteps = 100
	cfg.Train.Epochs, cfg.Train.BatchSize, cfg.Train.LR = epochs, 16, 2e-3
	cfg.Train.SampleEvery, cfg.Train.CheckpointEvery = 0, 0
	cfg.Sample.Sampler, cfg.Sample.Steps, cfg.Sample.NumImages = "ddim", 10, 4
	cfg.Eval.NumSamples = evalSamples
	cfg.Runtime.Device = "cpu"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runJob creates the config's run in a new store and runs it to the end.
func runJob(t *testing.T, cfg config.Config) (*store.Store, string) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hash := cfg.Hash().String()
	if _, err := st.Create(hash, cfg.TOML(), cfg.Canonical()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Begin(hash, 0, cfg.Train.Epochs); err != nil {
		t.Fatal(err)
	}
	// One libtorch thread: on a shared machine OpenMP's spinning threads cost more than they win
	// at these sizes.
	if err := Run(context.Background(), Options{Store: st, Hash: hash, Log: zerolog.Nop(), Threads: 1, CodeVersion: "test"}); err != nil {
		t.Fatalf("run: %v", err)
	}
	return st, hash
}

// coloured reports whether some pixel of img has R ≠ G or G ≠ B, i.e. it is not grey.
func coloured(img image.Image) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.R != c.G || c.G != c.B {
				return true
			}
		}
	}
	return false
}

// gridSide is the side of a square grid of k×k tiles of side s as the job draws them: each
// pixel 2×2, pad 2 around and between.
func gridSide(k, s int) int { return k*(2*s+2) + 2 }

// An RGB 32×32 dataset trains end to end through the job: the loss falls, the network and
// checkpoint record 3×32×32, the grids and figures are RGB PNGs of the right size, the reference
// classifier is trained on the 3-class set, and `runner sample` and `runner export` read the
// shape from the checkpoint.
func TestRGBRunEndToEnd(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t.Setenv("DDPMLAB_CACHE", t.TempDir())
	withData(t, datatest.ColouredShapes(rand.New(rand.NewPCG(1, 3)), 48, 32, data.Train, true),
		datatest.ColouredShapes(rand.New(rand.NewPCG(2, 3)), 24, 32, data.Test, true))
	cfg := tinyRGBConfig(t, 12, 16)
	st, hash := runJob(t, cfg)
	dir := st.RunDir(hash)

	t.Run("loss falls", func(t *testing.T) {
		loss, err := st.ReadLoss(hash)
		if err != nil {
			t.Fatal(err)
		}
		if len(loss) != 36 { // 12 epochs of ⌈48/16⌉ batches
			t.Fatalf("%d loss rows, want 36", len(loss))
		}
		const k = 6
		first, last := 0.0, 0.0
		for i := range k {
			first += loss[i].Loss / k
			last += loss[len(loss)-1-i].Loss / k
		}
		t.Logf("mean loss of the first %d steps %.3f, of the last %d %.3f", k, first, k, last)
		if !(last < 0.8*first) {
			t.Errorf("loss did not fall: first %d steps %.3f, last %d %.3f", k, first, k, last)
		}
	})
	t.Run("checkpoint and fingerprint record the shape", func(t *testing.T) {
		found, _, err := LatestCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := checkpointShape(found.Dir); err != nil || got != (imageShape{3, 32, 32}) {
			t.Errorf("checkpoint shape %v (%v), want 3×32×32", got, err)
		}
		var fp map[string]string
		if err := store.ReadJSON(filepath.Join(dir, "fingerprint.json"), &fp); err != nil {
			t.Fatal(err)
		}
		if fp["image_shape"] != "3x32x32" {
			t.Errorf("fingerprint image_shape %q, want 3x32x32", fp["image_shape"])
		}
	})
	t.Run("grids are RGB", func(t *testing.T) {
		for _, tc := range []struct {
			file string
			w, h int
		}{
			{"samples/final.png", gridSide(2, 32), gridSide(2, 32)}, // 4 images, 2 columns
			{"forward.png", 0, 0},
			{"denoise/strip.png", 0, 0},
		} {
			img := viztest.DecodePNG(t, filepath.Join(dir, tc.file))
			if tc.w > 0 && (img.Bounds().Dx() != tc.w || img.Bounds().Dy() != tc.h) {
				t.Errorf("%s is %v, want %d×%d", tc.file, img.Bounds(), tc.w, tc.h)
			}
			if _, grey := img.(*image.Gray); grey || !coloured(img) {
				t.Errorf("%s is grey (%T)", tc.file, img)
			}
		}
		anim := viztest.DecodeGIF(t, filepath.Join(dir, "denoise", "denoise.gif"))
		last := anim.Image[len(anim.Image)-1]
		if last.Bounds().Dx() != gridSide(2, 32) || !coloured(last) {
			t.Errorf("denoise.gif: last frame %v, coloured %v; want %d wide, coloured", last.Bounds(), coloured(last), gridSide(2, 32))
		}
		for i, c := range viz.RGBCube { // the encoder pads the palette to 256 entries
			if i >= len(last.Palette) || color.NRGBAModel.Convert(last.Palette[i]) != color.NRGBAModel.Convert(c) {
				t.Fatalf("denoise.gif: palette entry %d is not the RGB cube's %v", i, c)
			}
		}
	})
	t.Run("classifier of the 3-class set", func(t *testing.T) {
		var q struct {
			Metrics    map[string]any `json:"metrics"`
			Classifier struct {
				TestAccuracy float64 `json:"test_accuracy"`
				Shape        struct{ Channels, Height, Width, Classes int }
			} `json:"classifier"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "metrics", "quality.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if s := q.Classifier.Shape; s.Channels != 3 || s.Height != 32 || s.Width != 32 || s.Classes != 3 {
			t.Errorf("classifier shape %+v, want 3×32×32 with 3 classes", s)
		}
		if q.Classifier.TestAccuracy < 0.9 {
			t.Errorf("classifier test accuracy %.2f, want >= 0.9 on the coloured squares", q.Classifier.TestAccuracy)
		}
		if _, ok := q.Metrics["recognizable"]; !ok {
			t.Errorf("metrics lack recognizable: %v", q.Metrics)
		}
		sum, err := st.ReadSummary(hash)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Metrics.FD == nil || sum.Metrics.Recognizable == nil {
			t.Errorf("summary metrics: fd %v, recognizable %v; want both", sum.Metrics.FD, sum.Metrics.Recognizable)
		}
	})
	t.Run("runner sample reads the shape from the checkpoint", func(t *testing.T) {
		out := t.TempDir()
		opened, err := OpenConfig(st, hash, cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Sample(context.Background(), SampleRequest{Run: opened, Config: cfg, Out: out})
		if err != nil {
			t.Fatal(err)
		}
		img := viztest.DecodePNG(t, res.Grid)
		if img.Bounds().Dx() != gridSide(2, 32) || !coloured(img) {
			t.Errorf("%s: %v, coloured %v; want %d wide, coloured", res.Grid, img.Bounds(), coloured(img), gridSide(2, 32))
		}
	})
	t.Run("runner export records the shape", func(t *testing.T) {
		opened, err := OpenConfig(st, hash, cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Export(ExportRequest{Store: st, Run: opened, Out: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var ec ExportConfig
		b, err := os.ReadFile(filepath.Join(res.Dir, ExportConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ec); err != nil {
			t.Fatal(err)
		}
		if ec.ImageChannels != 3 || ec.ImageSize != 32 || ec.ImageHeight != 0 {
			t.Errorf("export config: channels %d, size %d, height %d; want 3, 32, 0 (square)", ec.ImageChannels, ec.ImageSize, ec.ImageHeight)
		}
	})
}

// Samples of a 3×32×32 run are (n, 3, 32, 32): n·3·32·32 values, from noise of that shape.
func TestSampleShape(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := tinyRGBConfig(t, 1, 0)
	shape := imageShape{C: 3, H: 32, W: 32}
	model, err := ddpm.NewModel(unetConfig(cfg, shape), gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{cfg: cfg, device: gotch.CPU, shape: shape}
	res, _, _, err := r.sample(context.Background(), sched, model, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Images), 3*3*32*32; got != want {
		t.Errorf("%d sample values, want %d (3 images of 3×32×32)", got, want)
	}
	if c, h, w := model.Net.Config.Shape(); c != 3 || h != 32 || w != 32 {
		t.Errorf("network shape %d×%d×%d, want 3×32×32", c, h, w)
	}
}

// writeFolder writes set's images as PNG files image_000.png, … into dir, for a folder dataset.
func writeFolder(t *testing.T, dir string, set *data.Set) {
	t.Helper()
	for i := range set.N {
		img := viz.GridC(set.Image(i), 1, set.C(), set.Height, set.Width, 1, 0, 1) // one tile, no padding
		if err := viz.WritePNG(filepath.Join(dir, fmt.Sprintf("image_%03d.png", i)), img); err != nil {
			t.Fatal(err)
		}
	}
}

// An unlabelled folder of RGB PNGs (read by package data's folder reader) has no reference
// classifier: FD is measured in the random-feature network, quality.json says so, and the
// class metrics are absent, not 0.
func TestUnlabelledFolderRun(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t.Setenv("DDPMLAB_CACHE", t.TempDir())
	folder := t.TempDir()
	writeFolder(t, folder, datatest.ColouredShapes(rand.New(rand.NewPCG(1, 3)), 60, 32, data.Train, false)) // every 10th image is the test split
	cfg := tinyRGBConfig(t, 1, 16)
	cfg.Data.Dataset, cfg.Data.Dir = "folder", folder
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, hash := runJob(t, cfg)
	dir := st.RunDir(hash)
	var fp map[string]string
	if err := store.ReadJSON(filepath.Join(dir, "fingerprint.json"), &fp); err != nil {
		t.Fatal(err)
	}
	if fp["image_shape"] != "3x32x32" {
		t.Errorf("fingerprint image_shape %q, want 3x32x32", fp["image_shape"])
	}
	if img := viztest.DecodePNG(t, filepath.Join(dir, "samples", "final.png")); !coloured(img) {
		t.Error("samples/final.png is grey")
	}
	b, err := os.ReadFile(filepath.Join(dir, "metrics", "quality.json"))
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Metrics map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if q.Metrics["classifier"] != "none" || q.Metrics["fd_features"] == nil || q.Metrics["fd"] == nil {
		t.Errorf("metrics %v: want classifier none, fd_features and fd", q.Metrics)
	}
	for _, key := range []string{"recognizable", "class_entropy", "min_class_share", "class_shares"} {
		if v, ok := q.Metrics[key]; ok {
			t.Errorf("metrics hold %s = %v; want it absent", key, v)
		}
	}
	sum, err := st.ReadSummary(hash)
	if err != nil {
		t.Fatal(err)
	}
	if m := sum.Metrics; m.FD == nil || m.Recognizable != nil || m.ClassEntropy != nil || m.MinClassShare != nil {
		t.Errorf("summary metrics: fd %v, recognizable %v, entropy %v, min share %v; want fd only", m.FD, m.Recognizable, m.ClassEntropy, m.MinClassShare)
	}
}

// A checkpoint from before shapes were recorded (state.json's unet has no ImageHeight or
// ImageWidth) is 1×28×28; one that records them gives them back.
func TestCheckpointShape(t *testing.T) {
	for _, tc := range []struct {
		name, unet string
		want       imageShape
	}{
		{"old MNIST checkpoint", `{"ImageChannels": 1, "BaseChannels": 64, "TimeEmbDim": 256, "NumClasses": 0}`, defaultShape},
		{"no channel count", `{"BaseChannels": 64, "TimeEmbDim": 256}`, defaultShape},
		{"RGB 64×64", `{"ImageChannels": 3, "BaseChannels": 64, "TimeEmbDim": 256, "ImageHeight": 64, "ImageWidth": 64}`, imageShape{3, 64, 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state := `{"epoch": 1, "step": 10, "has_ema": true, "unet": ` + tc.unet + `}`
			if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := checkpointShape(dir); err != nil || got != tc.want {
				t.Errorf("checkpointShape = %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}
