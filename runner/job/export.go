package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Files of an export folder.
const (
	ExportWeightsFile = "model.safetensors"
	ExportConfigFile  = "config.json"
)

// ExportFormat and ExportVersion identify config.json; runner/scripts/ddpm_torch.py checks
// both. The version changes when a field changes meaning.
const (
	ExportFormat  = "ddpmlab.SimpleUNet"
	ExportVersion = 1
)

// ExportConfig is config.json of an export folder: what runner/scripts/ddpm_torch.py needs to
// rebuild the network and its noise schedule.
type ExportConfig struct {
	Format  string `json:"format"`  // ExportFormat
	Version int    `json:"version"` // ExportVersion
	Run     string `json:"run"`     // the run's full hash
	Weights string `json:"weights"` // "ema" or "raw"
	Dataset string `json:"dataset"`
	// The network's input (B, ImageChannels, ImageSize, ImageSize) for square images; images
	// that are not square also give ImageHeight (= ImageSize) and ImageWidth.
	ImageChannels int `json:"image_channels"`
	ImageSize     int `json:"image_size"`
	ImageHeight   int `json:"image_height,omitempty"`
	ImageWidth    int `json:"image_width,omitempty"`
	// NumClasses is 0 for an unconditional model; otherwise class_embedding.weight has
	// NumClasses+1 rows, the last one the "no class" ∅ of classifier-free guidance.
	NumClasses int      `json:"num_classes"`
	ClassNames []string `json:"class_names,omitempty"`
	// Model and Diffusion are the run's [model] and [diffusion] tables as its canonical form
	// has them (config keys, and only the keys that are part of its hash), so a key the U-Net
	// gains later appears here once a run sets it, and ddpm_torch.py can refuse what it does
	// not implement.
	Model     map[string]any `json:"model"`
	Diffusion map[string]any `json:"diffusion"`
}

// ExportRequest describes `runner export`: one weight set of a run's last checkpoint, written
// as model.safetensors and config.json.
type ExportRequest struct {
	Store   *store.Store
	Run     *OpenedRun // the run (OpenRun); Export finds its checkpoint, and Run.Skipped then says what it passed over
	Weights string     // ddpm.WeightsEMA, ddpm.WeightsRaw, or "" for EMA when the checkpoint has it
	Out     string     // output folder; "" = <run>/export/<weights>
}

// ExportResult says what was written.
type ExportResult struct {
	Dir       string
	Files     []string // model.safetensors and config.json, in Dir
	Weights   string   // the weight set exported: "ema" or "raw"
	Tensors   int
	Params    int64
	Unchanged bool // the folder already held these exact files; nothing was written
}

// Export writes a run's weights for PyTorch. The folder may already hold an export of the
// same weights (then nothing is written); if it holds a different model.safetensors or
// config.json, Export writes nothing and returns an error. The caller must be locked to its OS
// thread (runtime.LockOSThread).
func Export(req ExportRequest) (ExportResult, error) {
	var res ExportResult
	hash, cfg := req.Run.Hash, req.Run.Config
	short := store.Short(hash)
	if cfg.SamplingOnly() {
		src := store.Short(cfg.Sample.FromRun)
		return res, fmt.Errorf("run %s only samples run %s's checkpoint and has no weights of its own: export that run (runner export %s)", short, src, src)
	}
	// The network's image shape comes with the checkpoint, as it records it.
	if err := req.Run.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return res, fmt.Errorf("run %s has no checkpoint yet (%s): train it first (runner rerun %s)", short, store.CheckpointsDir(req.Run.SourceDir), short)
	} else if err != nil {
		return res, fmt.Errorf("run %s: %w", short, err)
	}
	ckpt, shape := req.Run.Checkpoint, req.Run.shape
	canonical, err := os.ReadFile(req.Store.Path(hash, store.CanonicalFile))
	if err != nil {
		return res, fmt.Errorf("run %s: %w", short, err)
	}
	arrays, weights, err := ddpm.CheckpointWeights(ckpt, unetConfig(cfg, shape), req.Weights)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", short, err)
	}
	res.Weights, res.Tensors = weights, len(arrays)
	for _, a := range arrays {
		res.Params += int64(len(a.Data))
	}

	var model bytes.Buffer
	meta := map[string]string{"format": "pt", "config": string(canonical), "hash": hash, "weights": weights}
	if err := ddpm.WriteSafetensors(&model, arrays, meta); err != nil {
		return res, err
	}
	cfgJSON, err := exportConfig(hash, cfg, shape, canonical, weights)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", short, err)
	}

	res.Dir = req.Out
	if res.Dir == "" {
		res.Dir = filepath.Join(req.Store.RunDir(hash), "export", weights)
	}
	files := []struct {
		name string
		data []byte
	}{{ExportWeightsFile, model.Bytes()}, {ExportConfigFile, cfgJSON}}
	// Check both files before writing either, so a refused export changes nothing.
	var write []int
	for i, f := range files {
		path := filepath.Join(res.Dir, f.name)
		res.Files = append(res.Files, path)
		old, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			write = append(write, i)
		case err != nil:
			return res, err
		case !bytes.Equal(old, f.data):
			return res, fmt.Errorf("%s already holds a different %s%s: choose another --out, or remove it first",
				res.Dir, f.name, describeExport(filepath.Join(res.Dir, ExportConfigFile)))
		}
	}
	if len(write) == 0 {
		res.Unchanged = true
		return res, nil
	}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return res, err
	}
	for _, i := range write {
		if err := durable.WriteFile(res.Files[i], files[i].data, 0o644); err != nil {
			return res, err
		}
	}
	return res, nil
}

// exportConfig is config.json's content for a run.
func exportConfig(hash string, cfg config.Config, shape imageShape, canonical []byte, weights string) ([]byte, error) {
	var tables map[string]json.RawMessage
	if err := json.Unmarshal(canonical, &tables); err != nil {
		return nil, fmt.Errorf("%s: %w", store.CanonicalFile, err)
	}
	table := func(name string) (map[string]any, error) {
		dec := json.NewDecoder(bytes.NewReader(tables[name]))
		dec.UseNumber() // keep 1000 an integer and 0.0001 as written
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: [%s]: %w", store.CanonicalFile, name, err)
		}
		return m, nil
	}
	unet := unetConfig(cfg, shape)
	ec := ExportConfig{
		Format: ExportFormat, Version: ExportVersion, Run: hash, Weights: weights,
		Dataset: cfg.Data.Dataset, ImageChannels: shape.C, ImageSize: shape.H,
		NumClasses: unet.NumClasses,
	}
	if shape.H != shape.W {
		ec.ImageHeight, ec.ImageWidth = shape.H, shape.W
	}
	if unet.NumClasses > 0 {
		ec.ClassNames = classNames(cfg)
	}
	var err error
	if ec.Model, err = table("model"); err != nil {
		return nil, err
	}
	if ec.Diffusion, err = table("diffusion"); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(ec, "", "  ")
	return append(b, '\n'), err
}

// describeExport names the run and weights of an existing config.json (" (run X, ema
// weights)"), or is empty when there is none to read.
func describeExport(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var ec ExportConfig
	if json.Unmarshal(b, &ec) != nil || ec.Run == "" {
		return ""
	}
	return fmt.Sprintf(" (run %s, %s weights)", store.Short(ec.Run), ec.Weights)
}
