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

// better says which way a measure improves.
type better int

const (
	lowerBetter better = iota + 1
	higherBetter
)

// column describes one column of results.csv and results.json after the varied keys.
// Numeric columns have num set; text columns have text set.
type column struct {
	key  string // the column's name
	num  func(r *runView) float64
	text func(r *runView) string
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

// qualityMetric is one of summary.json's metrics, as results.csv and the run page show it.
type qualityMetric struct {
	key, label string
	format     func(float64) string
	get        func(store.Metrics) *float64
}

// qualityMetrics are the summary's sample-quality metrics, in table order.
var qualityMetrics = []qualityMetric{
	{"fd", "FD", fmtFixed(2), func(m store.Metrics) *float64 { return m.FD }},
	{"fd_real", "FD real-vs-real", fmtFixed(2), func(m store.Metrics) *float64 { return m.FDReal }},
	{"fd_real_n", "FD real, same n", fmtFixed(2), func(m store.Metrics) *float64 { return m.FDRealN }},
	{"recognizable", "recognizable %", fmtPercent, func(m store.Metrics) *float64 { return m.Recognizable }},
	{"class_entropy", "class entropy", fmtFixed(3), func(m store.Metrics) *float64 { return m.ClassEntropy }},
	{"min_class_share", "min class share", fmtPercent, func(m store.Metrics) *float64 { return m.MinClassShare }},
	{"class_accuracy", "class accuracy", fmtPercent, func(m store.Metrics) *float64 { return m.ClassAccuracy }},
	{"diversity", "within-class diversity", fmtFixed(2), func(m store.Metrics) *float64 { return m.Diversity }},
	{"diversity_real", "diversity of real data", fmtFixed(2), func(m store.Metrics) *float64 { return m.DiversityReal }},
}

// value is the metric of a run, NaN when not measured.
func (q qualityMetric) value(r *runView) float64 { return metricValue(q.get)(r) }

// columns returns the columns after the varied keys: the fixed ones, then every quality
// metric that at least one run reports.
func columns(runs []*runView) []column {
	cols := []column{
		{key: "state", text: func(r *runView) string { return string(r.Status.State) }},
		{key: "reason", text: func(r *runView) string { return r.Status.Reason }},
		{key: "final_loss", num: summaryValue(func(s *store.Summary) float64 { return s.FinalLoss })},
		{key: "best_loss", num: summaryValue(func(s *store.Summary) float64 { return s.BestLoss })},
		{key: "train_seconds", num: summaryValue(func(s *store.Summary) float64 { return s.TrainSeconds })},
		{key: "images_per_sec", num: summaryValue(func(s *store.Summary) float64 { return s.ImagesPerSec })},
		{key: "sample_seconds_per_64", num: summaryValue(func(s *store.Summary) float64 { return s.SampleSecondsPer64 })},
	}
	for _, q := range qualityMetrics {
		if !slices.ContainsFunc(runs, func(r *runView) bool { return !math.IsNaN(q.value(r)) }) {
			continue
		}
		cols = append(cols, column{key: q.key, num: q.value})
		if m := measureByKeyOK(q.key); m.interval != nil && slices.ContainsFunc(runs, func(r *runView) bool { _, _, _, ok := m.interval(r); return ok }) {
			bound := func(upper bool) func(*runView) float64 {
				return func(r *runView) float64 {
					lo, hi, _, ok := m.interval(r)
					switch {
					case !ok:
						return math.NaN()
					case upper:
						return hi
					}
					return lo
				}
			}
			cols = append(cols,
				column{key: q.key + "_lo", num: bound(false)},
				column{key: q.key + "_hi", num: bound(true)})
		}
		if m, ok := shareMeasure(q.key); ok {
			bound := func(upper bool) func(*runView) float64 {
				return func(r *runView) float64 {
					lo, hi := wilson(q.value(r), m.samples(r), z95)
					if upper {
						return hi
					}
					return lo
				}
			}
			cols = append(cols,
				column{key: q.key + "_lo", num: bound(false)},
				column{key: q.key + "_hi", num: bound(true)})
		}
	}
	evalN := func(r *runView) float64 {
		if r.EvalN == 0 || r.Summary == nil || r.Summary.Metrics.FD == nil { // FD: measured for every dataset, labelled or not
			return math.NaN() // no metrics, or no count behind them
		}
		return float64(r.EvalN)
	}
	if slices.ContainsFunc(runs, func(r *runView) bool { return !math.IsNaN(evalN(r)) }) {
		cols = append(cols, column{key: "eval_n", num: evalN})
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
		column{key: "weights", text: text(func(s *store.Summary) string { return s.Weights })},
		column{key: "sampler", text: text(func(s *store.Summary) string { return s.Sampler })},
		column{key: "run", text: func(r *runView) string { return r.Short }},
	)
}

// results is the results table as results.csv and results.json hold it: a gota frame with
// one row per run, in run order, and every column, where the HTML table (view.go) folds seeds
// and leaves the floors to a note.
type results struct {
	frame  dataframe.DataFrame
	varied []string // the varied keys, the first columns of frame
	cols   []column // the columns after them
}

// buildResults makes the table.
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
	return results{frame: dataframe.New(ss...), varied: varied, cols: cols}
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
