package ddpm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch/ts"
)

// CheckpointState is the part of a checkpoint that is not a tensor.
type CheckpointState struct {
	Epoch      int        `json:"epoch"`       // epochs completed
	EpochStep  int        `json:"epoch_step"`  // batches of the current epoch already done (for mid-epoch resumes)
	Step       int64      `json:"step"`        // optimizer steps
	EMAUpdates int64      `json:"ema_updates"` // EMA updates (for warm-up)
	HasEMA     bool       `json:"has_ema"`
	UNet       UNetConfig `json:"unet"`
}

// Checkpoint file names inside a checkpoint folder.
const (
	checkpointTensors = "tensors.ot"
	checkpointState   = "state.json"
)

// SaveCheckpoint writes (with gotch's SaveMultiNew; its older SaveMulti corrupts the heap) the model weights, Adam moments, EMA weights and state into dir. The
// folder is written beside dir and renamed into place, so a crash never leaves a half checkpoint.
func (tr *Trainer) SaveCheckpoint(dir string, epoch, epochStep int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)

	var named []ts.NamedTensor
	add := func(prefix string, list []namedTensor) {
		for _, p := range list {
			named = append(named, ts.NamedTensor{Name: prefix + p.name, Tensor: p.tensor})
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
	if err := ts.SaveMultiNew(named, filepath.Join(tmp, checkpointTensors)); err != nil {
		return fmt.Errorf("checkpoint: save tensors: %w", err)
	}
	js, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, checkpointState), js, 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	old := dir + ".old"
	os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return os.RemoveAll(old)
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
	if st.UNet != tr.Model.Net.Config {
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
	if st.UNet != model.Net.Config {
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

func loadNamed(dir string) (map[string]*ts.Tensor, error) {
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
