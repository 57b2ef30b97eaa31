package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Status returns the state of every run of the given submissions, by full hash.
//
// It asks, in order, and each source only fills the tasks the earlier ones did not know:
//
//  1. squeue: pending and running tasks;
//  2. scontrol show job: tasks that ended within the cluster's MinJobAge (300 s by default);
//  3. sacct: ended tasks, where the cluster has accounting (an error from sacct, such as
//     "accounting storage is disabled", is ignored);
//  4. the store: once Slurm has forgotten a task, its run's status.json. A run that is
//     still pending or running there was cancelled or killed before it could record an
//     end, and is reported cancelled.
//
// When a hash is in several submissions, a pending or running task wins over an ended one,
// and otherwise the later submission wins. The error is non-nil only if squeue fails (the
// controller cannot be reached); the map then holds nothing.
func (s *Slurm) Status(ctx context.Context, subs ...Submission) (map[string]Task, error) {
	if len(subs) == 0 {
		return map[string]Task{}, nil
	}
	ids := make([]string, 0, len(subs))
	for _, sub := range subs {
		ids = append(ids, sub.JobID)
	}
	live, err := s.squeue(ctx, ids)
	if err != nil {
		return nil, err
	}
	var ended map[taskKey]slurmTask
	acct := map[taskKey]slurmTask(nil)
	st := &store.Store{Root: s.StoreRoot}

	tasks := make(map[string]Task)
	for _, sub := range subs {
		for i, h := range sub.Hashes {
			key := taskKey{sub.JobID, i}
			t, ok := live[key]
			if !ok {
				if ended == nil {
					ended = s.scontrolAll(ctx, ids)
				}
				t, ok = ended[key]
			}
			if !ok {
				if acct == nil {
					acct = s.sacct(ctx, ids)
				}
				t, ok = acct[key]
			}
			task := Task{Hash: h, JobID: sub.JobID, Index: i, Log: sub.Log(i)}
			if ok {
				task.fill(t)
			} else {
				task.fromStore(st)
			}
			if old, seen := tasks[h]; seen && !old.State.Final() && task.State.Final() {
				continue
			}
			tasks[h] = task
		}
	}
	return tasks, nil
}

