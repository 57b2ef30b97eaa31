package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// reportDemo is where TestSlurmEndToEnd copies the report of its first sweep, so that it
// outlives the test's temporary folder.
const reportDemo = "/tmp/slurm-report-demo"

// tinySet are the [set] overrides of the end-to-end sweeps: seconds per run on one core.
const tinySet = `"data.train_subset" = %d
"model.base_channels" = 8
"model.time_emb_dim" = 16
"train.epochs" = %d
"train.batch_size" = 32
"diffusion.timesteps" = 50
"sample.sampler" = "ddim"
"sample.steps" = 5
"sample.num_images" = 4
`

// e2eSweep writes a sweep file: the tiny [set], a [grid] over three learning rates, and the
// given [[case]] tables (verbatim).
func e2eSweep(t *testing.T, path, name, base string, subset, epochs int, cases string) {
	t.Helper()
	text := fmt.Sprintf("name = %q\nbase = %q\n\n[set]\n"+tinySet+"\n[grid]\n\"train.lr\" = [1e-3, 2e-3, 5e-3]\n%s",
		name, base, subset, epochs, cases)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cli runs the real runner binary.
type cli struct {
	t   *testing.T
	ctx context.Context
	bin string
}

// run runs the binary and returns its stdout, stderr and exit code.
func (c cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.CommandContext(c.ctx, c.bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		c.t.Fatalf("runner %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("$ runner %s   (exit %d, %.1fs)\n%s%s", strings.Join(args, " "), code, time.Since(start).Seconds(), o.String(), e.String())
	return o.String(), e.String(), code
}

var submittedRE = regexp.MustCompile(`submitted Slurm job array (\d+): (\d+) runs`)

// submitted returns the job ID and run count that `runner sweep` says it submitted, or "", 0.
func submitted(stdout string) (string, int) {
	m := submittedRE.FindStringSubmatch(stdout)
	if m == nil {
		return "", 0
	}
	var n int
	fmt.Sscan(m[2], &n)
	return m[1], n
}

// lastSubmission returns the newest submission recorded for a sweep, and how many there are.
func lastSubmission(t *testing.T, root, sweep string) (Submission, int) {
	t.Helper()
	subs, err := ReadSubmissions(root, sweep)
	if err != nil || len(subs) == 0 {
		t.Fatalf("submissions of %s: %d, %v", sweep, len(subs), err)
	}
	return subs[len(subs)-1], len(subs)
}

// hashesFile reads a submission's hash list, the file its array tasks read.
func hashesFile(t *testing.T, sub Submission) []string {
	t.Helper()
	raw, err := os.ReadFile(sub.HashesPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(raw))
}

// statusLine returns the line of `runner status` output for a run.
func statusLine(out, hash string) string {
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, store.Short(hash)) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// TestSlurmEndToEnd drives `runner sweep --executor slurm` and `runner status` with the real
// runner binary on the real cluster: a 3-run sweep with --wait and its report; a failing
// [[case]] with its exit code and Slurm log; reruns that submit only what is not done; and a
// job array cancelled mid-run, then resubmitted, without any run training twice.
func TestSlurmEndToEnd(t *testing.T) {
	requireSlurm(t)
	if dir, err := data.Locate("mnist", ""); err != nil {
		t.Skipf("no MNIST here for the end-to-end runs (%v); run `runner data download mnist` or set $DDPMLAB_DATA", err)
	} else {
		t.Logf("MNIST: %s", dir)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("builds the runner binary, and go is not in $PATH")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir() // /tmp: the jobs (root, this node) see it
	root := filepath.Join(dir, "store")
	reportOut := filepath.Join(dir, "reports")
	base, err := filepath.Abs(filepath.Join("..", "..", "configs", "default.toml"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "runner")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ddpmlab/ddpmlab/runner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %.1fs", bin, time.Since(began).Seconds())
	// After a failure, leave no tasks behind (they would write into a removed folder).
	t.Cleanup(func() {
		subs, _ := ReadSubmissions(root, "")
		for _, sub := range subs {
			_ = exec.Command("scancel", sub.JobID).Run()
		}
	})
	c := cli{t: t, ctx: ctx, bin: bin}
	logCmd(t, "sinfo")
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}

	const name = "e2e-quick" // sweep e2e at the default scale, quick
	sweepFile := filepath.Join(dir, "e2e.toml")
	sweepArgs := []string{"sweep", sweepFile, "--executor", "slurm", "--wait", "--store", root,
		"--report-out", reportOut, "--cpus-per-task", "1", "--time", "10:00"}

	// 1. Three tiny runs, waited for, then the report.
	step := time.Now()
	e2eSweep(t, sweepFile, "e2e", base, 64, 1, "")
	stdout, _, code := c.run(sweepArgs...)
	job, n := submitted(stdout)
	if code != 0 || n != 3 {
		t.Fatalf("first sweep: exit %d, submitted %d runs (job %q); want 0 and 3", code, n, job)
	}
	logCmd(t, "scontrol", "show", "job", "--oneliner", job)
	logCmd(t, "sacct", "--noheader", "--parsable2", "--allocations", "--jobs="+job, "--format=JobID,State,ExitCode,NodeList")
	m, err := st.ReadManifest(name)
	if err != nil || len(m.Runs) != 3 {
		t.Fatalf("manifest %s: %+v, %v", name, m, err)
	}
	ok := m.Hashes()
	for _, h := range ok {
		if s := readStatus(t, st, h); s.State != store.Done || s.Attempts != 1 {
			t.Errorf("run %s after the first sweep: %s, %d attempts; want done, 1", store.Short(h), s.State, s.Attempts)
		}
	}
	index := filepath.Join(reportOut, name, "index.html")
	if !strings.Contains(stdout, "report: "+index) {
		t.Errorf("the sweep's output names no report %s", index)
	}
	html, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range ok {
		if !bytes.Contains(html, []byte(store.Short(h))) {
			t.Errorf("report %s does not list run %s", index, store.Short(h))
		}
	}
	if err := os.RemoveAll(reportDemo); err == nil {
		if err := os.CopyFS(reportDemo, os.DirFS(filepath.Join(reportOut, name))); err != nil {
			t.Logf("copying the report to %s: %v", reportDemo, err)
		} else {
			t.Logf("report of step 1 copied to %s/index.html", reportDemo)
		}
	}
	t.Logf("step 1 (3 runs, --wait, report): %.1fs", time.Since(step).Seconds())

	// 2. A [[case]] that fails at runtime: its data folder is empty (data.dir is not hashed,
	// so another seed makes it a run of its own).
	step = time.Now()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	e2eSweep(t, sweepFile, "e2e", base, 64, 1, fmt.Sprintf("\n[[case]]\nseed = 7\n\"data.dir\" = %q\n", empty))
	stdout, stderr, code := c.run(sweepArgs...)
	job, n = submitted(stdout)
	if code != 1 || n != 1 || !strings.Contains(stderr, "1 of 4 runs did not finish") {
		t.Errorf("sweep with a failing case: exit %d, submitted %d; want exit 1, 1 run submitted, \"1 of 4 runs did not finish\"", code, n)
	}
	if m, err = st.ReadManifest(name); err != nil || len(m.Runs) != 4 {
		t.Fatalf("manifest %s: %+v, %v", name, m, err)
	}
	bad := m.Runs[3].Hash
	if slices.Contains(ok, bad) {
		t.Fatalf("the failing case has the hash of a done run: %s", bad)
	}
	sub, _ := lastSubmission(t, root, name)
	if got := hashesFile(t, sub); sub.JobID != job || !slices.Equal(got, []string{bad}) {
		t.Errorf("submission %s (job %s) runs %v; want only the failing run %s", sub.HashesPath, sub.JobID, got, bad)
	}
	// The run records its failure itself; Settle adds the exit code and log tail from Slurm.
	if s := readStatus(t, st, bad); s.State != store.Failed || s.Attempts != 1 || s.ExitCode != ExitFailed ||
		!strings.Contains(s.LogTail, "dataset mnist not found") {
		t.Errorf("failing run: %+v; want failed, 1 attempt, exit code %d, the error in the log tail", s, ExitFailed)
	}
	logCmd(t, "scontrol", "show", "job", "--oneliner", job)
	stdout, _, code = c.run("status", name, "--store", root)
	line := statusLine(stdout, bad)
	wantLog := sub.Log(0)
	if code != 0 || !strings.Contains(line, " failed ") || !strings.Contains(line, job+"_0 FAILED") ||
		!regexp.MustCompile(`FAILED\s+1\s`).MatchString(line) || !strings.Contains(line, wantLog) {
		t.Errorf("runner status (exit %d), line of the failing run:\n%s\nwant failed, %s_0 FAILED, exit code 1 and log %s", code, line, job, wantLog)
	}
	for _, h := range ok {
		if line := statusLine(stdout, h); !strings.Contains(line, " done ") {
			t.Errorf("runner status, done run: %q", line)
		}
	}
	if log, err := os.ReadFile(wantLog); err != nil || !strings.Contains(string(log), "dataset mnist not found") ||
		!strings.Contains(string(log), empty) {
		t.Errorf("Slurm log %s (%v) lacks the error:\n%s", wantLog, err, log)
	}
	t.Logf("step 2 (failing case, runner status): %.1fs", time.Since(step).Seconds())

	// 3. Reruns submit only what is not done: the failed run while --retry (1) allows, then
	// nothing, then only a run whose status was put back to pending.
	step = time.Now()
	stdout, stderr, code = c.run(sweepArgs...)
	job, n = submitted(stdout)
	sub, subs := lastSubmission(t, root, name)
	if got := hashesFile(t, sub); code != 1 || n != 1 || sub.JobID != job || !slices.Equal(got, []string{bad}) {
		t.Errorf("rerun: exit %d, submitted %d (job %s, hashes %v); want exit 1, only the failed run %s", code, n, job, got, store.Short(bad))
	}
	if s := readStatus(t, st, bad); s.State != store.Failed || s.Attempts != 2 {
		t.Errorf("failing run after its retry: %s, %d attempts; want failed, 2", s.State, s.Attempts)
	}
	// A sweep with a failed run out of retries is not complete: exit 1 every time.
	stdout, stderr, code = c.run(sweepArgs...)
	if _, n := submitted(stdout); code != 1 || n != 0 || !strings.Contains(stderr, "nothing to train") ||
		!strings.Contains(stderr, "1 failed 2+ times") {
		t.Errorf("rerun with every run done or out of retries: exit %d, submitted %d; want exit 1, nothing submitted", code, n)
	}
	if _, again := lastSubmission(t, root, name); again != subs {
		t.Errorf("%d submissions after a rerun with nothing to do, want %d", again, subs)
	}
	redo := ok[1]
	lossBefore := readLoss(t, st, redo)
	old := readStatus(t, st, redo)
	if err := st.WriteStatus(redo, store.Status{State: store.Pending, Attempts: old.Attempts}); err != nil {
		t.Fatal(err)
	}
	stdout, _, code = c.run(sweepArgs...)
	job, n = submitted(stdout)
	sub, _ = lastSubmission(t, root, name)
	if got := hashesFile(t, sub); code != 1 || n != 1 || sub.JobID != job || !slices.Equal(got, []string{redo}) {
		t.Errorf("rerun after putting %s back to pending: exit %d, submitted %d (job %s, hashes %v); want only that run, "+
			"and exit 1 (the failed run out of retries)", store.Short(redo), code, n, job, got)
	}
	if s := readStatus(t, st, redo); s.State != store.Done || s.Attempts != 2 {
		t.Errorf("run put back to pending, after the rerun: %s, %d attempts (%s); want done, 2", s.State, s.Attempts, s.Reason)
	}
	if loss := readLoss(t, st, redo); !slices.Equal(loss, lossBefore) {
		t.Errorf("run put back to pending trained again: loss.csv had %d rows, now %d", len(lossBefore), len(loss))
	}
	t.Logf("step 3 (reruns): %.1fs", time.Since(step).Seconds())

	// 4. Cancel an array one task at a time while its first run trains, then resubmit.
	step = time.Now()
	const long = "e2e_cancel-quick"
	longFile := filepath.Join(dir, "e2e_cancel.toml")
	e2eSweep(t, longFile, "e2e_cancel", base, 512, 3, "")
	stdout, _, code = c.run("sweep", longFile, "--executor", "slurm", "--store", root, "--report-out", reportOut,
		"--cpus-per-task", "1", "--time", "10:00", "--max-parallel", "1")
	job, n = submitted(stdout)
	if code != 0 || n != 3 {
		t.Fatalf("long sweep without --wait: exit %d, submitted %d; want 0, 3", code, n)
	}
	if m, err = st.ReadManifest(long); err != nil || len(m.Runs) != 3 {
		t.Fatalf("manifest %s: %+v, %v", long, m, err)
	}
	first := "" // the run that trains first: cancel once it has finished an epoch
	for first == "" {
		for _, h := range m.Hashes() {
			if s := readStatus(t, st, h); s.State == store.Running && s.Epoch >= 1 {
				first = h
			} else if s.State.Final() {
				t.Fatalf("run %s ended (%s) before the cancel; make the runs longer", store.Short(h), s.State)
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no run of the long sweep finished an epoch")
		}
		time.Sleep(100 * time.Millisecond)
	}
	logCmd(t, "squeue", "--array", "--jobs="+job)
	if out, err := exec.CommandContext(ctx, "scancel", job).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v: %s", job, err, out)
	}
	sl := &Slurm{Exe: bin, StoreRoot: root}
	if err := sl.Wait(ctx, 200*time.Millisecond, job); err != nil {
		t.Fatal(err)
	}
	logCmd(t, "scontrol", "show", "job", "--oneliner", job)
	logCmd(t, "sacct", "--noheader", "--parsable2", "--allocations", "--jobs="+job, "--format=JobID,State,ExitCode,NodeList")
	for _, h := range m.Hashes() {
		s := readStatus(t, st, h)
		switch {
		case h == first && (s.State != store.Interrupted || s.Attempts != 1):
			t.Errorf("cancelled while training: %s, %d attempts; want interrupted, 1", s.State, s.Attempts)
		case h != first && (s.State != store.Pending || s.Attempts != 0):
			t.Errorf("cancelled while waiting: %s, %d attempts; want pending, 0", s.State, s.Attempts)
		}
	}
	stdout, _, _ = c.run("status", long, "--store", root)
	if line := statusLine(stdout, first); !strings.Contains(line, "interrupted") || !strings.Contains(line, "CANCELLED") {
		t.Errorf("runner status, cancelled run: %q; want interrupted, CANCELLED", line)
	}
	stdout, _, code = c.run("sweep", longFile, "--executor", "slurm", "--wait", "--store", root, "--report-out", reportOut,
		"--cpus-per-task", "1", "--time", "10:00", "--max-parallel", "1")
	job, n = submitted(stdout)
	if code != 0 || n != 3 {
		t.Errorf("resubmitting the cancelled sweep: exit %d, submitted %d; want 0, 3", code, n)
	}
	logCmd(t, "scontrol", "show", "job", "--oneliner", job)
	for _, h := range m.Hashes() {
		s := readStatus(t, st, h)
		attempts := 1
		if h == first {
			attempts = 2
		}
		if s.State != store.Done || s.Attempts != attempts {
			t.Errorf("run %s after the resubmission: %s, %d attempts; want done, %d", store.Short(h), s.State, s.Attempts, attempts)
		}
		loss := readLoss(t, st, h)
		for i, row := range loss {
			if row.Step != i+1 {
				t.Errorf("run %s: loss.csv row %d has step %d, want %d (steps strictly increasing, none twice)", store.Short(h), i+1, row.Step, i+1)
				break
			}
		}
		if want := 3 * 512 / 32; len(loss) != want {
			t.Errorf("run %s: loss.csv has %d steps, want %d", store.Short(h), len(loss), want)
		}
		epochs, err := st.ReadEpochs(h)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, e := range epochs {
			got = append(got, e.Epoch)
		}
		if !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("run %s: epochs.csv has epochs %v, want each of 1, 2, 3 once", store.Short(h), got)
		}
		log, err := os.ReadFile(st.Path(h, "log.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		trained := strings.Count(string(log), `"message":"epoch"`)
		resumed := strings.Count(string(log), `"message":"resumed from checkpoint"`)
		if trained != 3 || resumed != attempts-1 {
			t.Errorf("run %s: log.jsonl has %d finished epochs and %d resumptions; want 3 and %d", store.Short(h), trained, resumed, attempts-1)
		}
	}
	c.run("status", long, "--store", root)
	t.Logf("step 4 (scancel mid-array, resubmit): %.1fs", time.Since(step).Seconds())
	t.Logf("whole test: %.1fs", time.Since(began).Seconds())
}

func readStatus(t *testing.T, st *store.Store, hash string) store.Status {
	t.Helper()
	s, err := st.ReadStatus(hash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readLoss(t *testing.T, st *store.Store, hash string) []store.LossRow {
	t.Helper()
	rows, err := st.ReadLoss(hash)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestSlurmSettleRecordedEnds checks the two cases the end-to-end test found: a completed
// task says nothing of a run reset to pending since (Settle used to record it failed, with
// an attempt counted), and a run that recorded its own failure gets the exit code and the
// log tail from Slurm, as the local executor adds them.
func TestSlurmSettleRecordedEnds(t *testing.T) {
	sl, s, _ := newFakeSlurm(t, "", "", "")
	jobs := newRuns(t, s, "reset", "failed")
	reset, failed := jobs[0].Hash, jobs[1].Hash
	if err := s.WriteStatus(reset, store.Status{State: store.Pending, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(failed, 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(failed, store.Failed, "dataset mnist not found"); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "7_1.out")
	if err := os.WriteFile(logPath, []byte("=== start\nrunner _run-one: dataset mnist not found\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tasks := map[string]Task{
		reset:  {Hash: reset, JobID: "7", Index: 0, State: TaskDone, SlurmState: "COMPLETED", Source: "scontrol"},
		failed: {Hash: failed, JobID: "7", Index: 1, State: TaskFailed, SlurmState: "FAILED", ExitCode: 1, Source: "scontrol", Log: logPath},
	}
	changed, err := sl.Settle(tasks)
	if err != nil || !slices.Equal(changed, []string{failed}) {
		t.Fatalf("Settle = %v, %v; want only the failed run", changed, err)
	}
	if st := status(t, s, reset); st.State != store.Pending || st.Attempts != 1 {
		t.Errorf("run reset after its task completed: %+v; want pending, 1 attempt", st)
	}
	st := status(t, s, failed)
	if st.State != store.Failed || st.Attempts != 1 || st.ExitCode != 1 || st.Reason != "dataset mnist not found" ||
		!strings.Contains(st.LogTail, "dataset mnist not found") {
		t.Errorf("run that recorded its failure: %+v; want its reason kept, exit code 1 and the log tail added", st)
	}
	if changed, err := sl.Settle(tasks); err != nil || len(changed) != 0 {
		t.Errorf("Settle again = %v, %v; want nothing to write", changed, err)
	}
}
