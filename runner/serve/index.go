package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// errNotFound is wrapped by lookups of runs, sweeps and files the store's index does not hold.
var errNotFound = errors.New("not found")

// hashArgRE is what a run named in a request may look like: a hash or a prefix of one.
var hashArgRE = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)

// sweepArgRE is what a sweep named in a request may look like.
var sweepArgRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// index is a snapshot of the store, read for one request: every run and sweep it holds. It is
// the only way from a request to the filesystem: requests name runs, sweeps and files, the
// index looks them up among the names it read from the store, and only paths built from those
// names are opened.
type index struct {
	st     *store.Store
	runs   []*runEntry // by hash
	sweeps []store.Manifest
}

// runEntry is one run of the index.
type runEntry struct {
	Hash, Short string
	store.RunInfo
	cfg      config.Config
	ConfigOK bool
	Dataset  string
	Classes  []string // class names of a conditional run; nil for an unconditional one
	// Generatable is set for a done run with its own checkpoints; whyNot says why not.
	Generatable bool
	whyNot      string
	Progress    *RunProgress // a running run's last report, nil if none
	Sweeps      []string     // the manifests that name the run

	// Guide describes the guide a generation can autoguide with (e.g. "its own weights at
	// step 750 (sample.guide_step)"), "" when the run has none; NoGuide then says why.
	Guide, NoGuide string
}

// live reports whether a process is training the run now.
func (e *runEntry) live() bool { return e.Status.State == store.Running && !e.Abandoned }

// readIndex reads the store. Runs whose files cannot be read are kept, with what could be read.
func readIndex(st *store.Store) (*index, error) {
	hashes, err := st.Hashes()
	if err != nil {
		return nil, err
	}
	idx := &index{st: st}
	if idx.sweeps, err = st.Manifests(); err != nil {
		return nil, err
	}
	sweepsOf := map[string][]string{}
	for _, m := range idx.sweeps {
		for _, r := range m.Runs {
			sweepsOf[r.Hash] = append(sweepsOf[r.Hash], m.Name)
		}
	}
	for _, h := range hashes {
		e := &runEntry{Hash: h, Short: store.Short(h), Sweeps: sweepsOf[h]}
		e.RunInfo, err = st.Info(h)
		if err != nil {
			e.RunInfo = store.RunInfo{Hash: h, Status: store.Status{State: store.Failed, Reason: "unreadable: " + err.Error()}}
		}
		e.classify(st)
		idx.runs = append(idx.runs, e)
	}
	return idx, nil
}

// classify parses the run's config and decides whether it can generate.
func (e *runEntry) classify(st *store.Store) {
	cfg, err := config.Parse(store.ConfigFile, e.Config)
	e.cfg, e.ConfigOK = cfg, err == nil
	if err == nil {
		e.Dataset = cfg.Data.Dataset
		if cfg.Model.Conditional {
			e.Classes = data.ClassNames(cfg.Data.Dataset)
		}
	}
	if e.live() {
		if p, err := ReadRunProgress(st.RunDir(e.Hash)); err == nil {
			e.Progress = &p
		}
	}
	switch {
	case err != nil:
		e.whyNot = "its config.toml does not parse"
	case cfg.SamplingOnly():
		e.whyNot = "it is a sampling-only run; generate from the trained run " + store.Short(cfg.Sample.FromRun)
	case e.Status.State != store.Done:
		e.whyNot = fmt.Sprintf("it is %s, not done", e.Status.State)
	case cfg.Model.Conditional && len(e.Classes) == 0:
		e.whyNot = "it is conditional on a dataset without class names"
	case !isDir(store.CheckpointsDir(st.RunDir(e.Hash))):
		e.whyNot = "it has no checkpoints"
	default:
		e.Generatable = true
	}
	if err == nil {
		e.Guide, e.NoGuide = guideOf(st, e.Hash, cfg.Sample)
	}
}

// guideOf describes the guide by which run hash, sampling as s, can autoguide a generation, or
// says why it has none: a guide run (sample.guide_run; the generation child opens and checks
// it) or the run's own snapshot at sample.guide_step, which must still be in its folder.
func guideOf(st *store.Store, hash string, s config.Sample) (guide, whyNot string) {
	switch {
	case s.GuideRun != "" && s.GuideStep > 0:
		return fmt.Sprintf("run %s's weights at step %d (sample.guide_run, sample.guide_step)", store.Short(s.GuideRun), s.GuideStep), ""
	case s.GuideRun != "":
		return fmt.Sprintf("run %s (sample.guide_run)", store.Short(s.GuideRun)), ""
	case s.GuideStep == 0:
		return "", "it names no sample.guide_run or sample.guide_step"
	case !isDir(store.SnapshotDir(st.RunDir(hash), s.GuideStep)):
		return "", fmt.Sprintf("its own snapshot at sample.guide_step = %d is gone from its folder", s.GuideStep)
	default:
		return fmt.Sprintf("its own weights at step %d (sample.guide_step)", s.GuideStep), ""
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// run looks up the run named by arg (a full hash or a unique prefix of at least 4 hex digits).
func (idx *index) run(arg string) (*runEntry, error) {
	if !hashArgRE.MatchString(arg) {
		return nil, badf("run: want a run hash (4 to 64 hex digits), got %q", clip(arg))
	}
	p := strings.ToLower(arg)
	i := sort.Search(len(idx.runs), func(i int) bool { return idx.runs[i].Hash >= p })
	var matches []*runEntry
	for ; i < len(idx.runs) && strings.HasPrefix(idx.runs[i].Hash, p); i++ {
		matches = append(matches, idx.runs[i])
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("run %s: %w in the store", p, errNotFound)
	case 1:
		return matches[0], nil
	default:
		return nil, badf("run %s is ambiguous: %d runs start with it", p, len(matches))
	}
}

// sweep looks up a sweep manifest by its exact name.
func (idx *index) sweep(name string) (store.Manifest, error) {
	if !sweepArgRE.MatchString(name) {
		return store.Manifest{}, badf("sweep: bad name %q", clip(name))
	}
	for _, m := range idx.sweeps {
		if m.Name == name {
			return m, nil
		}
	}
	return store.Manifest{}, fmt.Errorf("sweep %s: %w in the store", name, errNotFound)
}

// generatable lists the runs that can generate.
func (idx *index) generatable() []*runEntry {
	var out []*runEntry
	for _, r := range idx.runs {
		if r.Generatable {
			out = append(out, r)
		}
	}
	return out
}

// servedExts are the kinds of file of a run folder that the server shows, with their types.
var servedExts = map[string]string{
	".png": "image/png", ".gif": "image/gif", ".csv": "text/csv; charset=utf-8",
	".json": "application/json", ".toml": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8",
	".jsonl": "text/plain; charset=utf-8",
}

// runFiles lists the files of a run's folder that the server may show, as slash paths relative
// to it, sorted; checkpoints, locks and hidden (temporary) files are left out.
func (idx *index) runFiles(r *runEntry) map[string]string {
	root := idx.st.RunDir(r.Hash)
	files := map[string]string{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable subfolder is skipped, not fatal
		}
		name := d.Name()
		if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if name == "checkpoints" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // no symlinks: they could point anywhere
		}
		if _, ok := servedExts[path.Ext(name)]; !ok {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err == nil {
			files[filepath.ToSlash(rel)] = p
		}
		return nil
	})
	return files
}

// clip shortens a request value for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
