package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-gota/gota/dataframe"
	"github.com/go-gota/gota/series"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// better says which way a numeric column improves.
type better int

const (
	noBest better = iota
	lowerBetter
	higherBetter
)

// column describes one results column after the varied keys. Numeric columns have num set;
// text columns have text set.
type column struct {
	key    string // name in results.csv / results.json
	label  string // table header
	better better
	format func(float64) string
	num    func(r *runView) float64
	text   func(r *runView) string
}

// summaryValue reads a number from the run's summary, NaN when the run has none.
func summaryValue(get func(*store.Summary) float64) func(*runView) float64 {
	return func(r *runView) float64 {
		if r.Summary == nil {
			return math.NaN()
		}
		return get(r.Summary)
	}
}

// qualityMetric is one of summary.json's metrics.
type qualityMetric struct {
	key, label string
	better     better
	format     func(float64) string
	get        func(store.Metrics) *float64
}

// qualityMetrics are the summary's sample-quality metrics, in table order.
var qualityMetrics = []qualityMetric{
	{"fd", "FD", lowerBetter, fmtFixed(2), func(m store.Metrics) *float64 { return m.FD }},
	{"fd_real", "FD real-vs-real", noBest, fmtFixed(2), func(m store.Metrics) *float64 { return m.FDReal }},
	{"fd_real_n", "FD real, same n", noBest, fmtFixed(2), func(m store.Metrics) *float64 { return m.FDRealN }},
	{"recognizable", "recognizable %", higherBetter, fmtPercent, func(m store.Metrics) *float64 { return m.Recognizable }},
	{"class_entropy", "class entropy", higherBetter, fmtFixed(3), func(m store.Metrics) *float64 { return m.ClassEntropy }},
	{"min_class_share", "min class share", higherBetter, fmtPercent, func(m store.Metrics) *float64 { return m.MinClassShare }},
	{"class_accuracy", "class accuracy", higherBetter, fmtPercent, func(m store.Metrics) *float64 { return m.ClassAccuracy }},
	{"diversity", "within-class diversity", higherBetter, fmtFixed(2), func(m store.Metrics) *float64 { return m.Diversity }},
	{"diversity_real", "diversity of real data", noBest, fmtFixed(2), func(m store.Metrics) *float64 { return m.DiversityReal }},
}

// value is the metric of a run, NaN when not measured.
func (q qualityMetric) value(r *runView) float64 {
	if r.Summary == nil {
		return math.NaN()
	}
	if p := q.get(r.Summary.Metrics); p != nil {
		return *p
	}
	return math.NaN()
}

// columns returns the columns after the varied keys: the fixed ones, then every quality
// metric that at least one run reports.
func columns(runs []*runView) []column {
	cols := []column{
		{key: "state", label: "state", text: func(r *runView) string { return string(r.Status.State) }},
		{key: "reason", label: "reason", text: func(r *runView) string { return r.Status.Reason }},
		{key: "final_loss", label: "final loss", better: lowerBetter, format: fmtSig(4),
			num: summaryValue(func(s *store.Summary) float64 { return s.FinalLoss })},
		{key: "best_loss", label: "best loss", better: lowerBetter, format: fmtSig(4),
			num: summaryValue(func(s *store.Summary) float64 { return s.BestLoss })},
		{key: "train_seconds", label: "training time", better: lowerBetter, format: fmtDuration,
			num: summaryValue(func(s *store.Summary) float64 { return s.TrainSeconds })},
		{key: "images_per_sec", label: "images/s", better: higherBetter, format: fmtFixed(1),
			num: summaryValue(func(s *store.Summary) float64 { return s.ImagesPerSec })},
		{key: "sample_seconds_per_64", label: "sampling s / 64 images", better: lowerBetter, format: fmtFixed(1),
			num: summaryValue(func(s *store.Summary) float64 { return s.SampleSecondsPer64 })},
	}
	for _, q := range qualityMetrics {
		if slices.ContainsFunc(runs, func(r *runView) bool { return !math.IsNaN(q.value(r)) }) {
			cols = append(cols, column{key: q.key, label: q.label, better: q.better,
				format: q.format, num: q.value})
		}
	}
	text := func(get func(*store.Summary) string) func(*runView) string {
		return func(r *runView) string {
			if r.Summary == nil {
				return ""
			}
			return get(r.Summary)
		}
	}
	return append(cols,
		column{key: "weights", label: "weights", text: text(func(s *store.Summary) string { return s.Weights })},
		column{key: "sampler", label: "sampler", text: text(func(s *store.Summary) string { return s.Sampler })},
		column{key: "run", label: "run", text: func(r *runView) string { return r.Short }},
	)
}

