package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// verifyFixture builds one run of the broken store: created from a config with this seed, then
// put into shape by setup.
type verifyFixture struct {
	name  string
	setup func(t *testing.T, st *store.Store, hash string)
	// want is one substring per problem verify must report, and whether it repairs it.
	want []wantProblem
}

type wantProblem struct {
	contains string
	repaired bool
}

// writeRunFile writes a file inside a run folder, creating its folder.
func writeRunFile(t *testing.T, st *store.Store, hash, name string, data []byte) {
	t.Helper()
	path := st.Path(hash, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFakeCheckpoint writes a checkpoint folder without libtorch: tensors.ot is random bytes,
// and state.json records their SHA-256 (or, with legacy, no checksum, as old runners wrote).
func writeFakeCheckpoint(t *testing.T, st *store.Store, hash, name string, step int64, legacy bool) {
	t.Helper()
	tensors := []byte(fmt.Sprintf("not really tensors, step %d", step))
	state := ddpm.CheckpointState{Epoch: 1, Step: step}
	if !legacy {
		sum := sha256.Sum256(tensors)
		state.TensorsSHA256, state.TensorsBytes = hex.EncodeToString(sum[:]), int64(len(tensors))
	}
	js, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("checkpoints", name)
	writeRunFile(t, st, hash, filepath.Join(dir, "tensors.ot"), tensors)
	writeRunFile(t, st, hash, filepath.Join(dir, "state.json"), js)
}

// finishedRun gives a run everything a done run has.
func finishedRun(t *testing.T, st *store.Store, hash string) {
	t.Helper()
	if err := st.WriteSummary(hash, store.Summary{FinalLoss: 0.5}); err != nil {
		t.Fatal(err)
	}
	writeRunFile(t, st, hash, "samples/final.png", []byte("png"))
	if err := st.WriteLoss(hash, []store.LossRow{{Step: 1, Epoch: 1, Loss: 1}, {Step: 2, Epoch: 1, Loss: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteEpochs(hash, []store.EpochRow{{Epoch: 1, MeanLoss: 0.75, Seconds: 1, ImagesPerSec: 64}}); err != nil {
		t.Fatal(err)
	}
	writeFakeCheckpoint(t, st, hash, "last.ckpt", 2, true)
	if _, err := st.Finish(hash, store.Done, ""); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRepairsBrokenStore breaks a store on purpose, one run per kind of damage, and runs
// `runner verify` on it twice: the first pass reports every problem and repairs the derivable
// ones (stale lock, abandoned running state, leftovers of interrupted writes); the second finds
// only the problems that need a person.
func TestVerifyRepairsBrokenStore(t *testing.T) {
	dead := exec.Command("true") // a process that has exited: its PID is gone
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run a process to get a dead pid: %v", err)
	}
	host, _ := os.Hostname()
	deadPID := dead.Process.Pid
	running := func(pid int) func(*store.Status) {
		return func(s *store.Status) { s.State, s.PID, s.Host, s.Attempts = store.Running, pid, host, 1 }
	}
	writeLock := func(t *testing.T, st *store.Store, hash string, pid int) {
		b, _ := json.Marshal(store.LockInfo{Host: host, PID: pid, Time: time.Now().UTC()})
		writeRunFile(t, st, hash, store.LockFile, b)
	}
	fixtures := []verifyFixture{
		{name: "intact", setup: finishedRun},
		{
			name: "killed with its lock",
			setup: func(t *testing.T, st *store.Store, hash string) {
				st.UpdateStatus(hash, running(deadPID))
				writeLock(t, st, hash, deadPID)
			},
			want: []wantProblem{{"stale lock", true}, {"recorded running", true}},
		},
		{
			name:  "running without a lock",
			setup: func(t *testing.T, st *store.Store, hash string) { st.UpdateStatus(hash, running(deadPID)) },
			want:  []wantProblem{{"recorded running", true}},
		},
		{
			name: "done without its samples",
			setup: func(t *testing.T, st *store.Store, hash string) {
				finishedRun(t, st, hash)
				os.Remove(st.Path(hash, "samples/final.png"))
			},
			want: []wantProblem{{"samples/final.png is missing", false}},
		},
		{
			name: "corrupt newest checkpoint",
			setup: func(t *testing.T, st *store.Store, hash string) {
				finishedRun(t, st, hash)
				writeFakeCheckpoint(t, st, hash, "ckpt-000000003.ckpt", 3, false)
				writeRunFile(t, st, hash, "checkpoints/ckpt-000000003.ckpt/tensors.ot", []byte("flipped"))
			},
			want: []wantProblem{{"ckpt-000000003.ckpt: tensors.ot has 7 bytes", false}},
		},
		{
			name: "tampered canonical.json",
			setup: func(t *testing.T, st *store.Store, hash string) {
				writeRunFile(t, st, hash, store.CanonicalFile, []byte(`{}`))
			},
			want: []wantProblem{{"canonical.json hashes to", false}},
		},
		{
			name: "leftovers of interrupted writes",
			setup: func(t *testing.T, st *store.Store, hash string) {
				finishedRun(t, st, hash)
				writeRunFile(t, st, hash, ".status.json.tmp-123", []byte("{"))
				writeRunFile(t, st, hash, "checkpoints/.ckpt-000000009.ckpt.tmp-4/tensors.ot", []byte("half"))
				writeRunFile(t, st, hash, "samples/.final.png.tmp-77", []byte("half"))
			},
			want: []wantProblem{{".status.json.tmp-123", true}, {".ckpt-000000009.ckpt.tmp-4", true}, {".final.png.tmp-77", true}},
		},
		{
			name: "done with a gap in loss.csv",
			setup: func(t *testing.T, st *store.Store, hash string) {
				finishedRun(t, st, hash)
				st.WriteLoss(hash, []store.LossRow{{Step: 1, Epoch: 1, Loss: 1}, {Step: 3, Epoch: 1, Loss: 0.5}})
			},
			want: []wantProblem{{"row 2 has step 3", false}},
		},
		{
			name: "in use by a live process",
			setup: func(t *testing.T, st *store.Store, hash string) {
				st.UpdateStatus(hash, running(os.Getpid()))
				writeLock(t, st, hash, os.Getpid())
			},
		},
	}

	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{} // fixture name → run hash
	for i, f := range fixtures {
		cfgPath := filepath.Join(dir, fmt.Sprintf("c%d.toml", i))
		if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("seed = %d\n", 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(cfgPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := createRun(st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.setup(t, st, hash)
		hashes[f.name] = hash
	}

	// A dry run reports and changes nothing.
	dry, err := verifyStore(st, false)
	if err != nil {
		t.Fatal(err)
	}
	if dry.unrepaired() != len(dry.problems) {
		t.Errorf("--dry-run repaired %d problem(s)", len(dry.problems)-dry.unrepaired())
	}
	if s, _ := st.ReadStatus(hashes["running without a lock"]); s.State != store.Running {
		t.Errorf("--dry-run changed a status to %s", s.State)
	}

	var out, errOut bytes.Buffer
	if code := mainCode([]string{"verify", "--store", st.Root}, &out, &errOut); code != 1 {
		t.Errorf("verify on a broken store: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	t.Logf("runner verify:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			short := store.Short(hashes[f.name])
			var mine []string
			for _, l := range lines {
				if strings.HasPrefix(l, short+"  ") && !strings.Contains(l, "in use by a live process") {
					mine = append(mine, l)
				}
			}
			if len(mine) != len(f.want) {
				t.Fatalf("verify reported %d problem(s), want %d:\n%s", len(mine), len(f.want), strings.Join(mine, "\n"))
			}
			for _, w := range f.want {
				i := slices.IndexFunc(mine, func(l string) bool { return strings.Contains(l, w.contains) })
				if i < 0 {
					t.Errorf("no problem mentions %q:\n%s", w.contains, strings.Join(mine, "\n"))
				} else if got := strings.Contains(mine[i], "— repaired:"); got != w.repaired {
					t.Errorf("%q: repaired = %v, want %v", mine[i], got, w.repaired)
				}
			}
		})
	}
	if !strings.Contains(out.String(), store.Short(hashes["in use by a live process"])+"  in use by a live process") {
		t.Errorf("verify should name the run a live process holds:\n%s", out.String())
	}

	// What the repairs left behind.
	killed := hashes["killed with its lock"]
	if s, _ := st.ReadStatus(killed); s.State != store.Interrupted || !strings.Contains(s.Reason, "abandoned") {
		t.Errorf("abandoned run: status %+v, want interrupted (abandoned)", s)
	}
	if _, err := st.ReadLock(killed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale lock still there: %v", err)
	}
	if s, _ := st.ReadStatus(hashes["in use by a live process"]); s.State != store.Running {
		t.Errorf("the run a live process holds changed to %s", s.State)
	}
	if _, _, err := job.LatestCheckpoint(st.RunDir(hashes["corrupt newest checkpoint"])); err != nil {
		t.Errorf("the older intact checkpoint should still be found: %v", err)
	}

	// Second pass: only what needs a person.
	again, err := verifyStore(st, true)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range fixtures {
		for _, w := range f.want {
			if !w.repaired {
				want++
			}
		}
	}
	if len(again.problems) != want || again.unrepaired() != want {
		var b bytes.Buffer
		again.print(&b)
		t.Errorf("second pass: %d problem(s), %d unrepaired; want %d, none repairable:\n%s", len(again.problems), again.unrepaired(), want, b.String())
	}
}
