package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// newRun creates a run whose canonical.json is body and returns its hash.
func newRun(t *testing.T, s *Store, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	h := hex.EncodeToString(sum[:])
	if _, err := s.Create(h, []byte("# "+h+"\n"), []byte(body)); err != nil {
		t.Fatal(err)
	}
	return h
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

func TestCreate(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"a":1}`)
	st, err := s.ReadStatus(h)
	if err != nil || st.State != Pending {
		t.Fatalf("status %+v, %v; want pending", st, err)
	}
	created, err := s.Create(h, []byte("other toml"), []byte(`{"a":1}`))
	if err != nil || created {
		t.Fatalf("second Create = %v, %v; want false, nil", created, err)
	}
	// Same hash, different bytes: simulate a corrupted canonical.json.
	if err := durable.WriteFile(s.Path(h, CanonicalFile), []byte(`{"a":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(h, nil, []byte(`{"a":1}`)); err == nil || !strings.Contains(err.Error(), "collision") {
		t.Fatalf("Create over a different canonical.json: %v", err)
	}
	if _, err := s.Create(strings.Repeat("0", 64), nil, []byte(`{}`)); err == nil {
		t.Fatal("Create accepted canonical bytes that do not hash to the hash")
	}
	if _, err := s.Create("abc", nil, nil); err == nil {
		t.Fatal("Create accepted a short hash")
	}
}

func TestCreateConcurrent(t *testing.T) {
	s := openTemp(t)
	body := []byte(`{"x":"concurrent"}`)
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for range 8 {
		wg.Go(func() {
			ok, err := s.Create(h, []byte("toml"), body)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d Creates reported created, want 1", created)
	}
	if tmp, _ := filepath.Glob(filepath.Join(s.Root, ".create-*")); len(tmp) > 0 {
		t.Errorf("temporary folders left: %v", tmp)
	}
}

func TestResolve(t *testing.T) {
	s := openTemp(t)
	var hashes []string
	for i := range 40 {
		hashes = append(hashes, newRun(t, s, fmt.Sprintf(`{"i":%d}`, i)))
	}
	got, err := s.Hashes()
	if err != nil || len(got) != len(hashes) {
		t.Fatalf("Hashes: %d, %v; want %d", len(got), err, len(hashes))
	}
	h := hashes[7]
	for _, p := range []string{h, h[:12], strings.ToUpper(h[:20])} {
		if r, err := s.Resolve(p); err != nil || r != h {
			t.Errorf("Resolve(%q) = %q, %v; want %q", p, r, err, h)
		}
	}
	for _, tc := range []struct {
		name, prefix, want string
	}{
		{"too short", "abc", "invalid run prefix"},
		{"not hex", "zzzz", "invalid run prefix"},
		{"unknown", unknownPrefix(hashes), "no such run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Resolve(tc.prefix); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve(%q) error %v, want %q", tc.prefix, err, tc.want)
			}
		})
	}
	if _, err := s.Resolve(unknownPrefix(hashes)); !errors.Is(err, ErrNoRun) {
		t.Errorf("unknown prefix error %v does not wrap ErrNoRun", err)
	}

	// Ambiguity: two run folders sharing a 6-digit prefix (Resolve reads folder names only).
	a, b := "abcdef"+strings.Repeat("0", 58), "abcdef"+strings.Repeat("1", 58)
	for _, h := range []string{a, b} {
		if err := os.Mkdir(s.RunDir(h), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Resolve("ABCD")
	var amb *AmbiguousError
	if !errors.As(err, &amb) || !reflect.DeepEqual(amb.Candidates, []string{a, b}) ||
		!strings.Contains(err.Error(), Short(a)) || !strings.Contains(err.Error(), Short(b)) {
		t.Fatalf("Resolve(ABCD) = %v; want an AmbiguousError listing %s and %s", err, Short(a), Short(b))
	}
	if r, err := s.Resolve(a[:7]); err != nil || r != a {
		t.Errorf("Resolve(%q) = %q, %v", a[:7], r, err)
	}
}

func unknownPrefix(hashes []string) string {
	for i := 0; ; i++ {
		p := fmt.Sprintf("%04x", i)
		used := false
		for _, h := range hashes {
			used = used || strings.HasPrefix(h, p)
		}
		if !used {
			return p
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"status":1}`)
	want := Status{
		State: Failed, Reason: "loss became NaN at step 312", ExitCode: 1, Attempts: 2,
		Host: "node1", PID: 123, Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Finished: time.Date(2025, 1, 2, 3, 5, 5, 0, time.UTC), WallSeconds: 60, Epoch: 3, Epochs: 20,
		LogTail: "a\nb\n",
	}
	if err := s.WriteStatus(h, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadStatus(h)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadStatus = %+v, %v; want %+v", got, err, want)
	}
	raw, _ := os.ReadFile(s.Path(h, StatusFile))
	for _, key := range []string{`"state": "failed"`, `"exit_code": 1`, `"started": "2025-01-02T03:04:05Z"`, `"log_tail"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("status.json lacks %s:\n%s", key, raw)
		}
	}

	st, err := s.Begin(h, 3, 20)
	if err != nil || st.State != Running || st.Attempts != 3 || st.PID != os.Getpid() || st.Reason != "" {
		t.Fatalf("Begin = %+v, %v", st, err)
	}
	st, err = s.Finish(h, Done, "")
	if err != nil || st.State != Done || st.Finished.IsZero() || st.Attempts != 3 {
		t.Fatalf("Finish = %+v, %v", st, err)
	}
	if err := s.WriteStatus(h, Status{State: "bogus"}); err == nil {
		t.Error("WriteStatus accepted an unknown state")
	}
	if _, err := s.ReadStatus(strings.Repeat("f", 64)); !errors.Is(err, ErrNoRun) {
		t.Errorf("ReadStatus of a missing run: %v, want ErrNoRun", err)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	s := openTemp(t)
	h1, h2 := newRun(t, s, `{"lr":1}`), newRun(t, s, `{"lr":2}`)
	want := Manifest{
		Name: "learning_rate", File: "experiments/learning_rate.toml", Scale: "quick",
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), VariedKeys: []string{"train.lr"},
		Runs: []ManifestRun{{Hash: h1, Varied: map[string]string{"train.lr": "0.0002"}},
			{Hash: h2, Varied: map[string]string{"train.lr": "0.001"}}},
	}
	if err := s.WriteManifest(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadManifest("learning_rate")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadManifest = %+v, %v", got, err)
	}
	// A rerun of the sweep overwrites its manifest.
	want.Runs = want.Runs[:1]
	if err := s.WriteManifest(want); err != nil {
		t.Fatal(err)
	}
	other := Manifest{Name: "batch", Runs: []ManifestRun{{Hash: h2}}}
	if err := s.WriteManifest(other); err != nil {
		t.Fatal(err)
	}
	all, err := s.Manifests()
	if err != nil || len(all) != 2 || all[0].Name != "batch" || len(all[1].Runs) != 1 {
		t.Fatalf("Manifests = %+v, %v", all, err)
	}
	if _, err := s.ReadManifest("nope"); !errors.Is(err, ErrNoSweep) || !strings.Contains(err.Error(), "learning_rate") {
		t.Errorf("unknown sweep: %v", err)
	}
	for _, bad := range []string{"", "../x", ".hidden"} {
		if err := s.WriteManifest(Manifest{Name: bad}); err == nil {
			t.Errorf("WriteManifest accepted name %q", bad)
		}
	}
	if err := s.WriteManifest(Manifest{Name: "x", Runs: []ManifestRun{{Hash: "abcd"}}}); err == nil {
		t.Error("WriteManifest accepted a short hash")
	}

	// List by sweep and state.
	if _, err := s.Finish(h1, Failed, "boom"); err != nil {
		t.Fatal(err)
	}
	runs, err := s.List(Filter{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("List() = %d runs, %v", len(runs), err)
	}
	runs, err = s.List(Filter{Sweep: "learning_rate", States: []State{Failed}})
	if err != nil || len(runs) != 1 || runs[0].Hash != h1 || runs[0].Varied["train.lr"] != "0.0002" ||
		runs[0].Summary != nil || !strings.Contains(string(runs[0].Config), h1) {
		t.Fatalf("List(sweep, failed) = %+v, %v", runs, err)
	}
	runs, err = s.List(Filter{States: []State{Done}})
	if err != nil || len(runs) != 0 {
		t.Fatalf("List(done) = %+v, %v", runs, err)
	}
}

func TestSummaryAndMetrics(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"m":1}`)
	if _, err := s.ReadSummary(h); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadSummary before it exists: %v", err)
	}
	fd := 12.3
	want := Summary{FinalLoss: 0.031, Weights: "ema", Sampler: "ddpm", SampleSteps: 1000, Metrics: Metrics{FD: &fd}}
	if err := s.WriteSummary(h, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadSummary(h)
	if err != nil || !reflect.DeepEqual(got, want) || got.Metrics.Recognizable != nil {
		t.Fatalf("ReadSummary = %+v, %v", got, err)
	}
	raw, _ := os.ReadFile(s.Path(h, SummaryFile))
	if strings.Contains(string(raw), "recognizable") {
		t.Errorf("absent metric written:\n%s", raw)
	}

	loss := []LossRow{{1, 1, 0.5}, {2, 1, 0.25}, {3, 2, math.SmallestNonzeroFloat64}}
	if err := s.WriteLoss(h, loss); err != nil {
		t.Fatal(err)
	}
	if rows, err := s.ReadLoss(h); err != nil || !reflect.DeepEqual(rows, loss) {
		t.Fatalf("ReadLoss = %v, %v", rows, err)
	}
	epochs := []EpochRow{{1, 0.4, 10.5, 95.1}, {2, 0.3, 10, 96}}
	if err := s.WriteEpochs(h, epochs); err != nil {
		t.Fatal(err)
	}
	if rows, err := s.ReadEpochs(h); err != nil || !reflect.DeepEqual(rows, epochs) {
		t.Fatalf("ReadEpochs = %v, %v", rows, err)
	}

	for _, tc := range []struct{ name, body, want string }{
		{"bad header", "step,loss\n1,2\n", "loss.csv:1: header"},
		{"bad number", "step,epoch,loss\n1,1,0.5\n2,1,abc\n", `loss.csv:3: column 3: "abc" is not a number`},
		{"short row", "step,epoch,loss\n1,1\n", "loss.csv:2: 2 fields, want 3"},
		{"empty", "", "empty file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := durable.WriteFile(s.Path(h, LossFile), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadLoss(h); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadLoss error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := s.ReadLoss(strings.Repeat("e", 64)); !errors.Is(err, ErrNoRun) {
		t.Errorf("ReadLoss of a missing run: %v", err)
	}
}

func TestLockGoroutines(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"lock":1}`)
	for round := range 5 {
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			won    []*Lock
			locked int
		)
		for range 16 {
			wg.Go(func() {
				l, err := s.Lock(h)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, l)
				case IsAlreadyLocked(err):
					locked++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(won) != 1 || locked != 15 {
			t.Fatalf("round %d: %d won, %d already locked; want 1 and 15", round, len(won), locked)
		}
		if err := won[0].Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	if tmp := leftovers(t, s.RunDir(h)); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestLockHeldError(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"lock":2}`)
	l, err := s.Lock(h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Lock(h)
	var ale *AlreadyLockedError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &ale) || ale.Holder.PID != os.Getpid() {
		t.Fatalf("second Lock: %v; want an AlreadyLockedError naming this process", err)
	}
	if !strings.Contains(err.Error(), Short(h)) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Errorf("error %q lacks the run or the pid", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadLock(h); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file still there after Unlock: %v", err)
	}

	// A lock from another host cannot be checked and is assumed live.
	other := LockInfo{Host: "elsewhere.invalid", PID: 1, Time: time.Now().UTC()}
	if err := WriteJSON(s.Path(h, LockFile), other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(h); !IsAlreadyLocked(err) {
		t.Fatalf("lock held on another host: %v", err)
	}
}

func TestLockStale(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"lock":3}`)
	// A process that has exited: its PID is dead (and, so soon, not reused).
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	dead := LockInfo{Host: host, PID: cmd.Process.Pid, Time: time.Now().Add(-time.Hour).UTC()}
	if err := WriteJSON(s.Path(h, LockFile), dead); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(h)
	if err != nil {
		t.Fatalf("Lock over a stale lock: %v", err)
	}
	if l.Stale == nil || !l.Stale.Equal(dead) {
		t.Errorf("Stale = %v, want %v", l.Stale, dead)
	}
	if cur, err := s.ReadLock(h); err != nil || cur.PID != os.Getpid() {
		t.Errorf("lock file holds %v, %v; want this process", cur, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// lockChildEnv makes the test binary act as a lock contender (see TestMain).
const lockChildEnv = "DDPMLAB_STORE_LOCK_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(lockChildEnv); spec != "" {
		os.Exit(lockChild(spec))
	}
	os.Exit(m.Run())
}

// lockChild waits for "go" on stdin, tries the lock, prints "won" or "locked", and holds
// a won lock until stdin closes.
func lockChild(spec string) int {
	root, hash, _ := strings.Cut(spec, ":")
	s := &Store{Root: root}
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := s.Lock(hash)
	switch {
	case err == nil:
		fmt.Println("won")
		_, _ = io.Copy(io.Discard, in)
		if err := l.Unlock(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	case IsAlreadyLocked(err):
		fmt.Println("locked")
	default:
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// TestLockProcesses races several processes for one run's lock: exactly one wins each round.
func TestLockProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s := openTemp(t)
	h := newRun(t, s, `{"lock":4}`)
	const procs, rounds = 3, 4
	for round := range rounds {
		type child struct {
			cmd *exec.Cmd
			in  io.WriteCloser
			out *bufio.Reader
		}
		children := make([]child, procs)
		for i := range children {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), lockChildEnv+"="+s.Root+":"+h)
			cmd.Stderr = os.Stderr
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			children[i] = child{cmd, in, bufio.NewReader(out)}
		}
		for _, c := range children {
			fmt.Fprintln(c.in, "go")
		}
		won := 0
		for _, c := range children {
			line, err := c.out.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: child: %v", round, err)
			}
			if strings.TrimSpace(line) == "won" {
				won++
			}
		}
		for _, c := range children {
			_ = c.in.Close()
			if err := c.cmd.Wait(); err != nil {
				t.Fatalf("round %d: child: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d processes won the lock, want 1", round, won)
		}
	}
}

// TestInfoAbandoned checks that a run marked running counts as abandoned exactly when no live
// process holds its lock: unlocked, locked by this process, locked by a dead one.
func TestInfoAbandoned(t *testing.T) {
	s := openTemp(t)
	h := newRun(t, s, `{"abandoned":1}`)
	if err := s.WriteStatus(h, Status{State: Running}); err != nil {
		t.Fatal(err)
	}
	abandoned := func() bool {
		t.Helper()
		info, err := s.Info(h)
		if err != nil {
			t.Fatal(err)
		}
		return info.Abandoned
	}
	if !abandoned() {
		t.Error("running without a lock: not abandoned")
	}
	l, err := s.Lock(h)
	if err != nil {
		t.Fatal(err)
	}
	if abandoned() {
		t.Error("running and locked by this live process: abandoned")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if err := WriteJSON(s.Path(h, LockFile), LockInfo{Host: host, PID: cmd.Process.Pid, Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if !abandoned() {
		t.Error("running, locked by a dead process: not abandoned")
	}
	if err := s.WriteStatus(h, Status{State: Done}); err != nil {
		t.Fatal(err)
	}
	if abandoned() {
		t.Error("done: abandoned")
	}
}
