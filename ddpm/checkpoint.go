package ddpm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch/ts"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// CheckpointState is the part of a checkpoint that is not a tensor (its state.json).
type CheckpointState struct {
	Epoch      int        `json:"epoch"`       // epochs completed
	EpochStep  int        `json:"epoch_step"`  // batches of the current epoch already done (for mid-epoch resumes)
	Step       int64      `json:"step"`        // optimizer steps
	EMAUpdates int64      `json:"ema_updates"` // EMA updates (for warm-up)
	HasEMA     bool       `json:"has_ema"`
	UNet       UNetConfig `json:"unet"`
	// TensorsSHA256 is the hex SHA-256 of tensors.ot and TensorsBytes its size, so that a
	// corrupt or partial checkpoint is detected before it is loaded. Checkpoints written
	// before they were recorded lack both and are trusted as they are.
	TensorsSHA256 string `json:"tensors_sha256,omitempty"`
	TensorsBytes  int64  `json:"tensors_bytes,omitempty"`
}

// Checkpoint file names inside a checkpoint folder.
const (
	checkpointTensors = "tensors.ot"
	checkpointState   = "state.json"
)

// SaveCheckpoint writes the model weights, Adam moments, EMA weights and state into the
// checkpoint folder dir, replacing any folder there, with durable.WriteDir: the folder is
// assembled beside dir, every file synced, and switched in atomically, so a crash leaves the
// old folder or the complete new one. state.json records the SHA-256 of tensors.ot.
// Checkpoints.Save keeps versions of it and a pointer to the newest.
func (tr *Trainer) SaveCheckpoint(dir string, epoch, epochStep int) error {
	return tr.saveCheckpoint(dir, epoch, epochStep, nil)
}

