package reports

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// CompareOptions says which two sweeps to put on one page, and where.
type CompareOptions struct {
	// Store is the run store root.
	Store string
	// A and B are the manifest names; B is read as the change from A (a later code version,
	// another scale).
	A, B string
	// Out is the output root; empty means DefaultOut.
	Out string
	// Now is the time stamped on the pages; zero means time.Now().
	Now time.Time
	// Version is the version of the code that builds the report.
	Version string
}

// CompareName is the folder under Out of the page comparing sweeps a and b.
func CompareName(a, b string) string { return a + "_vs_" + b }

// Compare rebuilds the reports of sweeps A and B (as Build does) and writes a page that puts
// them side by side, <Out>/<A>_vs_<B>/index.html, whose grids and run links point into the two
// reports. Settings that appear in both sweeps (equal varied values) are paired, and each
// pair says whether B moved each measure beyond noise. It returns the page's path.
func Compare(opts CompareOptions) (string, error) {
	if opts.A == opts.B {
		return "", fmt.Errorf("reports: compare %q with itself: name two different sweeps", opts.A)
	}
	opts.Out = cmp.Or(opts.Out, DefaultOut)
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	src := newStoreSource(opts.Store)
	var sides [2]compareSide
	for i, name := range []string{opts.A, opts.B} {
		if _, err := Build(Options{Store: opts.Store, Sweep: name, Out: opts.Out, Now: opts.Now, Version: opts.Version}); err != nil {
			return "", err
		}
		m, err := src.manifest(name)
		if err != nil {
			return "", fmt.Errorf("reports: %w", err)
		}
		runs, err := loadRuns(src, m)
		if err != nil {
			return "", err
		}
		for _, r := range runs {
			linkBuilt(r, opts.Out, name)
		}
		sides[i] = compareSide{m: m, runs: runs, settings: groupSettings(name, m.VariedKeys, runs)}
	}
	name := CompareName(opts.A, opts.B)
	all := append(slices.Clone(sides[0].runs), sides[1].runs...)
	created := sides[0].m.Created
	if sides[1].m.Created.After(created) {
		created = sides[1].m.Created
	}
	b := builder{src: src, runs: all, m: store.Manifest{Name: name, Created: created},
		opts: Options{Store: opts.Store, Sweep: name, Out: opts.Out, Now: opts.Now, Version: opts.Version,
			Description: fmt.Sprintf("%s against %s", opts.B, opts.A)}}
	index, err := stageAndSwap(opts.Out, name, &b, func() error { return b.compare(sides) })
	if err != nil {
		return "", fmt.Errorf("reports: compare %s: %w", name, err)
	}
	return index, nil
}

// compareSide is one of the two sweeps of a compare page.
type compareSide struct {
	m        store.Manifest
	runs     []*runView
	settings []*setting
}

// linkBuilt points a run's final grid and page into the built report of its sweep, which
// sits beside the compare folder.
func linkBuilt(r *runView, out, sweep string) {
	prefix := "../" + sweep + "/"
	final := "img/" + r.Short + "/final.png"
	if _, err := os.Stat(filepath.Join(out, sweep, filepath.FromSlash(final))); err == nil {
		r.Final = prefix + final
	}
	r.Page = prefix + r.Page
	r.Anchor = "grid-" + sweep + "-" + r.Short
}

type comparePage struct {
	footer
	chartSet
	Title   string
	Meta    sweepMeta
	Sweeps  []compareSweep
	Pairs   *pairsView // nil when no setting appears in both sweeps
	Results resultsView
}

// compareSweep is the header of one sweep on a compare page.
type compareSweep struct {
	Role, Name, Link, Description string
	Varies, Scale, Ran, Counts    string
	Code, Libtorch, Machine       string
}

func (b *builder) compare(sides [2]compareSide) error {
	var settings []*setting
	page := comparePage{Title: "Compare " + sides[1].m.Name + " against " + sides[0].m.Name, footer: b.footer("")}
	for i, side := range sides {
		sub := builder{opts: b.opts, m: side.m, runs: side.runs}
		meta := sub.meta("")
		page.Sweeps = append(page.Sweeps, compareSweep{
			Role: []string{"A", "B"}[i], Name: side.m.Name, Link: "../" + side.m.Name + "/index.html",
			Description: sweepDescription(side.m.File), Varies: strings.Join(side.m.VariedKeys, ", "),
			Scale: side.m.Scale, Ran: meta.Ran, Counts: meta.Counts,
			Code:     distinct(side.runs, func(r *runView) string { return r.Fingerprint.CodeVersion }),
			Libtorch: distinct(side.runs, func(r *runView) string { return r.Fingerprint.LibtorchVersion }),
			Machine:  distinct(side.runs, machine),
		})
		for _, st := range side.settings {
			st.Role = []string{"A", "B"}[i]
		}
		settings = append(settings, side.settings...)
	}
	page.Pairs = pairUp(sides[0].settings, sides[1].settings)
	for _, s := range settings {
		s.Label = s.Role + ": " + s.Label
	}
	paint(settings)
	v := judgeAll(settings)
	page.Results = newResultsView(settings, v, tableOptions{sweepColumn: true})
	var err error
	if page.chartSet, err = b.charts(b.m.Name, settings, true); err != nil {
		return err
	}
	headline := v.Headline // the index shows the pairs' verdict when there are pairs
	if page.Pairs != nil {
		headline = page.Pairs.Headline
	}
	page.Meta = b.meta(headline)
	if err := b.render("index.html", "compare.html", page); err != nil {
		return err
	}
	return b.writeMeta(page.Meta)
}

