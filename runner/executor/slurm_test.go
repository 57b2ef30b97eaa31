package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// fakeCommand writes an executable shell script named name into dir and returns its path.
func fakeCommand(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// newFakeSlurm returns a Slurm on a fresh store whose commands are the given fake
// scripts; sbatch records its arguments and a copy of the script in the bin folder and
// prints job ID 42.
func newFakeSlurm(t *testing.T, squeue, scontrol, sacct string) (*Slurm, *store.Store, string) {
	t.Helper()
	bin := t.TempDir()
	s, err := store.Open(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	sl := &Slurm{
		Exe:       "/opt/ddpm lab/runner",
		StoreRoot: s.Root,
		Sbatch: fakeCommand(t, bin, "sbatch", `echo "$@" > "$(dirname "$0")/sbatch.args"
cp "$2" "$(dirname "$0")/sbatch.script"
echo "42;cluster"
`),
		Squeue:   fakeCommand(t, bin, "squeue", squeue),
		Scontrol: fakeCommand(t, bin, "scontrol", scontrol),
		Sacct:    fakeCommand(t, bin, "sacct", sacct),
	}
	return sl, s, bin
}

func TestSlurmSubmit(t *testing.T) {
	sl, s, bin := newFakeSlurm(t, "", "", "")
	sl.Partition, sl.MaxParallel, sl.Time, sl.CPUsPerTask, sl.Mem, sl.GPUs = "gpu", 2, "1:00:00", 4, "8G", "1"
	sl.Requeue = true
	sl.SbatchArgs = []string{"--account=proj"}
	sl.Env = []string{"DDPMLAB_STORE=/x y"}
	jobs := newRuns(t, s, "ok", "fail", "ok")
	hashes := []string{jobs[0].Hash, jobs[1].Hash, jobs[2].Hash}

	sub, err := sl.Submit(context.Background(), "lr", hashes)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Root, SlurmDir)
	if sub.JobID != "42" || sub.N() != 3 || sub.Sweep != "lr" || filepath.Dir(sub.ScriptPath) != dir ||
		!strings.HasPrefix(filepath.Base(sub.ScriptPath), "lr-") || !strings.HasSuffix(sub.ScriptPath, ".sbatch") {
		t.Fatalf("submission %+v", sub)
	}
	if want := filepath.Join(dir, "logs", "42_1.out"); sub.Log(1) != want {
		t.Errorf("Log(1) = %q, want %q", sub.Log(1), want)
	}
	args, _ := os.ReadFile(filepath.Join(bin, "sbatch.args"))
	if got := strings.TrimSpace(string(args)); got != "--parsable "+sub.ScriptPath {
		t.Errorf("sbatch %s", got)
	}

	var rec Submission
	if err := store.ReadJSON(sub.ManifestPath, &rec); err != nil || !reflect.DeepEqual(rec.Hashes, hashes) ||
		rec.JobID != "42" || rec.LogPattern != sub.LogPattern || !rec.Created.Equal(sub.Created) {
		t.Errorf("record %+v, %v", rec, err)
	}
	list, _ := os.ReadFile(sub.HashesPath)
	if string(list) != strings.Join(hashes, "\n")+"\n" {
		t.Errorf("hash list:\n%s", list)
	}

	script, _ := os.ReadFile(sub.ScriptPath)
	copied, _ := os.ReadFile(filepath.Join(bin, "sbatch.script"))
	if string(script) != string(copied) || string(script) != sl.Script(sub) {
		t.Error("the submitted script is not the one written to the store")
	}
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --array=0-2%2\n",
		"#SBATCH --output=" + filepath.Join(dir, "logs") + "/%A_%a.out\n",
		"#SBATCH --partition=gpu\n",
		"#SBATCH --time=1:00:00\n",
		"#SBATCH --cpus-per-task=4\n",
		"#SBATCH --mem=8G\n",
		"#SBATCH --gres=gpu:1\n",
		"#SBATCH --signal=B:TERM@120\n",
		"#SBATCH --requeue\n",
		"#SBATCH --account=proj\n",
		"#SBATCH --chdir=" + s.Root + "\n",
		`hash=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ` + sub.HashesPath + ")\n",
		`export OMP_NUM_THREADS="$threads"`,
		`export GLIBC_TUNABLES="${GLIBC_TUNABLES:-` + MallocTunables + `}"`,
		"export DDPMLAB_STORE='/x y'\n",
		`exec '/opt/ddpm lab/runner' _run-one --store ` + s.Root + ` "$hash"` + "\n",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}

	// The script really picks the hash of its array task.
	for i, h := range hashes {
		got := runScriptHead(t, string(script), i)
		if got != h {
			t.Errorf("task %d reads hash %q, want %s", i, got, h)
		}
	}

	subs, err := ReadSubmissions(s.Root, "lr")
	if err != nil || len(subs) != 1 || subs[0].JobID != "42" {
		t.Errorf("ReadSubmissions = %+v, %v", subs, err)
	}
	if subs, _ := ReadSubmissions(s.Root, "other"); len(subs) != 0 {
		t.Errorf("ReadSubmissions(other) = %+v", subs)
	}
}

