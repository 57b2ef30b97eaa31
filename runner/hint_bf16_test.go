package main

import (
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

func TestBF16Hint(t *testing.T) {
	guide := config.Default() // base 64, fp32, 20 epochs
	small := config.Default()
	small.Model.BaseChannels = 32
	bf16 := config.Default()
	bf16.Train.Precision = "bf16"
	noTrain := config.Default()
	noTrain.Train.Epochs = 0
	samplingOnly := config.Default()
	samplingOnly.Sample.FromRun = strings.Repeat("ab", 32)

	tests := []struct {
		name         string
		cfgs         []config.Config
		hasBF16, cpu bool
		want         string // a substring of the hint; "" for no hint
	}{
		{"guide net on a bf16 CPU", []config.Config{guide}, true, true, "this run trains a base-64 or wider U-Net in fp32"},
		{"no bf16 hardware", []config.Config{guide}, false, true, ""},
		{"runs on a GPU", []config.Config{guide}, true, false, ""},
		{"base 32 gains nothing", []config.Config{small}, true, true, ""},
		{"already bf16", []config.Config{bf16}, true, true, ""},
		{"no training", []config.Config{noTrain}, true, true, ""},
		{"sampling-only", []config.Config{samplingOnly}, true, true, ""},
		{"a sweep counts its runs", []config.Config{guide, small, bf16}, true, true, "1 of these 3 runs train"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bf16Hint(tt.cfgs, tt.hasBF16, tt.cpu)
			if tt.want == "" {
				if got != "" {
					t.Fatalf("bf16Hint = %q, want no hint", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, "--set train.precision=bf16 --set sample.precision=bf16") {
				t.Fatalf("bf16Hint = %q, want it to contain %q and the --set flags", got, tt.want)
			}
		})
	}
}
