package reports

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
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

// fingerprintRows are the fingerprint's fields as the run page lists them, by JSON name in
// alphabetical order; fields a run did not record (empty, or 0 for counts) are left out.
func fingerprintRows(fp store.Fingerprint) []kv {
	count := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	rows := []kv{
		{"arch", fp.Arch}, {"code_version", fp.CodeVersion}, {"cpus", count(fp.CPUs)},
		{"device", fp.Device}, {"go_version", fp.GoVersion}, {"host", fp.Host},
		{"image_shape", fp.ImageShape}, {"libtorch_version", fp.LibtorchVersion}, {"os", fp.OS},
		{"precision", fp.Precision}, {"seed", strconv.FormatInt(fp.Seed, 10)}, {"threads", count(fp.Threads)},
	}
	if fp == (store.Fingerprint{}) {
		return nil // no fingerprint.json
	}
	return slices.DeleteFunc(rows, func(r kv) bool { return r.Value == "" })
}

// runData is one run as read from the store.
type runData struct {
	Hash        string
	Status      store.Status
	Summary     *store.Summary    // nil when summary.json is absent
	Fingerprint store.Fingerprint // zero when fingerprint.json is absent
	Config      string            // config.toml text
	Loss        []store.LossRow
	Epochs      []store.EpochRow
	StderrTail  string // last lines of stderr.log, else status.log_tail
	// EvalN is how many samples the quality metrics measured: summary.json's metrics.n, else
	// the config's eval.num_samples; 0 when unknown (then no interval is shown).
	EvalN int
	// ClassN is how many samples class accuracy measured: EvalN (every sample asks for a class).
	ClassN int
	// Dataset is the config's data.dataset, "" when the config does not say.
	Dataset string
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

// readSampleCounts fills r.EvalN, r.ClassN and r.Dataset from summary.json and config.toml.
// Either may be missing; a config that does not decode counts as silent.
func readSampleCounts(r *runData) {
	var cfg runConfig
	if _, err := toml.Decode(r.Config, &cfg); err == nil {
		r.EvalN, r.Dataset = cfg.Eval.NumSamples, cfg.Data.Dataset
	}
	if r.Summary != nil && r.Summary.Metrics.N != nil && *r.Summary.Metrics.N > 0 {
		r.EvalN = *r.Summary.Metrics.N
	}
	r.ClassN = r.EvalN
}

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
	if r.Fingerprint, err = d.s.ReadFingerprint(hash); optional(err) != nil {
		return r, err
	}
	if b, err := os.ReadFile(d.runFile(hash, store.ConfigFile)); err == nil {
		r.Config = string(b)
	} else if optional(err) != nil {
		return r, err
	}
	readSampleCounts(&r)
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
