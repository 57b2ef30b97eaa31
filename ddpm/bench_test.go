package ddpm

// Benchmarks of the guide's configuration: U-Net with base 64 and time embedding 256, T = 1000
// with the linear schedule, Adam at 2e-4, batch 128 of MNIST-shaped (1×28×28) images.
// runner/scripts/bench_torch.py measures the same model and steps in PyTorch eager, and
// runner/scripts/bench.sh runs both and prints the ratios (see BENCHMARKS.md).
//
//	go test -run '^$' -bench '^Benchmark(TrainStep|Sample64|Sample64DDIM50)$' -benchtime 20s ./ddpm
//
// Each has a bf16 twin (…BF16: mixed precision, ddpm/precision.go) and channels-last twins
// (…ChannelsLast, …BF16ChannelsLast: Compute.ChannelsLast). bf16 is only meaningful on a CPU with avx512_bf16 or
// amx_bf16 (CPUHasBF16); elsewhere libtorch emulates it, slower than fp32.
//
// libtorch's thread count is $DDPMLAB_THREADS, or runtime.NumCPU() when it is unset.

import (
	"bufio"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

const (
	benchBatch       = 128 // the guide's batch size
	benchSampleBatch = 64  // images per sampling run, as `runner sample --num-images 64`
	benchT           = 1000
)

var benchUNet = UNetConfig{ImageChannels: 1, BaseChannels: 64, TimeEmbDim: 256}

// benchSetup pins the benchmark to its OS thread (libtorch's grad mode is per thread), sets
// libtorch's thread count, and builds the guide's model, computing as c, and diffusion on the
// CPU.
func benchSetup(b *testing.B, c Compute) (*Model, *Diffusion) {
	b.Helper()
	return benchSetupNet(b, c, benchUNet)
}

// benchSetupNet is benchSetup with the U-Net net.
func benchSetupNet(b *testing.B, c Compute, net UNetConfig) (*Model, *Diffusion) {
	b.Helper()
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	threads := runtime.NumCPU()
	if v := os.Getenv("DDPMLAB_THREADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("DDPMLAB_THREADS=%q: want a positive integer", v)
		}
		threads = n
	}
	SetNumThreads(threads)
	ManualSeed(0)
	model, err := NewModel(net, gotch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	if err := model.Net.SetCompute(c); err != nil {
		b.Fatal(err)
	}
	sched, err := LinearSchedule(benchT, 1e-4, 0.02)
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDiffusion(sched, gotch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	return model, d
}

// BenchmarkTrainStep times Trainer.Step (Algorithm 1 with Adam) on a batch of 128 images; one
// op is one optimizer step. It reports images/s and the process's peak resident memory.
func BenchmarkTrainStep(b *testing.B) { benchTrainStep(b, Compute{}) }

// BenchmarkTrainStepBF16 is BenchmarkTrainStep in mixed precision (fp32 weights and Adam).
func BenchmarkTrainStepBF16(b *testing.B) { benchTrainStep(b, Compute{Precision: BF16}) }

// BenchmarkTrainStepChannelsLast is BenchmarkTrainStep with channels-last convolutions.
func BenchmarkTrainStepChannelsLast(b *testing.B) { benchTrainStep(b, Compute{ChannelsLast: true}) }

// BenchmarkTrainStepBF16ChannelsLast is BenchmarkTrainStepBF16 with channels-last convolutions
// (oneDNN's bf16 kernels work in NHWC).
func BenchmarkTrainStepBF16ChannelsLast(b *testing.B) {
	benchTrainStep(b, Compute{Precision: BF16, ChannelsLast: true})
}

func benchTrainStep(b *testing.B, c Compute) {
	model, d := benchSetup(b, c)
	tr, err := NewTrainer(model, d, TrainConfig{LR: 2e-4})
	if err != nil {
		b.Fatal(err)
	}
	benchSteps(b, tr, benchBatch)
}

// benchSteps times tr.Step on a batch of the given size after one untimed step, and reports
// images/s and the peak resident memory.
func benchSteps(b *testing.B, tr *Trainer, batch int64) {
	var s scope
	defer s.drop()
	x0 := warmStep(b, &s, tr, batch)
	steps := 0
	for b.Loop() {
		if _, err := tr.Step(x0, nil); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	b.ReportMetric(float64(batch*int64(steps))/b.Elapsed().Seconds(), "images/s")
	if mib := peakRSSMiB(); mib > 0 {
		b.ReportMetric(mib, "MiB-peak-rss")
	}
}

// warmStep makes a batch of MNIST-shaped images in s and takes one untimed training step on it
// (first-call allocations, oneDNN setup; afterwards every gradient exists), and returns the batch.
func warmStep(b *testing.B, s *scope, tr *Trainer, batch int64) *ts.Tensor {
	b.Helper()
	// Uniform values in [-1, 1]: the data's content does not change the step's cost.
	r := rand.New(rand.NewPCG(1, 2))
	values := make([]float32, batch*28*28)
	for i := range values {
		values[i] = 2*r.Float32() - 1
	}
	x0 := s.fromFloat32(values, []int64{batch, 1, 28, 28}, gotch.CPU)
	if s.err != nil {
		b.Fatal(s.err)
	}
	if _, err := tr.Step(x0, nil); err != nil {
		b.Fatal(err)
	}
	return x0
}

// BenchmarkTrainStepRecipe times Trainer.Step at the quick scales' recipe (RESULTS.md section 4):
// base 32, time embedding 128, batch 16, Min-SNR-5, cosine lr, EMA with the power warm-up. At
// this size a step is short enough that per-op overhead shows: compare with
// BenchmarkTrainStepRecipePerTensor, the same step with one optimizer and EMA op per parameter.
func BenchmarkTrainStepRecipe(b *testing.B) { benchTrainStepRecipe(b, 16, false, BlockGuide) }

// BenchmarkTrainStepRecipeBatch8 is BenchmarkTrainStepRecipe at batch 8: twice the steps for
// the same images, so per-step costs weigh twice as much (RESULTS.md section 4, batch 8).
func BenchmarkTrainStepRecipeBatch8(b *testing.B) { benchTrainStepRecipe(b, 8, false, BlockGuide) }

// BenchmarkTrainStepRecipePerTensor is BenchmarkTrainStepRecipe without the flat buffers of
// flat.go: Adam, the EMA and zeroGrad loop over the 62 parameters.
func BenchmarkTrainStepRecipePerTensor(b *testing.B) { benchTrainStepRecipe(b, 16, true, BlockGuide) }

// BenchmarkTrainStepRecipeResNet is BenchmarkTrainStepRecipe with Ho et al.'s residual blocks
// (model.block = "resnet"): the same convolutions, plus shortcut convolutions, GroupNorms over
// the blocks' inputs and one before the last convolution.
func BenchmarkTrainStepRecipeResNet(b *testing.B) { benchTrainStepRecipe(b, 16, false, BlockResNet) }

func benchTrainStepRecipe(b *testing.B, batch int64, perTensor bool, block string) {
	model, d := benchSetupNet(b, Compute{}, UNetConfig{ImageChannels: 1, BaseChannels: 32, TimeEmbDim: 128, Block: block})
	tr, err := NewTrainer(model, d, TrainConfig{LR: 2e-3, LRSchedule: LRCosine, WarmupSteps: 50, TotalSteps: 1 << 30,
		LossWeighting: WeightingMinSNR, MinSNRGamma: 5, EMADecay: 0.9999, EMAPower: 0.75, perTensor: perTensor})
	if err != nil {
		b.Fatal(err)
	}
	benchSteps(b, tr, batch)
}

// BenchmarkOptimizerRecipe times the per-step updates outside the network at the recipe's size
// (base 32, after one training step of batch 16 so that every gradient exists): Adam.Update, the
// EMA update and ZeroGrad, each on the flat buffers of flat.go and with one op per parameter.
func BenchmarkOptimizerRecipe(b *testing.B) {
	for _, perTensor := range []bool{false, true} {
		layout := map[bool]string{false: "flat", true: "per-tensor"}[perTensor]
		for _, part := range []string{"adam", "ema", "zerograd"} {
			b.Run(layout+"/"+part, func(b *testing.B) {
				model, d := benchSetupNet(b, Compute{}, UNetConfig{ImageChannels: 1, BaseChannels: 32, TimeEmbDim: 128})
				tr, err := NewTrainer(model, d, TrainConfig{LR: 2e-3, EMADecay: 0.9999, EMAPower: 0.75, perTensor: perTensor})
				if err != nil {
					b.Fatal(err)
				}
				var s scope
				defer s.drop()
				warmStep(b, &s, tr, 16)
				if tr.Adam.Update() != nil { // lays the gradients out flat, unless per-tensor
					b.Fatal("first update failed")
				}
				update := map[string]func() error{"adam": tr.Adam.Update, "ema": tr.EMA.Update, "zerograd": tr.Adam.ZeroGrad}[part]
				for b.Loop() {
					if err := update(); err != nil {
						b.Fatal(err)
					}
				}
				// update holds the Adam or the EMA only; the model's variable store owns the
				// parameters' C handles and frees them when collected (see Model.Weights).
				runtime.KeepAlive(tr)
			})
		}
	}
}

// BenchmarkSample64 times one reverse step of ancestral DDPM sampling (Algorithm 2: a U-Net
// forward pass without gradients, then the update) on 64 images, through Sample, the loop that
// `runner sample` uses; one op is one step. A full DDPM run is T = 1000 such steps, reported as
// s/64img@1000steps: sampling 64 images for real takes many minutes on a CPU.
func BenchmarkSample64(b *testing.B) { benchSample64(b, Compute{}) }

// BenchmarkSample64BF16 is BenchmarkSample64 with the U-Net in bf16 (the update stays fp32).
func BenchmarkSample64BF16(b *testing.B) { benchSample64(b, Compute{Precision: BF16}) }

// BenchmarkSample64ChannelsLast is BenchmarkSample64 with channels-last convolutions.
func BenchmarkSample64ChannelsLast(b *testing.B) { benchSample64(b, Compute{ChannelsLast: true}) }

// BenchmarkSample64BF16ChannelsLast is BenchmarkSample64BF16 with channels-last convolutions.
func BenchmarkSample64BF16ChannelsLast(b *testing.B) {
	benchSample64(b, Compute{Precision: BF16, ChannelsLast: true})
}

func benchSample64(b *testing.B, c Compute) {
	model, d := benchSetup(b, c)
	// One step of a 1-step respaced sampler costs what one step of the 1000-step sampler does
	// (the same U-Net pass and update; only the σ·z term, 0.1% of a step, is skipped).
	sampler, err := NewSampler("ddpm", d.Schedule, 1, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	xT := benchNoise(b)
	benchSample(b, model, sampler, xT) // warm-up
	steps := 0
	for b.Loop() {
		benchSample(b, model, sampler, xT)
		steps++
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(steps)*benchT, "s/64img@1000steps")
}

// BenchmarkSample64DDIM50 times a whole DDIM run (η = 0, 50 steps) on 64 images; one op is one run.
func BenchmarkSample64DDIM50(b *testing.B) { benchSample64DDIM50(b, Compute{}) }

// BenchmarkSample64DDIM50BF16 is BenchmarkSample64DDIM50 with the U-Net in bf16.
func BenchmarkSample64DDIM50BF16(b *testing.B) { benchSample64DDIM50(b, Compute{Precision: BF16}) }

// BenchmarkSample64DDIM50ChannelsLast is BenchmarkSample64DDIM50 with channels-last convolutions.
func BenchmarkSample64DDIM50ChannelsLast(b *testing.B) {
	benchSample64DDIM50(b, Compute{ChannelsLast: true})
}

// BenchmarkSample64DDIM50BF16ChannelsLast is BenchmarkSample64DDIM50BF16 with channels-last
// convolutions.
func BenchmarkSample64DDIM50BF16ChannelsLast(b *testing.B) {
	benchSample64DDIM50(b, Compute{Precision: BF16, ChannelsLast: true})
}

func benchSample64DDIM50(b *testing.B, c Compute) {
	model, d := benchSetup(b, c)
	sampler, err := NewSampler("ddim", d.Schedule, 50, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	warm, err := NewSampler("ddim", d.Schedule, 1, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	xT := benchNoise(b)
	benchSample(b, model, warm, xT)
	runs := 0
	for b.Loop() {
		benchSample(b, model, sampler, xT)
		runs++
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(runs), "s/64img")
}

// benchNoise is a fixed start noise x_T for 64 images, freed when the benchmark ends.
func benchNoise(b *testing.B) *ts.Tensor {
	b.Helper()
	xT, err := NoiseFor(0, benchSampleBatch, 1, 28, 28, gotch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { xT.MustDrop() })
	return xT
}

func benchSample(b *testing.B, model *Model, sampler Sampler, xT *ts.Tensor) {
	b.Helper()
	if _, err := Sample(model, sampler, xT, SampleOptions{}); err != nil {
		b.Fatal(err)
	}
}

// peakRSSMiB reads the process's peak resident set size (VmHWM) from /proc, or returns 0.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkForwardSplitBias times the U-Net's forward pass on 64 images without gradients two
// ways in alternation, as a training pass computes it (dropout is 0) and as an inference pass
// does (unet.go: the transposed convolutions' bias added as an op of its own and, since
// 1f2d3d5, max-pools by strided maxima), and reports the median over the pairs of split/fused
// (benchPairs). BenchmarkMaxPool2 times the max-pools alone.
func BenchmarkForwardSplitBias(b *testing.B) {
	model, _ := benchSetup(b, Compute{})
	xT := benchNoise(b)
	var s scope
	defer s.drop()
	t := s.fromInt64(make([]int64, benchSampleBatch), gotch.CPU)
	if s.err != nil {
		b.Fatal(s.err)
	}
	pass := func(train bool) time.Duration {
		start := time.Now()
		forwardAndDrop(b, model.Net, xT, t, nil, train)
		return time.Since(start)
	}
	benchPairs(b, "fused", func() time.Duration { return pass(true) }, "split", func() time.Duration { return pass(false) })
}

// benchPairs times first and second in alternation, a pair per b.Loop iteration after one
// untimed warm-up pair (oneDNN builds its primitives on first use), and reports each one's mean
// in ms and the median over the pairs of second/first. Alternating within one process cancels
// this VM's drift from minute to minute, which separate benchmark runs cannot resolve at a few
// percent.
func benchPairs(b *testing.B, firstName string, first func() time.Duration, secondName string, second func() time.Duration) {
	first()
	second()
	var ratios []float64
	var sum1, sum2 time.Duration
	for b.Loop() {
		d1, d2 := first(), second()
		sum1, sum2 = sum1+d1, sum2+d2
		ratios = append(ratios, float64(d2)/float64(d1))
	}
	slices.Sort(ratios)
	n := float64(len(ratios))
	b.ReportMetric(float64(sum1.Microseconds())/n/1e3, "ms-"+firstName)
	b.ReportMetric(float64(sum2.Microseconds())/n/1e3, "ms-"+secondName)
	b.ReportMetric(ratios[len(ratios)/2], secondName+"/"+firstName)
}

// BenchmarkMaxPool2 times the U-Net's two max-pools at the guide's size (64 images, base 64:
// 64 × 64 × 28 × 28 and 64 × 128 × 14 × 14) both ways in alternation, libtorch's max_pool2d
// (training passes) and the strided maxima of an NCHW inference pass (unet.go), and reports the
// median over the pairs of strided/max_pool2d (benchPairs).
func BenchmarkMaxPool2(b *testing.B) {
	var s scope
	defer s.drop()
	xs := []*ts.Tensor{s.randn([]int64{benchSampleBatch, 64, 28, 28}, gotch.CPU), s.randn([]int64{benchSampleBatch, 128, 14, 14}, gotch.CPU)}
	if s.err != nil {
		b.Fatal(s.err)
	}
	pool := func(train bool) time.Duration {
		var ps scope
		defer ps.drop()
		start := time.Now()
		for _, x := range xs {
			forwardPass{s: &ps, train: train}.maxPool2(x)
		}
		if ps.err != nil {
			b.Fatal(ps.err)
		}
		return time.Since(start)
	}
	benchPairs(b, "max_pool2d", func() time.Duration { return pool(true) }, "strided", func() time.Duration { return pool(false) })
}
