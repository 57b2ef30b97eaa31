package quality

import (
	"context"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
)

// A short class-conditional training run on MNIST, sampled with classifier-free guidance, makes
// the reference classifier see the requested class far more often than chance (10%).
func TestConditionalTrainingBeatsChance(t *testing.T) {
	lockThread(t)
	if testing.Short() {
		t.Skip("trains a conditional model for about a minute")
	}
	dir := datatest.MNIST10k()
	if dir == "" {
		t.Skip("MNIST not found: neither shared/data/mnist-10k beside the checkout nor a dataset folder (go tool task setup)")
	}
	set, err := data.Load("mnist", dir, data.Train)
	if err != nil {
		t.Fatal(err)
	}
	const n, batch, steps = 4096, 32, 500
	ds, err := ddpm.NewDataset(set.Images[:n*784], set.Labels[:n], n, 1, 28, 28, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	sched, _ := ddpm.LinearSchedule(1000, 1e-4, 0.02)
	diffusion, err := ddpm.NewDiffusion(sched, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer diffusion.Close()
	ddpm.ManualSeed(1)
	model, err := ddpm.NewModel(ddpm.UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 64, NumClasses: 10}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ddpm.NewTrainer(model, diffusion, ddpm.TrainConfig{LR: 2e-3, PUncond: 0.1, EMADecay: 0.99, EMAWarmup: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for step := 0; step < steps; step++ {
		perEpoch := n / batch
		order := ddpm.EpochOrder(1, step/perEpoch+1, n)
		i := step % perEpoch
		x, y, err := ds.Batch(order[i*batch : (i+1)*batch])
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Step(x, y)
		x.MustDrop()
		y.MustDrop()
		if err != nil {
			t.Fatal(err)
		}
	}
	sampling, err := ddpm.NewModel(model.Net.Config, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.SamplingWeights(sampling, true); err != nil {
		t.Fatal(err)
	}
	const k = 100
	requested := make([]int, k)
	labels := make([]int64, k)
	for i := range requested {
		requested[i], labels[i] = i%10, int64(i%10)
	}
	sampler, err := ddpm.NewSampler("ddim", sched, 20, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	xT, err := ddpm.NoiseFor(5, k, 1, 28, 28, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer xT.MustDrop()
	res, err := ddpm.Sample(sampling, sampler, xT, ddpm.SampleOptions{Labels: labels, Guidance: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadOrTrain(context.Background(), "mnist", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	report, err := ClassAccuracy(c, res.Images, requested)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("class accuracy after %d steps, guidance 3: %.0f%% (chance 10%%); per class %v", steps, 100*report.Accuracy, report.PerClass)
	// Measured here: 25% (per class 10–60%) after 500 steps. With 100 samples, 20% is more than
	// three standard deviations above chance; the run is deterministic for its seeds.
	if report.Accuracy < 0.2 {
		t.Errorf("class accuracy %.0f%% is not clearly above chance (10%%)", 100*report.Accuracy)
	}
}
