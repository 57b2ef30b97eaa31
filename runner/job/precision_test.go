package job

import (
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// runner/config validates the precision keys without importing ddpm; its list must be the
// names ddpm accepts.
func TestConfigPrecisionsMatchDDPM(t *testing.T) {
	for _, p := range config.Precisions {
		if _, err := ddpm.ParsePrecision(p); err != nil {
			t.Errorf("config accepts %q, ddpm does not: %v", p, err)
		}
	}
	if !slices.Equal(config.Precisions, []string{string(ddpm.FP32), string(ddpm.BF16)}) {
		t.Errorf("config.Precisions = %q", config.Precisions)
	}
}

func TestRunPrecision(t *testing.T) {
	bf16 := func(train, sample string) config.Config {
		c := config.Default()
		c.Train.Precision, c.Sample.Precision = train, sample
		return c
	}
	tests := []struct {
		name          string
		cfg           config.Config
		trains        bool
		device        gotch.Device
		hasBF16, emul bool
		train, sample ddpm.Precision
		note          string   // want, when there is no error
		err           []string // fragments the error must hold; nil = no error
	}{
		{name: "fp32 needs nothing", cfg: config.Default(), trains: true, device: gotch.CPU,
			train: ddpm.FP32, sample: ddpm.FP32, note: "train fp32, sample fp32"},
		{name: "bf16 on a bf16 CPU", cfg: bf16("bf16", "bf16"), trains: true, device: gotch.CPU, hasBF16: true,
			train: ddpm.BF16, sample: ddpm.BF16, note: "train bf16, channels-last, sample bf16, channels-last"},
		{name: "bf16 training without the CPU flags", cfg: bf16("bf16", "fp32"), trains: true, device: gotch.CPU,
			err: []string{`train.precision = "bf16"`, "avx512_bf16", "amx_bf16", `set train.precision = "fp32"`, BF16EmulatedEnv + "=1"}},
		{name: "both keys named", cfg: bf16("bf16", "bf16"), trains: true, device: gotch.CPU,
			err: []string{`train.precision and sample.precision = "bf16"`, `set train.precision = "fp32" and sample.precision = "fp32"`}},
		{name: "emulated on request", cfg: bf16("fp32", "bf16"), trains: true, device: gotch.CPU, emul: true,
			train: ddpm.FP32, sample: ddpm.BF16, note: "train fp32, sample bf16, channels-last; bf16 emulated (no avx512_bf16/amx_bf16)"},
		{name: "train.precision unused when not training", cfg: bf16("bf16", "fp32"), trains: false, device: gotch.CPU,
			train: ddpm.FP32, sample: ddpm.FP32, note: "sample fp32"},
		{name: "cuda is not checked", cfg: bf16("bf16", "bf16"), trains: true, device: gotch.CudaBuilder(0),
			train: ddpm.BF16, sample: ddpm.BF16, note: "train bf16, sample bf16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := runPrecision(tt.cfg, tt.trains, tt.device, tt.hasBF16, tt.emul)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("no error; want one with %q", tt.err)
				}
				for _, frag := range tt.err {
					if !strings.Contains(err.Error(), frag) {
						t.Errorf("error %q lacks %q", err, frag)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.train.Precision != tt.train || p.sample.Precision != tt.sample || p.note != tt.note {
				t.Errorf("got train %q, sample %q, note %q; want %q, %q, %q", p.train.Precision, p.sample.Precision, p.note, tt.train, tt.sample, tt.note)
			}
			// A bf16 pass on a CPU is channels-last; fp32 passes and CUDA keep NCHW.
			for _, c := range []ddpm.Compute{p.train, p.sample} {
				if want := c.Precision == ddpm.BF16 && !tt.device.IsCuda(); c.ChannelsLast != want {
					t.Errorf("%v: ChannelsLast = %v, want %v", c.Precision, c.ChannelsLast, want)
				}
			}
		})
	}
}
