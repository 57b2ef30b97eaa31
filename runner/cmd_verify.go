package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/ddpm/durable"
	"github.com/ddpmlab/ddpmlab/runner/job"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runVerify checks a store: `runner verify [--store DIR] [--dry-run]`. It exits 0 when every
// run is consistent (after the repairs it made), 1 when problems remain.
func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify")
	root := storeFlag(fs)
	dryRun := fs.Bool("dry-run", false, "only report; repair nothing")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	rep, err := verifyStore(st, !*dryRun)
	if err != nil {
		return err
	}
	rep.print(e.stdout)
	if n := rep.unrepaired(); n > 0 {
		return codedError{1, fmt.Errorf("%d problem(s) in %s left to fix by hand", n, st.Root)}
	}
	return nil
}

// problem is one inconsistency found in a run folder.
type problem struct {
	hash     string
	what     string // what is wrong, naming the file
	repair   string // what verify did about it; "" if it cannot be derived
	repaired bool
}

// verifyReport is what verifyStore found.
type verifyReport struct {
	runs     int
	skipped  []string // runs held by a live process: checked no further
	problems []problem
}

func (r verifyReport) unrepaired() int {
	n := 0
	for _, p := range r.problems {
		if !p.repaired {
			n++
		}
	}
	return n
}

func (r verifyReport) print(w io.Writer) {
	for _, p := range r.problems {
		line := store.Short(p.hash) + "  " + p.what
		switch {
		case p.repaired:
			line += " — repaired: " + p.repair
		case p.repair != "":
			line += " — would repair: " + p.repair
		}
		fmt.Fprintln(w, line)
	}
	for _, h := range r.skipped {
		fmt.Fprintf(w, "%s  in use by a live process: not checked\n", store.Short(h))
	}
	fmt.Fprintf(w, "verified %d run(s): %d problem(s), %d repaired\n", r.runs, len(r.problems), len(r.problems)-r.unrepaired())
}

