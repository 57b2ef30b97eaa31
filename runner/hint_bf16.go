package main

import (
	"fmt"
	"io"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/config"
)

// bf16HintMinBase is the narrowest U-Net (model.base_channels) for which bf16 is suggested.
// On an AVX512-BF16 EPYC a bf16 training step of the guide's base-64 net at batch 128 ran
// 1.7-2.2x Go's fp32 NCHW one in two bench runs (BENCHMARKS.md, bench.sh --precision both),
// while base 32 at batch 16 gained nothing (0.93-0.99x; RESULTS.md section 10): its
// convolutions are too small.
const bf16HintMinBase = 64

// bf16Hint returns a line that suggests bf16 to the user of cfgs, or "" when it would not
// help: when the CPU computes bf16 in hardware (cpuHasBF16), the runs execute on it (onCPU),
// and at least one of them trains a U-Net of base bf16HintMinBase or wider in fp32. It only
// suggests: precision is part of a run's identity, so the user's configs are left as written,
// and bf16's speed-up depends on the CPU (an AVX-512 Xeon without AMX ran it at 0.6x fp32's
// speed, README), which the hint says.
func bf16Hint(cfgs []config.Config, cpuHasBF16, onCPU bool) string {
	if !cpuHasBF16 || !onCPU {
		return ""
	}
	n := 0
	for _, c := range cfgs {
		fp32 := c.Train.Precision == "" || c.Train.Precision == string(ddpm.FP32)
		if c.Trains() && fp32 && c.Model.BaseChannels >= bf16HintMinBase {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	which := "this run trains"
	if len(cfgs) > 1 {
		which = fmt.Sprintf("%d of these %d runs train", n, len(cfgs))
	}
	return fmt.Sprintf("hint: this CPU computes bf16 in hardware (%s) and %s a base-%d or wider U-Net in fp32. "+
		"With --set train.precision=bf16 --set sample.precision=bf16 the guide's base-64 net trained 1.7-2.2x faster "+
		"on an AVX512-BF16 EPYC at equal sample quality, though not on every such CPU (README, RESULTS.md section 10; "+
		"bash runner/scripts/bench.sh --precision both measures this one). They are new runs, with new hashes.", ddpm.BF16CPUFlags, which, bf16HintMinBase)
}

// printBF16Hint writes bf16Hint's line for cfgs, run on this machine, to w, if it has one.
func printBF16Hint(w io.Writer, cfgs []config.Config) {
	cuda := gotch.CudaIfAvailable().IsCuda()
	onCPU := true
	for _, c := range cfgs {
		if c.Runtime.Device == "cuda" || (c.Runtime.Device == "auto" && cuda) {
			onCPU = false
		}
	}
	if h := bf16Hint(cfgs, ddpm.CPUHasBF16(), onCPU); h != "" {
		fmt.Fprintln(w, h)
	}
}
