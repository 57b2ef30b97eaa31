package job

import (
	"fmt"
	"os"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// OpenedRun is a run opened to sample from: its config, the run whose checkpoints hold its
// weights, and (after FindCheckpoint) the checkpoint and the image shape it records. It is the
// one place that reads a run's config, resolves a sampling-only run's source (sample.from_run)
// and finds that source's checkpoint: training and sampling-only runs, `runner eval`,
// `runner sample`, `runner export`, serve's generator and the parent's check of a
// sampling-only config all open runs with it.
type OpenedRun struct {
	Hash string // the run's full hash; "" for a config not in the store yet (OpenConfig)
	// Config is the run's config; a sampling-only one is completed with its source's data,
	// model, diffusion and train settings (config.Config.WithSource), with sample.from_run
	// spelt as the source's full hash.
	Config       config.Config
	Source       string        // full hash of the run whose checkpoints hold the weights: Hash, or sample.from_run's
	SourceDir    string        // that run's folder
	SourceConfig config.Config // that run's own config (Config, for a run that is not sampling-only)

	// Set by FindCheckpoint:
	Checkpoint string  // folder of the source's newest intact checkpoint
	Skipped    []error // the corrupt or partial checkpoints passed over for it, newest first
	shape      imageShape
}

// SourceError says that a sampling-only config's sample.from_run names no trained run of the
// store: no run, more than one, or a run that itself only samples. It is the user's to fix.
type SourceError struct{ Err error }

// Error is the underlying message, which names sample.from_run.
func (e *SourceError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SourceError) Unwrap() error { return e.Err }

// OpenRun opens the run hash of st: it reads the run's config.toml and, for a sampling-only
// run, resolves its source as OpenConfig does.
func OpenRun(st *store.Store, hash string) (*OpenedRun, error) {
	cfg, err := ReadConfig(st, hash)
	if err != nil {
		return nil, err
	}
	return OpenConfig(st, hash, cfg)
}

// OpenConfig opens cfg, the config of run hash ("" for a config not in st yet). A
// sampling-only cfg has its sample.from_run (any unique prefix) resolved to a trained run of
// st, is completed with that run's settings and must then be valid; the error is a
// *SourceError when from_run names no trained run. Other configs are opened as they are.
func OpenConfig(st *store.Store, hash string, cfg config.Config) (*OpenedRun, error) {
	o := &OpenedRun{Hash: hash, Config: cfg, Source: hash, SourceConfig: cfg}
	if !cfg.SamplingOnly() {
		if hash != "" {
			o.SourceDir = st.RunDir(hash)
		}
		return o, nil
	}
	source, sourceCfg, err := trainedRun(st, "sample.from_run", cfg.Sample.FromRun)
	if err != nil {
		return nil, err
	}
	short := store.Short(source)
	cfg.Sample.FromRun = source
	o.Config, o.Source, o.SourceDir, o.SourceConfig = cfg.WithSource(sourceCfg), source, st.RunDir(source), sourceCfg
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("sampling from run %s: %w", short, err)
	}
	return o, nil
}

// trainedRun resolves prefix, the value of the config key that names another run, to the full
// hash of a trained run of st and reads its config. A prefix that names no run, or a run that
// only samples, is a *SourceError naming the key.
func trainedRun(st *store.Store, key, prefix string) (string, config.Config, error) {
	hash, err := st.Resolve(prefix)
	if err != nil {
		return "", config.Config{}, &SourceError{fmt.Errorf("%s = %q: %w", key, prefix, err)}
	}
	short := store.Short(hash)
	cfg, err := ReadConfig(st, hash)
	if err != nil {
		return "", config.Config{}, fmt.Errorf("%s = %s: %w", key, short, err)
	}
	if cfg.SamplingOnly() {
		return "", config.Config{}, &SourceError{fmt.Errorf("%s = %s is itself a sampling-only run; name the trained run it samples", key, short)}
	}
	return hash, cfg, nil
}

// FindCheckpoint finds the source's newest intact checkpoint (LatestCheckpoint) and the image
// shape it records, setting Checkpoint and Skipped. A source with no intact checkpoint gives an
// error wrapping ddpm.ErrNoCheckpoint; Skipped then still lists what was passed over.
func (o *OpenedRun) FindCheckpoint() error {
	found, skipped, err := LatestCheckpoint(o.SourceDir)
	o.Skipped = skipped
	if err != nil {
		return err
	}
	shape, err := checkpointShape(found.Dir)
	if err != nil {
		return err
	}
	o.Checkpoint, o.shape = found.Dir, shape
	return nil
}

// SkippedNote is one line for a person saying which corrupt or partial checkpoints
// FindCheckpoint passed over for an older one, or "" when it passed over none.
func (o *OpenedRun) SkippedNote() string {
	if len(o.Skipped) == 0 {
		return ""
	}
	used := "found no intact one"
	if o.Checkpoint != "" {
		used = "used " + o.Checkpoint
	}
	return fmt.Sprintf("run %s: passed over %d corrupt or partial checkpoint(s) and %s: %s",
		store.Short(o.Source), len(o.Skipped), used, joinErrors(o.Skipped))
}

// joinErrors spells errs on one line, separated by "; ".
func joinErrors(errs []error) string {
	s := ""
	for i, err := range errs {
		if i > 0 {
			s += "; "
		}
		s += err.Error()
	}
	return s
}

// LoadWeights loads the checkpoint's EMA weights into model when useEMA is set and the
// checkpoint has them, else its raw weights, and returns which ("ema" or "raw"). Call
// FindCheckpoint first.
func (o *OpenedRun) LoadWeights(model *ddpm.Model, useEMA bool) (string, error) {
	if o.Checkpoint == "" {
		return "", fmt.Errorf("run %s: no checkpoint found yet (call FindCheckpoint)", store.Short(o.Source))
	}
	return ddpm.LoadWeights(o.Checkpoint, model, useEMA)
}

// Model builds the U-Net of cfg (the opened Config, perhaps with sampling overrides) for the
// checkpoint's image shape on device, sets the precision it samples in, and loads the weights
// cfg.Sample.UseEMA asks for; it returns the model and "ema" or "raw". Call FindCheckpoint
// first.
func (o *OpenedRun) Model(cfg config.Config, device gotch.Device) (*ddpm.Model, string, error) {
	if o.Checkpoint == "" {
		return nil, "", fmt.Errorf("run %s: no checkpoint found yet (call FindCheckpoint)", store.Short(o.Source))
	}
	model, err := ddpm.NewModel(unetConfig(cfg, o.shape), device)
	if err != nil {
		return nil, "", err
	}
	if err := setSamplePrecision(cfg, device, model); err != nil {
		return nil, "", err
	}
	weights, err := o.LoadWeights(model, cfg.Sample.UseEMA)
	if err != nil {
		return nil, "", err
	}
	return model, weights, nil
}

// ReadConfig reads the recorded config.toml of run hash, as it is (a sampling-only run's is
// not completed with its source's; OpenRun does that).
func ReadConfig(st *store.Store, hash string) (config.Config, error) {
	path := st.Path(hash, "config.toml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, err
	}
	return config.Parse(path, raw)
}
