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
func unetConfig(cfg config.Config) ddpm.UNetConfig {
	unet := ddpm.UNetConfig{ImageChannels: 1, BaseChannels: cfg.Model.BaseChannels, TimeEmbDim: cfg.Model.TimeEmbDim}
	if cfg.Model.Conditional {
		unet.NumClasses = len(data.ClassNames(cfg.Data.Dataset))
	}
	return unet
}
