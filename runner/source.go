package main

import (
	"errors"
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// resolveSource completes a config's references to other runs of st before it is hashed. A
// sampling-only config's sample.from_run (any unique prefix) becomes the full hash of a trained
// run in st that has a checkpoint, and the config is checked against that run's model and
// schedule (job.OpenConfig). sample.guide_run, the guide of autoguidance, becomes the full hash of
// a trained run of the same data and schedule (job.OpenGuide), and a snapshot that
// sample.guide_step names must exist. Other configs are returned unchanged.
func resolveSource(st *store.Store, cfg config.Config) (config.Config, error) {
	if cfg.SamplingOnly() {
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
		if cfg.Sample.GuideRun == "" && cfg.Sample.GuideStep > 0 && cfg.Sample.AutoGuidance > 0 {
			// Guided by the source's own snapshot: it must have kept one at that step.
			if err := opened.FindSnapshot(cfg.Sample.GuideStep); err != nil {
				return cfg, usagef("%v", err)
			}
		}
		if cfg.Sample.GuideRun != "" {
			// The guide is checked against the source's data and schedule, which the run samples.
			if cfg.Sample.GuideRun, err = resolveGuide(st, opened.Config); err != nil {
				return cfg, err
			}
		}
		return cfg, nil
	}
	if cfg.Sample.GuideRun != "" {
		var err error
		if cfg.Sample.GuideRun, err = resolveGuide(st, cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// resolveGuide returns the full hash of cfg's sample.guide_run, checked by job.OpenGuide.
func resolveGuide(st *store.Store, cfg config.Config) (string, error) {
	guide, err := job.OpenGuide(st, cfg)
	if se := (*job.SourceError)(nil); errors.As(err, &se) {
		return "", usagef("%v", se)
	} else if err != nil {
		return "", err
	}
	return guide.Source, nil
}
