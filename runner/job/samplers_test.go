package job

import (
	"slices"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// runner/config validates sample.sampler and sample.spacing without importing ddpm (which
// needs libtorch); its lists must be exactly the names ddpm accepts.
func TestConfigSamplerNamesMatchDDPM(t *testing.T) {
	if !slices.Equal(config.Samplers, ddpm.Samplers()) {
		t.Errorf("config.Samplers = %q, ddpm.Samplers() = %q", config.Samplers, ddpm.Samplers())
	}
	if !slices.Equal(config.Spacings, ddpm.Spacings()) {
		t.Errorf("config.Spacings = %q, ddpm.Spacings() = %q", config.Spacings, ddpm.Spacings())
	}
	if def := config.Default().Sample.Spacing; def != ddpm.Trailing {
		t.Errorf("default sample.spacing %q, want %q", def, ddpm.Trailing)
	}
}