// runScriptHead runs the script up to its exec line for array task i and returns $hash.
func runScriptHead(t *testing.T, script string, i int) string {
	t.Helper()
	head, _, _ := strings.Cut(script, "\nexec ")
	path := filepath.Join(t.TempDir(), "head.sh")
	if err := os.WriteFile(path, []byte(head+"\nprintf %s \"$hash\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd("bash", []string{"SLURM_ARRAY_TASK_ID=" + itoa(i), "SLURM_ARRAY_JOB_ID=42"}, path)
	if err != nil {
		t.Fatalf("script head: %v\n%s", err, out)
	}
	return out
}

func TestSlurmSubmitErrors(t *testing.T) {
	sl, s, bin := newFakeSlurm(t, "", "", "")
	h := newRuns(t, s, "ok")[0].Hash
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(*Slurm)
		sweep  string
		hashes []string
		want   string
	}{
		{"relative exe", func(sl *Slurm) { sl.Exe = "runner" }, "x", []string{h}, "absolute path"},
		{"relative store", func(sl *Slurm) { sl.StoreRoot = "runs" }, "x", []string{h}, "absolute path"},
		{"bad sweep", nil, "../x", []string{h}, "invalid sweep name"},
		{"no runs", nil, "x", nil, "no runs"},
		{"short hash", nil, "x", []string{"abcd"}, "invalid run hash"},
		{"missing run", nil, "x", []string{strings.Repeat("a", 64)}, "no such run"},
		{"bad env", func(sl *Slurm) { sl.Env = []string{"1X=2"} }, "x", []string{h}, "NAME=VALUE"},
		{"sbatch fails", func(sl *Slurm) {
			sl.Sbatch = fakeCommand(t, bin, "sbatch-fail", "echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1\n")
		}, "x", []string{h}, "invalid partition specified: nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *sl
			if tc.change != nil {
				tc.change(&c)
			}
			_, err := c.Submit(ctx, tc.sweep, tc.hashes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Submit error %v, want %q", err, tc.want)
			}
		})
	}
	// A failed sbatch leaves no files behind.
	left, _ := filepath.Glob(filepath.Join(s.Root, SlurmDir, "x-*"))
	if len(left) > 0 {
		t.Errorf("files left after failed submissions: %v", left)
	}
}

func TestArraySpec(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want string
	}{{3, 2, "0-2%2"}, {1, 0, "0-0"}, {10, 0, "0-9"}} {
		if got := ArraySpec(tc.n, tc.k); got != tc.want {
			t.Errorf("ArraySpec(%d, %d) = %q, want %q", tc.n, tc.k, got, tc.want)
		}
	}
}

