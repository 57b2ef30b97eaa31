package ddpm

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch"
)

// Weight sets of a checkpoint, as CheckpointWeights names them.
const (
	WeightsEMA = "ema" // the exponential moving average of the weights (ema.*)
	WeightsRaw = "raw" // the optimizer's weights (model.*)
)

// Weights copies the model's parameters to Go, in name order. The names are the U-Net's
// parameter paths ("down1.conv1.weight", "up1.upsample.bias", …), which are also the names of
// runner/scripts/ddpm_torch.py's state dict; the shapes are PyTorch's (a convolution's weight
// is (out, in, k, k), a transposed convolution's (in, out, k, k), a linear layer's (out, in)).
func (m *Model) Weights() ([]Array, error) {
	out := make([]Array, 0, len(m.params))
	for _, p := range m.params {
		shape, err := p.tensor.Size()
		if err != nil {
			return nil, fmt.Errorf("weights: %s: %w", p.name, err)
		}
		data, err := float32s(p.tensor)
		if err != nil {
			return nil, fmt.Errorf("weights: %s: %w", p.name, err)
		}
		out = append(out, Array{Name: p.name, Shape: shape, Data: data})
	}
	// m.params are copies of the variable store's tensors, which own the C handles and free
	// them in their finalizers: keep the store alive until the last copy has been read.
	runtime.KeepAlive(m.VS)
	return out, nil
}

// CheckpointWeights reads one weight set out of the checkpoint folder dir, written for a
// U-Net of cfg: weights is WeightsEMA, WeightsRaw, or "" for the EMA weights when the
// checkpoint has them and the raw ones otherwise. It returns the parameters in name order (as
// Model.Weights) and the set it read. Asking for EMA weights from a checkpoint without them, or
// a checkpoint of another model configuration, is an error.
func CheckpointWeights(dir string, cfg UNetConfig, weights string) ([]Array, string, error) {
	st, err := ReadCheckpointState(dir)
	if err != nil {
		return nil, "", err
	}
	switch weights {
	case "":
		weights = WeightsRaw
		if st.HasEMA {
			weights = WeightsEMA
		}
	case WeightsEMA:
		if !st.HasEMA {
			return nil, "", fmt.Errorf("checkpoint %s has no EMA weights (the run trained with train.ema_decay = 0); ask for the raw ones", dir)
		}
	case WeightsRaw:
	default:
		return nil, "", fmt.Errorf("unknown weight set %q (want %q or %q)", weights, WeightsEMA, WeightsRaw)
	}
	model, err := NewModel(cfg, gotch.CPU)
	if err != nil {
		return nil, "", err
	}
	if _, err := LoadWeights(dir, model, weights == WeightsEMA); err != nil {
		return nil, "", err
	}
	arrays, err := model.Weights()
	return arrays, weights, err
}
