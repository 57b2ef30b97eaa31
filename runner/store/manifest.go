package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Manifest is a sweep manifest, _sweeps/<name>.json: which runs a sweep expanded to and
// what each varies (see docs/ARCHITECTURE.md).
type Manifest struct {
	Name       string        `json:"name"`
	File       string        `json:"file"`  // the sweep file, as given
	Scale      string        `json:"scale"` // e.g. "quick"
	Created    time.Time     `json:"created"`
	VariedKeys []string      `json:"varied_keys"` // dotted config paths, in sweep order
	Runs       []ManifestRun `json:"runs"`
}

// ManifestRun is one run of a sweep: its full hash and the values of the varied keys,
// formatted as in the sweep file.
type ManifestRun struct {
	Hash   string            `json:"hash"`
	Varied map[string]string `json:"varied"`
}

// Hashes returns the hashes of the manifest's runs, in sweep order.
func (m Manifest) Hashes() []string {
	hashes := make([]string, len(m.Runs))
	for i, r := range m.Runs {
		hashes[i] = r.Hash
	}
	return hashes
}

// CheckSweepName reports whether name can name a sweep manifest file.
func CheckSweepName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`+"\x00") {
		return fmt.Errorf("invalid sweep name %q: want a file name without slashes or a leading dot", name)
	}
	return nil
}

func (s *Store) manifestPath(name string) string {
	return filepath.Join(s.Root, SweepsDir, name+".json")
}

// WriteManifest writes _sweeps/<m.Name>.json atomically, replacing the manifest of an
// earlier run of the same sweep. Every hash must be a full hash.
func (s *Store) WriteManifest(m Manifest) error {
	if err := CheckSweepName(m.Name); err != nil {
		return err
	}
	for i, r := range m.Runs {
		if err := CheckHash(r.Hash); err != nil {
			return fmt.Errorf("sweep %s: run %d: %w", m.Name, i, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Root, SweepsDir), 0o755); err != nil {
		return err
	}
	return WriteJSON(s.manifestPath(m.Name), m)
}

// ErrNoSweep is wrapped by the error ReadManifest returns for an unknown sweep.
var ErrNoSweep = errors.New("no such sweep")

// ReadManifest reads the manifest of the named sweep. An unknown name gives an error
// wrapping ErrNoSweep that lists the known sweeps.
func (s *Store) ReadManifest(name string) (Manifest, error) {
	if err := CheckSweepName(name); err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := ReadJSON(s.manifestPath(name), &m); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			known, _ := s.sweepNames()
			return Manifest{}, fmt.Errorf("sweep %q: %w in %s (known: %s)",
				name, ErrNoSweep, s.Root, strings.Join(known, ", "))
		}
		return Manifest{}, err
	}
	return m, nil
}

func (s *Store) sweepNames() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, SweepsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sweeps: %w", err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && CheckSweepName(name) == nil {
			names = append(names, name)
		}
	}
	return names, nil
}

// Manifests returns every sweep manifest in the store, sorted by name.
func (s *Store) Manifests() ([]Manifest, error) {
	names, err := s.sweepNames()
	if err != nil {
		return nil, err
	}
	ms := make([]Manifest, 0, len(names))
	for _, name := range names {
		m, err := s.ReadManifest(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}
