// Package store implements the ddpmlab run store: one folder per run, named by the full
// 64-hex-digit SHA-256 of the run's canonical config, plus sweep manifests in _sweeps/.
// The layout and the file formats are fixed by docs/ARCHITECTURE.md.
//
// Every file the store writes goes through package durable. A run is created atomically
// (durable.CreateDir assembles its folder under a temporary name and renames it into
// place), and a run is executed by at most one process at a time, enforced by its lock
// file (see Store.Lock).
//
// The package knows nothing about configs or training: hashes are plain strings of 64
// lowercase hex digits, and config.toml is stored as opaque bytes.
package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// Names of the files and folders in a run folder and in the store root.
const (
	ConfigFile    = "config.toml"
	CanonicalFile = "canonical.json"
	StatusFile    = "status.json"
	SummaryFile   = "summary.json"
	LockFile      = "lock"
	StderrFile    = "stderr.log"
	LossFile      = "metrics/loss.csv"
	EpochsFile    = "metrics/epochs.csv"
	SweepsDir     = "_sweeps"
)

// ErrNoRun is wrapped by the errors Resolve and the run readers return when a run does
// not exist.
var ErrNoRun = errors.New("no such run")

// Store is a run store rooted at a folder.
type Store struct {
	Root string
}

// Open returns the store at root, creating the folder (and _sweeps/) if needed.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("store: empty root")
	}
	if err := os.MkdirAll(filepath.Join(root, SweepsDir), 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{Root: root}, nil
}

// RunDir returns the folder of the run with the given full hash.
func (s *Store) RunDir(hash string) string {
	return filepath.Join(s.Root, hash)
}

// Path returns the path of a file inside a run folder, e.g. s.Path(h, store.LossFile).
func (s *Store) Path(hash, name string) string {
	return filepath.Join(s.Root, hash, filepath.FromSlash(name))
}

// Exists reports whether the run folder exists.
func (s *Store) Exists(hash string) bool {
	fi, err := os.Stat(s.RunDir(hash))
	return err == nil && fi.IsDir()
}

// Create adds a run to the store: config.toml, canonical.json and a pending status.json.
// canonicalJSON must be exactly the bytes whose SHA-256 is hash.
//
// Create is idempotent and safe to call from several processes at once: the folder is
// assembled under a temporary name and renamed into place, so other processes see either
// no run or a complete one. If the run already exists with identical canonical.json,
// Create changes nothing and returns created == false. If it exists with a different
// canonical.json (a hash collision or a corrupted store), Create returns an error.
func (s *Store) Create(hash string, configTOML, canonicalJSON []byte) (created bool, err error) {
	if err := CheckHash(hash); err != nil {
		return false, err
	}
	if sum := HashOf(canonicalJSON); sum.String() != hash {
		return false, fmt.Errorf("create run %s: canonical.json hashes to %s, not to the run's hash",
			Short(hash), sum.Short())
	}
	if s.Exists(hash) {
		return false, s.checkCanonical(hash, canonicalJSON)
	}

	err = durable.CreateDir(s.RunDir(hash), func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, ConfigFile), configTOML, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, CanonicalFile), canonicalJSON, 0o644); err != nil {
			return err
		}
		return WriteJSON(filepath.Join(tmp, StatusFile), Status{State: Pending})
	})
	switch {
	case errors.Is(err, fs.ErrExist) && s.Exists(hash):
		// Another process created the run first.
		return false, s.checkCanonical(hash, canonicalJSON)
	case err != nil:
		return false, fmt.Errorf("create run %s: %w", Short(hash), err)
	}
	return true, nil
}

func (s *Store) checkCanonical(hash string, want []byte) error {
	got, err := os.ReadFile(s.Path(hash, CanonicalFile))
	if err != nil {
		return fmt.Errorf("run %s exists but its canonical.json cannot be read: %w", Short(hash), err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("run %s exists with a different canonical.json (%s): hash collision or corrupted store",
			Short(hash), s.Path(hash, CanonicalFile))
	}
	return nil
}

// Hashes returns the full hashes of all runs in the store, sorted. Entries that are not
// run folders (_sweeps, temporary folders, stray files) are ignored.
func (s *Store) Hashes() ([]string, error) {
	entries, err := os.ReadDir(s.Root)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var hashes []string
	for _, e := range entries {
		if e.IsDir() && CheckHash(e.Name()) == nil {
			hashes = append(hashes, e.Name())
		}
	}
	return hashes, nil // ReadDir sorts by name
}

// AmbiguousError is returned by Resolve when a prefix matches several runs.
type AmbiguousError struct {
	Prefix     string
	Candidates []string // full hashes, sorted
}

func (e *AmbiguousError) Error() string {
	short := make([]string, len(e.Candidates))
	for i, h := range e.Candidates {
		short[i] = Short(h)
	}
	return fmt.Sprintf("run prefix %q is ambiguous: it matches %d runs: %s",
		e.Prefix, len(e.Candidates), strings.Join(short, ", "))
}

// Resolve returns the full hash of the one run whose hash starts with prefix. The prefix
// must have at least MinPrefixLen hex digits (upper case is accepted). An unknown prefix
// gives an error wrapping ErrNoRun; an ambiguous one an *AmbiguousError listing the
// candidates.
func (s *Store) Resolve(prefix string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if err := CheckPrefix(p); err != nil {
		return "", err
	}
	hashes, err := s.Hashes()
	if err != nil {
		return "", err
	}
	var matches []string
	for _, h := range hashes {
		if strings.HasPrefix(h, p) {
			matches = append(matches, h)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("run %q: %w in %s", prefix, ErrNoRun, s.Root)
	case 1:
		return matches[0], nil
	default:
		return "", &AmbiguousError{Prefix: prefix, Candidates: slices.Clip(matches)}
	}
}

// notExist wraps a missing-file error of a run so that callers can test for ErrNoRun.
func (s *Store) notExist(hash string, err error) error {
	if errors.Is(err, fs.ErrNotExist) && !s.Exists(hash) {
		return fmt.Errorf("run %s: %w in %s", Short(hash), ErrNoRun, s.Root)
	}
	return err
}
