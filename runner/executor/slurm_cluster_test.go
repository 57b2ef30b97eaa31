package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// requireSlurm skips the test unless a Slurm cluster answers here with a usable node.
func requireSlurm(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("submits jobs to a Slurm cluster")
	}
	if _, err := exec.LookPath("sinfo"); err != nil {
		t.Skip("no Slurm here (sinfo is not in $PATH); as root, run runner/scripts/setup-slurm.sh to start a one-node cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--format=%T").CombinedOutput()
	if err != nil {
		t.Skipf("the Slurm cluster is not up (sinfo: %v: %s); as root, run runner/scripts/setup-slurm.sh", err, strings.TrimSpace(string(out)))
	}
	for state := range strings.FieldsSeq(string(out)) {
		if slices.Contains([]string{"idle", "mixed", "allocated", "completing"}, strings.TrimSuffix(state, "*")) {
			return
		}
	}
	t.Skipf("no Slurm node can take jobs (sinfo says %q); as root, run runner/scripts/setup-slurm.sh", strings.TrimSpace(string(out)))
}

// TestSlurmCluster runs the cluster scenario on the real cluster with the test binary as
// the runner (see fakeChild).
func TestSlurmCluster(t *testing.T) {
	requireSlurm(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	slurmClusterScenario(t, exe, []string{fakeChildEnv + "=1"}, &fakeRunKit{})
}

// fakeRunKit makes runs for the fake child: the mode is the run's config.toml.
type fakeRunKit struct{ n int }

func (k *fakeRunKit) NewRun(t *testing.T, s *store.Store, mode string) string {
	t.Helper()
	k.n++
	canon := fmt.Sprintf(`{"mode":%q,"n":%d,"test":%q}`, mode, k.n, t.Name())
	sum := sha256.Sum256([]byte(canon))
	h := hex.EncodeToString(sum[:])
	if _, err := s.Create(h, []byte(mode+"\n"), []byte(canon)); err != nil {
		t.Fatal(err)
	}
	return h
}

func (*fakeRunKit) MakeQuick(t *testing.T, s *store.Store, hash string) {
	t.Helper()
	if err := durable.WriteFile(s.Path(hash, store.ConfigFile), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runKit makes runs for slurmClusterScenario.
type runKit interface {
	// NewRun creates a run in s and returns its hash. When executed, a run of mode "ok"
	// succeeds, "fail" exits 1 with a message on stderr, "sleep" runs until SIGTERM and
	// then records interrupted and exits 3, "ignore" runs until SIGKILL. NewRun returns ""
	// for a mode the runner cannot do; the scenario then leaves out that step.
	NewRun(t *testing.T, s *store.Store, mode string) string
	// MakeQuick makes an interrupted run finish quickly when it is run again (the real
	// runner resumes from its checkpoint and needs nothing).
	MakeQuick(t *testing.T, s *store.Store, hash string)
}

// slurmClusterScenario submits job arrays to the real cluster with exe as the runner
// binary (env is exported to the tasks) and checks what Status, Wait, Cancel and Settle
// report and what the store holds: a 3-run array with one failing run, an array cancelled
// while two of its tasks run and two wait, a task killed with SIGKILL, and a resubmission
// of only the runs that are not done. The end-to-end test of the CLI calls it with the
// real runner binary.
func slurmClusterScenario(t *testing.T, exe string, env []string, kit runKit) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s, err := store.Open(filepath.Join(t.TempDir(), "runs")) // /tmp: visible to the jobs (root) on this node
	if err != nil {
		t.Fatal(err)
	}
	sl := &Slurm{Exe: exe, StoreRoot: s.Root, MaxParallel: 2, Time: "10:00", CPUsPerTask: 1, Env: env}
	const poll = 300 * time.Millisecond
	var subs []Submission
	submit := func(name string, hashes []string) Submission {
		t.Helper()
		sub, err := sl.Submit(ctx, name, hashes)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("submitted %s: job %s, %d tasks, script %s", name, sub.JobID, sub.N(), sub.ScriptPath)
		subs = append(subs, sub)
		t.Cleanup(func() { _ = sl.Cancel(context.Background(), sub.JobID) }) // after a failure, leave no tasks behind
		return sub
	}
	wait := func(sub Submission) map[string]Task {
		t.Helper()
		if err := sl.Wait(ctx, poll, sub.JobID); err != nil {
			t.Fatalf("Wait(%s): %v", sub.JobID, err)
		}
		logCmd(t, "scontrol", "show", "job", "--oneliner", sub.JobID)
		logCmd(t, "sacct", "--noheader", "--parsable2", "--allocations", "--jobs="+sub.JobID, "--format=JobID,State,ExitCode")
		tasks, err := sl.Status(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		return tasks
	}
	logCmd(t, "sinfo")

	// 1. Three runs, one of which fails.
	var all []string
	for _, mode := range []string{"ok", "fail", "ok"} {
		all = append(all, kit.NewRun(t, s, mode))
	}
	first := submit("three", all)
	if script, _ := os.ReadFile(first.ScriptPath); !strings.Contains(string(script), "#SBATCH --array=0-2%2\n") {
		t.Errorf("script:\n%s", script)
	}
	tasks := wait(first)
	for i, want := range []TaskState{TaskDone, TaskFailed, TaskDone} {
		task := tasks[all[i]]
		if task.State != want || task.Index != i || task.JobID != first.JobID {
			t.Errorf("task %d: %+v, want %s", i, task, want)
		}
		st := status(t, s, all[i])
		if wantSt := map[TaskState]store.State{TaskDone: store.Done, TaskFailed: store.Failed}[want]; st.State != wantSt {
			t.Errorf("run %d: status %+v, want %s", i, st, wantSt)
		}
	}
	failed := tasks[all[1]]
	log, err := os.ReadFile(failed.Log)
	if failed.ExitCode != ExitFailed || err != nil || !strings.Contains(string(log), "=== ") || failed.Log != first.Log(1) {
		t.Errorf("failed task %+v; log %s: %v\n%s", failed, failed.Log, err, log)
	}
	t.Logf("failed task: state %s, exit code %d, log %s:\n%s", failed.SlurmState, failed.ExitCode, failed.Log, log)

	// 2. Four runs that run until stopped, two at a time: cancel when two run.
	var sleepers []string
	for range 4 {
		sleepers = append(sleepers, kit.NewRun(t, s, "sleep"))
	}
	second := submit("sleepers", sleepers)
	for {
		tasks, err := sl.Status(ctx, second)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, task := range tasks {
			if task.State == TaskRunning && status(t, s, task.Hash).State == store.Running {
				running++
			}
		}
		if running == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("two sleepers never ran at once: %+v", tasks)
		}
		time.Sleep(poll)
	}
	logCmd(t, "squeue", "--array", "--jobs="+second.JobID)
	if err := sl.Cancel(ctx, second.JobID); err != nil {
		t.Fatal(err)
	}
	tasks = wait(second)
	interrupted, pending := 0, 0
	for _, h := range sleepers {
		if tasks[h].State != TaskCancelled {
			t.Errorf("cancelled task: %+v", tasks[h])
		}
		switch st := status(t, s, h); st.State {
		case store.Interrupted:
			interrupted++
		case store.Pending:
			pending++
		default:
			t.Errorf("cancelled run: status %+v", st)
		}
	}
	if interrupted != 2 || pending != 2 {
		t.Errorf("after scancel: %d runs interrupted (checkpointed on SIGTERM), %d pending; want 2 and 2", interrupted, pending)
	}
	if changed, err := sl.Settle(tasks); err != nil || len(changed) > 0 {
		t.Errorf("Settle after a clean cancel = %v, %v; want nothing to record", changed, err)
	}

	// 3. A run that ignores SIGTERM is killed with SIGKILL KillWait (30 s) after the
	// cancel and cannot record its end: Settle does.
	if killed := kit.NewRun(t, s, "ignore"); killed != "" {
		third := submit("killed", []string{killed})
		for status(t, s, killed).State != store.Running {
			if ctx.Err() != nil {
				t.Fatal("the run to kill never began")
			}
			time.Sleep(poll)
		}
		if out, err := exec.CommandContext(ctx, "scancel", "--full", "--signal=KILL", third.JobID).CombinedOutput(); err != nil {
			t.Fatalf("scancel: %v: %s", err, out)
		}
		tasks = wait(third)
		task := tasks[killed]
		if task.State != TaskFailed && task.State != TaskCancelled {
			t.Errorf("killed task: %+v", task)
		}
		changed, err := sl.Settle(tasks)
		st := status(t, s, killed)
		if err != nil || len(changed) != 1 || !st.State.Final() || !strings.Contains(st.Reason, "slurm task "+third.JobID+"_0") {
			t.Errorf("Settle = %v, %v; status %+v", changed, err, st)
		}
		t.Logf("killed task %+v; settled status: %s: %s", task, st.State, st.Reason)
		all = append(all, killed)
	}

	// 4. Resubmit only the runs that are not done.
	all = append(all, sleepers...)
	var missing []string
	for _, h := range all {
		if status(t, s, h).State != store.Done {
			missing = append(missing, h)
			if h != all[1] {
				kit.MakeQuick(t, s, h)
			}
		}
	}
	if len(missing) != len(all)-2 {
		t.Fatalf("%d runs to resubmit, want %d", len(missing), len(all)-2)
	}
	last := submit("again", missing)
	wait(last)
	tasks, err = sl.Status(ctx, subs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range all {
		want := TaskDone
		if h == all[1] {
			want = TaskFailed
		}
		task := tasks[h]
		if task.State != want || (slices.Contains(missing, h) && task.JobID != last.JobID) {
			t.Errorf("after resubmission: %+v, want %s in job %s", task, want, last.JobID)
		}
	}
	got, err := ReadSubmissions(s.Root, "")
	if err != nil || len(got) != len(subs) || got[len(got)-1].JobID != last.JobID {
		t.Errorf("ReadSubmissions = %d, %v; want %d, the last %s", len(got), err, len(subs), last.JobID)
	}
}

// logCmd runs a Slurm command and logs its output, for the record of what the cluster said.
func logCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	t.Logf("$ %s %s (%v)\n%s", name, strings.Join(args, " "), err, out)
}