func TestExpandIndices(t *testing.T) {
	for spec, want := range map[string][]int{
		"3": {3}, "0-2": {0, 1, 2}, "1,4-5%2": {1, 4, 5}, "[6-7]": {6, 7}, "x": nil, "3-1": nil, "": nil,
	} {
		if got := expandIndices(spec); !reflect.DeepEqual(got, want) {
			t.Errorf("expandIndices(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestMapSlurmState(t *testing.T) {
	for _, tc := range []struct {
		state string
		exit  int
		want  TaskState
	}{
		{"PENDING", 0, TaskPending}, {"REQUEUED", 0, TaskPending},
		{"RUNNING", 0, TaskRunning}, {"COMPLETING", 0, TaskRunning},
		{"COMPLETED", 0, TaskDone},
		{"FAILED", 1, TaskFailed}, {"FAILED", 3, TaskInterrupted}, {"FAILED", 4, TaskSkipped}, {"FAILED", 127, TaskFailed},
		{"OUT_OF_MEMORY", 0, TaskFailed}, {"NODE_FAIL", 0, TaskFailed},
		{"CANCELLED", 0, TaskCancelled}, {"CANCELLED by 0", 0, TaskCancelled}, {"CANCELLED+", 0, TaskCancelled},
		{"TIMEOUT", 0, TaskInterrupted}, {"PREEMPTED", 0, TaskInterrupted},
	} {
		if got := mapSlurmState(tc.state, tc.exit); got != tc.want {
			t.Errorf("mapSlurmState(%q, %d) = %s, want %s", tc.state, tc.exit, got, tc.want)
		}
	}
}

// TestSlurmStatusMerge checks that squeue, scontrol, sacct and the store each fill the
// tasks the earlier sources did not know, and that resubmissions override.
func TestSlurmStatusMerge(t *testing.T) {
	// Job 42 has 6 tasks: 0 running, 1 pending (squeue); 2 done, 3 failed (scontrol);
	// 4 cancelled (sacct only); 5 forgotten by Slurm (store). Job 43 resubmits task 3's
	// run, which is pending there, and task 2's run, which fails there (the later one wins).
	squeue := `case "$*" in *--jobs=42,43*) ;; *) echo "bad args $*" >&2; exit 2;; esac
echo "42|0|RUNNING|None|node1"
echo "42|1|PENDING|JobArrayTaskLimit|"
echo "43|0|PENDING|Priority|"
`
	scontrol := `case "$4" in
42) echo "JobId=50 ArrayJobId=42 ArrayTaskId=2 JobName=ddpm-lr JobState=COMPLETED Reason=None ExitCode=0:0 NodeList=node2 Command=/a b/c.sbatch"
    echo "JobId=51 ArrayJobId=42 ArrayTaskId=3 JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 NodeList=node1";;
43) echo "JobId=60 ArrayJobId=43 ArrayTaskId=1 JobState=FAILED Reason=NonZeroExitCode ExitCode=127:0 NodeList=node3";;
*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1;;
esac
`
	sacct := `echo "42_4|CANCELLED by 0|0:15|node1"
echo "42_[5]|PENDING|0:0|None assigned"
echo "42_2|FAILED|9:0|nodeX"
`
	sl, s, _ := newFakeSlurm(t, squeue, scontrol, sacct)
	jobs := newRuns(t, s, "a", "b", "c", "d", "e", "f")
	h := func(i int) string { return jobs[i].Hash }
	if _, err := s.Finish(h(5), store.Done, ""); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(s.Root, SlurmDir, "logs", "%A_%a.out")
	subs := []Submission{
		{JobID: "42", Hashes: []string{h(0), h(1), h(2), h(3), h(4), h(5)}, LogPattern: logs},
		{JobID: "43", Hashes: []string{h(3), h(2)}, LogPattern: logs},
	}
	got, err := sl.Status(context.Background(), subs...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Task{
		h(0): {JobID: "42", Index: 0, State: TaskRunning, SlurmState: "RUNNING", Node: "node1", Source: "squeue"},
		h(1): {JobID: "42", Index: 1, State: TaskPending, SlurmState: "PENDING", Reason: "JobArrayTaskLimit", Source: "squeue"},
		h(2): {JobID: "43", Index: 1, State: TaskFailed, SlurmState: "FAILED", Reason: "NonZeroExitCode", ExitCode: 127, Node: "node3", Source: "scontrol"},
		h(3): {JobID: "43", Index: 0, State: TaskPending, SlurmState: "PENDING", Reason: "Priority", Source: "squeue"},
		h(4): {JobID: "42", Index: 4, State: TaskCancelled, SlurmState: "CANCELLED by 0", Signal: 15, Node: "node1", Source: "sacct"},
		h(5): {JobID: "42", Index: 5, State: TaskDone, Source: "store"},
	}
	for hash, w := range want {
		w.Hash = hash
		w.Log = filepath.Join(s.Root, SlurmDir, "logs", w.JobID+"_"+itoa(w.Index)+".out")
		if got[hash] != w {
			t.Errorf("task %s:\n got %+v\nwant %+v", store.Short(hash), got[hash], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d tasks, want %d", len(got), len(want))
	}

	// Settle: the run that failed with exit 127 never began (status pending): failed, one
	// attempt counted, log tail from the Slurm log; the pending, running and store ones
	// are left alone.
	if err := os.MkdirAll(filepath.Dir(got[h(2)].Log), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(got[h(2)].Log, []byte("=== start\n/opt/runner: not found\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := sl.Settle(got)
	if err != nil || !reflect.DeepEqual(changed, []string{h(2)}) {
		t.Fatalf("Settle = %v, %v; want only task 2's run", changed, err)
	}
	st := status(t, s, h(2))
	if st.State != store.Failed || st.Attempts != 1 || st.ExitCode != 127 || st.Host != "node3" ||
		!strings.Contains(st.Reason, "slurm task 43_1 ended FAILED (exit code 127") || !strings.Contains(st.LogTail, "not found") {
		t.Errorf("settled status %+v", st)
	}
	if st := status(t, s, h(4)); st.State != store.Pending {
		t.Errorf("cancelled before it began: status %+v, want pending", st)
	}
}

func TestSlurmSettleKilled(t *testing.T) {
	sl, s, _ := newFakeSlurm(t, "", "", "")
	h := newRuns(t, s, "x")[0].Hash
	if _, err := s.Begin(h, 2, 10); err != nil {
		t.Fatal(err)
	}
	task := Task{Hash: h, JobID: "7", Index: 0, State: TaskCancelled, SlurmState: "CANCELLED", Signal: 9, Source: "scontrol",
		Log: filepath.Join(t.TempDir(), "missing.out")}
	if _, err := sl.Settle(map[string]Task{h: task}); err != nil {
		t.Fatal(err)
	}
	st := status(t, s, h)
	if st.State != store.Interrupted || st.Signal != "signal 9" || st.Epoch != 2 || st.Attempts != 1 || st.Finished.IsZero() {
		t.Errorf("status %+v; want interrupted by signal 9 at epoch 2", st)
	}
}

func TestSlurmWait(t *testing.T) {
	// squeue lists the job twice, then reports it unknown.
	sl, _, bin := newFakeSlurm(t, "", "", "")
	sl.Squeue = fakeCommand(t, bin, "squeue-count", `n=$(cat "$(dirname "$0")/count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$(dirname "$0")/count"
if [ "$n" -lt 2 ]; then echo "42|0|RUNNING|None|node1"; exit 0; fi
echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1
`)
	if err := sl.Wait(context.Background(), 10_000_000, "42"); err != nil {
		t.Fatal(err)
	}
	if n, _ := os.ReadFile(filepath.Join(bin, "count")); strings.TrimSpace(string(n)) != "3" {
		t.Errorf("squeue ran %s times, want 3", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sl.Squeue = fakeCommand(t, bin, "squeue-forever", `echo "42|0|RUNNING|None|node1"`)
	if err := sl.Wait(ctx, 0, "42"); err != context.Canceled {
		t.Errorf("Wait with a cancelled context = %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// runCmd runs a command with extra environment and returns its standard output.
func runCmd(name string, env []string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	return string(out), err
}