// results is the results table: a gota frame (one row per run, in run order) plus what
// the HTML needs to show it.
type results struct {
	frame   dataframe.DataFrame
	varied  []string // the varied keys, the first columns of frame
	cols    []column // the columns after them
	best    map[string]int
	verdict string
}

// buildResults makes the table. best[key] is the row index of the best done run for each
// column that has a direction; the verdict names the winners.
func buildResults(varied []string, runs []*runView) results {
	cols := columns(runs)
	var ss []series.Series
	for _, k := range varied {
		vals := make([]string, len(runs))
		for i, r := range runs {
			vals[i] = r.varied[k]
		}
		ss = append(ss, series.New(vals, series.String, k))
	}
	for _, c := range cols {
		if c.num != nil {
			vals := make([]float64, len(runs))
			for i, r := range runs {
				vals[i] = c.num(r)
			}
			ss = append(ss, series.New(vals, series.Float, c.key))
			continue
		}
		vals := make([]string, len(runs))
		for i, r := range runs {
			vals[i] = c.text(r)
		}
		ss = append(ss, series.New(vals, series.String, c.key))
	}
	res := results{frame: dataframe.New(ss...), varied: varied, cols: cols, best: map[string]int{}}
	for _, c := range cols {
		if c.better == noBest || c.num == nil {
			continue
		}
		if i := bestRow(res.frame.Col(c.key).Float(), runs, c.better); i >= 0 {
			res.best[c.key] = i
		}
	}
	res.verdict = verdict(res, runs)
	return res
}

// bestRow returns the index of the best finite value among done runs, the first on ties, or -1.
func bestRow(vals []float64, runs []*runView, b better) int {
	best := -1
	for i, v := range vals {
		if runs[i].Status.State != store.Done || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if best < 0 || (b == lowerBetter && v < vals[best]) || (b == higherBetter && v > vals[best]) {
			best = i
		}
	}
	return best
}

// verdict is the one line above the table: the best run by the first quality metric
// present (recognizable %, else FD), then by final loss.
func verdict(res results, runs []*runView) string {
	var parts []string
	add := func(label, key string) {
		i, ok := res.best[key]
		if !ok {
			return
		}
		c := res.column(key)
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", label, runs[i].Label, c.format(c.num(runs[i]))))
	}
	for _, key := range []string{"recognizable", "fd"} {
		if _, ok := res.best[key]; ok {
			add("Best by "+res.column(key).label, key)
			break
		}
	}
	if len(parts) == 0 {
		add("Best final loss", "final_loss")
	} else {
		add("best final loss", "final_loss")
	}
	if len(parts) == 0 {
		return "No run finished, so there is no winner."
	}
	return strings.Join(parts, "; ")
}

func (res results) column(key string) column {
	for _, c := range res.cols {
		if c.key == key {
			return c
		}
	}
	panic("reports: no column " + key)
}

// tableView is the results table as the template shows it.
type tableView struct {
	Head []headCell
	Rows []tableRow
}

type tableRow struct {
	State string // the run's state, used as a CSS class
	Cells []cell
}

type headCell struct {
	Label   string
	Numeric bool
	Title   string
}

