// Package job executes one run: it trains, samples and evaluates the config stored under a
// hash and writes every output into that run's folder in the store. It is the body of the
// hidden `runner _run-one` child process, which is the only process that touches libtorch.
//
// The caller must run Run on a goroutine locked to its OS thread (runtime.LockOSThread):
// libtorch's grad mode is per thread.
package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/executor"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// GridSeed seeds the start noise x_T of every sample grid and libtorch's generator while
// sampling. It is the same for every run, so that grids of a sweep differ only because of
// their configs, slot by slot.
const GridSeed = 20240601

// Options says which run to execute and where to report.
type Options struct {
	Store       *store.Store
	Hash        string
	Progress    io.Writer      // JSON progress lines, one per update (the parent renders them)
	Log         zerolog.Logger // the run's structured log
	Threads     int            // libtorch intra-op threads; 0 = leave libtorch's default
	CodeVersion string
	// CheckpointHook, if not nil, is called between the steps of every checkpoint write
	// (ddpm.Checkpoints.Hook). The child reads it from the environment for the
	// fault-injection tests; nil otherwise.
	CheckpointHook func(stage string)
}

// ErrInterrupted is returned when the context was cancelled (SIGINT/SIGTERM); a checkpoint was
// written and the run is marked interrupted.
var ErrInterrupted = errors.New("interrupted")

// Run executes the run and records its end in status.json: done, failed (with the reason) or
// interrupted. It returns nil, ErrInterrupted, or the error that failed the run. The caller
// holds the run's lock and has called store.Begin.
func Run(ctx context.Context, opts Options) error {
	r := &run{Options: opts, dir: opts.Store.RunDir(opts.Hash)}
	err := r.execute(ctx)
	switch {
	case err == nil:
		_, serr := opts.Store.Finish(opts.Hash, store.Done, "")
		return serr
	case errors.Is(err, ErrInterrupted) || ctx.Err() != nil:
		opts.Store.Finish(opts.Hash, store.Interrupted, "interrupted by signal; rerun to resume from the last checkpoint")
		return ErrInterrupted
	default:
		opts.Store.Finish(opts.Hash, store.Failed, err.Error())
		return err
	}
}

type run struct {
	Options
	dir       string
	cfg       config.Config
	device    gotch.Device
	precision precision // how the U-Nets compute (precision.go)
	// shape is the (C, H, W) of the run's images: the training data's, or the checkpoint's
	// when the run only samples (the zero value means defaultShape).
	shape imageShape

	loss   []store.LossRow
	epochs []store.EpochRow
	// resumed is the state of the checkpoint this attempt resumed from (zero when it
	// started from epoch 1).
	resumed ddpm.CheckpointState

	// For standalone sampling (runner sample): the start-noise seed (0 = GridSeed) and the
	// class of each image of a conditional model (nil = one row per class).
	noiseSeed int64
	classes   []int64

	// guide is the bad model of autoguidance (sample.autoguidance, guide.go); nil when off.
	guide *ddpm.Model

	lastPhaseReport time.Time
	phase           string // set while sampling outside training, for progress lines
}

// imageShape is the run's image shape, defaultShape when none was set.
func (r *run) imageShape() imageShape {
	if r.shape == (imageShape{}) {
		return defaultShape
	}
	return r.shape
}

func (r *run) seed() int64 {
	if r.noiseSeed != 0 {
		return r.noiseSeed
	}
	return GridSeed
}

func (r *run) path(parts ...string) string {
	return filepath.Join(append([]string{r.dir}, parts...)...)
}

