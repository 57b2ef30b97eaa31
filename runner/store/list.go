package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// RunInfo is what `runner list` and the reports need to know about one run.
type RunInfo struct {
	Hash    string
	Status  Status
	Summary *Summary // nil until the run is done
	Config  []byte   // config.toml
	// Varied holds the values of the sweep's varied keys when the listing is of a sweep.
	Varied map[string]string
	// Abandoned is set for a run whose status says running but whose process is gone: its
	// lock is missing, or was left by a dead process on this host (a hard kill, a crash of
	// the machine). The next sweep or rerun of it resumes it from its last checkpoint.
	Abandoned bool
}

// Filter selects runs for List. The zero Filter selects every run.
type Filter struct {
	Sweep  string  // only runs of this sweep, in sweep order
	States []State // only runs in one of these states
}

// List returns the runs that match f: those of f.Sweep in sweep order, or every run in
// hash order. Runs named by a manifest but missing from the store are skipped.
func (s *Store) List(f Filter) ([]RunInfo, error) {
	var (
		hashes []string
		varied map[string]map[string]string
	)
	if f.Sweep != "" {
		m, err := s.ReadManifest(f.Sweep)
		if err != nil {
			return nil, err
		}
		varied = make(map[string]map[string]string, len(m.Runs))
		for _, r := range m.Runs {
			if s.Exists(r.Hash) {
				hashes = append(hashes, r.Hash)
				varied[r.Hash] = r.Varied
			}
		}
	} else {
		var err error
		if hashes, err = s.Hashes(); err != nil {
			return nil, err
		}
	}

	runs := make([]RunInfo, 0, len(hashes))
	for _, h := range hashes {
		info, err := s.Info(h)
		if err != nil {
			return nil, err
		}
		if len(f.States) > 0 && !slices.Contains(f.States, info.Status.State) {
			continue
		}
		info.Varied = varied[h]
		runs = append(runs, info)
	}
	return runs, nil
}

// Info reads one run's status, summary (if any) and config. A run without status.json
// (created by hand, or by an interrupted Create of an older version) reads as pending.
func (s *Store) Info(hash string) (RunInfo, error) {
	info := RunInfo{Hash: hash}
	st, err := s.ReadStatus(hash)
	switch {
	case err == nil:
		info.Status = st
	case errors.Is(err, fs.ErrNotExist) && s.Exists(hash):
		info.Status = Status{State: Pending}
	default:
		return RunInfo{}, err
	}
	sum, err := s.ReadSummary(hash)
	switch {
	case err == nil:
		info.Summary = &sum
	case !errors.Is(err, fs.ErrNotExist):
		return RunInfo{}, err
	}
	if info.Config, err = os.ReadFile(s.Path(hash, ConfigFile)); err != nil {
		return RunInfo{}, fmt.Errorf("run %s: %w", Short(hash), err)
	}
	if info.Status.State == Running {
		host, _ := os.Hostname()
		lock, err := s.ReadLock(hash)
		info.Abandoned = errors.Is(err, fs.ErrNotExist) || (err == nil && lock.IsStale(host))
	}
	return info, nil
}
