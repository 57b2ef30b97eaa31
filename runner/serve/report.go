package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// reportCache builds sweep reports (reports.Build) into a folder of its own, outside the store,
// and builds a sweep's report again whenever anything it is made from has changed since, so a
// report is never stale and never built twice for the same store state.
type reportCache struct {
	mu    sync.Mutex // one build at a time: reports.Build rewrites <dir>/index.html
	dir   string
	built map[string]builtReport // by sweep
}

// builtReport is one sweep's built report: the stamp of the store state it was built from and
// its files, by slash path relative to the sweep's folder.
type builtReport struct {
	stamp string
	files map[string]string
}

func newReportCache(dir string) *reportCache {
	return &reportCache{dir: dir, built: map[string]builtReport{}}
}

func (c *reportCache) close() error {
	if strings.Contains(filepath.Base(c.dir), "ddpmlab-serve-reports-") {
		return os.RemoveAll(c.dir)
	}
	return nil
}

// get returns the files of m's report, building it first when the store changed.
func (c *reportCache) get(st *store.Store, m store.Manifest, version string) (map[string]string, error) {
	stamp := sweepStamp(st, m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.built[m.Name]; ok && b.stamp == stamp {
		return b.files, nil
	}
	index, err := reports.Build(reports.Options{Store: st.Root, Sweep: m.Name, Out: c.dir, Version: version})
	if err != nil {
		return nil, err
	}
	root := filepath.Dir(index)
	files := map[string]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(rel)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", m.Name, err)
	}
	c.built[m.Name] = builtReport{stamp: stamp, files: files}
	return files, nil
}

// sweepStamp is a digest of the name, size and time of every file a sweep's report reads:
// its manifest and its runs' folders (checkpoints aside).
func sweepStamp(st *store.Store, m store.Manifest) string {
	h := sha256.New()
	stat := func(p string) {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	stat(filepath.Join(st.Root, store.SweepsDir, m.Name+".json"))
	stat(m.File)
	for _, r := range m.Runs {
		if store.CheckHash(r.Hash) != nil {
			continue
		}
		root := st.RunDir(r.Hash)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && d.Name() == "checkpoints" {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() && d.Name() != ProgressFile && d.Name() != store.LockFile {
				stat(p)
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}
