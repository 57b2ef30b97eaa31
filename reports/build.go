package reports

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// DefaultOut is where reports go when Options.Out is empty.
const DefaultOut = "reports/html"

// Options says which sweep to report and where.
type Options struct {
	// Store is the run store root (the folder holding <hash>/ and _sweeps/).
	Store string
	// Sweep is the manifest name: the report reads <Store>/_sweeps/<Sweep>.json.
	Sweep string
	// Out is the output root; empty means DefaultOut. The report goes to <Out>/<Sweep>/.
	Out string
	// Now is the time stamped on the pages; zero means time.Now(). Tests fix it.
	Now time.Time
	// Version is the version of the code that builds the report, shown in the footer. The
	// code version of the runs themselves comes from their fingerprint.json.
	Version string
	// Description is shown under the title. Empty means the description of the sweep file
	// named in the manifest, when that file can be read from the working folder.
	Description string
}

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// sweepNameRE is what a sweep name may look like: it names a folder under Out.
var sweepNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// runView is one run as the pages show it. Image paths are relative to the sweep folder.
type runView struct {
	runData
	Short  string
	Label  string // "train.lr=0.0005, train.epochs=20"
	Varied []kv
	varied map[string]string
	Page   string // runs/<short>.html
	Anchor string // id of its final grid on the sweep page
	Color  string // its setting's colour in the charts, as #rrggbb (set by groupSettings)

	Final      string
	Thumbs     []thumb // every samples/epoch_NNN.png
	FewThumbs  []thumb // at most maxThumbs of them, evenly spaced, for the sweep page
	Strip, GIF string
	LossPNG    string
	LossLogPNG string
}

type kv struct{ Key, Value string }

type thumb struct {
	Src   string
	Epoch string
}

// maxThumbs is how many epoch grids per run the sweep page shows; the run page shows all.
const maxThumbs = 10

// Build writes the report of one sweep to <Out>/<Sweep>/ (index.html, runs/<short>.html,
// img/, results.csv, results.json, report.json), then rewrites <Out>/index.html. It returns
// the path of the sweep's index.html. The sweep folder is built beside the old one and
// swapped in at the end, so a failed Build leaves the previous report as it was.
func Build(opts Options) (string, error) {
	if opts.Store == "" {
		return "", errors.New("reports: Options.Store is empty")
	}
	if !sweepNameRE.MatchString(opts.Sweep) {
		return "", fmt.Errorf("reports: bad sweep name %q (want letters, digits, '.', '_', '-')", opts.Sweep)
	}
	if opts.Out == "" {
		opts.Out = DefaultOut
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	src := newStoreSource(opts.Store)
	m, err := src.manifest(opts.Sweep)
	if err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	if opts.Description == "" {
		opts.Description = sweepDescription(m.File)
	}
	runs, err := loadRuns(src, m)
	if err != nil {
		return "", err
	}
	b := builder{src: src, opts: opts, m: m, runs: runs}
	index, err := stageAndSwap(opts.Out, opts.Sweep, &b, b.build)
	if err != nil {
		return "", fmt.Errorf("reports: sweep %q: %w", opts.Sweep, err)
	}
	return index, nil
}

// stageAndSwap runs build with b.dir set to a fresh folder beside <out>/<name>, swaps that
// folder in for <out>/<name> when build succeeds, rewrites <out>/index.html and returns the
// path of <out>/<name>/index.html. A failed build leaves the previous folder as it was.
func stageAndSwap(out, name string, b *builder, build func() error) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(out, "."+name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage) // no-op once renamed
	if err := os.Chmod(stage, 0o755); err != nil {
		return "", err
	}
	b.dir = stage
	if err := build(); err != nil {
		return "", err
	}
	final := filepath.Join(out, name)
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(stage, final); err != nil {
		return "", err
	}
	if err := BuildIndex(out); err != nil {
		return "", err
	}
	return filepath.Join(final, "index.html"), nil
}

