package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/ddpmlab/ddpmlab/reports"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// indexPage lists the store's sweeps and runs.
type indexPage struct {
	Title   string
	Root    string
	Sweeps  []sweepRow
	Runs    []*runEntry
	Running int
}

// sweepRow is one sweep of the index page, with how far its runs are.
type sweepRow struct {
	store.Manifest
	Done, Running, Failed int
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := indexPage{Title: "ddpmlab store", Root: s.opts.Store.Root, Runs: idx.runs}
	state := map[string]*runEntry{}
	for _, e := range idx.runs {
		state[e.Hash] = e
		if e.live() {
			p.Running++
		}
	}
	for _, m := range idx.sweeps {
		row := sweepRow{Manifest: m}
		for _, r := range m.Runs {
			switch e := state[r.Hash]; {
			case e == nil:
			case e.live():
				row.Running++
			case e.Status.State == store.Done:
				row.Done++
			case e.Status.State == store.Failed:
				row.Failed++
			}
		}
		p.Sweeps = append(p.Sweeps, row)
	}
	s.render(w, r, "index.html", p)
}

// runPage is one run.
type runPage struct {
	Title   string
	Run     *runEntry
	Config  string
	Summary string // summary.json, indented
	Rerun   string // the command that trains the run again
	HasLoss bool
	Images  []string // served image files (slash paths in the run folder), grids first
	Files   []string // the other served files
	Epochs  []store.EpochRow
}

func (s *Server) lookupRun(w http.ResponseWriter, r *http.Request) (*index, *runEntry, bool) {
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	e, err := idx.run(r.PathValue("hash"))
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return idx, e, true
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	idx, e, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	p := runPage{Title: "run " + e.Short, Run: e, Config: string(e.Config),
		Rerun: fmt.Sprintf("runner rerun %s --store %s", e.Hash, shellQuote(s.opts.Store.Root))}
	if e.Summary != nil {
		b, _ := json.MarshalIndent(e.Summary, "", "  ")
		p.Summary = string(b)
	}
	files := idx.runFiles(e)
	_, p.HasLoss = files[store.LossFile]
	for _, f := range slices.Sorted(maps.Keys(files)) {
		switch path.Ext(f) {
		case ".png", ".gif":
			if !strings.HasPrefix(f, "plots/") { // the loss plot is drawn fresh below
				p.Images = append(p.Images, f)
			}
		default:
			p.Files = append(p.Files, f)
		}
	}
	p.Images = gridsFirst(p.Images)
	p.Epochs, _ = s.opts.Store.ReadEpochs(e.Hash)
	s.render(w, r, "run.html", p)
}

// gridsFirst orders a run's images: the final grid, the denoising strip and GIFs, then the
// epoch grids newest first.
func gridsFirst(images []string) []string {
	rank := func(f string) int {
		switch {
		case f == "samples/final.png":
			return 0
		case strings.HasPrefix(f, "denoise/"):
			return 1
		default:
			return 2
		}
	}
	var out []string
	for r := 0; r <= 2; r++ {
		var these []string
		for _, f := range images {
			if rank(f) == r {
				these = append(these, f)
			}
		}
		if r == 2 {
			for i, j := 0, len(these)-1; i < j; i, j = i+1, j-1 {
				these[i], these[j] = these[j], these[i]
			}
		}
		out = append(out, these...)
	}
	return out
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *Server) handleRunFile(w http.ResponseWriter, r *http.Request) {
	idx, e, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	name := r.PathValue("file")
	p, found := idx.runFiles(e)[name] // the request's name is only a key: the path is the walk's
	if !found {
		s.fail(w, r, fmt.Errorf("run %s has no file %q: %w", e.Short, clip(name), errNotFound))
		return
	}
	serveFile(w, r, p, servedExts[path.Ext(name)])
}

// serveFile answers with a file found by the index, with the given content type.
func serveFile(w http.ResponseWriter, r *http.Request, p, contentType string) {
	f, err := os.Open(p)
	if err != nil {
		http.Error(w, "file vanished", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "not a file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (s *Server) handleLossPNG(w http.ResponseWriter, r *http.Request) {
	_, e, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	loss, err := s.opts.Store.ReadLoss(e.Hash)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(loss) == 0) {
		s.fail(w, r, fmt.Errorf("run %s has no losses yet: %w", e.Short, errNotFound))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	png, err := reports.RunLossPlot("training loss, run "+e.Short, loss, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(png)
}

// progressJSON is what GET /api/runs/{hash}/progress answers.
type progressJSON struct {
	State     store.State  `json:"state"`
	Abandoned bool         `json:"abandoned,omitempty"`
	Epoch     int          `json:"epoch"` // epochs completed, from status.json
	Epochs    int          `json:"epochs"`
	Progress  *RunProgress `json:"progress,omitempty"` // the child's last report
}

func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request) {
	_, e, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	writeJSON(w, progressJSON{State: e.Status.State, Abandoned: e.Abandoned, Epoch: e.Status.Epoch, Epochs: e.Status.Epochs, Progress: e.Progress})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleSweep(w http.ResponseWriter, r *http.Request) {
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := idx.sweep(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := s.reports.get(s.opts.Store, m, s.opts.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("file")
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	p, found := files[name] // only a key: the paths are those of the report the server built
	if !found {
		s.fail(w, r, fmt.Errorf("report of %s has no %q: %w", m.Name, clip(name), errNotFound))
		return
	}
	ct := reportTypes[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	serveFile(w, r, p, ct)
}

// reportTypes are the content types of a report's files.
var reportTypes = map[string]string{
	".html": "text/html; charset=utf-8", ".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml",
	".csv": "text/csv; charset=utf-8", ".json": "application/json", ".css": "text/css; charset=utf-8",
	".js": "text/javascript; charset=utf-8",
}