// verifyStore checks every run folder of st against its status.json; with repair it also
// fixes what can be derived from the store itself:
//   - canonical.json hashes to the folder's name; config.toml and status.json parse;
//   - a lock left by a dead process on this host is removed (durable.BreakStale);
//   - a run recorded "running" whose process is gone is recorded interrupted, so the next
//     sweep resumes it;
//   - leftovers of interrupted writes (durable.IsTemp) anywhere in the run folder are removed;
//   - every checkpoint folder matches the SHA-256 its state.json records, and latest.json
//     points at an intact one;
//   - a done run has its outputs: summary.json, samples/final.png and, if it trained,
//     metrics/loss.csv with steps 1, 2, … and an intact checkpoint.
//
// Runs whose lock a live process holds are left alone.
func verifyStore(st *store.Store, repair bool) (verifyReport, error) {
	var rep verifyReport
	hashes, err := st.Hashes()
	if err != nil {
		return rep, err
	}
	host, _ := os.Hostname()
	for _, hash := range hashes {
		rep.runs++
		add := func(what, fix string, do func() error) {
			p := problem{hash: hash, what: what, repair: fix}
			if repair && do != nil {
				if err := do(); err != nil {
					p.repair = "failed: " + err.Error()
				} else {
					p.repaired = true
				}
			}
			rep.problems = append(rep.problems, p)
		}

		// The lock first: a live holder may be writing anything below.
		lockPath := st.Path(hash, store.LockFile)
		lock, lockErr := st.ReadLock(hash)
		switch {
		case errors.Is(lockErr, fs.ErrNotExist):
		case lockErr != nil:
			add(fmt.Sprintf("unreadable lock %s: %v", lockPath, lockErr), "", nil)
		case lock.IsStale(host):
			add(fmt.Sprintf("stale lock %s (%s, which is gone)", lockPath, lock), "removed it",
				func() error { _, err := durable.BreakStale(lockPath); return err })
		default:
			rep.skipped = append(rep.skipped, hash)
			continue
		}

		canonical, err := os.ReadFile(st.Path(hash, store.CanonicalFile))
		if err != nil {
			add(fmt.Sprintf("%v", err), "", nil)
		} else if sum := store.HashOf(canonical); sum.String() != hash {
			add(fmt.Sprintf("%s hashes to %s, not to the folder's name", st.Path(hash, store.CanonicalFile), sum.Short()), "", nil)
		}
		cfg, cfgErr := readRunConfig(st, hash)
		if cfgErr != nil {
			add(fmt.Sprintf("config: %v", cfgErr), "", nil)
		}
		status, err := st.ReadStatus(hash)
		if err != nil {
			add(fmt.Sprintf("status: %v", err), "", nil)
			continue
		}

		// No live lock (checked above): a run still "running" was abandoned.
		if status.State == store.Running && (lockErr == nil || errors.Is(lockErr, fs.ErrNotExist)) {
			reason := fmt.Sprintf("abandoned: its process (pid %d on %s) is gone; found by runner verify; rerun to resume from its checkpoint", status.PID, status.Host)
			add(fmt.Sprintf("recorded running, but no live process holds its lock (pid %d on %s)", status.PID, status.Host),
				"recorded interrupted", func() error { _, err := st.Finish(hash, store.Interrupted, reason); return err })
		}

		// Anywhere in the run folder: samples/, plots/, metrics/ and checkpoints/ included.
		_ = filepath.WalkDir(st.RunDir(hash), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !durable.IsTemp(d.Name()) {
				return nil
			}
			add("leftover of an interrupted write: "+path, "removed it", func() error { return os.RemoveAll(path) })
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		})
		checkpointOK := verifyCheckpoints(st, hash, add)

		if status.State != store.Done || cfgErr != nil {
			continue
		}
		trained := cfg.Trains()
		need := []string{store.SummaryFile, "samples/final.png"}
		if trained {
			need = append(need, store.LossFile, store.EpochsFile)
		}
		for _, name := range need {
			if fi, err := os.Stat(st.Path(hash, name)); err != nil || fi.Size() == 0 {
				add(fmt.Sprintf("done, but %s is missing or empty", st.Path(hash, name)), "", nil)
			}
		}
		if _, err := st.ReadSummary(hash); err != nil && !errors.Is(err, fs.ErrNotExist) {
			add(fmt.Sprintf("summary: %v", err), "", nil)
		}
		if trained {
			if !checkpointOK {
				add("done, but it has no intact checkpoint in "+store.CheckpointsDir(st.RunDir(hash)), "", nil)
			}
			verifyLoss(st, hash, add)
		}
	}
	return rep, nil
}

// verifyCheckpoints checks every checkpoint folder of a run and its pointer, and reports
// whether the run has an intact checkpoint to resume or sample from.
func verifyCheckpoints(st *store.Store, hash string, add func(what, fix string, do func() error)) bool {
	dir := store.CheckpointsDir(st.RunDir(hash))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	reported := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && !durable.IsTemp(e.Name()) && strings.HasSuffix(e.Name(), ".ckpt") {
			if _, err := ddpm.VerifyCheckpoint(filepath.Join(dir, e.Name())); err != nil {
				add(err.Error(), "", nil)
				reported[err.Error()] = true
			}
		}
	}
	// What Latest skips besides those: a bad pointer, or one naming a missing folder.
	_, skipped, err := job.LatestCheckpoint(st.RunDir(hash))
	for _, bad := range skipped {
		if !reported[bad.Error()] {
			add(bad.Error(), "", nil)
		}
	}
	return err == nil
}

// verifyLoss checks that a done run's loss.csv has each step 1, 2, … once, in order.
func verifyLoss(st *store.Store, hash string, add func(what, fix string, do func() error)) {
	rows, err := st.ReadLoss(hash)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			add(fmt.Sprintf("loss: %v", err), "", nil)
		}
		return
	}
	for i, r := range rows {
		if r.Step != i+1 {
			add(fmt.Sprintf("%s: row %d has step %d, want %d", st.Path(hash, store.LossFile), i+1, r.Step, i+1), "", nil)
			return
		}
	}
}
