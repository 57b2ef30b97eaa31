package job

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// OpenGuide opens the run that guides cfg by autoguidance, cfg's sample.guide_run (any unique
// prefix), and checks that it can: a trained run with an intact checkpoint (and the snapshot of
// sample.guide_step, when that is set, which its Checkpoint then points at), of the same
// dataset, noise schedule and classes as cfg (for a sampling-only cfg, as its source; see
// OpenConfig). Its architecture and training may differ: a smaller or shorter-trained model
// is the point. The guide's full hash is the returned run's Source. Errors about the guide
// itself are *SourceError, the user's to fix.
func OpenGuide(st *store.Store, cfg config.Config) (*OpenedRun, error) {
	hash, _, err := trainedRun(st, "sample.guide_run", cfg.Sample.GuideRun)
	if err != nil {
		return nil, err
	}
	short := store.Short(hash)
	guide, err := OpenRun(st, hash)
	if err != nil {
		return nil, fmt.Errorf("sample.guide_run = %s: %w", short, err)
	}
	g, c := guide.Config, cfg
	switch {
	case g.Data.Dataset != c.Data.Dataset || g.Data.ImageSize != c.Data.ImageSize || g.Data.Channels != c.Data.Channels:
		return nil, &SourceError{fmt.Errorf("sample.guide_run = %s was trained on %s, this run on %s: a guide must model the same data",
			short, dataName(g.Data), dataName(c.Data))}
	case g.Diffusion.Timesteps != c.Diffusion.Timesteps || g.Diffusion.Schedule != c.Diffusion.Schedule ||
		g.Diffusion.BetaStart != c.Diffusion.BetaStart || g.Diffusion.BetaEnd != c.Diffusion.BetaEnd:
		return nil, &SourceError{fmt.Errorf("sample.guide_run = %s has the noise schedule %s, this run %s: a guide must share it",
			short, scheduleName(g.Diffusion), scheduleName(c.Diffusion))}
	case g.Model.Conditional != c.Model.Conditional:
		return nil, &SourceError{fmt.Errorf("sample.guide_run = %s: model.conditional is %t there and %t here; a guide must take the same labels",
			short, g.Model.Conditional, c.Model.Conditional)}
	}
	if err := guide.FindCheckpoint(); errors.Is(err, ddpm.ErrNoCheckpoint) {
		return nil, &SourceError{fmt.Errorf("sample.guide_run = %s has no checkpoint yet; train it first (runner rerun %s)", short, short)}
	} else if err != nil {
		return nil, fmt.Errorf("sample.guide_run = %s: %w", short, err)
	}
	if step := cfg.Sample.GuideStep; step > 0 {
		if err := guide.FindSnapshot(step); err != nil {
			return nil, err
		}
	}
	return guide, nil
}

// GuideModel builds the guide's own U-Net and loads its weights as cfg samples (cfg's
// sample.use_ema and sample.precision), for the images of shape; it is the bad model of
// autoguidance. Call it on the result of OpenGuide.
func (o *OpenedRun) GuideModel(cfg config.Config, shape imageShape, device gotch.Device) (*ddpm.Model, error) {
	if o.shape != shape {
		return nil, fmt.Errorf("sample.guide_run = %s draws %s images, this run %s", store.Short(o.Source), o.shape, shape)
	}
	gcfg := o.Config
	gcfg.Sample = cfg.Sample
	model, _, err := o.Model(gcfg, device)
	if err != nil {
		return nil, fmt.Errorf("sample.guide_run = %s: %w", store.Short(o.Source), err)
	}
	return model, nil
}

func dataName(d config.Data) string {
	name := d.Dataset
	if d.ImageSize > 0 {
		name += fmt.Sprintf(" at %d×%d", d.ImageSize, d.ImageSize)
	}
	if d.Channels > 0 {
		name += fmt.Sprintf(", %d channel(s)", d.Channels)
	}
	return name
}

func scheduleName(d config.Diffusion) string {
	return fmt.Sprintf("%s (T = %d, β from %g to %g)", d.Schedule, d.Timesteps, d.BetaStart, d.BetaEnd)
}

// loadGuide sets r.guide to the bad model of autoguidance when r.cfg asks for it
// (sample.autoguidance > 0): sample.guide_run's weights from st, or, without a guide_run, the
// snapshot at sample.guide_step of sampled, the opened run whose weights are sampled. r.shape
// and r.device must be set. It is called once training is over, so a run's per-epoch grids
// show the model alone.
func (r *run) loadGuide(st *store.Store, sampled *OpenedRun) error {
	s := r.cfg.Sample
	if s.AutoGuidance == 0 {
		return nil
	}
	var guide *OpenedRun
	if s.GuideRun != "" {
		if st == nil {
			return fmt.Errorf("sample.guide_run = %s: no store to find it in", s.GuideRun)
		}
		var err error
		if guide, err = OpenGuide(st, r.cfg); err != nil {
			return err
		}
		r.logSkipped(guide.Skipped)
	} else {
		self := *sampled
		guide = &self
		if err := guide.FindSnapshot(s.GuideStep); err != nil {
			return err
		}
	}
	var err error
	r.guide, err = guide.GuideModel(r.cfg, r.imageShape(), r.device)
	return err
}