// Wait blocks until no task of the given job arrays is pending or running (squeue lists
// none of them), polling every poll (0 means 10 s). It returns ctx.Err() when ctx ends,
// and an error when squeue has failed five times in a row.
func (s *Slurm) Wait(ctx context.Context, poll time.Duration, jobIDs ...string) error {
	if poll <= 0 {
		poll = 10 * time.Second
	}
	failures := 0
	for {
		live, err := s.squeue(ctx, jobIDs)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if failures++; failures >= 5 {
				return err
			}
		case len(live) == 0:
			return nil
		default:
			failures = 0
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// taskKey names one array task: the array's job ID and the task index.
type taskKey struct {
	job   string
	index int
}

// slurmTask is what a Slurm command said about one array task.
type slurmTask struct {
	state, reason, node string
	exit, signal        int
	source              string
}

func (t *Task) fill(st slurmTask) {
	t.SlurmState, t.Reason, t.Node = st.state, st.reason, st.node
	t.ExitCode, t.Signal, t.Source = st.exit, st.signal, st.source
	t.State = mapSlurmState(st.state, st.exit)
}

// mapSlurmState maps a Slurm job state (squeue %T, scontrol JobState, sacct State, which
// may read "CANCELLED by 0") and exit code to a TaskState.
func mapSlurmState(state string, exit int) TaskState {
	base, _, _ := strings.Cut(strings.TrimSpace(state), " ")
	base = strings.TrimSuffix(base, "+")
	switch base {
	case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT":
		return TaskPending
	case "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING":
		return TaskRunning
	case "COMPLETED":
		return TaskDone
	case "CANCELLED", "REVOKED":
		return TaskCancelled
	case "TIMEOUT", "PREEMPTED", "DEADLINE":
		return TaskInterrupted
	}
	// FAILED, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, LAUNCH_FAILED and anything new.
	switch exit {
	case ExitInterrupted:
		return TaskInterrupted
	case ExitLocked:
		return TaskSkipped
	}
	return TaskFailed
}

// fromStore fills a task that Slurm no longer knows from its run's status.json.
func (t *Task) fromStore(st *store.Store) {
	t.Source = "store"
	status, err := st.ReadStatus(t.Hash)
	if err != nil {
		t.State, t.Reason = TaskCancelled, fmt.Sprintf("unknown to Slurm, and the store has no status: %v", err)
		return
	}
	t.Reason, t.ExitCode = status.Reason, status.ExitCode
	switch status.State {
	case store.Done:
		t.State = TaskDone
	case store.Failed:
		t.State = TaskFailed
	case store.Interrupted:
		t.State = TaskInterrupted
	default:
		t.State = TaskCancelled
		t.Reason = fmt.Sprintf("unknown to Slurm while the store says %s: cancelled or killed before it recorded an end", status.State)
	}
}

func (s *Slurm) squeue(ctx context.Context, ids []string) (map[taskKey]slurmTask, error) {
	out, err := s.run(ctx, s.cmd(s.Squeue, "squeue"), "--noheader", "--array", "--jobs="+strings.Join(ids, ","),
		"--format=%F|%K|%T|%r|%N")
	if err != nil {
		if invalidJob(err) {
			return map[taskKey]slurmTask{}, nil // every job has left the controller
		}
		return nil, err
	}
	return parseSqueue(out), nil
}

// invalidJob reports whether a squeue or scontrol error means that the controller does
// not know the job (any more).
func invalidJob(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Invalid job id")
}

// parseSqueue parses squeue --array --format=%F|%K|%T|%r|%N.
func parseSqueue(out []byte) map[taskKey]slurmTask {
	tasks := make(map[taskKey]slurmTask)
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 5 {
			continue
		}
		reason := f[3]
		if reason == "None" {
			reason = ""
		}
		for _, i := range expandIndices(f[1]) {
			tasks[taskKey{f[0], i}] = slurmTask{state: f[2], reason: reason, node: f[4], source: "squeue"}
		}
	}
	return tasks
}

func (s *Slurm) scontrolAll(ctx context.Context, ids []string) map[taskKey]slurmTask {
	tasks := make(map[taskKey]slurmTask)
	for _, id := range ids {
		out, err := s.run(ctx, s.cmd(s.Scontrol, "scontrol"), "show", "job", "--oneliner", id)
		if err != nil {
			continue // forgotten (Invalid job id) or unreachable: the next sources decide
		}
		for k, t := range parseScontrol(out) {
			tasks[k] = t
		}
	}
	return tasks
}

// parseScontrol parses `scontrol show job --oneliner`: one record per line, KEY=VALUE
// fields separated by spaces. Records of array jobs carry ArrayJobId and ArrayTaskId (a
// single index, or a range such as "3-5%2" for tasks still pending together).
func parseScontrol(out []byte) map[taskKey]slurmTask {
	tasks := make(map[taskKey]slurmTask)
	for line := range strings.Lines(string(out)) {
		rec := scontrolFields(line)
		job, ok := rec["ArrayJobId"]
		if !ok {
			continue
		}
		exit, sig := parseExitCode(rec["ExitCode"])
		node := rec["NodeList"]
		if node == "(null)" {
			node = ""
		}
		reason := rec["Reason"]
		if reason == "None" {
			reason = ""
		}
		for _, i := range expandIndices(rec["ArrayTaskId"]) {
			tasks[taskKey{job, i}] = slurmTask{state: rec["JobState"], reason: reason, node: node,
				exit: exit, signal: sig, source: "scontrol"}
		}
	}
	return tasks
}

// scontrolFields splits one scontrol record into its fields. A word without "=" belongs to
// the value before it (values such as Command or Comment may hold spaces).
func scontrolFields(line string) map[string]string {
	rec := make(map[string]string)
	last := ""
	for _, w := range strings.Fields(line) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			if last != "" {
				rec[last] += " " + w
			}
			continue
		}
		if _, dup := rec[k]; !dup {
			rec[k] = v
		}
		last = k
	}
	return rec
}

func (s *Slurm) sacct(ctx context.Context, ids []string) map[taskKey]slurmTask {
	tasks := make(map[taskKey]slurmTask)
	out, err := s.run(ctx, s.cmd(s.Sacct, "sacct"), "--noheader", "--parsable2", "--allocations",
		"--jobs="+strings.Join(ids, ","), "--format=JobID,State,ExitCode,NodeList")
	if err != nil {
		return tasks // no accounting on this cluster: scontrol and the store decide
	}
	return parseSacct(out)
}

// parseSacct parses sacct --parsable2 --format=JobID,State,ExitCode,NodeList, keeping the
// lines of array tasks ("1234_5") that have ended. Live states are left to the controller
// (squeue): the accounting database may lag behind it.
func parseSacct(out []byte) map[taskKey]slurmTask {
	tasks := make(map[taskKey]slurmTask)
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 4 {
			continue
		}
		job, idx, ok := strings.Cut(f[0], "_")
		if !ok {
			continue
		}
		exit, sig := parseExitCode(f[2])
		if !mapSlurmState(f[1], exit).Final() {
			continue
		}
		node := f[3]
		if node == "None assigned" {
			node = ""
		}
		for _, i := range expandIndices(strings.Trim(idx, "[]")) {
			tasks[taskKey{job, i}] = slurmTask{state: f[1], node: node, exit: exit, signal: sig, source: "sacct"}
		}
	}
	return tasks
}

