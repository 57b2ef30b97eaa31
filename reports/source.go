package reports

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// source is everything reports needs from the run store. It is kept small and unexported so
// that the file-reading implementation below (dirSource) can be replaced by one backed by
// runner/store once that package exists, without touching the rest of reports.
type source interface {
	// manifest reads _sweeps/<name>.json.
	manifest(name string) (manifest, error)
	// run reads everything about one run that the report shows. Missing optional files
	// (summary, fingerprint, metrics, logs) are not errors; a missing status.json is.
	run(hash string) (runData, error)
	// runFile is the path of a file inside the run's folder, relative path in slash form.
	// The file may not exist.
	runFile(hash, rel string) string
}

// manifest mirrors _sweeps/<name>.json (docs/ARCHITECTURE.md). Description is optional and
// not yet written by the runner; it is shown when present.
type manifest struct {
	Name        string        `json:"name"`
	File        string        `json:"file"`
	Description string        `json:"description"`
	Scale       string        `json:"scale"`
	Created     string        `json:"created"`
	VariedKeys  []string      `json:"varied_keys"`
	Runs        []manifestRun `json:"runs"`
}

type manifestRun struct {
	Hash   string            `json:"hash"`
	Varied map[string]string `json:"varied"`
}

// status mirrors status.json.
type status struct {
	State       string  `json:"state"`
	Reason      string  `json:"reason"`
	ExitCode    int     `json:"exit_code"`
	Signal      string  `json:"signal"`
	Attempts    int     `json:"attempts"`
	Host        string  `json:"host"`
	PID         int     `json:"pid"`
	Started     string  `json:"started"`
	Finished    string  `json:"finished"`
	WallSeconds float64 `json:"wall_seconds"`
	Epoch       int     `json:"epoch"`
	Epochs      int     `json:"epochs"`
	LogTail     string  `json:"log_tail"`
}

// summary mirrors summary.json. Pointers distinguish "absent" from zero.
type summary struct {
	FinalLoss          *float64            `json:"final_loss"`
	BestLoss           *float64            `json:"best_loss"`
	TrainSeconds       *float64            `json:"train_seconds"`
	ImagesPerSec       *float64            `json:"images_per_sec"`
	ParamCount         int64               `json:"param_count"`
	Weights            string              `json:"weights"`
	Sampler            string              `json:"sampler"`
	SampleSteps        int                 `json:"sample_steps"`
	SampleSecondsPer64 *float64            `json:"sample_seconds_per_64"`
	Metrics            map[string]*float64 `json:"metrics"`
}

// fingerprint holds fingerprint.json as a flat key → text map (the format lists its
// contents, not its key names); knownFingerprint picks the fields the header shows.
type fingerprint map[string]string

// Keys tried, in order, for the header fields.
var (
	fpCodeKeys     = []string{"code_version", "code", "version", "git"}
	fpLibtorchKeys = []string{"libtorch_version", "libtorch", "torch"}
	fpHostKeys     = []string{"host", "hostname"}
	fpDeviceKeys   = []string{"device"}
	fpCPUKeys      = []string{"cpus", "num_cpu", "cpu_count"}
	fpOSKeys       = []string{"os_arch", "os", "goos"}
	fpArchKeys     = []string{"arch", "goarch"}
)

func (f fingerprint) first(keys []string) string {
	for _, k := range keys {
		if v := f[k]; v != "" {
			return v
		}
	}
	return ""
}

// lossPoint is one row of metrics/loss.csv.
type lossPoint struct {
	Step  float64
	Epoch float64
	Loss  float64
}

// epochPoint is one row of metrics/epochs.csv.
type epochPoint struct {
	Epoch        float64
	MeanLoss     float64
	Seconds      float64
	ImagesPerSec float64
}

// runData is one run as read from the store.
type runData struct {
	Hash        string
	Status      status
	Summary     *summary // nil when summary.json is absent
	Fingerprint fingerprint
	Config      string // config.toml text
	Loss        []lossPoint
	Epochs      []epochPoint
	StderrTail  string // last lines of stderr.log, else status.log_tail
}

// dirSource reads the store layout of docs/ARCHITECTURE.md directly from disk.
type dirSource struct{ root string }

func (d dirSource) manifest(name string) (manifest, error) {
	var m manifest
	path := filepath.Join(d.root, "_sweeps", name+".json")
	if err := readJSON(path, &m); err != nil {
		return m, err
	}
	if m.Name == "" {
		m.Name = name
	}
	return m, nil
}

func (d dirSource) runFile(hash, rel string) string {
	return filepath.Join(d.root, hash, filepath.FromSlash(rel))
}

func (d dirSource) run(hash string) (runData, error) {
	r := runData{Hash: hash}
	if err := readJSON(d.runFile(hash, "status.json"), &r.Status); err != nil {
		return r, err
	}
	var s summary
	switch err := readJSON(d.runFile(hash, "summary.json"), &s); {
	case err == nil:
		r.Summary = &s
	case !errors.Is(err, fs.ErrNotExist):
		return r, err
	}
	fp, err := readFingerprint(d.runFile(hash, "fingerprint.json"))
	if err != nil {
		return r, err
	}
	r.Fingerprint = fp
	if b, err := os.ReadFile(d.runFile(hash, "config.toml")); err == nil {
		r.Config = string(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if r.Loss, err = readCSV(d.runFile(hash, "metrics/loss.csv"), []string{"step", "epoch", "loss"},
		func(v []float64) lossPoint { return lossPoint{v[0], v[1], v[2]} }); err != nil {
		return r, err
	}
	if r.Epochs, err = readCSV(d.runFile(hash, "metrics/epochs.csv"),
		[]string{"epoch", "mean_loss", "seconds", "images_per_sec"},
		func(v []float64) epochPoint { return epochPoint{v[0], v[1], v[2], v[3]} }); err != nil {
		return r, err
	}
	r.StderrTail = r.Status.LogTail
	if b, err := os.ReadFile(d.runFile(hash, "stderr.log")); err == nil {
		r.StderrTail = tailLines(string(b), logTailLines)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	return r, nil
}

// logTailLines is how much of stderr.log a run page shows.
const logTailLines = 60

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readFingerprint reads fingerprint.json as a flat map, rendering non-string values as JSON.
// A missing file gives an empty map.
func readFingerprint(path string) (fingerprint, error) {
	raw := map[string]json.RawMessage{}
	if err := readJSON(path, &raw); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fingerprint{}, nil
		}
		return nil, err
	}
	fp := make(fingerprint, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			fp[k] = s
		} else {
			fp[k] = string(v)
		}
	}
	return fp, nil
}

// readCSV reads a numeric CSV with a header, picking the named columns in order. A missing
// file gives no rows; a missing column or a bad number is an error naming file and line.
// Empty cells and "NaN" read as NaN.
func readCSV[T any](path string, cols []string, mk func([]float64) T) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = -1
		for j, h := range header {
			if strings.TrimSpace(h) == c {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, fmt.Errorf("%s:1: missing column %q", path, c)
		}
	}
	var out []T
	vals := make([]float64, len(cols))
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i, j := range idx {
			cell := strings.TrimSpace(rec[j])
			if cell == "" || cell == "NaN" {
				vals[i] = math.NaN()
				continue
			}
			if vals[i], err = strconv.ParseFloat(cell, 64); err != nil {
				return nil, fmt.Errorf("%s:%d: column %q: %w", path, line, cols[i], err)
			}
		}
		out = append(out, mk(vals))
	}
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
