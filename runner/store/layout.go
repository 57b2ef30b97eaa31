package store

import (
	"fmt"
	"path/filepath"
)

// CheckpointsDir is the folder of a run's checkpoints, inside its run folder runDir. It is the
// one place the path is spelt.
func CheckpointsDir(runDir string) string { return filepath.Join(runDir, "checkpoints") }

// SnapshotDir is the folder of the weights snapshot that the run in runDir kept at optimizer
// step (train.snapshot_steps): a checkpoint folder, as ddpm.Trainer.SaveCheckpoint writes one. It
// is the one place the path is spelt.
func SnapshotDir(runDir string, step int) string {
	return filepath.Join(runDir, "snapshots", fmt.Sprintf("step_%06d", step))
}
