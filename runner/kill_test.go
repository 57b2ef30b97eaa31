//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/data/datatest"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// killStages are the steps of a checkpoint write after which the child announces itself and
// pauses (ddpm.Checkpoints.Hook, through checkpointPauseEnv).
var killStages = []string{"tensors", "state", "renamed", "pointer", "pruned"}

// killConfig writes a tiny run config: 96 images in batches of 32 (3 steps an epoch), 16
// epochs, a snapshot every 4 epochs, no sample grids, no eval. It prefers the small mnist-10k copy of
// the shared folder, which loads in a fraction of the time of the full set.
func killConfig(t *testing.T, dir string) string {
	t.Helper()
	dataDir := ""
	if dir := datatest.MNIST10k(); dir != "" {
		dataDir = fmt.Sprintf("dir = %q\n", dir)
	}
	if dataDir == "" {
		needTraining(t)
	}
	path := filepath.Join(dir, "kill.toml")
	text := fmt.Sprintf(`seed = 11
[data]
%strain_subset = 96
[model]
base_channels = 8
time_emb_dim = 16
[diffusion]
timesteps = 50
[train]
epochs = 16
batch_size = 32
sample_every = 0
checkpoint_every = 4
[sample]
sampler = "ddim"
steps = 5
num_images = 4
[runtime]
threads = 1
`, dataDir)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newKillRun creates the run of configPath in a new store under dir, as `runner run` would,
// without training it.
func newKillRun(t *testing.T, dir, configPath string) (*store.Store, string) {
	t.Helper()
	cfg, err := loadConfig(configPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := createRun(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, hash
}

// runChild runs `_run-one` on the run to its end and returns its exit code and stderr.
func runChild(t *testing.T, st *store.Store, hash string, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin(t), "_run-one", "--store", st.Root, hash)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// killTarget is where one attempt is to be killed: after the n-th announcement of a stage, or
// (stage "") after a delay.
type killTarget struct {
	stage string
	n     int
	delay time.Duration
}

func (k killTarget) String() string {
	if k.stage == "" {
		return fmt.Sprintf("after %s", k.delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("inside checkpoint write %d of this attempt, after stage %q", k.n, k.stage)
}

// killChild starts `_run-one` with the checkpoint pause hook and SIGKILLs it at target. It
// returns what happened: "killed" (with the last checkpoint stage seen) or, if the child
// ended first, its exit code.
func killChild(t *testing.T, st *store.Store, hash string, target killTarget) (killed bool, landed string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin(t), "_run-one", "--store", st.Root, hash)
	cmd.Env = append(os.Environ(), checkpointPauseEnv+"=150ms")
	cmd.Stdout = io.Discard
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string // stages announced so far
		hit  = make(chan struct{})
	)
	go func() {
		count := 0
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stage, ok := strings.CutPrefix(sc.Text(), "checkpoint stage ")
			if !ok {
				continue
			}
			mu.Lock()
			seen = append(seen, stage)
			mu.Unlock()
			if stage == target.stage {
				if count++; count == target.n {
					close(hit) // the child now sleeps 150 ms before its next step
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var timer <-chan time.Time
	if target.stage == "" {
		timer = time.After(target.delay)
	}
	select {
	case <-hit:
	case <-timer:
	case <-exited:
		return false, fmt.Sprintf("the child ended first (exit %d, %s in)", cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond))
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	mu.Lock()
	defer mu.Unlock()
	last := "before any checkpoint write"
	if len(seen) > 0 {
		last = fmt.Sprintf("after checkpoint stage %q (%d stages announced)", seen[len(seen)-1], len(seen))
	}
	return true, fmt.Sprintf("killed %s in, %s", time.Since(start).Round(time.Millisecond), last)
}

// TestKillResume SIGKILLs a training child at 10 seeded random instants, half of them inside a
// checkpoint write (once after each of its steps, while the hook pauses it), and reruns it each
// time.
// The killed run must resume from its last intact checkpoint each time, and end with losses
// identical, step for step, to an uninterrupted run of the same config.
func TestKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models with libtorch; skipped with -short")
	}
	dir := t.TempDir()
	cfgPath := killConfig(t, dir)

	refStore, refHash := newKillRun(t, filepath.Join(dir, "reference"), cfgPath)
	if code, stderr := runChild(t, refStore, refHash); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	want, err := refStore.ReadLoss(refHash)
	if err != nil {
		t.Fatal(err)
	}

	st, hash := newKillRun(t, filepath.Join(dir, "killed"), cfgPath)
	if hash != refHash {
		t.Fatalf("the same config hashed to %s and %s", store.Short(refHash), store.Short(hash))
	}
	rng := rand.New(rand.NewPCG(20240616, 16))
	// Every other kill lands inside a checkpoint write, after each of its stages once (in a
	// seeded order); the others after a seeded random delay.
	kills := 2 * len(killStages)
	stages := rng.Perm(len(killStages))
	tried, landed := 0, 0
	for i := range kills {
		target := killTarget{delay: time.Duration(300+rng.IntN(1700)) * time.Millisecond}
		if i%2 == 0 {
			target = killTarget{stage: killStages[stages[i/2]], n: 1 + rng.IntN(2)}
		}
		tried++
		killed, where := killChild(t, st, hash, target)
		resume := "the run is done"
		if killed {
			landed++
			found, skipped, err := job.LatestCheckpoint(st.RunDir(hash))
			switch {
			case err == nil:
				resume = fmt.Sprintf("next attempt resumes from %s (step %d, epoch %d, batch %d)",
					filepath.Base(found.Dir), found.State.Step, found.State.Epoch, found.State.EpochStep)
			case errors.Is(err, ddpm.ErrNoCheckpoint):
				resume = "no checkpoint yet: next attempt starts from epoch 1"
			default:
				t.Fatalf("kill %d: no intact checkpoint left: %v", i+1, err)
			}
			if len(skipped) > 0 {
				resume += fmt.Sprintf(", skipping %v", skipped)
			}
			if s, err := st.ReadStatus(hash); err != nil || s.State != store.Running {
				t.Errorf("kill %d: status %+v (%v), want running (abandoned)", i+1, s, err)
			}
		}
		t.Logf("kill %d: target %s: %s; %s; checkpoints/ holds %v", i+1, target, where, resume, checkpointEntries(t, st, hash))
		if !killed {
			break
		}
	}
	if landed == tried {
		code, stderr := runChild(t, st, hash)
		if code != 0 {
			t.Fatalf("final attempt: exit %d\n%s", code, stderr)
		}
	}
	t.Logf("%d kills tried, %d landed before the run ended", tried, landed)
	if landed < kills {
		t.Errorf("only %d of %d kills landed before the run ended: make the run longer", landed, kills)
	}

	s, err := st.ReadStatus(hash)
	if err != nil || s.State != store.Done {
		t.Fatalf("status %+v (%v), want done", s, err)
	}
	got, err := st.ReadLoss(hash)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("loss.csv row %d: killed and resumed %+v, uninterrupted %+v", i+1, got[i], want[i])
			}
		}
		t.Fatalf("loss.csv has %d rows, the uninterrupted run's %d", len(got), len(want))
	}
	if names := checkpointEntries(t, st, hash); !slices.Contains(names, "epoch_004.ckpt") || !slices.Contains(names, "epoch_008.ckpt") || !slices.Contains(names, "epoch_012.ckpt") {
		t.Errorf("checkpoints/ holds %v, want the snapshots of epochs 4, 8 and 12", names)
	}
}

func checkpointEntries(t *testing.T, st *store.Store, hash string) []string {
	t.Helper()
	entries, err := os.ReadDir(store.CheckpointsDir(st.RunDir(hash)))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
