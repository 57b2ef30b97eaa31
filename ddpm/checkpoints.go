package ddpm

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// Checkpoints is a folder of versioned checkpoints, the one a training run resumes from.
//
// Layout of Dir:
//
//	ckpt-000000120.ckpt/  a checkpoint folder (SaveCheckpoint), named by its optimizer step
//	ckpt-000000090.ckpt/  the previous one, kept as a fallback
//	latest.json           the pointer: which folder is current, and the SHA-256 of its state.json
//	epoch_005.ckpt/       snapshots the caller asked for (train.checkpoint_every); never pruned
//	last.ckpt/            the single checkpoint of stores written before versioning (read only)
//
// Save writes a new folder durably, then switches the pointer to it with one atomic rename,
// then removes the older versions: a crash at any instant leaves a pointer to a complete
// checkpoint, or a complete checkpoint newer than the pointer, never none. Latest finds the
// checkpoint to resume from and skips a corrupt or partial one for the previous good one.
type Checkpoints struct {
	Dir string
	// Hook, if not nil, is called after each step of Save with its name: "tensors", "state"
	// (inside the folder write), "renamed", "pointer", "pruned". The fault-injection tests
	// use it to pause a write and kill the process inside it.
	Hook func(stage string)
}

// Checkpoint is a verified checkpoint folder and its state.
type Checkpoint struct {
	Dir   string
	State CheckpointState
}

// ErrNoCheckpoint is returned by Checkpoints.Latest when the folder holds no checkpoint at all
// (a run that has not yet finished its first checkpoint). It wraps fs.ErrNotExist.
var ErrNoCheckpoint = fmt.Errorf("no checkpoint: %w", fs.ErrNotExist)

const (
	checkpointPointer = "latest.json"
	legacyCheckpoint  = "last.ckpt" // the one checkpoint of runs written before versioning
)

// pointer is the content of latest.json.
type pointer struct {
	Checkpoint  string `json:"checkpoint"`   // folder name inside Dir
	Step        int64  `json:"step"`         // its optimizer step, for people
	StateSHA256 string `json:"state_sha256"` // hex SHA-256 of its state.json
}

func (c Checkpoints) stage(name string) {
	if c.Hook != nil {
		c.Hook(name)
	}
}

