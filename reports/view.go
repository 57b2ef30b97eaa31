package reports

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// The HTML results table: one row per setting, one line per row, its columns in groups
// (setting, training, sampling, quality) and sized to fit a 1280-pixel window. The real-data
// floors, which are the same for every run, go to a note above the table; a setting with
// seeds folds its runs below its row.

// tableView is the results table as the template shows it.
type tableView struct {
	Groups []groupCell
	Head   []headCell
	Bodies []tableBody // one per setting
}

// groupCell is a cell of the header row that names the column groups.
type groupCell struct {
	Label, Class string
	Span         int
}

type headCell struct {
	Label   string
	Title   string
	Numeric bool
	Class   string // the column group, for the left border between groups
}

// tableBody is one setting: its row and, with seeds, the rows of its runs.
type tableBody struct {
	Main  tableRow
	Seeds []tableRow
}

type tableRow struct {
	State string // the run's state (or "done" for a setting with finished seeds), a CSS class
	Cells []cell
}

type cell struct {
	Text   string
	Spread string // the "± 5.7" part, set in smaller type
	Note   string // small text after the value, e.g. a state
	Title  string // tooltip
	Sort   string // numeric sort key; empty sorts by text
	Class  string
	Href   string
	Thumb  string // image shown instead of Text (the samples column)
	Swatch string // colour swatch before Text
	Span   int    // colspan when > 1
	Fold   bool   // the cell holds the toggle that folds the seed rows
}

// tableOptions changes the table for a compare page.
type tableOptions struct {
	sweepColumn bool // first column: the sweep each setting comes from
}

// viewColumn is one column of the HTML table after the setting columns.
type viewColumn struct {
	group string
	m     *measure                // numeric columns
	label string                  // text columns
	text  func(r *runView) string // text columns
}

// viewColumns picks the columns any finished run has a value for, in group order.
func viewColumns(settings []*setting) []viewColumn {
	var cols []viewColumn
	anySummary := slices.ContainsFunc(settings, func(s *setting) bool {
		return slices.ContainsFunc(s.done(), func(r *runView) bool { return r.Summary != nil })
	})
	for _, group := range []string{"training", "sampling", "quality"} {
		if group == "sampling" && anySummary {
			cols = append(cols, viewColumn{group: group, label: "sampler", text: samplerText})
		}
		for i := range measures {
			m := &measures[i]
			if m.group == group && m.measured(settings) {
				cols = append(cols, viewColumn{group: group, m: m})
			}
		}
	}
	return cols
}

// samplerText is "ddim 50 · ema": sampler, steps and weights of a run.
func samplerText(r *runView) string {
	if r.Summary == nil {
		return ""
	}
	var parts []string
	s := r.Summary
	if s.Sampler != "" {
		p := s.Sampler
		if s.SampleSteps > 0 {
			p += " " + strconv.Itoa(s.SampleSteps)
		}
		parts = append(parts, p)
	}
	if s.Weights != "" {
		parts = append(parts, s.Weights)
	}
	return strings.Join(parts, " · ")
}

// settingKeys is the union of the settings' varied keys (without the seed), in order of appearance.
func settingKeys(settings []*setting) []string {
	var keys []string
	for _, s := range settings {
		for _, v := range s.Values {
			if !slices.Contains(keys, v.Key) {
				keys = append(keys, v.Key)
			}
		}
	}
	return keys
}

