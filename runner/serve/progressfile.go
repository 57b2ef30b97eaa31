package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/executor"
)

// ProgressFile is the name, in a run folder, of the training child's latest progress report.
const ProgressFile = "progress.json"

// progressVersion is the version of the RunProgress format.
const progressVersion = 1

// RunProgress is the content of a run's progress.json: the last progress line its training
// child printed for its parent (executor.ProgressReport), and when. The child rewrites it
// atomically about once a second, so runner serve can show a running run's progress without
// being its parent. One struct is written and read by the same code (WriteRunProgress,
// ReadRunProgress).
type RunProgress struct {
	Version int       `json:"version"`
	Updated time.Time `json:"updated"`
	PID     int       `json:"pid"` // the training child's process
	executor.ProgressReport
}

// WriteRunProgress replaces runDir/progress.json atomically (durable.WriteFile) with p,
// stamping its version.
func WriteRunProgress(runDir string, p RunProgress) error {
	p.Version = progressVersion
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("progress of %s: %w", runDir, err)
	}
	return durable.WriteFile(filepath.Join(runDir, ProgressFile), append(b, '\n'), 0o644)
}

// ReadRunProgress reads runDir/progress.json; errors.Is(err, fs.ErrNotExist) when the run has
// none (it never trained with this version, or has not reported yet).
func ReadRunProgress(runDir string) (RunProgress, error) {
	var p RunProgress
	path := filepath.Join(runDir, ProgressFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if p.Version != progressVersion {
		return p, fmt.Errorf("%s: version %d, want %d", path, p.Version, progressVersion)
	}
	return p, nil
}