// loadRuns reads every run of the manifest and sorts them by their varied values (numbers
// numerically), then by hash. A run whose status cannot be read is shown as "missing".
func loadRuns(src source, m store.Manifest) ([]*runView, error) {
	runs := make([]*runView, 0, len(m.Runs))
	for _, mr := range m.Runs {
		if err := store.CheckHash(mr.Hash); err != nil {
			return nil, fmt.Errorf("reports: sweep %s: %w", m.Name, err)
		}
		d, err := src.run(mr.Hash)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, store.ErrNoRun) {
				return nil, fmt.Errorf("reports: run %s: %w", store.Short(mr.Hash), err)
			}
			d = runData{Hash: mr.Hash, Status: store.Status{State: stateMissing, Reason: "not in the store"}}
		}
		r := &runView{runData: d, Short: store.Short(mr.Hash), varied: mr.Varied}
		var label []string
		for _, k := range m.VariedKeys {
			r.Varied = append(r.Varied, kv{k, mr.Varied[k]})
			label = append(label, k+"="+mr.Varied[k])
		}
		r.Label = strings.Join(label, ", ")
		if r.Label == "" {
			r.Label = r.Short
		}
		r.Page = "runs/" + r.Short + ".html"
		r.Anchor = "grid-" + r.Short
		runs = append(runs, r)
	}
	slices.SortStableFunc(runs, func(a, b *runView) int {
		for _, k := range m.VariedKeys {
			if c := compareValues(a.varied[k], b.varied[k]); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return runs, nil
}

// compareValues orders two varied values: numbers numerically before text, text bytewise.
func compareValues(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	switch {
	case ea == nil && eb == nil:
		return cmp.Compare(fa, fb)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

type builder struct {
	src  source
	dir  string // staging folder of the sweep
	opts Options
	m    store.Manifest
	runs []*runView
}

func (b *builder) build() error {
	for _, r := range b.runs {
		if err := b.runImages(r); err != nil {
			return fmt.Errorf("run %s: %w", r.Short, err)
		}
	}
	settings := groupSettings(b.m.Name, b.m.VariedKeys, b.runs)
	v := judgeAll(settings)
	charts, err := b.charts(b.m.Name, settings, false)
	if err != nil {
		return err
	}

	res := buildResults(b.m.VariedKeys, b.runs)
	var csvBuf, jsonBuf bytes.Buffer
	if err := res.writeCSV(&csvBuf); err != nil {
		return fmt.Errorf("results.csv: %w", err)
	}
	if err := res.writeJSON(&jsonBuf); err != nil {
		return fmt.Errorf("results.json: %w", err)
	}
	if err := b.write("results.csv", csvBuf.Bytes()); err != nil {
		return err
	}
	if err := b.write("results.json", jsonBuf.Bytes()); err != nil {
		return err
	}

	meta := b.meta(v.Headline)
	page := sweepPage{
		Title:       "Sweep " + b.m.Name,
		Meta:        meta,
		File:        b.m.File,
		Scale:       b.m.Scale,
		Varies:      strings.Join(b.m.VariedKeys, ", "),
		Code:        distinct(b.runs, func(r *runView) string { return r.Fingerprint.CodeVersion }),
		Libtorch:    distinct(b.runs, func(r *runView) string { return r.Fingerprint.LibtorchVersion }),
		Machine:     distinct(b.runs, machine),
		Results:     newResultsView(settings, v, tableOptions{}),
		Guide:       guideFor(b.m, settings),
		chartSet:    charts,
		footer:      b.footer(""),
		ReportFiles: []string{"results.csv", "results.json"},
	}
	if err := b.render("index.html", "sweep.html", page); err != nil {
		return err
	}
	for _, r := range b.runs {
		if err := b.render(r.Page, "run.html", b.runPage(r)); err != nil {
			return err
		}
	}
	return b.writeMeta(meta)
}

func (b *builder) writeMeta(meta sweepMeta) error {
	mj, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return b.write(metaFile, append(mj, '\n'))
}

// resultsView is what the results section of a sweep or compare page shows: the verdict,
// the notes above the table, the table, and the settings whose grids follow it.
type resultsView struct {
	Verdict  verdict
	Notes    []string
	Table    tableView
	Settings []*setting
}

func newResultsView(settings []*setting, v verdict, opts tableOptions) resultsView {
	return resultsView{Verdict: v, Notes: tableNotes(settings), Table: buildTable(settings, v, opts), Settings: settings}
}

// chartSet names the charts of a page; "" where there was nothing to draw.
type chartSet struct {
	LossPNG, LossLogPNG, EpochPNG string
	SharePNG                      string // shares with their intervals, one column per setting
	BudgetPNG                     string // recognizable % against training CPU-minutes
	QualityPNG, FDPNG             string // against a numeric varied key
	Axis                          string // that key
}

// charts draws the charts of a page of settings into img/. On a compare page (settings of
// two sweeps) there are no charts against a varied key: the two sweeps may vary different keys.
func (b *builder) charts(name string, settings []*setting, compare bool) (chartSet, error) {
	var cs chartSet
	curves := make([]curve, len(settings))
	for i, s := range settings {
		c := curve{label: s.Label, color: s.color}
		for _, r := range s.Runs {
			c.loss = append(c.loss, r.Loss)
			c.epochs = append(c.epochs, r.Epochs)
		}
		curves[i] = c
	}
	title := "loss per step: " + name
	var err error
	if cs.LossPNG, err = b.chart("img/loss.png", func() ([]byte, error) { return lossChart(title, curves, false) }); err != nil {
		return cs, err
	}
	if cs.LossLogPNG, err = b.chart("img/loss_log.png", func() ([]byte, error) { return lossChart(title, curves, true) }); err != nil {
		return cs, err
	}
	if cs.EpochPNG, err = b.chart("img/epochs.png", func() ([]byte, error) {
		return epochChart("mean loss per epoch: "+name, curves)
	}); err != nil {
		return cs, err
	}
	bars := "95% Wilson intervals"
	if slices.ContainsFunc(settings, func(s *setting) bool { return s.Seeded }) {
		bars = "mean ± sd across seeds"
	}
	if cs.SharePNG, err = b.chart("img/shares.png", func() ([]byte, error) {
		return shareChart("shares of the evaluation samples, "+bars+": "+name, settings, tickLabel())
	}); err != nil {
		return cs, err
	}
	if cs.BudgetPNG, err = b.chart("img/budget.png", func() ([]byte, error) {
		return budgetChart("recognizable % against training compute: "+name, settings)
	}); err != nil {
		return cs, err
	}
	if key, xs, ok := numericAxis(settings); ok && !compare {
		cs.Axis = key
		if cs.QualityPNG, err = b.chart("img/quality.png", func() ([]byte, error) {
			return tradeoffChart("sample quality against "+key, key, xs, settings)
		}); err != nil {
			return cs, err
		}
		if cs.FDPNG, err = b.chart("img/fd.png", func() ([]byte, error) {
			return fdChart("FD against "+key, key, xs, settings)
		}); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

// runImages copies the run's images into img/<short>/ and draws its own loss charts.
func (b *builder) runImages(r *runView) error {
	dir := "img/" + r.Short + "/"
	copyIf := func(rel, name string) (string, error) {
		ok, err := b.copyFile(b.src.runFile(r.Hash, rel), dir+name)
		if !ok || err != nil {
			return "", err
		}
		return dir + name, nil
	}
	var err error
	if r.Final, err = copyIf("samples/final.png", "final.png"); err != nil {
		return err
	}
	if r.Strip, err = copyIf("denoise/strip.png", "strip.png"); err != nil {
		return err
	}
	if r.GIF, err = copyIf("denoise/denoise.gif", "denoise.gif"); err != nil {
		return err
	}
	names, err := filepath.Glob(b.src.runFile(r.Hash, "samples/epoch_*.png"))
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		base := filepath.Base(n)
		src, err := copyIf("samples/"+base, base)
		if err != nil {
			return err
		}
		ep := strings.TrimLeft(strings.TrimSuffix(strings.TrimPrefix(base, "epoch_"), ".png"), "0")
		r.Thumbs = append(r.Thumbs, thumb{Src: src, Epoch: "epoch " + cmp.Or(ep, "0")})
	}
	r.FewThumbs = spread(r.Thumbs, maxThumbs)

	one := []curve{{label: r.Label, color: color.Black, loss: [][]store.LossRow{r.Loss}, epochs: [][]store.EpochRow{r.Epochs}}}
	title := "loss per step: " + r.Short
	if r.LossPNG, err = b.chart(dir+"loss.png", func() ([]byte, error) { return lossChart(title, one, false) }); err != nil {
		return err
	}
	if r.LossLogPNG, err = b.chart(dir+"loss_log.png", func() ([]byte, error) { return lossChart(title, one, true) }); err != nil {
		return err
	}
	if r.LossPNG == "" { // no loss.csv: fall back to the plot the run drew itself
		if r.LossPNG, err = copyIf("plots/loss.png", "loss.png"); err != nil {
			return err
		}
	}
	return nil
}

// spread picks at most n items, evenly spaced, always keeping the first and the last.
func spread[T any](xs []T, n int) []T {
	if len(xs) <= n {
		return xs
	}
	out := make([]T, n)
	for i := range n {
		out[i] = xs[i*(len(xs)-1)/(n-1)]
	}
	return out
}

// chart draws a chart and writes it to rel, returning rel, or "" when there was no data.
func (b *builder) chart(rel string, draw func() ([]byte, error)) (string, error) {
	png, err := draw()
	if err != nil || png == nil {
		return "", err
	}
	return rel, b.write(rel, png)
}

func (b *builder) write(rel string, data []byte) error {
	path := filepath.Join(b.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// copyFile copies src to rel under the staging folder. It reports false when src does not exist.
func (b *builder) copyFile(src, rel string) (bool, error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer in.Close()
	dst := filepath.Join(b.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	out, err := os.Create(dst)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return false, err
	}
	return true, out.Close()
}

func (b *builder) render(rel, tmpl string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, tmpl, data); err != nil {
		return err
	}
	return b.write(rel, buf.Bytes())
}

// distinct summarises one fingerprint field over the runs: the value when all runs agree,
// else each value with its count, e.g. "abc123 (2 runs), def456 (1 run)".
func distinct(runs []*runView, get func(*runView) string) string {
	counts := map[string]int{}
	for _, r := range runs {
		counts[cmp.Or(get(r), "unknown")]++
	}
	if len(counts) == 1 {
		for v := range counts {
			return v
		}
	}
	var parts []string
	for _, v := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s (%s)", v, plural(counts[v], "run")))
	}
	return strings.Join(parts, ", ")
}

// machine describes where a run ran: "host (device, 16 CPUs, linux/amd64)".
func machine(r *runView) string {
	fp := r.Fingerprint
	var details []string
	if fp.Device != "" {
		details = append(details, fp.Device)
	}
	if fp.CPUs > 0 {
		details = append(details, strconv.Itoa(fp.CPUs)+" CPUs")
	}
	osArch := fp.OS
	if fp.Arch != "" && osArch != "" {
		osArch += "/" + fp.Arch
	}
	if osArch != "" {
		details = append(details, osArch)
	}
	host := cmp.Or(fp.Host, r.Status.Host)
	if len(details) == 0 {
		return host
	}
	return strings.TrimSpace(host + " (" + strings.Join(details, ", ") + ")")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// metaFile is the per-sweep summary that BuildIndex reads.
const metaFile = "report.json"

// sweepMeta is one sweep as the index lists it.
type sweepMeta struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Start       string         `json:"start"` // RFC3339, UTC; earliest run start, else manifest time
	Ran         string         `json:"ran"`   // for people: "2026-03-01 10:00 → 11:32 UTC"
	Runs        int            `json:"runs"`
	States      map[string]int `json:"states"`
	Counts      string         `json:"counts"` // "3 runs: 2 done, 1 failed"
	Verdict     string         `json:"verdict"`
	Generated   string         `json:"generated"`
}

// stateMissing marks a run the manifest lists but the store does not hold.
const stateMissing store.State = "missing"

// stateOrder is the order in which counts list run states; others follow by name.
var stateOrder = []string{"done", "failed", "interrupted", "running", "pending", string(stateMissing)}

func (b *builder) meta(headline string) sweepMeta {
	m := sweepMeta{Name: b.m.Name, Description: b.opts.Description, Runs: len(b.runs),
		States: map[string]int{}, Verdict: headline, Generated: stamp(b.opts.Now)}
	var first, last time.Time
	for _, r := range b.runs {
		m.States[string(r.Status.State)]++
		if t := r.Status.Started; !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
		if t := r.Status.Finished; t.After(last) {
			last = t
		}
	}
	if first.IsZero() {
		first = b.m.Created
	}
	if !first.IsZero() {
		m.Start = first.UTC().Format(time.RFC3339)
		m.Ran = first.UTC().Format("2006-01-02 15:04")
		switch {
		case last.IsZero() || !last.After(first):
		case last.UTC().Format("2006-01-02") == first.UTC().Format("2006-01-02"):
			m.Ran += " → " + last.UTC().Format("15:04")
		default:
			m.Ran += " → " + last.UTC().Format("2006-01-02 15:04")
		}
		m.Ran += " UTC"
	}
	var counts []string
	for _, s := range stateOrder {
		if n := m.States[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, s))
		}
	}
	for _, s := range sortedKeys(m.States) {
		if !slices.Contains(stateOrder, s) {
			counts = append(counts, fmt.Sprintf("%d %s", m.States[s], s))
		}
	}
	m.Counts = plural(m.Runs, "run")
	if len(counts) > 0 {
		m.Counts += ": " + strings.Join(counts, ", ")
	}
	return m
}

// timeText shows a time from the store in UTC, or "" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

type footer struct {
	Generated string
	Version   string
	Root      string // relative path to the output root's index.html
}

func (b *builder) footer(up string) footer {
	return footer{Generated: stamp(b.opts.Now), Version: cmp.Or(b.opts.Version, "unknown"),
		Root: up + "../index.html"}
}

type sweepPage struct {
	footer
	chartSet
	Results                 resultsView
	Title                   string
	Meta                    sweepMeta
	File, Scale, Varies     string
	Code, Libtorch, Machine string
	Guide                   *guideView // the guide's expected results; nil unless a training-duration sweep
	ReportFiles             []string
}

type runPage struct {
	footer
	Title       string
	Sweep       string
	Run         *runView
	Rerun       string
	Status      []kv
	Summary     []kv
	Fingerprint []kv
}

func (b *builder) runPage(r *runView) runPage {
	p := runPage{
		footer: b.footer("../"),
		Title:  "Run " + r.Short + " (" + r.Label + ")",
		Sweep:  b.m.Name,
		Run:    r,
		Rerun:  "runner rerun " + r.Short,
	}
	s := r.Status
	add := func(rows *[]kv, k, v string) {
		if v != "" && v != "0" {
			*rows = append(*rows, kv{k, v})
		}
	}
	add(&p.Status, "state", string(s.State))
	add(&p.Status, "reason", s.Reason)
	add(&p.Status, "exit code", strconv.Itoa(s.ExitCode))
	add(&p.Status, "signal", s.Signal)
	add(&p.Status, "attempts", strconv.Itoa(s.Attempts))
	if s.Epochs > 0 {
		add(&p.Status, "epoch", fmt.Sprintf("%d of %d", s.Epoch, s.Epochs))
	}
	add(&p.Status, "host", s.Host)
	add(&p.Status, "pid", strconv.Itoa(s.PID))
	add(&p.Status, "started", timeText(s.Started))
	add(&p.Status, "finished", timeText(s.Finished))
	if s.WallSeconds > 0 {
		add(&p.Status, "wall time", fmtDuration(s.WallSeconds))
	}
	if sm := r.Summary; sm != nil {
		add(&p.Summary, "final loss", fmtSig(4)(sm.FinalLoss))
		add(&p.Summary, "best loss", fmtSig(4)(sm.BestLoss))
		add(&p.Summary, "training time", fmtDuration(sm.TrainSeconds))
		add(&p.Summary, "images/s", fmtFixed(1)(sm.ImagesPerSec))
		add(&p.Summary, "parameters", strconv.FormatInt(sm.ParamCount, 10))
		add(&p.Summary, "weights", sm.Weights)
		add(&p.Summary, "sampler", sm.Sampler)
		add(&p.Summary, "sample steps", strconv.Itoa(sm.SampleSteps))
		add(&p.Summary, "sampling time per 64 images", fmtDuration(sm.SampleSecondsPer64))
		if r.EvalN > 0 && sm.Metrics.FD != nil { // FD: measured for every dataset, labelled or not
			add(&p.Summary, "evaluation samples", fmtCount(r.EvalN))
		}
		for _, q := range qualityMetrics {
			v := q.value(r)
			if math.IsNaN(v) {
				continue
			}
			text := q.format(v)
			if m, ok := shareMeasure(q.key); ok && m.samples(r) > 0 {
				lo, hi := wilson(v, m.samples(r), z95)
				text += fmt.Sprintf(" (95%% Wilson interval %s to %s, n = %s)", fmtPercent1(lo), fmtPercent1(hi), fmtCount(m.samples(r)))
			}
			add(&p.Summary, q.label, text)
		}
	}
	p.Fingerprint = fingerprintRows(r.Fingerprint)
	return p
}
