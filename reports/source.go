package reports

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// source is everything reports needs from the run store, kept small so that tests or a
// remote store could stand in for it.
type source interface {
	// manifest reads _sweeps/<name>.json.
	manifest(name string) (store.Manifest, error)
	// run reads everything about one run that the report shows. Missing optional files
	// (summary, fingerprint, metrics, logs) are not errors. A missing status.json is an
	// error for which errors.Is(err, fs.ErrNotExist) or errors.Is(err, store.ErrNoRun).
	run(hash string) (runData, error)
	// runFile is the path of a file inside the run's folder (slash-separated rel). The
	// file may not exist.
	runFile(hash, rel string) string
}

// fingerprint holds fingerprint.json as a flat key → text map (the architecture lists its
// contents, not its key names, and runner/store has no type for it); first picks the
// fields the header shows.
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

// runData is one run as read from the store.
type runData struct {
	Hash        string
	Status      store.Status
	Summary     *store.Summary // nil when summary.json is absent
	Fingerprint fingerprint
	Config      string // config.toml text
	Loss        []store.LossRow
	Epochs      []store.EpochRow
	StderrTail  string // last lines of stderr.log, else status.log_tail
	// EvalN is how many samples the quality metrics measured: "n" of metrics/quality.json,
	// else the config's eval.num_samples; 0 when unknown (then no interval is shown).
	EvalN int
	// ClassN is how many samples class accuracy measured: the requested classes counted in
	// metrics/quality.json, else EvalN.
	ClassN int
	// Dataset is the config's data.dataset, "" when the config does not say.
	Dataset string
}

// qualityFile is the part of metrics/quality.json (runner/job.Quality) that the report reads.
type qualityFile struct {
	Metrics struct {
		N int `json:"n"`
	} `json:"metrics"`
	Class *struct {
		Requested []int `json:"requested"`
	} `json:"class"`
}

// runConfig is the part of config.toml that the report reads.
type runConfig struct {
	Data struct {
		Dataset string `toml:"dataset"`
	} `toml:"data"`
	Eval struct {
		NumSamples int `toml:"num_samples"`
	} `toml:"eval"`
}

// readSampleCounts fills r.EvalN, r.ClassN and r.Dataset from metrics/quality.json and
// config.toml. Either file may be missing; a config that does not decode counts as silent.
func (d storeSource) readSampleCounts(r *runData) error {
	var cfg runConfig
	if _, err := toml.Decode(r.Config, &cfg); err == nil {
		r.EvalN, r.Dataset = cfg.Eval.NumSamples, cfg.Data.Dataset
	}
	var q qualityFile
	switch err := store.ReadJSON(d.runFile(r.Hash, qualityFileName), &q); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case q.Metrics.N > 0:
		r.EvalN = q.Metrics.N
	}
	r.ClassN = r.EvalN
	if q.Class != nil {
		n := 0
		for _, k := range q.Class.Requested {
			n += k
		}
		if n > 0 {
			r.ClassN = n
		}
	}
	return nil
}

// qualityFileName is where runner/job writes a run's quality details.
const qualityFileName = "metrics/quality.json"

// storeSource reads through runner/store.
type storeSource struct{ s *store.Store }

// newStoreSource opens the store at root for reading; unlike store.Open it creates nothing.
func newStoreSource(root string) storeSource { return storeSource{&store.Store{Root: root}} }

func (d storeSource) manifest(name string) (store.Manifest, error) {
	return d.s.ReadManifest(name)
}

func (d storeSource) runFile(hash, rel string) string { return d.s.Path(hash, rel) }

func (d storeSource) run(hash string) (runData, error) {
	r := runData{Hash: hash}
	var err error
	if r.Status, err = d.s.ReadStatus(hash); err != nil {
		return r, err
	}
	optional := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNoRun) {
			return nil
		}
		return err
	}
	switch sum, err := d.s.ReadSummary(hash); {
	case err == nil:
		r.Summary = &sum
	case optional(err) != nil:
		return r, err
	}
	if r.Loss, err = d.s.ReadLoss(hash); optional(err) != nil {
		return r, err
	}
	if r.Epochs, err = d.s.ReadEpochs(hash); optional(err) != nil {
		return r, err
	}
	if r.Fingerprint, err = readFingerprint(d.runFile(hash, "fingerprint.json")); err != nil {
		return r, err
	}
	if b, err := os.ReadFile(d.runFile(hash, store.ConfigFile)); err == nil {
		r.Config = string(b)
	} else if optional(err) != nil {
		return r, err
	}
	if err := d.readSampleCounts(&r); err != nil {
		return r, err
	}
	r.StderrTail = r.Status.LogTail
	if b, err := os.ReadFile(d.runFile(hash, store.StderrFile)); err == nil {
		r.StderrTail = tailLines(string(b), logTailLines)
	} else if optional(err) != nil {
		return r, err
	}
	return r, nil
}

// logTailLines is how much of stderr.log a run page shows.
const logTailLines = 60

// readFingerprint reads fingerprint.json as a flat map, rendering non-string values as JSON.
// A missing file gives an empty map.
func readFingerprint(path string) (fingerprint, error) {
	raw := map[string]json.RawMessage{}
	if err := store.ReadJSON(path, &raw); err != nil {
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

// sweepDescription reads the top-level description of the sweep file the manifest names
// (a path as given to the runner, so relative to the working folder). It returns "" when
// the file cannot be read: the description is a nicety, not worth failing a report for.
func sweepDescription(file string) string {
	if file == "" {
		return ""
	}
	var doc struct {
		Description string `toml:"description"`
	}
	if _, err := toml.DecodeFile(file, &doc); err != nil {
		return ""
	}
	return strings.TrimSpace(doc.Description)
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
