package ddpm

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// Model is a U-Net together with the variable store that owns its parameters.
type Model struct {
	Net    *UNet
	VS     *nn.VarStore
	params []namedTensor
	// schedule holds √ᾱ_t on the model's device for a v-prediction model (SetSchedule).
	schedule *Diffusion
}

// NewModel creates a freshly initialised U-Net on device. Call ManualSeed first for a
// reproducible initialisation.
func NewModel(cfg UNetConfig, device gotch.Device) (*Model, error) {
	vs := nn.NewVarStore(device)
	net, err := NewUNet(vs.Root(), cfg)
	if err != nil {
		return nil, err
	}
	return &Model{Net: net, VS: vs, params: namedParams(vs)}, nil
}

// ParamCount is the number of trainable scalars.
func (m *Model) ParamCount() int64 { return ParamCount(m.VS) }

// PredictNoise runs ε_θ(x_t, t, y) with gradient tracking off, in evaluation mode (no
// dropout). A nil y means "no class"; for a conditional model that is the null class. It is
// the network's raw output: for a v-prediction model, v̂ (the samplers get ε̂ through toEps).
func (m *Model) PredictNoise(x, t, y *ts.Tensor) (*ts.Tensor, error) {
	var out *ts.Tensor
	err := NoGrad(func() error {
		var err error
		out, err = m.Net.Forward(x, t, y)
		return err
	})
	return out, err
}

// CopyFrom overwrites this model's weights with src's (same configuration).
func (m *Model) CopyFrom(src *Model) error {
	if len(src.params) != len(m.params) {
		return fmt.Errorf("copy weights: %d parameters vs %d", len(src.params), len(m.params))
	}
	for i := range m.params {
		if err := copyInto(m.params[i].tensor, src.params[i].tensor); err != nil {
			return fmt.Errorf("copy weights of %s: %w", m.params[i].name, err)
		}
	}
	return nil
}