func (r *run) execute(ctx context.Context) error {
	opened, err := OpenRun(r.Store, r.Hash)
	if err != nil {
		return err
	}
	r.cfg = opened.Config
	var source, sourceCheckpoint string
	if r.cfg.SamplingOnly() {
		// A sampling-only run: the model, data and schedule are the source run's.
		source = opened.Source
		err := opened.FindCheckpoint()
		r.logSkipped(opened.Skipped)
		if err != nil {
			return fmt.Errorf("sample.from_run: %w", err)
		}
		sourceCheckpoint = opened.Checkpoint
	}
	cfg := r.cfg
	if r.device, err = pickDevice(cfg.Runtime.Device); err != nil {
		return err
	}
	if r.Threads > 0 {
		ddpm.SetNumThreads(r.Threads)
	}
	if r.precision, err = runPrecision(cfg, cfg.Trains(), r.device, ddpm.CPUHasBF16(), os.Getenv(BF16EmulatedEnv) == "1"); err != nil {
		return err
	}
	// The image shape: the checkpoint's when sampling another run's weights, else the data's.
	var trainSet *data.Set
	if sourceCheckpoint != "" {
		r.shape = opened.shape
	} else if cfg.Train.Epochs > 0 {
		if trainSet, err = loadSplit(cfg, data.Train); err != nil {
			return err
		}
		r.shape = shapeOf(trainSet)
	} else if r.shape, err = specShape(cfg); err != nil { // no training: the shape without the pixels
		return err
	}
	if err := r.writeFingerprint(); err != nil {
		return err
	}
	r.Log.Info().Str("device", deviceName(r.device)).Int("threads", ddpm.NumThreads()).Str("precision", r.precision.note).Msg("start")

	sched, err := schedule(cfg)
	if err != nil {
		return err
	}
	diffusion, err := ddpm.NewDiffusion(sched, r.device)
	if err != nil {
		return err
	}
	defer diffusion.Close()

	unet := unetConfig(cfg, r.imageShape())
	ddpm.ManualSeed(cfg.Seed) // the initial weights depend on the seed only
	model, err := ddpm.NewModel(unet, r.device)
	if err != nil {
		return err
	}
	sampling, err := ddpm.NewModel(unet, r.device) // receives EMA or raw weights for sampling
	if err != nil {
		return err
	}
	if err := errors.Join(model.Net.SetCompute(r.precision.train), sampling.Net.SetCompute(r.precision.sample)); err != nil {
		return err
	}
	trainer, err := ddpm.NewTrainer(model, diffusion, trainConfig(cfg))
	if err != nil {
		return err
	}

	start := time.Now()
	trainSeconds := 0.0
	var weights string
	if sourceCheckpoint != "" {
		if weights, err = opened.LoadWeights(sampling, cfg.Sample.UseEMA); err != nil {
			return fmt.Errorf("sample.from_run: %w", err)
		}
	} else {
		if cfg.Train.Epochs > 0 {
			if trainSeconds, err = r.train(ctx, trainer, sampling, trainSet); err != nil {
				return err
			}
			trainSet = nil // let the GC have it before the metrics load the splits again
		}
		if weights, err = trainer.SamplingWeights(sampling, cfg.Sample.UseEMA); err != nil {
			return err
		}
	}
	if err := r.loadGuide(r.Store, opened); err != nil {
		return err
	}
	sampleSeconds, samplerName, err := r.finalSamples(ctx, sched, sampling)
	if err != nil {
		return err
	}
	if err := r.writeLossPlot(); err != nil {
		return err
	}
	summary := store.Summary{
		TrainSeconds: trainSeconds, ParamCount: model.ParamCount(), Weights: weights,
		Sampler: samplerName, SampleSteps: sampleSteps(cfg), SampleSecondsPer64: sampleSeconds * 64 / float64(cfg.Sample.NumImages),
	}
	if err := r.evaluate(ctx, sched, sampling, weights, &summary); err != nil {
		return err
	}
	summary.FinalLoss, summary.BestLoss, summary.ImagesPerSec = r.lossSummary()
	if cfg.SamplingOnly() {
		// The losses that describe these weights are the source run's.
		if sourceSummary, err := r.Store.ReadSummary(source); err == nil {
			summary.FinalLoss, summary.BestLoss = sourceSummary.FinalLoss, sourceSummary.BestLoss
		}
	}
	if err := r.Store.WriteSummary(r.Hash, summary); err != nil {
		return err
	}
	r.Log.Info().Dur("wall", time.Since(start)).Float64("final_loss", summary.FinalLoss).Str("weights", weights).Msg("done")
	return nil
}

func sampleSteps(cfg config.Config) int {
	if cfg.Sample.Steps == 0 {
		return cfg.Diffusion.Timesteps
	}
	return cfg.Sample.Steps
}

