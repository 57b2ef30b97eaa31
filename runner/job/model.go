package job

import (
	"fmt"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// schedule builds the config's noise schedule.
func schedule(cfg config.Config) (*ddpm.Schedule, error) {
	return ddpm.NewSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Timesteps, cfg.Diffusion.BetaStart, cfg.Diffusion.BetaEnd)
}

// imageShape is the (C, H, W) of a run's images: channels, height and width.
type imageShape struct{ C, H, W int }

// defaultShape is MNIST's and Fashion-MNIST's 1×28×28, the shape of every run from before
// shapes were recorded.
var defaultShape = imageShape{C: 1, H: ddpm.DefaultImageSide, W: ddpm.DefaultImageSide}

// shapeOf is the shape of a data set's images.
func shapeOf(set *data.Set) imageShape { return imageShape{C: set.C(), H: set.Height, W: set.Width} }

// len is the number of values per image, C·H·W.
func (s imageShape) len() int { return s.C * s.H * s.W }

// String spells the shape as fingerprint.json records it: "3x32x32".
func (s imageShape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// checkpointShape is the image shape of the network a checkpoint holds, from its state.json
// (ddpm.CheckpointState.UNet); a checkpoint from before shapes were recorded is 1×28×28. It
// is how sampling-only runs, `runner sample`, `runner eval` and `runner export` know the shape
// without loading the data.
func checkpointShape(dir string) (imageShape, error) {
	st, err := ddpm.ReadCheckpointState(dir)
	if err != nil {
		return imageShape{}, err
	}
	c, h, w := st.UNet.Shape()
	return imageShape{C: c, H: h, W: w}, nil
}

// unetConfig sizes the U-Net of a config for images of the given shape: one class per dataset
// class when it is conditional. The config is valid, so its list keys parse.
func unetConfig(cfg config.Config, shape imageShape) ddpm.UNetConfig {
	m := cfg.Model
	mult, _ := config.IntList(m.ChannelMult)
	attention, _ := config.IntList(m.Attention)
	unet := ddpm.UNetConfig{ImageChannels: shape.C, ImageHeight: shape.H, ImageWidth: shape.W,
		BaseChannels: m.BaseChannels, TimeEmbDim: m.TimeEmbDim,
		ChannelMult: mult, ResBlocks: m.ResBlocks, Attention: attention, AttentionHeads: m.AttentionHeads,
		Activation: m.Activation, Dropout: m.Dropout, Prediction: cfg.Diffusion.Prediction, Block: m.Block}
	if m.Conditional {
		unet.NumClasses = len(classNames(cfg))
	}
	return unet
}

// classNames are the config's dataset's classes, indexed by label: the named datasets' own, a
// folder's class subfolders (none for an unlabelled folder).
func classNames(cfg config.Config) []string {
	if names := data.ClassNames(cfg.Data.Dataset); len(names) > 0 {
		return names
	}
	names, _ := dataSpec(cfg).ClassNames() // a folder that cannot be read fails in loadSplit
	return names
}

// dataSpec is the config's dataset as package data reads it.
// With data.digest set (a folder's runs always have it), Load fails if the images changed.
func dataSpec(cfg config.Config) data.Spec { return cfg.DataSpec() }

// specShape is the shape of the config's images as package data finds it without decoding
// them (data.Spec.Shape).
func specShape(cfg config.Config) (imageShape, error) {
	c, h, w, err := dataSpec(cfg).Shape()
	return imageShape{C: c, H: h, W: w}, err
}

// loadSplit reads one split of the config's dataset. It is the one place runner/job reads
// data. It is a variable so that tests can hand the job a data set they made.
var loadSplit = func(cfg config.Config, split data.Split) (*data.Set, error) {
	return dataSpec(cfg).Load(split)
}

// trainConfig is the Trainer's part of a config. TotalSteps is left to train, which knows the
// number of batches per epoch once the data is loaded.
func trainConfig(cfg config.Config) ddpm.TrainConfig {
	t := cfg.Train
	return ddpm.TrainConfig{
		LR: t.LR, GradClip: t.GradClip, EMADecay: t.EMADecay, EMAWarmup: t.EMAWarmup, PUncond: t.PUncond, Seed: cfg.Seed,
		LRSchedule: t.LRSchedule, WarmupSteps: int64(t.WarmupSteps),
		LossWeighting: t.LossWeighting, MinSNRGamma: t.MinSNRGamma, TimestepSampling: t.TimestepSampling,
		EMAPower: t.EMAPower, EMAEvery: int64(t.EMAEvery), EMAStart: int64(t.EMAStart),
		AdamBeta1: t.AdamBeta1, AdamBeta2: t.AdamBeta2,
	}
}