// parseExitCode parses Slurm's "code:signal".
func parseExitCode(s string) (code, signal int) {
	c, sig, _ := strings.Cut(s, ":")
	code, _ = strconv.Atoi(c)
	signal, _ = strconv.Atoi(sig)
	return code, signal
}

// expandIndices expands an array index list such as "3", "0-2", "1,4-6%2" or "[0-3]".
// Anything it cannot read gives no indices.
func expandIndices(spec string) []int {
	spec, _, _ = strings.Cut(strings.Trim(spec, "[]"), "%")
	var idx []int
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1_000_000 {
				return nil
			}
		}
		for i := a; i <= b; i++ {
			idx = append(idx, i)
		}
	}
	return idx
}

// Settle records in the store what the children of ended tasks could not: for a run that
// recorded its own failure, the exit code and log tail that only the task's parent (here,
// Slurm) knows, as the local executor adds them; a task that
// Slurm ended while its run's status.json still says running (killed by SIGKILL after
// KillWait, out of memory, node failure) is recorded interrupted if it was cancelled,
// timed out or preempted (it resumes from its last checkpoint), and failed otherwise; a
// task that failed before its child began (status.json still pending) is recorded failed,
// with an attempt counted, so that a task that cannot even start is not resubmitted
// forever. A cancelled task that never started is left pending, which is what it is. The
// log tail comes from the task's Slurm output file.
//
// Call it with the result of Status; tasks from the store (Source "store"), tasks that
// are pending or running, and tasks that completed (exit 0: the run recorded done itself;
// if the store says otherwise now, the run was reset after the task, which says nothing of
// the run's state) are left alone. It returns the hashes whose status it wrote.
func (s *Slurm) Settle(tasks map[string]Task) ([]string, error) {
	st := &store.Store{Root: s.StoreRoot}
	var (
		changed []string
		errs    []error
	)
	for h, t := range tasks {
		if !t.State.Final() || t.Source == "store" || t.State == TaskSkipped || t.State == TaskDone {
			continue
		}
		cur, err := st.ReadStatus(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur.State == store.Failed && t.State == TaskFailed && (cur.ExitCode == 0 || cur.LogTail == "") {
			// The run recorded its failure itself; add what only the parent has.
			before := cur
			if cur.ExitCode == 0 {
				cur.ExitCode = t.ExitCode
			}
			if cur.LogTail == "" {
				cur.LogTail = fileTail(t.Log, tailLines)
			}
			if cur.ExitCode == before.ExitCode && cur.LogTail == before.LogTail {
				continue
			}
			if err := st.WriteStatus(h, cur); err != nil {
				errs = append(errs, err)
				continue
			}
			changed = append(changed, h)
			continue
		}
		if cur.State.Final() || (cur.State == store.Pending && t.State == TaskCancelled) {
			continue
		}
		want := store.Failed
		if cur.State == store.Running && (t.State == TaskCancelled || t.State == TaskInterrupted) {
			want = store.Interrupted
		}
		if cur.State == store.Pending {
			cur = store.Status{Attempts: cur.Attempts + 1, Epoch: cur.Epoch, Epochs: cur.Epochs, Host: t.Node}
		}
		cur.State = want
		cur.Reason = t.describe()
		cur.ExitCode = t.ExitCode
		cur.Signal = ""
		if t.Signal != 0 {
			cur.Signal = "signal " + strconv.Itoa(t.Signal)
		}
		cur.Finished = time.Now().UTC()
		if !cur.Started.IsZero() {
			cur.WallSeconds = cur.Finished.Sub(cur.Started).Seconds()
		}
		cur.LogTail = fileTail(t.Log, tailLines)
		if err := st.WriteStatus(h, cur); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = append(changed, h)
	}
	return changed, errors.Join(errs...)
}

// describe says in one line how Slurm ended the task, for status.json's reason.
func (t Task) describe() string {
	msg := fmt.Sprintf("slurm task %s_%d ended %s", t.JobID, t.Index, t.SlurmState)
	if t.ExitCode != 0 || t.Signal != 0 {
		msg += fmt.Sprintf(" (exit code %d, signal %d)", t.ExitCode, t.Signal)
	}
	if t.Reason != "" {
		msg += ", " + t.Reason
	}
	return msg + " before the run recorded an end; log " + t.Log
}

// fileTail returns the last n lines of a file, "" if it cannot be read.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	t := newTail(n)
	_, _ = t.Write(data)
	return t.String()
}