// pickDevice maps runtime.device to a libtorch device.
func pickDevice(name string) (gotch.Device, error) {
	switch name {
	case "cpu":
		return gotch.CPU, nil
	case "cuda":
		if !gotch.CudaIfAvailable().IsCuda() {
			return gotch.CPU, fmt.Errorf("runtime.device = \"cuda\" but libtorch sees no CUDA device")
		}
		return gotch.CudaIfAvailable(), nil
	default:
		return gotch.CudaIfAvailable(), nil
	}
}

// train runs (or resumes) the epochs on set, the train split, and returns the training time of
// this attempt plus that recorded by earlier attempts.
func (r *run) train(ctx context.Context, tr *ddpm.Trainer, sampling *ddpm.Model, set *data.Set) (float64, error) {
	cfg := r.cfg
	n := set.N
	if cfg.Data.TrainSubset > 0 && cfg.Data.TrainSubset < n {
		n = cfg.Data.TrainSubset
	}
	labels := set.Labels
	if labels == nil { // an unlabelled set (a folder without class folders): class 0 throughout
		labels = make([]uint8, set.N)
	}
	dataset, err := ddpm.NewDataset(set.Images[:n*set.ImageLen()], labels[:n], n, set.C(), set.Height, set.Width, r.device)
	if err != nil {
		return 0, err
	}
	defer dataset.Close()
	r.Log.Info().Str("dataset", cfg.Data.Dataset).Str("dir", set.Dir).Int("images", n).Str("shape", shapeOf(set).String()).Msg("data")
	// The guide's forward-diffusion figure for this run's data and schedule.
	if err := ForwardGrid(set, tr.Diffusion.Schedule, GuideTimesteps(tr.Diffusion.T), 8, cfg.Seed, r.path("forward.png")); err != nil {
		return 0, err
	}

	startEpoch, startBatch := 1, 0
	ckpts := r.checkpoints()
	found, skipped, err := ckpts.Latest()
	r.logSkipped(skipped)
	switch {
	case errors.Is(err, ddpm.ErrNoCheckpoint):
		r.Log.Info().Str("dir", ckpts.Dir).Msg("no checkpoint: starting from epoch 1")
	case err != nil:
		return 0, fmt.Errorf("resume: %w", err)
	default:
		st, err := tr.LoadCheckpoint(found.Dir)
		if err != nil {
			return 0, fmt.Errorf("resume: %w (delete %s to start over)", err, found.Dir)
		}
		r.resumed = st
		startEpoch, startBatch = st.Epoch+1, st.EpochStep
		if err := r.loadMetrics(tr.Steps()); err != nil {
			return 0, err
		}
		r.Log.Info().Int("epoch", startEpoch).Int("batch", startBatch).Int64("step", tr.Steps()).
			Str("checkpoint", filepath.Base(found.Dir)).Msg("resumed from checkpoint")
	}
	earlier := 0.0
	for _, e := range r.epochs {
		earlier += e.Seconds
	}

	batchSize := cfg.Train.BatchSize
	batches := (n + batchSize - 1) / batchSize
	tr.Config.TotalSteps = int64(cfg.Train.Epochs) * int64(batches) // what lr_schedule decays over
	snapshots, err := snapshotSteps(cfg, tr.Config.TotalSteps)
	if err != nil {
		return 0, err
	}
	trainStart := time.Now()
	lastReport := time.Time{}
	for epoch := startEpoch; epoch <= cfg.Train.Epochs; epoch++ {
		order := ddpm.EpochOrder(cfg.Seed, epoch, n)
		epochStart, images := time.Now(), 0
		sum, count := 0.0, 0
		for _, row := range r.loss { // the steps of an epoch resumed mid-way, from loss.csv
			if row.Epoch == epoch {
				sum, count = sum+row.Loss, count+1
			}
		}
		for b := startBatch; b < batches; b++ {
			if ctx.Err() != nil {
				return 0, r.interrupt(tr, epoch-1, b)
			}
			loss, err := r.step(tr, dataset, order[b*batchSize:min((b+1)*batchSize, n)])
			if err != nil {
				r.saveMetrics()
				return 0, err
			}
			if snapshots[tr.Steps()] {
				if err := tr.SaveCheckpoint(store.SnapshotDir(r.dir, int(tr.Steps())), epoch-1, b+1); err != nil {
					return 0, fmt.Errorf("snapshot at step %d: %w", tr.Steps(), err)
				}
			}
			images += min((b+1)*batchSize, n) - b*batchSize
			sum, count = sum+loss, count+1
			r.loss = append(r.loss, store.LossRow{Step: int(tr.Steps()), Epoch: epoch, Loss: loss})
			if time.Since(lastReport) > 2*time.Second || b == batches-1 {
				lastReport = time.Now()
				rate := float64(images) / time.Since(epochStart).Seconds()
				remaining := float64((cfg.Train.Epochs-epoch)*n+(n-min((b+1)*batchSize, n))) / rate
				r.report(epoch, int(tr.Steps()), loss, rate, remaining)
			}
		}
		startBatch = 0
		seconds := time.Since(epochStart).Seconds()
		r.epochs = append(r.epochs, store.EpochRow{Epoch: epoch, MeanLoss: sum / math.Max(1, float64(count)), Seconds: seconds, ImagesPerSec: float64(images) / seconds})

		if every := cfg.Train.SampleEvery; every > 0 && (epoch%every == 0 || epoch == cfg.Train.Epochs) {
			if err := r.epochGrid(ctx, tr, sampling, epoch); err != nil {
				if ctx.Err() != nil {
					return 0, r.interrupt(tr, epoch, 0)
				}
				return 0, err
			}
		}
		// The metrics and the snapshot first, the checkpoint that resumes last: a crash in
		// between leaves metrics that reach past the checkpoint, which a resume cuts back
		// (loadMetrics), and a snapshot that the retrained epoch writes again. The other order
		// would leave a checkpoint whose steps are missing from loss.csv, or no snapshot.
		if err := r.saveMetrics(); err != nil {
			return 0, err
		}
		if every := cfg.Train.CheckpointEvery; every > 0 && epoch%every == 0 {
			if err := tr.SaveCheckpoint(filepath.Join(ckpts.Dir, fmt.Sprintf("epoch_%03d.ckpt", epoch)), epoch, 0); err != nil {
				return 0, err
			}
		}
		if _, err := ckpts.Save(tr, epoch, 0); err != nil {
			return 0, err
		}
		r.Store.UpdateStatus(r.Hash, func(s *store.Status) { s.Epoch = epoch })

		// Logged after the grid and the checkpoint, so every epoch is measured at the same point.
		// gotch gives every tensor a large Go allocation so that Go's GC notices C memory; hand the
		// freed Go heap (and the C heap's free pages) back to the OS once an epoch, so resident
		// memory reflects what is live.
		debug.FreeOSMemory()
		ddpm.ReleaseMemory()
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		r.Log.Info().Int("epoch", epoch).Float64("mean_loss", sum/math.Max(1, float64(count))).Float64("seconds", seconds).
			Int64("rss_mb", residentMB()).Uint64("go_heap_mb", mem.HeapInuse>>20).Int("live_tensors", ddpm.LiveTensors()).Msg("epoch")
	}
	return earlier + time.Since(trainStart).Seconds(), nil
}

