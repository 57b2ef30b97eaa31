//go:build linux

// End-to-end tests of the real runner binary: sweeps that train tiny models on the local
// MNIST copy, a crash and a Ctrl-C in the middle of a sweep, a failing run, two sweeps racing
// on one store, `rerun --verify`, bad configs and every command's --help.
//
// TestMain builds the binary once; every test gets its own store and report folder and runs
// the binary as a person would. The runs are tiny (base 8, at most 96 images, 5 DDIM steps, one
// libtorch thread), so the file takes one to two minutes on two busy cores; -short skips the
// tests that train.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// e2eBinary is the runner binary built by TestMain ("" if the build failed, with the reason in
// e2eBuildErr). It is written once, before any test runs.
var e2eBinary, e2eBuildErr = "", error(nil)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "runner-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "runner")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		e2eBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
	} else {
		e2eBinary = bin
	}
	// A crashed sweep leaves its child orphaned; as a subreaper this process inherits it and
	// can reap it, so its PID is really gone (a zombie still answers kill(pid, 0)).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_CHILD_SUBREAPER):", err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runnerBin returns the binary, failing the test if it could not be built.
func runnerBin(t *testing.T) string {
	t.Helper()
	if e2eBuildErr != nil {
		t.Fatal(e2eBuildErr)
	}
	return e2eBinary
}

// needTraining skips tests that train under -short or without the MNIST files.
func needTraining(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("trains tiny models with libtorch; skipped with -short")
	}
	if _, err := data.Locate("mnist", ""); err != nil {
		t.Skipf("no local MNIST (run `go tool task setup`): %v", err)
	}
}

// result is one finished runner invocation.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runnerCmd makes a runner command that runs in dir (so that relative defaults such as ./runs
// never touch the repository) and is killed if it outlives the test's budget.
func runnerCmd(t *testing.T, ctx context.Context, dir string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, runnerBin(t), args...)
	// Past the deadline (or when a failed test cleans up), stop it as Ctrl-C would, so that
	// it stops its children too; kill it if it takes longer than 30 s.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DDPMLAB_STORE="+filepath.Join(dir, "no-store-given"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// run runs the binary to the end.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := runnerCmd(t, ctx, dir, args...)
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("runner %s: %v", strings.Join(args, " "), err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// started is a runner process running in the background.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	cancel         context.CancelFunc
}

func start(t *testing.T, dir string, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd, stdout, stderr := runnerCmd(t, ctx, dir, args...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &started{cmd: cmd, stdout: stdout, stderr: stderr, cancel: cancel}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil { // the test failed before waiting for it
			cancel()
			_ = s.cmd.Wait()
		}
	})
	return s
}

// wait waits for the process and returns its result.
func (s *started) wait(t *testing.T) result {
	t.Helper()
	err := s.cmd.Wait()
	s.cancel()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("runner: %v", err)
	}
	return result{code: s.cmd.ProcessState.ExitCode(), stdout: s.stdout.String(), stderr: s.stderr.String()}
}

// tiny is a sweep of tiny runs: base 8, a few DDIM steps, 4 final images, one libtorch thread
// (the machine is shared: two threads on a busy 2-core machine are far slower than one).
type tiny struct {
	name   string
	subset int    // data.train_subset
	epochs int    // train.epochs
	grid   string // the [grid] table's lines
	extra  string // more tables, e.g. [[case]]
}

