package job

import (
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// FindSnapshot points Checkpoint at the source's snapshot of step instead of its newest
// checkpoint, once it is verified intact.
func (o *OpenedRun) FindSnapshot(step int) error {
	dir := store.SnapshotDir(o.SourceDir, step)
	if _, err := ddpm.VerifyCheckpoint(dir); err != nil {
		return &SourceError{fmt.Errorf("sample.guide_step = %d: run %s has no intact snapshot at that step (train.snapshot_steps = %q there): %w",
			step, store.Short(o.Source), o.SourceConfig.Train.SnapshotSteps, err)}
	}
	shape, err := checkpointShape(dir)
	if err != nil {
		return err
	}
	o.Checkpoint, o.shape = dir, shape
	return nil
}

// snapshotSteps is the set of steps at which a training run keeps its weights: cfg's
// train.snapshot_steps, and sample.guide_step when the run is guided by its own snapshot. Each
// is checked against the run's last step before any training starts.
func snapshotSteps(cfg config.Config, totalSteps int64) (map[int64]bool, error) {
	steps, err := config.IntList(cfg.Train.SnapshotSteps)
	if err != nil {
		return nil, fmt.Errorf("train.snapshot_steps: %w", err)
	}
	set := map[int64]bool{}
	keep := func(key string, step int) error {
		if int64(step) > totalSteps {
			return fmt.Errorf("%s: step %d is past the run's last step, %d (%d epochs of batch %d)",
				key, step, totalSteps, cfg.Train.Epochs, cfg.Train.BatchSize)
		}
		set[int64(step)] = true
		return nil
	}
	for _, step := range steps {
		if err := keep("train.snapshot_steps", step); err != nil {
			return nil, err
		}
	}
	if s := cfg.Sample; s.AutoGuidance > 0 && s.GuideRun == "" && s.GuideStep > 0 {
		if err := keep("sample.guide_step", s.GuideStep); err != nil {
			return nil, err
		}
	}
	return set, nil
}
