package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// fakeChildEnv makes the test binary act as `runner _run-one` (see TestMain and fakeChild).
const fakeChildEnv = "DDPMLAB_FAKE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(fakeChildEnv) == "1" {
		os.Exit(fakeChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeChild behaves like `runner _run-one --store DIR HASH`; what it does is the run's
// config.toml, one word:
//
//	ok, slow     succeed (slow takes 300 ms), recording its start and end in span
//	fail         record failed with a reason and exit 1 (fail-late: after 300 ms)
//	fatal        exit 1 without recording an end, like log.Fatal
//	crash        write 50 lines to stderr and exit 2 without recording an end
//	crash-early  exit 2 before taking the lock
//	panic        panic
//	sleep        wait for SIGINT, record interrupted, exit 3
//	ignore       ignore SIGINT; only SIGKILL ends it
//	flaky        fail the first attempt, succeed the next
func fakeChild(args []string) int {
	if len(args) != 4 || args[0] != "_run-one" || args[1] != "--store" {
		fmt.Fprintf(os.Stderr, "fake child: bad arguments %q\n", args)
		return 2
	}
	s, hash := &store.Store{Root: args[2]}, args[3]
	cfg, err := os.ReadFile(s.Path(hash, store.ConfigFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mode := strings.TrimSpace(string(cfg))
	if mode == "crash-early" {
		fmt.Fprintln(os.Stderr, "cannot load libtorch")
		os.Exit(2)
	}
	l, err := s.Lock(hash)
	if store.IsAlreadyLocked(err) {
		fmt.Fprintln(os.Stderr, err)
		return ExitLocked
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitFailed
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if mode == "ignore" {
		signal.Ignore(os.Interrupt)
	}
	start := time.Now()
	if _, err := s.Begin(hash, 0, 2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitFailed
	}
	_ = os.WriteFile(filepath.Join(s.RunDir(hash), "threads"), []byte(os.Getenv("DDPMLAB_THREADS")), 0o644)
	_ = os.WriteFile(filepath.Join(s.RunDir(hash), "tunables"), []byte(os.Getenv("GLIBC_TUNABLES")), 0o644)
	fmt.Printf(`{"epoch":1,"epochs":2,"step":10,"loss":0.5,"images_per_sec":90,"eta_seconds":1}` + "\n")
	fmt.Println("not json")

	finish := func(state store.State, reason string, code int) int {
		st, err := s.Finish(hash, state, reason)
		if err == nil && code != 0 {
			st.ExitCode = code
			err = s.WriteStatus(hash, st)
		}
		if err == nil {
			err = l.Unlock()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return ExitFailed
		}
		return code
	}
	switch mode {
	case "ok", "slow":
		if mode == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		span := fmt.Sprintf("%d %d", start.UnixNano(), time.Now().UnixNano())
		_ = os.WriteFile(filepath.Join(s.RunDir(hash), "span"), []byte(span), 0o644)
		return finish(store.Done, "", ExitDone)
	case "fail", "fail-late":
		if mode == "fail-late" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintln(os.Stderr, "training: loss became NaN at step 10")
		return finish(store.Failed, "loss became NaN at step 10", ExitFailed)
	case "fatal":
		fmt.Fprintln(os.Stderr, "2025/01/01 00:00:00 tensor error: out of memory")
		os.Exit(1)
	case "crash":
		for i := range 50 {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		os.Exit(2)
	case "panic":
		panic("boom")
	case "sleep":
		<-sigs
		return finish(store.Interrupted, "interrupted at step 10; checkpoint written", ExitInterrupted)
	case "ignore":
		time.Sleep(time.Hour)
	case "flaky":
		marker := filepath.Join(s.RunDir(hash), "flaky-marker")
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			return finish(store.Failed, "first attempt fails", ExitFailed)
		}
		return finish(store.Done, "", ExitDone)
	}
	fmt.Fprintf(os.Stderr, "fake child: unknown mode %q\n", mode)
	return 2
}

// newRuns creates one run per mode and returns the jobs, labelled by mode.
func newRuns(t *testing.T, s *store.Store, modes ...string) []Job {
	t.Helper()
	jobs := make([]Job, len(modes))
	for i, mode := range modes {
		canon := fmt.Sprintf(`{"mode":%q,"i":%d,"test":%q}`, mode, i, t.Name())
		sum := sha256.Sum256([]byte(canon))
		h := hex.EncodeToString(sum[:])
		if _, err := s.Create(h, []byte(mode+"\n"), []byte(canon)); err != nil {
			t.Fatal(err)
		}
		jobs[i] = Job{Hash: h, Label: fmt.Sprintf("%s#%d", mode, i)}
	}
	return jobs
}

func newLocal(t *testing.T, jobs int) *Local {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	return &Local{Store: s, Env: []string{fakeChildEnv + "=1"}, Jobs: jobs, Threads: 1, Cores: 8, Grace: 5 * time.Second}
}

// recorder collects events and tracks how many children run at once.
type recorder struct {
	mu               sync.Mutex
	events           []Event
	running, maxLive int
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	switch e.Kind {
	case Started:
		r.running++
		r.maxLive = max(r.maxLive, r.running)
	case Finished:
		r.running--
	}
}

func (r *recorder) count(kind EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func status(t *testing.T, s *store.Store, h string) store.Status {
	t.Helper()
	st, err := s.ReadStatus(h)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFailureIsolation(t *testing.T) {
	l := newLocal(t, 2)
	jobs := newRuns(t, l.Store, "ok", "crash", "fail", "fatal", "panic", "crash-early", "ok")
	var rec recorder
	l.OnEvent = rec.on
	res, err := l.Run(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 2 || res.Failed != 5 || len(res.Runs) != len(jobs) {
		t.Fatalf("result %+v; want 2 done, 5 failed", res)
	}

	for _, tc := range []struct {
		job                  Job
		exitCode             int
		reason, tail, noTail string
		attempts             int
	}{
		{job: jobs[1], exitCode: 2, reason: "exited with status 2", tail: "line 49\n", noTail: "line 9\n", attempts: 1},
		{job: jobs[2], exitCode: 1, reason: "loss became NaN at step 10", tail: "loss became NaN", attempts: 1},
		{job: jobs[3], exitCode: 1, reason: "exited with status 1", tail: "out of memory", attempts: 1},
		{job: jobs[4], exitCode: 2, reason: "exited with status 2", tail: "panic: boom", attempts: 1},
		{job: jobs[5], exitCode: 2, reason: "exited with status 2", tail: "cannot load libtorch", attempts: 1},
	} {
		t.Run(tc.job.Label, func(t *testing.T) {
			st := status(t, l.Store, tc.job.Hash)
			if st.State != store.Failed || st.ExitCode != tc.exitCode || st.Reason != tc.reason || st.Attempts != tc.attempts {
				t.Errorf("status %+v; want failed, exit %d, reason %q, %d attempt", st, tc.exitCode, tc.reason, tc.attempts)
			}
			if !strings.Contains(st.LogTail, tc.tail) || (tc.noTail != "" && strings.Contains(st.LogTail, tc.noTail)) {
				t.Errorf("log_tail %q; want it to contain %q and not %q", st.LogTail, tc.tail, tc.noTail)
			}
			if st.Finished.IsZero() || st.WallSeconds <= 0 {
				t.Errorf("status %+v lacks finish time or wall seconds", st)
			}
			if rr := res.Runs[tc.job.Hash]; rr.Outcome != OutcomeFailed || rr.Message != tc.reason {
				t.Errorf("result %+v", rr)
			}
			log, _ := os.ReadFile(l.Store.Path(tc.job.Hash, store.StderrFile))
			if !strings.Contains(string(log), tc.tail) || !strings.Contains(string(log), "=== ") {
				t.Errorf("stderr.log lacks %q:\n%s", tc.tail, log)
			}
		})
	}
	for _, job := range []Job{jobs[0], jobs[6]} {
		if st := status(t, l.Store, job.Hash); st.State != store.Done || st.Attempts != 1 {
			t.Errorf("%s: status %+v, want done", job.Label, st)
		}
		if got, _ := os.ReadFile(filepath.Join(l.Store.RunDir(job.Hash), "threads")); string(got) != "1" {
			t.Errorf("child saw DDPMLAB_THREADS=%q, want 1", got)
		}
		want := MallocTunables
		if v, ok := os.LookupEnv("GLIBC_TUNABLES"); ok { // the user's setting wins
			want = v
		}
		if got, _ := os.ReadFile(filepath.Join(l.Store.RunDir(job.Hash), "tunables")); string(got) != want {
			t.Errorf("child saw GLIBC_TUNABLES=%q, want %q", got, want)
		}
	}
	if n := rec.count(Started); n != len(jobs) {
		t.Errorf("%d Started events, want %d", n, len(jobs))
	}
	var progress []Event
	for _, e := range rec.events {
		if e.Kind == Progress {
			progress = append(progress, e)
		}
	}
	if len(progress) == 0 || progress[0].Progress == nil || progress[0].Progress.Step != 10 || progress[0].Progress.ImagesPerSec != 90 {
		t.Errorf("first progress event %+v", progress)
	}
	if !slices.ContainsFunc(progress, func(e Event) bool { return e.Line == "not json" && e.Progress == nil }) {
		t.Error("a non-JSON stdout line was not forwarded as a raw Progress line")
	}
}

// TestJobsLimit checks that no more than Jobs children run at once, both as the pool sees
// it and as the children record it.
func TestJobsLimit(t *testing.T) {
	l := newLocal(t, 2)
	jobs := newRuns(t, l.Store, "slow", "slow", "slow", "slow", "slow")
	var rec recorder
	l.OnEvent = rec.on
	res, err := l.Run(context.Background(), jobs)
	if err != nil || res.Done != len(jobs) {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if rec.maxLive > 2 {
		t.Errorf("%d children at once, want at most 2", rec.maxLive)
	}
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, j := range jobs {
		raw, err := os.ReadFile(filepath.Join(l.Store.RunDir(j.Hash), "span"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(raw))
		start, _ := strconv.ParseInt(f[0], 10, 64)
		end, _ := strconv.ParseInt(f[1], 10, 64)
		edges = append(edges, edge{start, +1}, edge{end, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta // ends before starts at the same instant
	})
	live, most := 0, 0
	for _, e := range edges {
		live += e.delta
		most = max(most, live)
	}
	if most > 2 {
		t.Errorf("children recorded %d overlapping runs, want at most 2", most)
	}
}

// cancelAfter returns an OnEvent that cancels once n Progress events with a parsed record
// arrived, i.e. n children are running and handle SIGINT.
func cancelAfter(rec *recorder, n int, cancel context.CancelFunc) func(Event) {
	seen := 0
	return func(e Event) {
		rec.on(e)
		if e.Kind == Progress && e.Progress != nil {
			if seen++; seen == n {
				cancel()
			}
		}
	}
}

func TestCancel(t *testing.T) {
	l := newLocal(t, 2)
	jobs := newRuns(t, l.Store, "sleep", "sleep", "sleep", "sleep")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec recorder
	l.OnEvent = cancelAfter(&rec, 2, cancel)
	res, err := l.Run(ctx, jobs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if res.Interrupted != 2 || res.NotStarted != 2 {
		t.Fatalf("result %+v; want 2 interrupted, 2 not started", res)
	}
	for _, j := range jobs {
		st := status(t, l.Store, j.Hash)
		switch res.Runs[j.Hash].Outcome {
		case OutcomeInterrupted:
			if st.State != store.Interrupted || !strings.Contains(st.Reason, "checkpoint written") {
				t.Errorf("%s: status %+v, want interrupted by the child", j.Label, st)
			}
			if _, err := l.Store.ReadLock(j.Hash); err == nil {
				t.Errorf("%s: lock left behind", j.Label)
			}
		case OutcomeNotStarted:
			if st.State != store.Pending || st.Attempts != 0 {
				t.Errorf("%s: status %+v, want untouched pending", j.Label, st)
			}
		}
	}
	if rec.count(Started) != 2 {
		t.Errorf("%d children started, want 2", rec.count(Started))
	}
}

func TestCancelKillsAfterGrace(t *testing.T) {
	l := newLocal(t, 1)
	l.Grace = 300 * time.Millisecond
	jobs := newRuns(t, l.Store, "ignore")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec recorder
	l.OnEvent = cancelAfter(&rec, 1, cancel)
	res, err := l.Run(ctx, jobs)
	if !errors.Is(err, context.Canceled) || res.Interrupted != 1 {
		t.Fatalf("Run = %+v, %v; want 1 interrupted", res, err)
	}
	st := status(t, l.Store, jobs[0].Hash)
	if st.State != store.Interrupted || st.Signal != "SIGKILL" || !strings.Contains(st.Reason, "killed") {
		t.Errorf("status %+v; want interrupted, killed by SIGKILL", st)
	}
}

func TestFailFast(t *testing.T) {
	l := newLocal(t, 2)
	l.FailFast = true
	jobs := newRuns(t, l.Store, "fail-late", "sleep", "ok", "ok")
	res, err := l.Run(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Interrupted != 1 || res.NotStarted != 2 || res.Done != 0 {
		t.Fatalf("result %+v; want 1 failed, 1 interrupted, 2 not started", res)
	}
	if st := status(t, l.Store, jobs[1].Hash); st.State != store.Interrupted {
		t.Errorf("running job: status %+v, want interrupted", st)
	}
	for _, j := range jobs[2:] {
		if st := status(t, l.Store, j.Hash); st.State != store.Pending {
			t.Errorf("%s: status %+v, want pending", j.Label, st)
		}
	}
}

func TestRetry(t *testing.T) {
	l := newLocal(t, 2)
	l.Retry = 1
	jobs := newRuns(t, l.Store, "flaky", "crash")
	var rec recorder
	l.OnEvent = rec.on
	res, err := l.Run(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	if rr := res.Runs[jobs[0].Hash]; rr.Outcome != OutcomeDone || rr.Attempts != 2 || rr.Status.Attempts != 2 {
		t.Errorf("flaky: %+v; want done after 2 attempts", rr)
	}
	// The crash leaves a stale lock behind; the retry takes it over and crashes again.
	if rr := res.Runs[jobs[1].Hash]; rr.Outcome != OutcomeFailed || rr.Attempts != 2 || rr.Status.Attempts != 2 {
		t.Errorf("crash: %+v; want failed after 2 attempts", rr)
	}
	retrying := 0
	for _, e := range rec.events {
		if e.Kind == Finished && e.Retrying {
			retrying++
		}
	}
	if retrying != 2 {
		t.Errorf("%d Finished events announced a retry, want 2", retrying)
	}
}

func TestLockedElsewhere(t *testing.T) {
	l := newLocal(t, 1)
	jobs := newRuns(t, l.Store, "ok")
	lock, err := l.Store.Lock(jobs[0].Hash) // this (live) test process holds it
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	res, err := l.Run(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	rr := res.Runs[jobs[0].Hash]
	if res.Skipped != 1 || rr.Outcome != OutcomeSkipped || !strings.Contains(rr.Message, "locked") {
		t.Fatalf("result %+v; want skipped, locked", rr)
	}
	if st := status(t, l.Store, jobs[0].Hash); st.State != store.Pending {
		t.Errorf("status %+v; a skipped run's status must be untouched", st)
	}
}

func TestOptions(t *testing.T) {
	l := newLocal(t, 4)
	l.Threads, l.Cores = 2, 4
	if _, err := l.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "needs 8 cores") {
		t.Errorf("4 jobs × 2 threads on 4 cores: %v", err)
	}
	l.Jobs = 0
	if _, err := l.Run(context.Background(), nil); err == nil {
		t.Error("0 jobs accepted")
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct{ cores, jobs, wantJobs, wantThreads int }{
		{cores: 2, jobs: 1, wantJobs: 1, wantThreads: 2},
		{cores: 2, jobs: 2, wantJobs: 2, wantThreads: 1},
		{cores: 2, jobs: 8, wantJobs: 2, wantThreads: 1},
		{cores: 16, jobs: 3, wantJobs: 3, wantThreads: 5},
		{cores: 16, jobs: 0, wantJobs: 1, wantThreads: 16},
	} {
		t.Run(fmt.Sprintf("%d cores %d jobs", tc.cores, tc.jobs), func(t *testing.T) {
			j, th := Plan(tc.cores, tc.jobs)
			if j != tc.wantJobs || th != tc.wantThreads || j*th > tc.cores {
				t.Errorf("Plan = %d jobs × %d threads, want %d × %d", j, th, tc.wantJobs, tc.wantThreads)
			}
		})
	}
}

func TestLines(t *testing.T) {
	tl := newTail(3)
	for _, chunk := range []string{"a\nb", "\nc\n", "d\ne", "\r\nf"} {
		_, _ = tl.Write([]byte(chunk))
	}
	if got := tl.String(); got != "d\ne\nf\n" {
		t.Errorf("tail = %q", got)
	}
	if got := lastLine("x\ny\n\n"); got != "y" {
		t.Errorf("lastLine = %q", got)
	}
}
