package ddpm

import (
	"fmt"
	"testing"

	"github.com/sugarme/gotch"
)

// BenchmarkSampleSteps times whole sampling runs of 64 images, the issue's "64 images in about
// 2 seconds" target: DPM-Solver++(2M) SDE on Karras's grid at 10 and 20 network evaluations, with
// the U-Net at base 32 (time embedding 128, configs/quick.toml) and base 64 (256, the guide's).
// One op is one run; it reports s/64img. Run it alone, with libtorch's threads as in a real run:
//
//	DDPMLAB_THREADS=2 go test -run '^$' -bench '^BenchmarkSampleSteps$' -benchtime 5x ./ddpm
func BenchmarkSampleSteps(b *testing.B) {
	model64, d := benchSetup(b, Compute{}) // threads, seed, the guide's schedule and base-64 model
	model32, err := NewModel(UNetConfig{ImageChannels: 1, BaseChannels: 32, TimeEmbDim: 128}, gotch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	xT := benchNoise(b)
	for _, m := range []struct {
		base  int
		model *Model
	}{{32, model32}, {64, model64}} {
		for _, kind := range []string{SamplerDPMPP2MSDE} {
			for _, nfe := range []int{10, 20} {
				b.Run(fmt.Sprintf("base%d/%s/%dnfe", m.base, kind, nfe), func(b *testing.B) {
					sampler, err := NewSpacedSampler(kind, Karras, d.Schedule, nfe, 0, true)
					if err != nil {
						b.Fatal(err)
					}
					warm, err := NewSpacedSampler(kind, Karras, d.Schedule, 1, 0, true)
					if err != nil {
						b.Fatal(err)
					}
					benchSample(b, m.model, warm, xT) // first-call allocations, oneDNN setup
					runs := 0
					for b.Loop() {
						benchSample(b, m.model, sampler, xT)
						runs++
					}
					b.ReportMetric(b.Elapsed().Seconds()/float64(runs), "s/64img")
				})
			}
		}
	}
}