type cell struct {
	Text  string
	Sort  string // numeric sort key; empty sorts last
	Class string // "best" on the best value of a column, "reason" on failure reasons
	Href  string // link to the run page, on the varied cells and the run column
}

func (res results) view(runs []*runView) tableView {
	var tv tableView
	for _, k := range res.varied {
		tv.Head = append(tv.Head, headCell{Label: k, Title: "varied"})
	}
	for _, c := range res.cols {
		h := headCell{Label: c.label, Numeric: c.num != nil}
		switch c.better {
		case lowerBetter:
			h.Title = "lower is better"
		case higherBetter:
			h.Title = "higher is better"
		}
		tv.Head = append(tv.Head, h)
	}
	for i, r := range runs {
		row := tableRow{State: string(r.Status.State)}
		for _, k := range res.varied {
			row.Cells = append(row.Cells, cell{Text: r.varied[k], Sort: sortKey(r.varied[k]), Href: r.Page})
		}
		for _, c := range res.cols {
			if c.num == nil {
				cl := cell{Text: c.text(r)}
				switch c.key {
				case "run":
					cl.Href = r.Page
				case "reason":
					cl.Class = "reason"
				}
				row.Cells = append(row.Cells, cl)
				continue
			}
			v := res.frame.Col(c.key).Elem(i).Float()
			cl := cell{}
			if !math.IsNaN(v) {
				cl.Text = c.format(v)
				cl.Sort = strconv.FormatFloat(v, 'g', -1, 64)
			}
			if b, ok := res.best[c.key]; ok && b == i {
				cl.Class = "best"
			}
			row.Cells = append(row.Cells, cl)
		}
		tv.Rows = append(tv.Rows, row)
	}
	return tv
}

// sortKey is the numeric sort key of a varied value, or empty when it is not a number.
func sortKey(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return ""
}

// writeCSV writes the frame with gota. Floats are written in shortest form ('g', -1) and
// missing values as empty cells; gota's own float formatting (%f) would round small losses.
func (res results) writeCSV(w io.Writer) error {
	df := res.frame.Capply(func(s series.Series) series.Series {
		if s.Type() != series.Float {
			return s
		}
		vals := make([]string, s.Len())
		for i, v := range s.Float() {
			if !math.IsNaN(v) {
				vals[i] = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		return series.New(vals, series.String, s.Name)
	})
	return df.WriteCSV(w)
}

// writeJSON writes the frame as a JSON array of objects whose keys keep the column order;
// missing numbers are null. (gota's WriteJSON goes through maps and sorts the keys.)
func (res results) writeJSON(w io.Writer) error {
	names := res.frame.Names()
	var buf bytes.Buffer
	buf.WriteString("[")
	for i := range res.frame.Nrow() {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  {")
		for j, name := range names {
			if j > 0 {
				buf.WriteString(", ")
			}
			k, _ := json.Marshal(name)
			buf.Write(k)
			buf.WriteString(": ")
			e := res.frame.Elem(i, j)
			var v any = e.String()
			if e.Type() == series.Float {
				v = nil
				if f := e.Float(); !math.IsNaN(f) && !math.IsInf(f, 0) {
					v = f
				}
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		buf.WriteString("}")
	}
	buf.WriteString("\n]\n")
	_, err := w.Write(buf.Bytes())
	return err
}

func fmtSig(n int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'g', n, 64) }
}

func fmtFixed(n int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', n, 64) }
}

// fmtPercent shows a fraction as a percentage: 0.71 → "71%", 0.715 → "71.5%".
func fmtPercent(v float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(v*100, 'f', 1, 64), ".0") + "%"
}

// fmtDuration shows seconds as 0.8s, 42s, 5m01s or 2h03m.
func fmtDuration(s float64) string {
	switch {
	case s < 10:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 0, 64) + "s"
	}
	d := time.Duration(math.Round(s)) * time.Second
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