// Save writes tr's state as a new checkpoint (epoch epochs and epochStep batches of the next
// done), points latest.json at it and removes the versions older than the previous one. It
// returns the new folder.
func (c Checkpoints) Save(tr *Trainer, epoch, epochStep int) (string, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	prev := ""
	if p, err := c.readPointer(); err == nil {
		prev = p.Checkpoint
	} else if _, err := os.Stat(filepath.Join(c.Dir, legacyCheckpoint)); err == nil {
		prev = legacyCheckpoint
	}
	name := fmt.Sprintf("ckpt-%09d.ckpt", tr.Adam.Step)
	dir := filepath.Join(c.Dir, name)
	if err := tr.saveCheckpoint(dir, epoch, epochStep, c.Hook); err != nil {
		return "", err
	}
	c.stage("renamed")
	stateSum, _, err := hashFile(filepath.Join(dir, checkpointState))
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	js, err := json.MarshalIndent(pointer{Checkpoint: name, Step: tr.Adam.Step, StateSHA256: stateSum}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := durable.WriteFile(filepath.Join(c.Dir, checkpointPointer), append(js, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	c.stage("pointer")
	if err := c.prune(name, prev); err != nil {
		return "", err
	}
	c.stage("pruned")
	return dir, nil
}

// prune removes every versioned (and legacy) checkpoint not named in keep, and the leftovers
// of interrupted writes. Snapshots (epoch_NNN.ckpt) stay.
func (c Checkpoints) prune(keep ...string) error {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	removed := false
	for _, e := range entries {
		name := e.Name()
		versioned := strings.HasPrefix(name, "ckpt-") && strings.HasSuffix(name, ".ckpt")
		legacy := name == legacyCheckpoint || name == legacyCheckpoint+".old"
		if !durable.IsTemp(name) && !((versioned || legacy) && !slices.Contains(keep, name)) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.Dir, name)); err != nil {
			return fmt.Errorf("checkpoint: prune: %w", err)
		}
		removed = true
	}
	if removed {
		return durable.SyncDir(c.Dir)
	}
	return nil
}

func (c Checkpoints) readPointer() (pointer, error) {
	var p pointer
	path := filepath.Join(c.Dir, checkpointPointer)
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if p.Checkpoint == "" || filepath.Base(p.Checkpoint) != p.Checkpoint || p.Checkpoint == "." || p.Checkpoint == ".." {
		return p, fmt.Errorf("%s: names no checkpoint folder (%q)", path, p.Checkpoint)
	}
	return p, nil
}

// Latest returns the checkpoint to resume from: the one latest.json points to if it is
// intact (VerifyCheckpoint, and its state.json has the SHA-256 the pointer records);
// otherwise the intact checkpoint folder with the most optimizer steps (a versioned one, a
// snapshot, or the last.ckpt of an older store). skipped says, one error each, which corrupt
// or partial checkpoints it passed over, for the caller to log.
//
// If the folder holds no checkpoint at all, Latest returns ErrNoCheckpoint. If it holds
// checkpoints but none is intact, it returns an error listing what is wrong with each (and
// skipped is nil): a run must then not start again from epoch 1 without a word.
func (c Checkpoints) Latest() (found Checkpoint, skipped []error, err error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return found, nil, ErrNoCheckpoint
	}
	if err != nil {
		return found, nil, fmt.Errorf("checkpoint: %w", err)
	}
	tried := ""
	switch p, err := c.readPointer(); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		skipped = append(skipped, fmt.Errorf("checkpoint pointer: %w", err))
	default:
		dir := filepath.Join(c.Dir, p.Checkpoint)
		tried = p.Checkpoint
		st, err := VerifyCheckpoint(dir)
		if err == nil {
			sum, _, herr := hashFile(filepath.Join(dir, checkpointState))
			switch {
			case herr != nil:
				err = fmt.Errorf("checkpoint %s: %w", dir, herr)
			case sum != p.StateSHA256:
				err = fmt.Errorf("checkpoint %s: %s has SHA-256 %.12s…, %s records %.12s…", dir, checkpointState, sum, checkpointPointer, p.StateSHA256)
			}
		}
		if err == nil {
			return Checkpoint{Dir: dir, State: st}, skipped, nil
		}
		skipped = append(skipped, err)
	}

	type candidate struct {
		name string
		step int64
		rank int // among equal steps, lower first
	}
	var cands []candidate
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || durable.IsTemp(name) || name == tried ||
			!(strings.HasSuffix(name, ".ckpt") || strings.HasSuffix(name, ".ckpt.old")) {
			continue
		}
		cand := candidate{name: name, step: -1, rank: 3}
		switch {
		case strings.HasPrefix(name, "ckpt-"):
			cand.rank = 0
		case name == legacyCheckpoint:
			cand.rank = 1
		case strings.HasSuffix(name, ".ckpt"):
			cand.rank = 2
		}
		if st, err := ReadCheckpointState(filepath.Join(c.Dir, name)); err == nil {
			cand.step = st.Step
		}
		cands = append(cands, cand)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.step, a.step), cmp.Compare(a.rank, b.rank), strings.Compare(a.name, b.name))
	})
	for _, cand := range cands {
		dir := filepath.Join(c.Dir, cand.name)
		st, err := VerifyCheckpoint(dir)
		if err == nil {
			return Checkpoint{Dir: dir, State: st}, skipped, nil
		}
		skipped = append(skipped, err)
	}
	if len(skipped) == 0 {
		return found, nil, ErrNoCheckpoint
	}
	return found, nil, fmt.Errorf("no intact checkpoint in %s (delete it to start the run over): %w", c.Dir, errors.Join(skipped...))
}
