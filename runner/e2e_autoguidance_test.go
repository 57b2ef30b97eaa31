//go:build linux

package main

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestE2EAutoGuidance trains a tiny run that keeps a snapshot, then samples it three ways:
// guided by its own snapshot (the grid changes), guided by its own final weights (ε̂ = (1 + w)·ε −
// w·ε = ε, so the grid is the unguided one to within rounding), and guided by a snapshot it never
// kept (an error before anything runs). A snapshot past the last step fails the run before it
// trains.
func TestE2EAutoGuidance(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	cfg := writeTinyConfig(t, w.dir, 64, 1) // 2 steps of batch 32
	trained, _ := w.runOne(t, cfg, "--set", "train.snapshot_steps=[1]")
	w.checkDone(t, trained, 2)
	if _, err := os.Stat(filepath.Join(store.SnapshotDir(w.st.RunDir(trained), 1), "state.json")); err != nil {
		t.Fatalf("no snapshot at step 1: %v", err)
	}
	plain := w.grid(t, trained)

	sample := func(sets ...string) (string, result) {
		t.Helper()
		args := []string{"run", cfg, "--store", w.root, "--set", "sample.from_run=" + store.Short(trained)}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		before, _ := w.st.Hashes()
		res := run(t, w.dir, args...)
		after, _ := w.st.Hashes()
		for _, h := range after {
			if !strings.Contains(strings.Join(before, " "), h) {
				return h, res
			}
		}
		return "", res
	}
	bySnapshot, res := sample("sample.autoguidance=4", "sample.guide_step=1")
	if res.code != 0 {
		t.Fatalf("sampling guided by the snapshot: %s", res)
	}
	if d := maxPixelDiff(plain, w.grid(t, bySnapshot)); d <= 1 {
		t.Errorf("guided by its step-1 snapshot, the grid differs from the unguided one by %d levels; want more than rounding", d)
	}
	bySelf, res := sample("sample.autoguidance=2", "sample.guide_run="+store.Short(trained))
	if res.code != 0 {
		t.Fatalf("sampling guided by itself: %s", res)
	}
	if d := maxPixelDiff(plain, w.grid(t, bySelf)); d > 1 {
		t.Errorf("guided by its own final weights, the grid differs from the unguided one by %d levels; want at most 1 (rounding)", d)
	}
	if _, res := sample("sample.autoguidance=1", "sample.guide_step=2"); res.code != 2 || !strings.Contains(res.stderr, "no intact snapshot at that step") {
		t.Errorf("guided by a snapshot that was never kept: want exit 2 naming the missing snapshot, got %s", res)
	}

	// A training run guided by its own snapshot keeps it without listing it.
	res = run(t, w.dir, "run", cfg, "--store", w.root, "--set", "sample.autoguidance=1", "--set", "sample.guide_step=1")
	if res.code != 0 {
		t.Fatalf("a run guided by its own snapshot: %s", res)
	}
	if !strings.Contains(res.stderr, "run ") {
		t.Fatalf("no run line in %s", res)
	}
	selfGuided := strings.Fields(res.stderr[strings.Index(res.stderr, "run ")+4:])[0]
	full, err := w.st.Resolve(selfGuided)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(store.SnapshotDir(w.st.RunDir(full), 1), "state.json")); err != nil {
		t.Errorf("a run guided by its step-1 snapshot kept none: %v", err)
	}

	res = run(t, w.dir, "run", cfg, "--store", w.root, "--set", "sample.autoguidance=1", "--set", "sample.guide_step=99")
	if res.code == 0 || !strings.Contains(res.stderr+res.stdout, "sample.guide_step: step 99 is past the run's last step, 2") {
		t.Errorf("a snapshot past the last step: want a failed run that says so, got %s", res)
	}
}

// grid decodes a run's samples/final.png.
func (w *workspace) grid(t *testing.T, hash string) image.Image {
	t.Helper()
	return readPNG(t, w.st.Path(hash, "samples/final.png"))
}

// maxPixelDiff is the largest difference of 8-bit grey levels between two images of one size.
func maxPixelDiff(a, b image.Image) int {
	worst := 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			ra, _, _, _ := a.At(x, y).RGBA()
			rb, _, _, _ := b.At(x, y).RGBA()
			d := int(ra>>8) - int(rb>>8)
			worst = max(worst, d, -d)
		}
	}
	return worst
}