// write writes the sweep file into dir and returns its path.
func (sw tiny) write(t *testing.T, dir string) string {
	t.Helper()
	base, err := filepath.Abs("../configs/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`name = %q
base = %q

[set]
"data.train_subset" = %d
"model.base_channels" = 8
"model.time_emb_dim" = 16
"diffusion.timesteps" = 50
"train.epochs" = %d
"train.batch_size" = 32
"train.sample_every" = 1
"sample.sampler" = "ddim"
"sample.steps" = 5
"sample.num_images" = 4
"runtime.threads" = 1

[grid]
%s
%s`, sw.name, base, sw.subset, sw.epochs, sw.grid, sw.extra)
	path := filepath.Join(dir, sw.name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// steps is the number of optimizer steps of a run of the sweep (batch size 32).
func (sw tiny) steps() int { return sw.epochs * ((sw.subset + 31) / 32) }

// workspace is one test's folders: a working directory, its store and its report folder.
type workspace struct {
	dir, root, reports string
	st                 *store.Store
}

func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	dir := t.TempDir()
	w := &workspace{dir: dir, root: filepath.Join(dir, "store"), reports: filepath.Join(dir, "reports")}
	st, err := store.Open(w.root)
	if err != nil {
		t.Fatal(err)
	}
	w.st = st
	return w
}

// sweepArgs is `sweep FILE --store S --report-out R` plus extra flags.
func (w *workspace) sweepArgs(file string, extra ...string) []string {
	return append([]string{"sweep", file, "--store", w.root, "--report-out", w.reports}, extra...)
}

// hashes reads the sweep's manifest (name-quick: the default scale) and returns its runs in
// sweep order, which is the order in which --jobs 1 trains them.
func (w *workspace) hashes(t *testing.T, sweep string) []string {
	t.Helper()
	m, err := w.st.ReadManifest(sweep + "-quick")
	if err != nil {
		t.Fatal(err)
	}
	return m.Hashes()
}

func (w *workspace) status(t *testing.T, hash string) store.Status {
	t.Helper()
	s, err := w.st.ReadStatus(hash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *workspace) read(t *testing.T, hash, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(w.st.Path(hash, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDone checks that a run is done and has every output a person looks at.
func (w *workspace) checkDone(t *testing.T, hash string, steps int) {
	t.Helper()
	if s := w.status(t, hash); s.State != store.Done {
		t.Errorf("run %s: state %s (%s), want done", store.Short(hash), s.State, s.Reason)
		return
	}
	for _, name := range []string{"samples/final.png", "plots/loss.png", "metrics/loss.csv", "summary.json",
		"denoise/denoise.gif", "forward.png", "config.toml", "fingerprint.json"} {
		if fi, err := os.Stat(w.st.Path(hash, name)); err != nil || fi.Size() == 0 {
			t.Errorf("run %s: %s missing or empty (%v)", store.Short(hash), name, err)
		}
	}
	if _, err := os.Stat(w.st.Path(hash, store.LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run %s: done but its lock file is still there (%v)", store.Short(hash), err)
	}
	checkSteps(t, w, hash, steps)
}

// checkSteps checks that a run's loss.csv has each step 1..steps exactly once, in order: a
// resumed run neither repeats nor skips steps.
func checkSteps(t *testing.T, w *workspace, hash string, steps int) {
	t.Helper()
	rows, err := w.st.ReadLoss(hash)
	if err != nil {
		t.Errorf("run %s: %v", store.Short(hash), err)
		return
	}
	for i, r := range rows {
		if r.Step != i+1 {
			t.Errorf("run %s: loss.csv row %d has step %d, want %d (steps must be 1, 2, … without repeats)", store.Short(hash), i+1, r.Step, i+1)
			return
		}
	}
	if len(rows) != steps {
		t.Errorf("run %s: loss.csv has %d steps, want %d", store.Short(hash), len(rows), steps)
	}
}

// checkEpochMeans checks that epochs.csv has one row per epoch whose mean loss is the mean of
// that epoch's steps in loss.csv, also for an epoch that was interrupted and resumed.
func checkEpochMeans(t *testing.T, w *workspace, hash string, epochs int) {
	t.Helper()
	rows, err := w.st.ReadLoss(hash)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.st.ReadEpochs(hash)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != epochs {
		t.Fatalf("run %s: epochs.csv has %d rows, want %d", store.Short(hash), len(got), epochs)
	}
	for i, e := range got {
		sum, n := 0.0, 0
		for _, r := range rows {
			if r.Epoch == e.Epoch {
				sum, n = sum+r.Loss, n+1
			}
		}
		if e.Epoch != i+1 || n == 0 || e.MeanLoss != sum/float64(n) {
			t.Errorf("run %s: epochs.csv row %d: epoch %d, mean loss %v; loss.csv has %d steps of epoch %d with mean %v",
				store.Short(hash), i+1, e.Epoch, e.MeanLoss, n, e.Epoch, sum/float64(n))
		}
	}
}

// count counts the log.jsonl records of a run with this message.
func (w *workspace) count(t *testing.T, hash, message string) int {
	t.Helper()
	return strings.Count(string(w.read(t, hash, "log.jsonl")), `"message":"`+message+`"`)
}

// waitFor polls cond every 10 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusIs reads a status without failing the test (the file may not exist yet).
func (w *workspace) statusIs(hash string, ok func(store.Status) bool) bool {
	s, err := w.st.ReadStatus(hash)
	return err == nil && ok(s)
}

// TestE2ESweep trains a 3-run sweep end to end, then runs the same command again: it must
// train nothing and change nothing.
func TestE2ESweep(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	sw := tiny{name: "e2e", subset: 64, epochs: 1, grid: `"train.lr" = [1e-4, 2e-4, 5e-4]`}
	file := sw.write(t, w.dir)

	res := run(t, w.dir, w.sweepArgs(file)...)
	if res.code != 0 {
		t.Fatalf("sweep: %s", res)
	}
	if !strings.Contains(res.stderr, "3 runs — 0 done, 3 to run") {
		t.Errorf("the plan line should say 3 to run:\n%s", res.stderr)
	}
	hashes := w.hashes(t, "e2e")
	if len(hashes) != 3 {
		t.Fatalf("manifest has %d runs, want 3", len(hashes))
	}
	for _, h := range hashes {
		w.checkDone(t, h, sw.steps())
		if s := w.status(t, h); s.Attempts != 1 {
			t.Errorf("run %s: %d attempts, want 1", store.Short(h), s.Attempts)
		}
		if n := strings.Count(res.stderr, "✓ "+store.Short(h)); n != 1 {
			t.Errorf("run %s: reported done %d times in the progress, want 1", store.Short(h), n)
		}
	}
	index := filepath.Join(w.reports, "e2e-quick", "index.html")
	if !strings.Contains(res.stdout, "report: "+index) {
		t.Errorf("stdout should name the report %s:\n%s", index, res.stdout)
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
	for _, lr := range []string{"0.0001", "0.0002", "0.0005"} {
		if !strings.Contains(string(page), "train.lr="+lr) {
			t.Errorf("report does not mention train.lr=%s", lr)
		}
	}

	// The same command again: everything is in the store.
	before := map[string][]byte{}
	for _, h := range hashes {
		before[h] = append(w.read(t, h, store.StatusFile), w.read(t, h, store.LossFile)...)
	}
	again := run(t, w.dir, w.sweepArgs(file)...)
	if again.code != 0 {
		t.Fatalf("second sweep: %s", again)
	}
	for _, want := range []string{"3 done, 0 to run", "nothing to train"} {
		if !strings.Contains(again.stderr, want) {
			t.Errorf("second sweep should say %q:\n%s", want, again.stderr)
		}
	}
	if strings.Contains(again.stderr, "▶") {
		t.Errorf("second sweep started a run:\n%s", again.stderr)
	}
	// A child started on a done run (a sweep that planned it before another process
	// finished it) must not train it again: it exits 4, skipped, and changes nothing.
	one := run(t, w.dir, "_run-one", "--store", w.root, hashes[0])
	if one.code != 4 || !strings.Contains(one.stderr, "already done") {
		t.Errorf("_run-one on a done run: want exit 4 and \"already done\", got %s", one)
	}
	for _, h := range hashes {
		if after := append(w.read(t, h, store.StatusFile), w.read(t, h, store.LossFile)...); !bytes.Equal(after, before[h]) {
			t.Errorf("run %s: status.json or loss.csv changed although nothing was to train", store.Short(h))
		}
	}
}

// TestE2ECrashResume kills a sweep and its running child with SIGKILL, as a power cut would,
// and runs the sweep again: the finished run is kept as it is, the killed one (left
// "running", its lock held by a dead PID) resumes from its last checkpoint, the third runs.
func TestE2ECrashResume(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	sw := tiny{name: "crash", subset: 96, epochs: 3, grid: `"train.lr" = [1e-4, 2e-4, 5e-4]`}
	file := sw.write(t, w.dir)

	p := start(t, w.dir, w.sweepArgs(file, "--jobs", "1")...)
	var hashes []string
	waitFor(t, 30*time.Second, "the sweep manifest", func() bool {
		m, err := w.st.ReadManifest("crash-quick")
		hashes = m.Hashes()
		return err == nil
	})
	first, second, third := hashes[0], hashes[1], hashes[2]
	// Kill once the second run has finished an epoch: it has a checkpoint to resume from.
	waitFor(t, 2*time.Minute, "the second run to finish an epoch", func() bool {
		return w.statusIs(second, func(s store.Status) bool {
			if s.State.Final() {
				t.Fatalf("run %s ended (%s) before the test could kill it: make the runs longer", store.Short(second), s.State)
			}
			return s.State == store.Running && s.Epoch >= 1
		})
	})
	killed := w.status(t, second)
	child := killed.PID
	t.Logf("killing the sweep and run %s (pid %d) after %d of %d epochs", store.Short(second), child, killed.Epoch, sw.epochs)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if res := p.wait(t); res.code != -1 {
		t.Fatalf("sweep after SIGKILL: %s", res)
	}
	// The child runs in its own process group, so it survived its parent; kill it too and
	// reap it (it is now this process's child: see TestMain).
	if err := syscall.Kill(-child, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill the orphaned child %d: %v", child, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(child, &ws, 0, nil); err != nil {
		t.Logf("reap child %d: %v (the kernel may have reparented it elsewhere)", child, err)
	}

	// What the crash left: the first run done, the second running with a stale lock, the
	// third pending.
	w.checkDone(t, first, sw.steps())
	if s := w.status(t, second); s.State != store.Running || s.PID != child {
		t.Fatalf("killed run: status %+v, want running with pid %d", s, child)
	}
	if lock, err := w.st.ReadLock(second); err != nil || lock.PID != child {
		t.Fatalf("killed run: lock %+v (%v), want one held by pid %d", lock, err, child)
	}
	if s := w.status(t, third); s.State != store.Pending {
		t.Fatalf("third run: state %s, want pending", s.State)
	}
	firstBefore := append(w.read(t, first, store.StatusFile), w.read(t, first, store.LossFile)...)

	res := run(t, w.dir, w.sweepArgs(file, "--jobs", "1")...)
	if res.code != 0 {
		t.Fatalf("sweep after the crash: %s", res)
	}
	if !strings.Contains(res.stderr, "1 done, 2 to run") {
		t.Errorf("the plan should count the killed run as to do:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "▶ "+store.Short(first)) {
		t.Errorf("the finished run was started again:\n%s", res.stderr)
	}
	if after := append(w.read(t, first, store.StatusFile), w.read(t, first, store.LossFile)...); !bytes.Equal(after, firstBefore) {
		t.Errorf("the finished run's status.json or loss.csv changed")
	}
	for _, h := range hashes {
		w.checkDone(t, h, sw.steps())
	}
	if s := w.status(t, second); s.Attempts != 2 {
		t.Errorf("killed run: %d attempts, want 2", s.Attempts)
	}
	if n := w.count(t, second, "resumed from checkpoint"); n != 1 {
		t.Errorf("killed run: resumed %d times, want 1 (log.jsonl)", n)
	}
	if s := w.status(t, third); s.Attempts != 1 {
		t.Errorf("third run: %d attempts, want 1", s.Attempts)
	}
}

// TestE2ECtrlC sends SIGINT to a sweep in the middle of a run: the run checkpoints and is
// recorded interrupted, the sweep exits 130 after writing its report, and the same command
// resumes the run without repeating a step.
func TestE2ECtrlC(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	sw := tiny{name: "ctrlc", subset: 96, epochs: 3, grid: `"train.lr" = [2e-4]`}
	file := sw.write(t, w.dir)

	p := start(t, w.dir, w.sweepArgs(file)...)
	var hash string
	waitFor(t, 30*time.Second, "the sweep manifest", func() bool {
		m, err := w.st.ReadManifest("ctrlc-quick")
		if err == nil {
			hash = m.Hashes()[0]
		}
		return err == nil
	})
	waitFor(t, 2*time.Minute, "the run to finish its first epoch", func() bool {
		return w.statusIs(hash, func(s store.Status) bool {
			if s.State.Final() {
				t.Fatalf("run ended (%s) before the test could interrupt it: make it longer", s.State)
			}
			return s.State == store.Running && s.Epoch >= 1
		})
	})
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	res := p.wait(t)
	if res.code != 130 {
		t.Errorf("sweep after SIGINT: want exit 130, got %s", res)
	}
	if !strings.Contains(res.stderr, "run the same command again to resume") {
		t.Errorf("stderr should say how to resume:\n%s", res.stderr)
	}
	s := w.status(t, hash)
	if s.State != store.Interrupted {
		t.Fatalf("status after SIGINT: %+v, want interrupted", s)
	}
	if _, _, err := job.LatestCheckpoint(w.st.Path(hash, ".")); err != nil {
		t.Errorf("no intact checkpoint after SIGINT: %v", err)
	}
	rows, _ := w.st.ReadLoss(hash)
	t.Logf("interrupted after %d epochs and %d of %d steps", s.Epoch, len(rows), sw.steps())
	if _, err := os.Stat(w.st.Path(hash, store.LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted run still holds its lock (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(w.reports, "ctrlc-quick", "index.html")); err != nil {
		t.Errorf("no report after SIGINT: %v", err)
	}

	again := run(t, w.dir, w.sweepArgs(file)...)
	if again.code != 0 {
		t.Fatalf("resuming sweep: %s", again)
	}
	w.checkDone(t, hash, sw.steps()) // includes: steps 1..N, each once
	checkEpochMeans(t, w, hash, sw.epochs)
	if s := w.status(t, hash); s.Attempts != 2 {
		t.Errorf("%d attempts, want 2", s.Attempts)
	}
	if n := w.count(t, hash, "resumed from checkpoint"); n != 1 {
		t.Errorf("resumed %d times, want 1 (log.jsonl)", n)
	}
}

// TestE2ERunCtrlC: `runner run` interrupted by SIGINT exits 130 too, with the run recorded
// interrupted.
func TestE2ERunCtrlC(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	cfg := writeTinyConfig(t, w.dir, 96, 3)
	p := start(t, w.dir, "run", cfg, "--store", w.root)
	var hash string
	waitFor(t, 2*time.Minute, "the run to start", func() bool {
		hs, err := w.st.Hashes()
		if err != nil || len(hs) != 1 {
			return false
		}
		hash = hs[0]
		return w.statusIs(hash, func(s store.Status) bool { return s.State == store.Running })
	})
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	res := p.wait(t)
	if res.code != 130 || !strings.Contains(res.stderr, "interrupted") {
		t.Errorf("run after SIGINT: want exit 130 and \"interrupted\", got %s", res)
	}
	if s := w.status(t, hash); s.State != store.Interrupted {
		t.Errorf("status after SIGINT: %+v, want interrupted", s)
	}
}

// TestE2EFailureIsolation: one run of a sweep fails (its data folder is empty); the others
// finish, the sweep exits 1 and the report shows the failed run with its reason.
func TestE2EFailureIsolation(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	empty := t.TempDir()
	sw := tiny{name: "failing", subset: 64, epochs: 1, grid: `"train.lr" = [1e-4, 2e-4]`,
		// data.dir is not hashed: the seed makes it a run of its own.
		extra: fmt.Sprintf("[[case]]\nseed = 7\n\"data.dir\" = %q\n", empty)}
	file := sw.write(t, w.dir)

	res := run(t, w.dir, w.sweepArgs(file)...)
	if res.code != 1 {
		t.Errorf("sweep with a failing run: want exit 1, got %s", res)
	}
	hashes := w.hashes(t, "failing")
	if len(hashes) != 3 {
		t.Fatalf("manifest has %d runs, want 3", len(hashes))
	}
	bad := hashes[2] // cases come after the grid
	for _, h := range hashes[:2] {
		w.checkDone(t, h, sw.steps())
	}
	s := w.status(t, bad)
	if s.State != store.Failed || s.Reason == "" || s.ExitCode != 1 {
		t.Fatalf("failing run: status %+v, want failed with a reason and exit code 1", s)
	}
	if !strings.Contains(s.Reason, empty) {
		t.Errorf("the reason should name the empty data folder %s: %q", empty, s.Reason)
	}
	if s.Attempts != 1 {
		t.Errorf("failing run: %d attempts, want 1 (failures are retried by the next sweep, not at once)", s.Attempts)
	}
	if !strings.Contains(res.stderr, "✗ "+store.Short(bad)) || !strings.Contains(res.stderr, "1 of 3 runs failed") {
		t.Errorf("stderr should report the failure as it happens and at the end:\n%s", res.stderr)
	}
	page, err := os.ReadFile(filepath.Join(w.reports, "failing-quick", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), store.Short(bad)) || !strings.Contains(string(page), "failed") {
		t.Errorf("the report should list run %s as failed", store.Short(bad))
	}
	// The report shows the reason's first words (HTML-escaped, perhaps shortened).
	words := strings.Fields(oneLine(s.Reason))
	if want := strings.Join(words[:min(3, len(words))], " "); !strings.Contains(string(page), want) {
		t.Errorf("the report should show the failure's reason (%q):\n%s", want, s.Reason)
	}

	// Run again: --retry 1 (the default) gives the failed run one more attempt, which fails.
	retried := run(t, w.dir, w.sweepArgs(file)...)
	if retried.code != 1 || !strings.Contains(retried.stderr, "▶ "+store.Short(bad)) {
		t.Errorf("second sweep: want the failed run retried once and exit 1, got %s", retried)
	}
	if s := w.status(t, bad); s.Attempts != 2 || s.State != store.Failed {
		t.Errorf("after the retry: %+v, want failed after 2 attempts", s)
	}

	// Run again: the failed run has used its retries, so nothing trains, but the sweep is
	// still incomplete and says so in its exit code.
	before := w.read(t, bad, store.StatusFile)
	again := run(t, w.dir, w.sweepArgs(file)...)
	if again.code != 1 || !strings.Contains(again.stderr, "not retried") || strings.Contains(again.stderr, "every run is done") {
		t.Errorf("third sweep: want exit 1 saying the failed run is not retried, got %s", again)
	}
	if strings.Contains(again.stderr, "▶") {
		t.Errorf("third sweep started a run:\n%s", again.stderr)
	}
	if !bytes.Equal(w.read(t, bad, store.StatusFile), before) {
		t.Errorf("third sweep changed the failed run's status.json")
	}
}

// TestE2EConcurrentSweeps starts the same sweep twice at once on one store: every run is
// trained exactly once (the process that loses a run's lock skips it), and both end well.
func TestE2EConcurrentSweeps(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	sw := tiny{name: "race", subset: 64, epochs: 1, grid: `"train.lr" = [1e-4, 2e-4, 5e-4]`}
	file := sw.write(t, w.dir)

	a := start(t, w.dir, w.sweepArgs(file, "--jobs", "1")...)
	b := start(t, w.dir, w.sweepArgs(file, "--jobs", "1")...)
	ra, rb := a.wait(t), b.wait(t)
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("both sweeps should succeed:\nA: %s\nB: %s", ra, rb)
	}
	for _, h := range w.hashes(t, "race") {
		w.checkDone(t, h, sw.steps())
		if s := w.status(t, h); s.Attempts != 1 {
			t.Errorf("run %s: %d attempts, want 1", store.Short(h), s.Attempts)
		}
		if n := w.count(t, h, "start"); n != 1 {
			t.Errorf("run %s: trained %d times (log.jsonl), want 1", store.Short(h), n)
		}
		done := strings.Count(ra.stderr, "✓ "+store.Short(h)) + strings.Count(rb.stderr, "✓ "+store.Short(h))
		if done != 1 {
			t.Errorf("run %s: reported done by %d sweeps, want 1", store.Short(h), done)
		}
	}
	if !strings.Contains(ra.stderr+rb.stderr, "skipped") {
		t.Errorf("one sweep should have skipped a run the other held:\nA: %s\nB: %s", ra.stderr, rb.stderr)
	}
}

// writeTinyConfig writes a run config of a tiny model.
func writeTinyConfig(t *testing.T, dir string, subset, epochs int) string {
	t.Helper()
	path := filepath.Join(dir, "tiny.toml")
	text := fmt.Sprintf(`seed = 3
[data]
train_subset = %d
[model]
base_channels = 8
time_emb_dim = 16
[diffusion]
timesteps = 50
[train]
epochs = %d
batch_size = 32
sample_every = 1
[sample]
sampler = "ddim"
steps = 5
num_images = 4
[runtime]
threads = 1
`, subset, epochs)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runOne is `runner run cfg --store S [extra...]` into a store that holds no run yet: it fails
// the test unless the command succeeds and leaves exactly one run, whose hash it returns.
func (w *workspace) runOne(t *testing.T, cfg string, extra ...string) (string, result) {
	t.Helper()
	res := run(t, w.dir, append([]string{"run", cfg, "--store", w.root}, extra...)...)
	if res.code != 0 {
		t.Fatalf("run: %s", res)
	}
	hashes, err := w.st.Hashes()
	if err != nil || len(hashes) != 1 {
		t.Fatalf("store has runs %v (%v), want 1", hashes, err)
	}
	return hashes[0], res
}

// TestE2ERerunVerify trains one run with `runner run` and retrains it with `rerun --verify`:
// the per-step losses are identical.
func TestE2ERerunVerify(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	cfg := writeTinyConfig(t, w.dir, 64, 1)
	hash, res := w.runOne(t, cfg)
	w.checkDone(t, hash, 2)
	if !strings.Contains(res.stdout, "status:       done") || !strings.Contains(res.stdout, w.st.Path(hash, "samples/final.png")) {
		t.Errorf("run should print its status and where the samples are:\n%s", res.stdout)
	}
	before := w.read(t, hash, store.StatusFile)

	v := run(t, w.dir, "rerun", store.Short(hash)[:8], "--verify", "--store", w.root)
	if v.code != 0 || !strings.Contains(v.stdout, "identical") {
		t.Fatalf("rerun --verify: want exit 0 and \"identical\", got %s", v)
	}
	if !bytes.Equal(w.read(t, hash, store.StatusFile), before) {
		t.Errorf("rerun changed the recorded run's status.json")
	}
	scratch, _ := filepath.Glob(filepath.Join(w.root, "_reruns", store.Short(hash)+"-*", hash, "status.json"))
	if len(scratch) != 1 {
		t.Errorf("want one scratch rerun of %s under _reruns, found %v", store.Short(hash), scratch)
	}
}

// TestE2EBadConfig: every kind of config error exits 2 before anything is created, with
// file:line: field for each error.
func TestE2EBadConfig(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string // lines of stderr, each a regexp after "FILE:"
	}{
		{name: "unknown key", body: "[train]\nlr = 1e-4\nlearning_rate = 1e-3\n",
			want: []string{`3: train\.learning_rate: unknown key`}},
		{name: "wrong type", body: "[model]\nbase_channels = \"wide\"\n",
			want: []string{`2: model\.base_channels: .*integer`}},
		{name: "negative lr", body: "[train]\nlr = -1\n",
			want: []string{`2: train\.lr: .*> 0`}},
		{name: "zero timesteps", body: "[diffusion]\ntimesteps = 0\n",
			want: []string{`2: diffusion\.timesteps: .*1\.\.100000`}},
		{name: "unknown dataset", body: "[data]\ndataset = \"cifar\"\n",
			want: []string{`2: data\.dataset: .*"cifar"`}},
		{name: "all at once", body: "seed = 1\n[data]\ndataset = \"cifar\"\n[model]\nbase_channels = \"wide\"\ncolour = true\n[diffusion]\ntimesteps = 0\n[train]\nlr = -1\n",
			want: []string{`3: data\.dataset: `, `5: model\.base_channels: `, `6: model\.colour: unknown key`,
				`8: diffusion\.timesteps: `, `10: train\.lr: `}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkspace(t)
			path := filepath.Join(w.dir, "bad.toml")
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			res := run(t, w.dir, "run", path, "--store", w.root)
			if res.code != 2 {
				t.Errorf("want exit 2, got %s", res)
			}
			for _, want := range tc.want {
				re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + ":" + want)
				if !re.MatchString(res.stderr) {
					t.Errorf("stderr lacks a line %s:%s\n%s", path, want, res.stderr)
				}
			}
			if hashes, err := w.st.Hashes(); err != nil || len(hashes) != 0 {
				t.Errorf("the store has runs %v (%v) after a config error", hashes, err)
			}
		})
	}
}

// TestE2EHelp: `runner --help` lists every command and each command's --help prints its
// flags and exits 0.
func TestE2EHelp(t *testing.T) {
	dir := t.TempDir()
	res := run(t, dir, "--help")
	if res.code != 0 {
		t.Fatalf("runner --help: %s", res)
	}
	for _, c := range commands() {
		listed := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c.name) + `\s`).MatchString(res.stdout)
		if listed == c.hidden {
			t.Errorf("runner --help: command %q listed = %v, hidden = %v:\n%s", c.name, listed, c.hidden, res.stdout)
		}
	}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			res := run(t, dir, c.name, "--help")
			if strings.Contains(res.stderr, "not yet implemented") {
				t.Skipf("runner %s is a stub: %s", c.name, strings.TrimSpace(res.stderr))
			}
			if res.code != 0 {
				t.Fatalf("runner %s --help: %s", c.name, res)
			}
			if !strings.HasPrefix(res.stderr, "Usage: runner "+c.name) {
				t.Errorf("runner %s --help should start with its usage:\n%s", c.name, res.stderr)
			}
			flags := regexp.MustCompile(`(?m)^  -[a-z]`).FindAllString(res.stderr, -1)
			if len(flags) == 0 {
				t.Errorf("runner %s --help lists no flags:\n%s", c.name, res.stderr)
			}
			if c.name == "run" || c.name == "sweep" {
				for _, f := range []string{"-store", "-set"} {
					if !slices.ContainsFunc(strings.Fields(res.stderr), func(s string) bool { return s == f }) {
						t.Errorf("runner %s --help lacks %s:\n%s", c.name, f, res.stderr)
					}
				}
			}
		})
	}
	// `runner help CMD` is the same as `runner CMD --help`.
	if res := run(t, dir, "help", "sweep"); res.code != 0 || !strings.Contains(res.stderr, "-jobs") {
		t.Errorf("runner help sweep: %s", res)
	}
}

// TestE2ESamplingOnly trains a tiny run, then samples its checkpoint in a sampling-only run
// (sample.from_run): no training, keyed by the source hash plus the sampler settings, with
// quality metrics; `runner eval` measures the trained run afterwards.
func TestE2ESamplingOnly(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	cfg := writeTinyConfig(t, w.dir, 64, 1)
	if res := run(t, w.dir, "run", cfg, "--store", w.root); res.code != 0 {
		t.Fatalf("run: %s", res)
	}
	hashes, _ := w.st.Hashes()
	if len(hashes) != 1 {
		t.Fatalf("store has %d runs, want 1", len(hashes))
	}
	source := hashes[0]
	res := run(t, w.dir, "run", cfg, "--store", w.root, "--set", "sample.from_run="+store.Short(source)[:8],
		"--set", "sample.sampler=ddpm", "--set", "sample.steps=10", "--set", "eval.num_samples=20")
	if res.code != 0 {
		t.Fatalf("sampling-only run: %s", res)
	}
	all, _ := w.st.Hashes()
	if len(all) != 2 {
		t.Fatalf("store has %d runs, want the source and one sampling-only run", len(all))
	}
	sampling := all[0]
	if sampling == source {
		sampling = all[1]
	}
	ex := run(t, w.dir, "explain", cfg, "--store", w.root, "--set", "sample.from_run="+store.Short(source)[:8],
		"--set", "sample.sampler=ddpm", "--set", "sample.steps=10", "--set", "eval.num_samples=20")
	if ex.code != 0 || !strings.HasPrefix(ex.stdout, "hash "+sampling) {
		t.Errorf("explain with a short sample.from_run: %s; want the run's hash %s", ex, store.Short(sampling))
	}
	if _, err := os.Stat(w.st.Path(sampling, "metrics/loss.csv")); err == nil {
		t.Errorf("the sampling-only run trained (it has a loss.csv)")
	}
	for _, f := range []string{"samples/final.png", "metrics/quality.json", "summary.json"} {
		if _, err := os.Stat(w.st.Path(sampling, f)); err != nil {
			t.Errorf("sampling-only run: %v", err)
		}
	}
	sum, err := w.st.ReadSummary(sampling)
	if err != nil || sum.Metrics.FD == nil || sum.Metrics.Recognizable == nil {
		t.Errorf("sampling-only run: summary %+v (%v), want FD and recognizable", sum, err)
	}
	if ev := run(t, w.dir, "eval", "--run", store.Short(source), "--num-samples", "20", "--store", w.root); ev.code != 0 || !strings.Contains(ev.stdout, "FD:") {
		t.Errorf("runner eval: %s", ev)
	}

	// A sampling-only sweep: a dry run changes nothing; the real one keeps its manifest (and
	// report) under a name with the source's hash, so sweeps of two models don't collide.
	sweepFile := filepath.Join(w.dir, "steps.toml")
	sweepText := "name = \"steps\"\nbase = \"tiny.toml\"\nrequires = [\"sample.from_run\"]\n" +
		"[set]\n\"sample.sampler\" = \"ddpm\"\n\"eval.num_samples\" = 0\n[grid]\n\"sample.steps\" = [2, 3]\n"
	if err := os.WriteFile(sweepFile, []byte(sweepText), 0o644); err != nil {
		t.Fatal(err)
	}
	args := w.sweepArgs(sweepFile, "--set", "sample.from_run="+store.Short(source))
	if res := run(t, w.dir, append(args, "--dry-run")...); res.code != 0 || !strings.Contains(res.stdout, "pending") {
		t.Fatalf("sweep --dry-run: %s", res)
	}
	if after, _ := w.st.Hashes(); len(after) != 2 {
		t.Errorf("sweep --dry-run created runs: %d in the store, want 2", len(after))
	}
	if ms, _ := w.st.Manifests(); len(ms) != 0 {
		t.Errorf("sweep --dry-run wrote %d manifests", len(ms))
	}
	if res := run(t, w.dir, args...); res.code != 0 {
		t.Fatalf("sampling-only sweep: %s", res)
	}
	want := "steps-quick-" + store.Short(source)
	if _, err := w.st.ReadManifest(want); err != nil {
		t.Errorf("sampling-only sweep: manifest %s: %v", want, err)
	}
}