// step trains on one batch and frees it.
func (r *run) step(tr *ddpm.Trainer, dataset *ddpm.Dataset, indices []int64) (float64, error) {
	x, y, err := dataset.Batch(indices)
	if err != nil {
		return 0, err
	}
	defer x.MustDrop()
	defer y.MustDrop()
	if !r.cfg.Model.Conditional {
		return tr.Step(x, nil)
	}
	return tr.Step(x, y)
}

// interrupt checkpoints mid-epoch and flushes the metrics.
func (r *run) interrupt(tr *ddpm.Trainer, epochsDone, batch int) error {
	r.Log.Warn().Int("epochs_done", epochsDone).Int("batch", batch).Msg("interrupted: writing checkpoint")
	if err := r.saveMetrics(); err != nil { // before the checkpoint, as at the end of an epoch
		return err
	}
	if _, err := r.checkpoints().Save(tr, epochsDone, batch); err != nil {
		return fmt.Errorf("interrupted, and the checkpoint failed: %w", err)
	}
	return ErrInterrupted
}

// report writes one progress line for the parent.
func (r *run) report(epoch, step int, loss, rate, eta float64) {
	if r.Progress == nil {
		return
	}
	_ = executor.WriteProgress(r.Progress, executor.ProgressReport{
		Epoch: epoch, Epochs: r.cfg.Train.Epochs, Step: step, Loss: loss,
		ImagesPerSec: math.Round(rate*10) / 10, ETASeconds: math.Round(eta),
	})
}

