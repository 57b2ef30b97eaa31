package job

import (
	"path/filepath"

	"github.com/ddpmlab/ddpmlab/ddpm"
)

// CheckpointsDir is the folder that holds the checkpoints of the run in runDir (see
// ddpm.Checkpoints for what is inside). It is the one place the path is spelt.
func CheckpointsDir(runDir string) string { return filepath.Join(runDir, "checkpoints") }

// LatestCheckpoint returns the newest intact checkpoint of the run in runDir, and the corrupt
// or partial ones it passed over (for the caller to log); see ddpm.Checkpoints.Latest. A run
// with no checkpoint yet gives an error wrapping ddpm.ErrNoCheckpoint.
func LatestCheckpoint(runDir string) (ddpm.Checkpoint, []error, error) {
	return ddpm.Checkpoints{Dir: CheckpointsDir(runDir)}.Latest()
}