// pairsView is the table of settings found in both sweeps: each verdict measure in A and B,
// and whether B moved it beyond noise.
type pairsView struct {
	A, B     string
	Measures []string
	Rows     []pairRow
	Lines    []string // one per measure: "recognizable: B is ahead beyond noise in 3 of 3 settings"
	Headline string
}

type pairRow struct {
	Setting string
	Cells   []pairCell // per measure
}

type pairCell struct {
	A, B, Change, Title, Class string
}

// pairUp pairs the settings of a and b that have the same varied values, or returns nil when
// none do.
func pairUp(a, b []*setting) *pairsView {
	key := func(s *setting) string {
		var parts []string
		for _, v := range s.Values {
			parts = append(parts, v.Key+"="+v.Value)
		}
		return strings.Join(parts, ", ")
	}
	type pair struct{ a, b *setting }
	var pairs []pair
	for _, sa := range a {
		for _, sb := range b {
			if key(sa) == key(sb) {
				pairs = append(pairs, pair{sa, sb})
			}
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	pv := &pairsView{A: a[0].Sweep, B: b[0].Sweep}
	var ms []measure
	for _, k := range verdictMeasures {
		m := measureByKey(k)
		if m.measured(a) && m.measured(b) {
			ms = append(ms, m)
			pv.Measures = append(pv.Measures, m.name)
		}
	}
	type tally struct{ better, worse, level, untested int }
	tallies := make([]tally, len(ms))
	for _, p := range pairs {
		row := pairRow{Setting: cmp.Or(key(p.a), p.a.Label)}
		for i, m := range ms {
			ea, eb := estimateOf(m, p.a.Runs), estimateOf(m, p.b.Runs)
			var c pairCell
			c.A, c.B = estText(m, ea), estText(m, eb)
			if ea.k == 0 || eb.k == 0 {
				row.Cells = append(row.Cells, c)
				tallies[i].untested++
				continue
			}
			d := eb.v - ea.v
			c.Change = signed(m, d)
			t := compareEstimates(m, eb, ea, m.single)
			improved := (d > 0) == (m.better == higherBetter)
			switch {
			case !t.ok:
				c.Title = "not tested: " + t.why
				tallies[i].untested++
			case t.significant() && improved:
				c.Class, c.Title = "best", "B better beyond noise: "+t.text()
				tallies[i].better++
			case t.significant():
				c.Class, c.Title = "worse", "B worse beyond noise: "+t.text()
				tallies[i].worse++
			default:
				c.Title = "within noise: " + t.text()
				tallies[i].level++
			}
			row.Cells = append(row.Cells, c)
		}
		pv.Rows = append(pv.Rows, row)
	}
	for i, m := range ms {
		t := tallies[i]
		var parts []string
		if t.better > 0 {
			parts = append(parts, fmt.Sprintf("better beyond noise in %d", t.better))
		}
		if t.worse > 0 {
			parts = append(parts, fmt.Sprintf("worse beyond noise in %d", t.worse))
		}
		if t.level > 0 {
			parts = append(parts, fmt.Sprintf("within noise in %d", t.level))
		}
		if t.untested > 0 {
			parts = append(parts, fmt.Sprintf("not tested in %d", t.untested))
		}
		line := fmt.Sprintf("%s: %s is %s of %s.", m.name, pv.B, strings.Join(parts, ", "), plural(len(pairs), "paired setting"))
		pv.Lines = append(pv.Lines, line)
		if pv.Headline == "" {
			pv.Headline = upperFirst(line)
		}
	}
	if pv.Headline == "" {
		pv.Headline = fmt.Sprintf("%s paired; no measure to compare.", plural(len(pairs), "setting"))
	}
	return pv
}

// signed is the change d in the measure's unit with its sign: "+14.8 pts", "−0.0021".
func signed(m measure, d float64) string {
	sign := "+"
	switch {
	case d == 0:
		return "0"
	case d < 0:
		sign = "−"
	}
	if m.points {
		return sign + fmtFixed(1)(math.Abs(d)*100) + " pts"
	}
	return sign + fmtSig(2)(math.Abs(d))
}
