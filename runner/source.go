package main

import (
	"errors"
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// resolveSource completes a sampling-only config: sample.from_run (any unique prefix) becomes the
// full hash of a trained run in st, and the config is checked against that run's model and
// schedule. Ordinary configs are returned unchanged.
func resolveSource(st *store.Store, cfg config.Config) (config.Config, error) {
	if !cfg.SamplingOnly() {
		return cfg, nil
	}
	hash, err := st.Resolve(cfg.Sample.FromRun)
	if err != nil {
		return cfg, usagef("sample.from_run = %q: %v", cfg.Sample.FromRun, err)
	}
	if _, _, err := job.LatestCheckpoint(st.RunDir(hash)); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return cfg, usagef("sample.from_run = %s: that run has no checkpoint yet; train it first (runner rerun %s)", store.Short(hash), store.Short(hash))
	} else if err != nil {
		return cfg, fmt.Errorf("sample.from_run = %s: %w", store.Short(hash), err)
	}
	source, err := readRunConfig(st, hash)
	if err != nil {
		return cfg, err
	}
	if source.SamplingOnly() {
		return cfg, usagef("sample.from_run = %s is itself a sampling-only run; name the trained run it samples", store.Short(hash))
	}
	cfg.Sample.FromRun = hash
	if err := cfg.WithSource(source).Validate(); err != nil {
		return cfg, fmt.Errorf("sampling from run %s: %w", store.Short(hash), err)
	}
	return cfg, nil
}