// reportPhase writes a progress line for the sampling phases, at most every 2 seconds.
func (r *run) reportPhase(phase string, done, total int) {
	if r.Progress == nil || (time.Since(r.lastPhaseReport) < 2*time.Second && done < total) {
		return
	}
	r.lastPhaseReport = time.Now()
	_ = executor.WriteProgress(r.Progress, executor.ProgressReport{
		Epoch: r.cfg.Train.Epochs, Epochs: r.cfg.Train.Epochs, Phase: phase, Done: done, Total: total,
	})
}

func (r *run) saveMetrics() error {
	if err := r.Store.WriteLoss(r.Hash, r.loss); err != nil {
		return err
	}
	return r.Store.WriteEpochs(r.Hash, r.epochs)
}

// loadMetrics reads the metrics of earlier attempts, keeping the rows up to the checkpoint.
func (r *run) loadMetrics(steps int64) error {
	loss, err := r.Store.ReadLoss(r.Hash)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, row := range loss {
		if int64(row.Step) <= steps {
			r.loss = append(r.loss, row)
		}
	}
	epochs, err := r.Store.ReadEpochs(r.Hash)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	last := 0
	if len(r.loss) > 0 {
		last = r.loss[len(r.loss)-1].Epoch
	}
	for _, row := range epochs {
		if row.Epoch < last || (row.Epoch == last && r.epochComplete(row.Epoch)) {
			r.epochs = append(r.epochs, row)
		}
	}
	return nil
}

// epochComplete reports whether the checkpoint this attempt resumed from had finished epoch.
func (r *run) epochComplete(epoch int) bool { return r.resumed.Epoch >= epoch }

// checkpoints is the run's versioned checkpoint folder.
func (r *run) checkpoints() ddpm.Checkpoints {
	return ddpm.Checkpoints{Dir: store.CheckpointsDir(r.dir), Hook: r.CheckpointHook}
}

// logSkipped logs the corrupt or partial checkpoints that were passed over for an older one.
func (r *run) logSkipped(skipped []error) {
	for _, bad := range skipped {
		r.Log.Warn().Err(bad).Msg("skipping a corrupt or partial checkpoint")
	}
}

func (r *run) lossSummary() (final, best, imagesPerSec float64) {
	if len(r.epochs) == 0 {
		return 0, 0, 0
	}
	best = math.Inf(1)
	images, seconds := 0.0, 0.0
	for _, e := range r.epochs {
		best = min(best, e.MeanLoss)
		images += e.ImagesPerSec * e.Seconds
		seconds += e.Seconds
	}
	return r.epochs[len(r.epochs)-1].MeanLoss, best, images / seconds
}

func (r *run) writeFingerprint() error {
	host, _ := os.Hostname()
	return r.Store.WriteFingerprint(r.Hash, store.Fingerprint{
		CodeVersion:     r.CodeVersion,
		GoVersion:       runtime.Version(),
		LibtorchVersion: ddpm.LibtorchVersion(),
		Host:            host,
		OS:              runtime.GOOS,
		Arch:            runtime.GOARCH,
		CPUs:            runtime.NumCPU(),
		Threads:         ddpm.NumThreads(),
		Device:          deviceName(r.device),
		Seed:            r.cfg.Seed,
		Precision:       r.precision.note,
		ImageShape:      r.imageShape().String(), // C×H×W of the images the network takes
	})
}

func deviceName(d gotch.Device) string {
	if d.IsCuda() {
		return "cuda"
	}
	return "cpu"
}

// residentMB is this process's resident memory (VmRSS) in MiB, or -1 if unknown. Each epoch
// logs it, so a run's log shows whether memory stays flat.
func residentMB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}
