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
// full hash of a trained run in st that has a checkpoint, and the config is checked against that
// run's model and schedule (job.OpenConfig). Ordinary configs are returned unchanged.
func resolveSource(st *store.Store, cfg config.Config) (config.Config, error) {
	if !cfg.SamplingOnly() {
		return cfg, nil
	}
	opened, err := job.OpenConfig(st, "", cfg)
	if se := (*job.SourceError)(nil); errors.As(err, &se) {
		return cfg, usagef("%v", se)
	} else if err != nil {
		return cfg, err
	}
	short := store.Short(opened.Source)
	if err := opened.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return cfg, usagef("sample.from_run = %s: that run has no checkpoint yet; train it first (runner rerun %s)", short, short)
	} else if err != nil {
		return cfg, fmt.Errorf("sample.from_run = %s: %w", short, err)
	}
	cfg.Sample.FromRun = opened.Source
	return cfg, nil
}