func (s *setting) value(key string) (string, bool) {
	for _, v := range s.Values {
		if v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

// buildTable lays out the settings, marking the verdict's winners and leaders.
func buildTable(settings []*setting, v verdict, opts tableOptions) tableView {
	keys := settingKeys(settings)
	cols := viewColumns(settings)
	var tv tableView
	nSetting := len(keys) + 1
	if opts.sweepColumn {
		nSetting++
		tv.Head = append(tv.Head, headCell{Label: "sweep", Class: "g-setting"})
	}
	for _, k := range keys {
		tv.Head = append(tv.Head, headCell{Label: k, Title: "varied", Class: "g-setting"})
	}
	seeded := slices.ContainsFunc(settings, func(s *setting) bool { return s.Seeded })
	runLabel := "run"
	if seeded {
		runLabel = "runs"
	}
	tv.Head = append(tv.Head, headCell{Label: runLabel, Class: "g-setting"})
	tv.Groups = append(tv.Groups, groupCell{Label: "setting", Class: "g-setting", Span: nSetting})
	for _, c := range cols {
		h := headCell{Label: c.label, Class: "g-" + c.group}
		if c.m != nil {
			h.Label, h.Numeric = c.m.label, true
			var title []string
			if c.m.title != "" {
				title = append(title, c.m.title)
			}
			switch c.m.better {
			case lowerBetter:
				title = append(title, "lower is better")
			case higherBetter:
				title = append(title, "higher is better")
			}
			h.Title = strings.Join(title, "; ")
		}
		if n := len(tv.Groups); tv.Groups[n-1].Label == c.group {
			tv.Groups[n-1].Span++
		} else {
			tv.Groups = append(tv.Groups, groupCell{Label: c.group, Class: "g-" + c.group, Span: 1})
		}
		tv.Head = append(tv.Head, h)
	}
	tv.Head = append(tv.Head, headCell{Label: "grid", Title: "final samples; hover to enlarge, click to see the grid below the table", Class: "g-samples"})
	tv.Groups = append(tv.Groups, groupCell{Label: "", Class: "g-samples", Span: 1})
	// The first head cell of each group gets the group border.
	for i := len(tv.Head) - 1; i > 0; i-- { // backwards, so that Head[i-1] is not marked yet
		if tv.Head[i].Class != tv.Head[i-1].Class {
			tv.Head[i].Class += " first"
		}
	}

	for _, s := range settings {
		body := tableBody{Main: settingRow(s, keys, cols, v, opts, tv.Head)}
		if s.Seeded {
			for _, r := range s.Runs {
				body.Seeds = append(body.Seeds, runRow(s, r, keys, cols, opts, tv.Head, verdict{}))
			}
		}
		tv.Bodies = append(tv.Bodies, body)
	}
	return tv
}

// leading returns the cells of the setting columns: sweep, varied values, and the run column.
func leading(s *setting, keys []string, opts tableOptions, href string, swatch bool) []cell {
	var cells []cell
	if opts.sweepColumn {
		cells = append(cells, cell{Text: s.Role, Title: s.Sweep})
	}
	for i, k := range keys {
		val, ok := s.value(k)
		if !ok {
			val = "—"
		}
		c := cell{Text: val, Sort: sortKey(val), Href: href}
		if i == 0 && swatch {
			c.Swatch = s.Color
		}
		cells = append(cells, c)
	}
	if len(keys) == 0 && swatch && len(cells) > 0 {
		cells[0].Swatch = s.Color
	}
	return cells
}

// settingRow is the row of a setting: for one run, that run; for seeds, their mean ± sd.
func settingRow(s *setting, keys []string, cols []viewColumn, v verdict, opts tableOptions, head []headCell) tableRow {
	if !s.Seeded {
		return runRow(s, s.Runs[0], keys, cols, opts, head, v)
	}
	done := s.done()
	row := tableRow{State: "done"}
	if len(done) == 0 {
		row.State = "failed"
	}
	cells := leading(s, keys, opts, "", true)
	runs := cell{Text: plural(len(s.Runs), "seed"), Fold: true, Title: s.states() + "; click to show each seed's run"}
	if len(done) < len(s.Runs) {
		runs.Text += fmt.Sprintf(" (%d done)", len(done))
	}
	if len(cells) == 0 {
		runs.Swatch = s.Color
	}
	cells = append(cells, runs)
	if len(done) == 0 {
		cells = append(reason(cells, "no seed finished: "+s.states(), len(cols)), cell{Class: "thumb"})
		markGroups(cells, head)
		row.Cells = cells
		return row
	}
	for _, c := range cols {
		if c.m == nil {
			cells = append(cells, cell{Text: c.text(done[0])})
			continue
		}
		cells = append(cells, measureCell(*c.m, estimateOf(*c.m, s.Runs), s, v))
	}
	cells = append(cells, thumbCell(done[0]))
	markGroups(cells, head)
	row.Cells = cells
	return row
}

// runRow is the row of one run: the setting's row without seeds, or a folded seed row. marks
// is the verdict whose winners and leaders the row marks (empty for seed rows).
func runRow(s *setting, r *runView, keys []string, cols []viewColumn, opts tableOptions, head []headCell, marks verdict) tableRow {
	row := tableRow{State: string(r.Status.State)}
	var cells []cell
	if s.Seeded {
		cells = make([]cell, len(keys))
		if opts.sweepColumn {
			cells = append(cells, cell{})
		}
	} else {
		cells = leading(s, keys, opts, r.Page, true)
	}
	run := cell{Text: r.Short, Href: r.Page, Class: "hash", Title: r.Hash}
	if s.Seeded {
		run.Text = "seed " + r.varied[seedKey] + " · " + r.Short
	}
	if r.Status.State != store.Done {
		run.Note = string(r.Status.State)
	}
	if len(cells) == 0 {
		run.Swatch = s.Color
	}
	cells = append(cells, run)
	if r.Summary == nil {
		why := r.Status.Reason
		if why == "" {
			why = "no summary yet: " + string(r.Status.State)
		}
		cells = reason(cells, why, len(cols))
	} else {
		for _, c := range cols {
			if c.m == nil {
				cells = append(cells, cell{Text: c.text(r)})
				continue
			}
			cells = append(cells, measureCell(*c.m, estimateOf(*c.m, []*runView{r}), s, marks))
		}
	}
	cells = append(cells, thumbCell(r))
	markGroups(cells, head)
	row.Cells = cells
	return row
}

// reason shows why a row has no numbers in one cell across the span columns after the
// setting columns (the run cell, last in cells, when there are none).
func reason(cells []cell, why string, span int) []cell {
	if span == 0 {
		last := &cells[len(cells)-1]
		last.Note = strings.TrimSpace(last.Note + " " + why)
		return cells
	}
	return append(cells, cell{Text: why, Title: why, Class: "reason", Span: span})
}

// measureCell shows an estimate: value, "±" part, tooltip, and the verdict's mark.
func measureCell(m measure, e estimate, s *setting, v verdict) cell {
	c := cell{Class: "num"}
	if e.k == 0 {
		if noClassifier(m.key, s) {
			c.Text, c.Title = "—", "not measured: the dataset has no labels, so there is no reference classifier (FD is measured in random features)"
		}
		return c
	}
	c.Text, c.Spread = e.text(m)
	c.Title = e.title(m)
	c.Sort = strconv.FormatFloat(e.v, 'g', -1, 64)
	leader, tested := v.leader(m.key)
	switch {
	case v.winner(m.key) == s:
		c.Class += " best"
		c.Title = strings.TrimPrefix(c.Title+"; wins beyond noise", "; ")
	case leader == s && tested:
		c.Class += " lead"
		c.Title = strings.TrimPrefix(c.Title+"; best value, but not beyond noise", "; ")
	case leader == s:
		c.Class += " lead"
		c.Title = strings.TrimPrefix(c.Title+"; best value, not tested against noise", "; ")
	}
	return c
}

// noClassifier reports whether key is a measure of the reference classifier that s's evaluated
// runs lack: their dataset has no labels (quality.json's "classifier": "none"), so the cell says
// "not measured" rather than staying blank or reading as 0.
func noClassifier(key string, s *setting) bool {
	if key != "recognizable" && key != "class_entropy" && key != "min_class_share" {
		return false
	}
	for _, r := range s.Runs {
		if r.Summary != nil && r.Summary.Metrics.FD != nil {
			return true
		}
	}
	return false
}

// thumbCell is the small final grid that links to the full one below the table.
func thumbCell(r *runView) cell {
	if r.Final == "" {
		return cell{Class: "thumb"}
	}
	return cell{Class: "thumb", Href: "#" + r.Anchor, Text: "final samples of " + r.Short, Thumb: r.Final}
}

// markGroups gives each cell that starts a column group the group border. Cells line up with
// head except where a reason spans several columns.
func markGroups(cells []cell, head []headCell) {
	col := 0
	for i := range cells {
		if col < len(head) && strings.Contains(head[col].Class, "first") {
			cells[i].Class = strings.TrimSpace(cells[i].Class + " first")
		}
		col += max(1, cells[i].Span)
	}
}

// sortKey is the numeric sort key of a varied value, or empty when it is not a number.
func sortKey(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return ""
}

// tableNotes are the lines above the table: the sample counts, what "±" means, the FD floors
// and the real-data diversity, which are the same for every run and so are no columns.
func tableNotes(settings []*setting) []string {
	var runs []*runView
	for _, s := range settings {
		runs = append(runs, s.done()...)
	}
	var notes []string
	ns := distinctValues(runs, func(r *runView) string {
		if r.EvalN == 0 || r.Summary == nil || r.Summary.Metrics.FD == nil { // FD: measured for every dataset, labelled or not
			return ""
		}
		return fmtCount(r.EvalN)
	})
	hasShare := measureByKey("recognizable").measured(settings) || measureByKey("class_accuracy").measured(settings)
	if len(ns) > 0 {
		notes = append(notes, "Quality is measured on n = "+strings.Join(ns, " or ")+" evaluation samples per run.")
	}
	seeded := slices.ContainsFunc(settings, func(s *setting) bool { return s.Seeded })
	if hasShare {
		n := "± is half the 95% Wilson interval of a run's share (hover a cell for its bounds)"
		if len(ns) == 0 {
			n = "No run records how many samples it measured, so its shares have no interval"
		}
		if seeded {
			n += "; a setting's row shows the mean ± sd across its seeds, whose rows fold below it (click \"seeds\")"
		}
		notes = append(notes, n+".")
	} else if seeded {
		notes = append(notes, "A setting's row shows the mean ± sd across its seeds; their rows fold below it (click \"seeds\").")
	}
	if measureByKey("fd").measured(settings) {
		notes = append(notes, fdIntervalNote(runs, seeded))
	}
	var floors []string
	if fr := distinctValues(runs, metricText(func(m store.Metrics) *float64 { return m.FDReal })); len(fr) > 0 {
		floors = append(floors, strings.Join(fr, ", ")+" real against real (two halves of the test split)")
	}
	if fn := distinctValues(runs, func(r *runView) string {
		if r.Summary == nil || r.Summary.Metrics.FDRealN == nil {
			return ""
		}
		s := fmtFixed(2)(*r.Summary.Metrics.FDRealN)
		if r.EvalN > 0 {
			s += " (n = " + fmtCount(r.EvalN) + ")"
		}
		return s
	}); len(fn) > 0 {
		floors = append(floors, strings.Join(fn, ", ")+" for as many real images as samples, FD's floor at that n")
	}
	if len(floors) > 0 {
		notes = append(notes, "FD floors: "+strings.Join(floors, "; ")+".")
	}
	if dr := distinctValues(runs, metricText(func(m store.Metrics) *float64 { return m.DiversityReal })); len(dr) > 0 {
		notes = append(notes, "Within-class diversity of real data: "+strings.Join(dr, ", ")+".")
	}
	notes = append(notes, "★ wins beyond noise (two-sided test at 95%); bold: the best value, within noise or not tested.")
	return notes
}

func metricText(get func(store.Metrics) *float64) func(*runView) string {
	return func(r *runView) string {
		if r.Summary == nil {
			return ""
		}
		if p := get(r.Summary.Metrics); p != nil && !math.IsNaN(*p) {
			return fmtFixed(2)(*p)
		}
		return ""
	}
}

// distinctValues lists the non-empty values of get over runs, in order of first appearance.
func distinctValues(runs []*runView, get func(*runView) string) []string {
	var out []string
	for _, r := range runs {
		if v := get(r); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// fdIntervalNote says what the brackets after FD are: the 95% bootstrap interval over a run's
// samples, which runs evaluated before intervals were recorded lack.
func fdIntervalNote(runs []*runView, seeded bool) string {
	with, without := 0, 0
	for _, r := range runs {
		if r.Summary == nil || r.Summary.Metrics.FD == nil {
			continue
		}
		if r.Summary.Metrics.FDLow != nil && r.Summary.Metrics.FDHigh != nil {
			with++
		} else {
			without++
		}
	}
	n := "FD [low, high] is its 95% bootstrap interval over the run's samples (basic bootstrap, 200 resamples)"
	switch {
	case with == 0:
		n = "FD has no interval: these runs were evaluated before bootstrap intervals were recorded (runner eval --run HASH adds one)"
	case without > 0:
		n += "; runs evaluated before intervals were recorded have none (runner eval --run HASH adds one)"
	}
	if seeded {
		n += "; across seeds, ± is the sd"
	}
	return n + "."
}
