package job

import (
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// The config's Adam betas reach the trainer as written; the defaults are PyTorch's, which
// ddpm.NewAdam also uses, so a config that leaves them out trains as before the keys existed.
func TestTrainConfigAdamBetas(t *testing.T) {
	tests := []struct {
		name         string
		beta1, beta2 float64 // 0: the default
		want1, want2 float64
	}{
		{name: "defaults", want1: 0.9, want2: 0.999},
		{name: "beta2", beta2: 0.99, want1: 0.9, want2: 0.99},
		{name: "both", beta1: 0.8, beta2: 0.95, want1: 0.8, want2: 0.95},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			if tt.beta1 != 0 {
				c.Train.AdamBeta1 = tt.beta1
			}
			if tt.beta2 != 0 {
				c.Train.AdamBeta2 = tt.beta2
			}
			got := trainConfig(c)
			if got.AdamBeta1 != tt.want1 || got.AdamBeta2 != tt.want2 {
				t.Errorf("trainConfig betas (%g, %g), want (%g, %g)", got.AdamBeta1, got.AdamBeta2, tt.want1, tt.want2)
			}
		})
	}
}

// model.block reaches the U-Net: "guide" is the guide's network (its parameter count), and
// "resnet" a network of residual blocks.
func TestUNetConfigBlock(t *testing.T) {
	for _, tt := range []struct{ block, want string }{{"guide", ""}, {"resnet", ddpm.BlockResNet}} {
		c := config.Default()
		c.Model.Block = tt.block
		got := unetConfig(c, defaultShape)
		if !got.Equal(ddpm.UNetConfig{ImageChannels: 1, BaseChannels: 64, TimeEmbDim: 256, Block: tt.want}) {
			t.Errorf("model.block = %q: U-Net %+v; want block %q", tt.block, got, tt.want)
		}
	}
}
