package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

type indexPage struct {
	Title  string
	Sweeps []sweepMeta
}

// BuildIndex writes <outRoot>/index.html listing every sweep report under outRoot (every
// folder holding a report.json written by Build), newest first. It replaces the file
// atomically, so a reader never sees half a page.
func BuildIndex(outRoot string) error {
	entries, err := os.ReadDir(outRoot)
	if err != nil {
		return fmt.Errorf("reports: index: %w", err)
	}
	page := indexPage{Title: "ddpmlab sweeps"}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var m sweepMeta
		err := store.ReadJSON(filepath.Join(outRoot, e.Name(), metaFile), &m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reports: index: %w", err)
		}
		m.Name = e.Name() // the folder is what the link points to
		page.Sweeps = append(page.Sweeps, m)
	}
	slices.SortFunc(page.Sweeps, func(a, b sweepMeta) int {
		if c := strings.Compare(b.Start, a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "index.html", page); err != nil {
		return fmt.Errorf("reports: index: %w", err)
	}
	tmp, err := os.CreateTemp(outRoot, ".index.html.tmp-")
	if err != nil {
		return fmt.Errorf("reports: index: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("reports: index: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("reports: index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("reports: index: %w", err)
	}
	return os.Rename(tmp.Name(), filepath.Join(outRoot, "index.html"))
}