// saveCheckpoint is SaveCheckpoint with a hook called after each step of the write with its
// name ("tensors", "state"); see Checkpoints.Hook.
func (tr *Trainer) saveCheckpoint(dir string, epoch, epochStep int, hook func(stage string)) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// Each tensor is written from a copy with storage of its own: the live ones are views of
	// flat buffers (flat.go), and libtorch would write a view's whole storage, shared by all.
	var named []ts.NamedTensor
	var s scope
	defer s.drop()
	add := func(prefix string, list []namedTensor) {
		for _, p := range list {
			own := s.do(p.tensor.ZerosLike(false))
			if !s.failed(own) {
				s.err = copyInto(own, p.tensor)
			}
			named = append(named, ts.NamedTensor{Name: prefix + p.name, Tensor: own})
		}
	}
	add("model.", tr.Model.params)
	add("adam.m.", tr.Adam.m)
	add("adam.v.", tr.Adam.v)
	state := CheckpointState{Epoch: epoch, EpochStep: epochStep, Step: tr.Adam.Step, UNet: tr.Model.Net.Config}
	if tr.EMA != nil {
		add("ema.", tr.EMA.average)
		state.HasEMA, state.EMAUpdates = true, tr.EMA.Updates
	}
	if s.err != nil {
		return fmt.Errorf("checkpoint: copy tensors: %w", s.err)
	}
	stage := func(name string) {
		if hook != nil {
			hook(name)
		}
	}
	// libtorch aborts the process if the disk fills up while it writes: check first, with
	// room for the archive's per-tensor records and state.json.
	need := int64(16<<10) + int64(len(named))*512
	for _, nt := range named {
		need += int64(nt.Tensor.Numel()) * int64(nt.Tensor.DType().Size())
	}
	if err := durable.CheckSpace(filepath.Dir(dir), filepath.Join(dir, checkpointTensors), need); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	err := durable.WriteDir(dir, func(tmp string) error {
		// SaveMultiNew: gotch's older SaveMulti corrupts the heap.
		tensors := filepath.Join(tmp, checkpointTensors)
		if err := ts.SaveMultiNew(named, tensors); err != nil {
			return fmt.Errorf("save tensors: %w", err)
		}
		var err error
		if state.TensorsSHA256, state.TensorsBytes, err = hashFile(tensors); err != nil {
			return err
		}
		stage("tensors")
		js, err := json.MarshalIndent(state, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, checkpointState), append(js, '\n'), 0o644); err != nil {
			return err
		}
		stage("state")
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// hashFile returns the hex SHA-256 and the size of a file.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// VerifyCheckpoint checks that the checkpoint folder dir is complete and intact: state.json
// parses and tensors.ot has the size and SHA-256 that state.json records. A checkpoint from
// before checksums were recorded only needs a non-empty tensors.ot. The error names the file
// and what is wrong with it.
func VerifyCheckpoint(dir string) (CheckpointState, error) {
	st, err := ReadCheckpointState(dir)
	if err != nil {
		return st, err
	}
	tensors := filepath.Join(dir, checkpointTensors)
	if st.TensorsSHA256 == "" {
		fi, err := os.Stat(tensors)
		if err != nil {
			return st, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		if fi.Size() == 0 {
			return st, fmt.Errorf("checkpoint %s: %s is empty", dir, checkpointTensors)
		}
		return st, nil
	}
	sum, n, err := hashFile(tensors)
	switch {
	case err != nil:
		return st, fmt.Errorf("checkpoint %s: %w", dir, err)
	case n != st.TensorsBytes:
		return st, fmt.Errorf("checkpoint %s: %s has %d bytes, state.json records %d", dir, checkpointTensors, n, st.TensorsBytes)
	case sum != st.TensorsSHA256:
		return st, fmt.Errorf("checkpoint %s: %s has SHA-256 %.12s…, state.json records %.12s…", dir, checkpointTensors, sum, st.TensorsSHA256)
	}
	return st, nil
}

// ReadCheckpointState reads a checkpoint's state without loading tensors.
func ReadCheckpointState(dir string) (CheckpointState, error) {
	var st CheckpointState
	b, err := os.ReadFile(filepath.Join(dir, checkpointState))
	if err != nil {
		return st, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("checkpoint %s: %s: %w", dir, checkpointState, err)
	}
	return st, nil
}

// LoadCheckpoint restores everything SaveCheckpoint wrote into this trainer (built with the
// same configuration) and returns the state.
func (tr *Trainer) LoadCheckpoint(dir string) (CheckpointState, error) {
	st, err := ReadCheckpointState(dir)
	if err != nil {
		return st, err
	}
	if !st.UNet.Equal(tr.Model.Net.Config) {
		return st, fmt.Errorf("checkpoint %s: model %+v does not match the config's %+v", dir, st.UNet, tr.Model.Net.Config)
	}
	tensors, err := loadNamed(dir)
	if err != nil {
		return st, err
	}
	defer dropAll(tensors)
	load := func(prefix string, list []namedTensor) error {
		for _, p := range list {
			src, ok := tensors[prefix+p.name]
			if !ok {
				return fmt.Errorf("checkpoint %s: missing tensor %s%s", dir, prefix, p.name)
			}
			if err := copyInto(p.tensor, src); err != nil {
				return fmt.Errorf("checkpoint %s: load %s%s: %w", dir, prefix, p.name, err)
			}
		}
		return nil
	}
	for prefix, list := range map[string][]namedTensor{"model.": tr.Model.params, "adam.m.": tr.Adam.m, "adam.v.": tr.Adam.v} {
		if err := load(prefix, list); err != nil {
			return st, err
		}
	}
	tr.Adam.Step = st.Step
	if tr.EMA != nil && st.HasEMA {
		if err := load("ema.", tr.EMA.average); err != nil {
			return st, err
		}
		tr.EMA.Updates = st.EMAUpdates
	}
	return st, nil
}

// LoadWeights loads a checkpoint's weights into model for sampling: the EMA weights when the
// checkpoint has them and useEMA is set, else the raw weights. It reports which were used
// ("ema" or "raw").
func LoadWeights(dir string, model *Model, useEMA bool) (string, error) {
	st, err := ReadCheckpointState(dir)
	if err != nil {
		return "", err
	}
	if !st.UNet.Equal(model.Net.Config) {
		return "", fmt.Errorf("checkpoint %s: model %+v does not match %+v", dir, st.UNet, model.Net.Config)
	}
	tensors, err := loadNamed(dir)
	if err != nil {
		return "", err
	}
	defer dropAll(tensors)
	prefix, which := "model.", "raw"
	if useEMA && st.HasEMA {
		prefix, which = "ema.", "ema"
	}
	for _, p := range model.params {
		src, ok := tensors[prefix+p.name]
		if !ok {
			return "", fmt.Errorf("checkpoint %s: missing tensor %s%s", dir, prefix, p.name)
		}
		if err := copyInto(p.tensor, src); err != nil {
			return "", fmt.Errorf("checkpoint %s: load %s: %w", dir, p.name, err)
		}
	}
	return which, nil
}

// loadNamed verifies the checkpoint folder dir and loads its tensors by name.
func loadNamed(dir string) (map[string]*ts.Tensor, error) {
	if _, err := VerifyCheckpoint(dir); err != nil {
		return nil, err
	}
	list, err := ts.LoadMulti(filepath.Join(dir, checkpointTensors))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: load tensors: %w", dir, err)
	}
	out := make(map[string]*ts.Tensor, len(list))
	for _, nt := range list {
		out[nt.Name] = nt.Tensor
	}
	return out, nil
}

func dropAll(tensors map[string]*ts.Tensor) {
	for _, t := range tensors {
		t.MustDrop()
	}
}
