package job

import (
	"fmt"
	"os"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// BF16EmulatedEnv is the environment variable that, set to 1, lets a bf16 run start on a CPU
// without bf16 arithmetic: libtorch then emulates bf16 (correct, but slower than fp32), and
// the run's fingerprint and log say so.
const BF16EmulatedEnv = "DDPMLAB_BF16_EMULATED"

// precision is how a run's two U-Nets compute: the one being trained and the one that samples
// (and is evaluated).
type precision struct {
	train, sample ddpm.Compute
	// note is the fingerprint's and the log's record: "train fp32, sample fp32", then
	// "; bf16 emulated (no avx512_bf16/amx_bf16)" when a bf16 pass runs without the hardware.
	note string
}

// runPrecision reads train.precision and sample.precision, before any work starts;
// train.precision counts only when the run trains (trains). A bf16 pass on a CPU without bf16
// arithmetic (cpuHasBF16 false; see ddpm.CPUHasBF16) is an error naming the keys, unless
// emulated is set ($DDPMLAB_BF16_EMULATED=1), in which case the note records it. On CUDA the
// GPU's bf16 is libtorch's concern and nothing is checked.
func runPrecision(cfg config.Config, trains bool, device gotch.Device, cpuHasBF16, emulated bool) (precision, error) {
	p := precision{train: ddpm.Compute{Precision: ddpm.FP32}, sample: ddpm.Compute{Precision: ddpm.FP32}}
	var bf16Keys []string
	for _, k := range []struct {
		key, value string
		used       bool
		dst        *ddpm.Compute
	}{
		{"train.precision", cfg.Train.Precision, trains, &p.train},
		{"sample.precision", cfg.Sample.Precision, true, &p.sample},
	} {
		prec, err := ddpm.ParsePrecision(k.value)
		if err != nil {
			return p, fmt.Errorf("%s: %w", k.key, err)
		}
		if !k.used {
			continue
		}
		k.dst.Precision = prec
		if prec == ddpm.BF16 {
			bf16Keys = append(bf16Keys, k.key)
			// On a CPU a bf16 pass also lays its convolutions out channels-last: oneDNN's
			// bf16 convolutions run fastest from NHWC (BENCHMARKS.md, on an AVX512-BF16
			// EPYC: 1.0-1.3x bf16 NCHW's training speed, 1.1-1.4x its sampling speed).
			k.dst.ChannelsLast = !device.IsCuda()
		}
	}
	p.note = fmt.Sprintf("train %s, sample %s", p.train, p.sample)
	if !trains {
		p.note = fmt.Sprintf("sample %s", p.sample)
	}
	if len(bf16Keys) == 0 || device.IsCuda() || cpuHasBF16 {
		return p, nil
	}
	if !emulated {
		keys := strings.Join(bf16Keys, " and ")
		return p, fmt.Errorf(`%s = "bf16": this CPU has no bf16 arithmetic (/proc/cpuinfo lists neither avx512_bf16 nor amx_bf16), `+
			`so libtorch would emulate bf16, slower than fp32; set %s = "fp32" (or run where the CPU has it, or set %s=1 to run it emulated anyway)`,
			keys, strings.Join(bf16Keys, ` = "fp32" and `), BF16EmulatedEnv)
	}
	p.note += fmt.Sprintf("; bf16 emulated (no %s)", ddpm.BF16CPUFlags)
	return p, nil
}

// setSamplePrecision makes model, which only samples (runner sample, runner eval), compute as
// sample.precision says, after runPrecision's check.
func setSamplePrecision(cfg config.Config, device gotch.Device, model *ddpm.Model) error {
	p, err := runPrecision(cfg, false, device, ddpm.CPUHasBF16(), os.Getenv(BF16EmulatedEnv) == "1")
	if err != nil {
		return err
	}
	return model.Net.SetCompute(p.sample)
}
