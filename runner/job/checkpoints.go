package job

import (
	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// LatestCheckpoint returns the newest intact checkpoint of the run in runDir, and the corrupt
// or partial ones it passed over (for the caller to log); see ddpm.Checkpoints.Latest. A run
// with no checkpoint yet gives an error wrapping ddpm.ErrNoCheckpoint.
func LatestCheckpoint(runDir string) (ddpm.Checkpoint, []error, error) {
	return ddpm.Checkpoints{Dir: store.CheckpointsDir(runDir)}.Latest()
}
