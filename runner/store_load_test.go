//go:build linux

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// writeLoadSweep writes a sweep of 5 learning rates × seeds tiny runs into dir: base 8,
// 64 images in batches of 32 (2 steps), 10 timesteps, no sample grids during training, one
// final image and no eval, so that each run takes about a second.
func writeLoadSweep(t *testing.T, dir, name string, seeds int) string {
	t.Helper()
	base, err := filepath.Abs("../configs/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	seedList := make([]string, seeds)
	for i := range seedList {
		seedList[i] = fmt.Sprint(i)
	}
	text := fmt.Sprintf(`name = %q
base = %q
seeds = [%s]

[set]
"data.train_subset" = 64
"model.base_channels" = 8
"model.time_emb_dim" = 16
"diffusion.timesteps" = 10
"train.epochs" = 1
"train.batch_size" = 32
"train.sample_every" = 0
"sample.sampler" = "ddim"
"sample.steps" = 2
"sample.num_images" = 1
"eval.num_samples" = 0
"runtime.threads" = 1

[grid]
"train.lr" = [1e-4, 2e-4, 3e-4, 5e-4, 1e-3]
`, name, base, strings.Join(seedList, ", "))
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkNoTemp walks the whole store (run folders and their subfolders, _sweeps, the root)
// and fails for every leftover of an interrupted write (durable.IsTemp).
func checkNoTemp(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if durable.IsTemp(d.Name()) {
			t.Errorf("leftover temporary file: %s", path)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkVerify runs `runner verify --store root`: it must exit 0 and find no problem.
func checkVerify(t *testing.T, dir, root string, runs int) {
	t.Helper()
	v := run(t, dir, "verify", "--store", root)
	want := fmt.Sprintf("verified %d run(s): 0 problem(s), 0 repaired", runs)
	if v.code != 0 || !strings.Contains(v.stdout, want) {
		t.Errorf("verify: want exit 0 and %q, got %s", want, v)
	}
}

// TestStoreTwoRunnersUnderLoad starts two `runner sweep --jobs 2` at once on one store, over
// the same sweep of 20 tiny runs: four children train at once on the 2-core machine. Every
// run must be trained exactly once (one attempt in status.json, one "start" record in
// log.jsonl, one ✓ line across both sweeps' progress), none may be lost (all done, with
// their outputs), both sweeps exit 0, and the store holds no temporary file and verifies
// clean.
func TestStoreTwoRunnersUnderLoad(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	file := writeLoadSweep(t, w.dir, "load", 4)

	a := start(t, w.dir, w.sweepArgs(file, "--jobs", "2")...)
	b := start(t, w.dir, w.sweepArgs(file, "--jobs", "2")...)
	ra, rb := a.wait(t), b.wait(t)
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("both sweeps should succeed:\nA: %s\nB: %s", ra, rb)
	}
	hashes := w.hashes(t, "load")
	if len(hashes) != 20 {
		t.Fatalf("manifest has %d runs, want 20", len(hashes))
	}
	doneA, doneB := 0, 0
	for _, h := range hashes {
		w.checkDone(t, h, 2)
		if s := w.status(t, h); s.Attempts != 1 {
			t.Errorf("run %s: %d attempts, want 1", store.Short(h), s.Attempts)
		}
		if n := w.count(t, h, "start"); n != 1 {
			t.Errorf("run %s: trained %d times (log.jsonl), want 1", store.Short(h), n)
		}
		byA, byB := strings.Count(ra.stderr, "✓ "+store.Short(h)), strings.Count(rb.stderr, "✓ "+store.Short(h))
		doneA, doneB = doneA+byA, doneB+byB
		if byA+byB != 1 {
			t.Errorf("run %s: reported done %d times by A and %d by B, want once in all", store.Short(h), byA, byB)
		}
	}
	t.Logf("runs trained: %d by sweep A, %d by sweep B", doneA, doneB)
	checkNoTemp(t, w.root)
	checkVerify(t, w.dir, w.root, 20)
	for _, index := range []string{filepath.Join(w.reports, "load-quick", "index.html")} {
		if fi, err := os.Stat(index); err != nil || fi.Size() == 0 {
			t.Errorf("report %s missing or empty (%v)", index, err)
		}
	}
	checkNoTemp(t, w.reports)
}

// TestStoreOddPath runs a sweep, rebuilds its report and verifies the store, all in folders
// whose paths contain spaces and non-ASCII letters.
func TestStoreOddPath(t *testing.T) {
	needTraining(t)
	dir := filepath.Join(t.TempDir(), "work dir ✓")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "store dir", "ünï códe ✓")
	out := filepath.Join(dir, "rëports — ☂")
	file := writeLoadSweep(t, dir, "odd", 1) // 5 runs
	res := run(t, dir, "sweep", file, "--store", root, "--report-out", out, "--jobs", "2")
	if res.code != 0 {
		t.Fatalf("sweep: %s", res)
	}
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w := &workspace{dir: dir, root: root, reports: out, st: st}
	hashes := w.hashes(t, "odd")
	if len(hashes) != 5 {
		t.Fatalf("manifest has %d runs, want 5", len(hashes))
	}
	for _, h := range hashes {
		w.checkDone(t, h, 2)
	}
	index := filepath.Join(out, "odd-quick", "index.html")
	if !strings.Contains(res.stdout, "report: "+index) {
		t.Errorf("sweep should name its report %s:\n%s", index, res.stdout)
	}
	rep := run(t, dir, "report", "odd-quick", "--store", root, "--out", out)
	if rep.code != 0 || !strings.Contains(rep.stdout, "report: "+index) {
		t.Errorf("report: want exit 0 naming %s, got %s", index, rep)
	}
	page, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		if !strings.Contains(string(page), store.Short(h)) {
			t.Errorf("report does not mention run %s", store.Short(h))
		}
	}
	checkNoTemp(t, root)
	checkVerify(t, dir, root, 5)
	if l := run(t, dir, "list", "--store", root); l.code != 0 {
		t.Errorf("list: %s", l)
	}
}
