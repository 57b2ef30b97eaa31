package job

import (
	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// schedule builds the config's noise schedule.
func schedule(cfg config.Config) (*ddpm.Schedule, error) {
	return ddpm.NewSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Timesteps, cfg.Diffusion.BetaStart, cfg.Diffusion.BetaEnd)
}

// unetConfig sizes the U-Net of a config: one class per dataset class when it is conditional.
// The config is valid, so its list keys parse.
func unetConfig(cfg config.Config) ddpm.UNetConfig {
	m := cfg.Model
	mult, _ := config.IntList(m.ChannelMult)
	attention, _ := config.IntList(m.Attention)
	unet := ddpm.UNetConfig{ImageChannels: 1, BaseChannels: m.BaseChannels, TimeEmbDim: m.TimeEmbDim,
		ChannelMult: mult, ResBlocks: m.ResBlocks, Attention: attention, AttentionHeads: m.AttentionHeads,
		Activation: m.Activation, Dropout: m.Dropout, Prediction: cfg.Diffusion.Prediction}
	if m.Conditional {
		unet.NumClasses = len(data.ClassNames(cfg.Data.Dataset))
	}
	return unet
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
	}
}
