package ddpm

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkpointNames lists the entries of a checkpoints folder.
func checkpointNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCheckpointVersionsAndFallback saves three versions, then damages them one by one: Latest
// must pass over each damaged one, say why, and resume from the previous good one exactly; with
// none intact it must fail rather than report "no checkpoint".
func TestCheckpointVersionsAndFallback(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 256)
	cfg := TrainConfig{LR: 1e-3, Seed: 5, EMADecay: 0.9}
	c := Checkpoints{Dir: filepath.Join(t.TempDir(), "checkpoints")}
	if _, _, err := c.Latest(); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Latest of a missing folder: %v, want ErrNoCheckpoint", err)
	}
	var stages []string
	c.Hook = func(stage string) { stages = append(stages, stage) }
	first, ds := newTinyTrainer(t, set, cfg)
	var want []float64 // the uninterrupted losses
	for range 3 {
		want = append(want, trainSteps(t, first, ds, 2)...)
		if _, err := c.Save(first, 0, int(first.Steps())); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"tensors", "state", "renamed", "pointer", "pruned"}; !slices.Equal(stages[:5], want) || len(stages) != 15 {
		t.Errorf("hook stages %v, want %v three times", stages, want)
	}
	// The two newest versions and the pointer remain; nothing temporary.
	if got, want := checkpointNames(t, c.Dir), []string{"ckpt-000000004.ckpt", "ckpt-000000006.ckpt", "latest.json"}; !slices.Equal(got, want) {
		t.Errorf("checkpoints folder holds %v, want %v", got, want)
	}

	found, skipped, err := c.Latest()
	if err != nil || found.State.Step != 6 || len(skipped) != 0 {
		t.Fatalf("Latest: %+v, skipped %v, %v; want step 6, nothing skipped", found, skipped, err)
	}

	// A partial tensors.ot in the newest: passed over for step 4, which resumes exactly.
	newest := filepath.Join(c.Dir, "ckpt-000000006.ckpt", checkpointTensors)
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(newest, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	found, skipped, err = c.Latest()
	if err != nil || found.State.Step != 4 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "ckpt-000000006.ckpt") {
		t.Fatalf("Latest with a truncated newest: %+v, skipped %v, %v; want step 4 and one skip naming ckpt-000000006", found, skipped, err)
	}
	resumed, _ := newTinyTrainer(t, set, cfg)
	if _, err := resumed.LoadCheckpoint(found.Dir); err != nil {
		t.Fatal(err)
	}
	if got := trainSteps(t, resumed, ds, 2); got[0] != want[4] || got[1] != want[5] {
		t.Errorf("resumed from step 4: losses %v, uninterrupted %v", got, want[4:6])
	}
	// Loading the damaged one directly fails too, naming the file.
	if _, err := resumed.LoadCheckpoint(filepath.Dir(newest)); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("LoadCheckpoint of a truncated checkpoint: %v, want a size error", err)
	}

	// A garbled pointer: still found by scanning; a flipped byte in step 4 too: nothing intact.
	if err := os.WriteFile(filepath.Join(c.Dir, checkpointPointer), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if found, skipped, err = c.Latest(); err != nil || found.State.Step != 4 || len(skipped) != 2 {
		t.Errorf("Latest with a bad pointer: %+v, skipped %v, %v; want step 4 after two skips", found, skipped, err)
	}
	older := filepath.Join(c.Dir, "ckpt-000000004.ckpt", checkpointTensors)
	b, err := os.ReadFile(older)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(older, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Latest()
	if err == nil || errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("Latest with nothing intact: %v; want an error naming the checksum, not ErrNoCheckpoint", err)
	}
}

// TestCheckpointLegacyLastCkpt: a store written before versioning has only checkpoints/last.ckpt,
// without checksums. It must still be found, and the next Save keeps it as the fallback.
func TestCheckpointLegacyLastCkpt(t *testing.T) {
	lockThread(t)
	set := mnistTrain(t, 256)
	cfg := TrainConfig{LR: 1e-3, Seed: 6}
	tr, ds := newTinyTrainer(t, set, cfg)
	trainSteps(t, tr, ds, 2)
	c := Checkpoints{Dir: filepath.Join(t.TempDir(), "checkpoints")}
	legacy := filepath.Join(c.Dir, legacyCheckpoint)
	if err := tr.SaveCheckpoint(legacy, 0, 2); err != nil {
		t.Fatal(err)
	}
	// Strip the checksum, as an old runner wrote it.
	st, err := ReadCheckpointState(legacy)
	if err != nil {
		t.Fatal(err)
	}
	st.TensorsSHA256, st.TensorsBytes = "", 0
	js, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(legacy, checkpointState), js, 0o644); err != nil {
		t.Fatal(err)
	}
	// A crash inside an old or new write leaves a temporary folder: not a checkpoint.
	if err := os.MkdirAll(filepath.Join(c.Dir, ".ckpt-000000009.ckpt.tmp-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	found, skipped, err := c.Latest()
	if err != nil || found.Dir != legacy || found.State.Step != 2 || len(skipped) != 0 {
		t.Fatalf("Latest of a legacy store: %+v, skipped %v, %v; want %s at step 2", found, skipped, err, legacy)
	}
	trainSteps(t, tr, ds, 1)
	if _, err := c.Save(tr, 0, 3); err != nil {
		t.Fatal(err)
	}
	if got, want := checkpointNames(t, c.Dir), []string{"ckpt-000000003.ckpt", "last.ckpt", "latest.json"}; !slices.Equal(got, want) {
		t.Errorf("after the first versioned save: %v, want %v (the legacy one kept as fallback, the temp folder gone)", got, want)
	}
	trainSteps(t, tr, ds, 1)
	if _, err := c.Save(tr, 0, 4); err != nil {
		t.Fatal(err)
	}
	if got, want := checkpointNames(t, c.Dir), []string{"ckpt-000000003.ckpt", "ckpt-000000004.ckpt", "latest.json"}; !slices.Equal(got, want) {
		t.Errorf("after the second versioned save: %v, want %v", got, want)
	}
}
