package reports

import (
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// metricLine is one line of a chart against the varied parameter.
type metricLine struct {
	label string
	get   func(store.Metrics) (float64, bool)
}

// tradeoffSeries are the quality measures drawn against a numeric varied key, all shares or
// ratios in [0, 1]-ish, so that one axis fits them: the quality/diversity trade-off of, say, a
// guidance sweep reads off one chart.
var tradeoffSeries = []metricLine{
	{"recognizable share", func(m store.Metrics) (float64, bool) { return deref(m.Recognizable) }},
	{"class accuracy", func(m store.Metrics) (float64, bool) { return deref(m.ClassAccuracy) }},
	{"diversity ÷ real data's", func(m store.Metrics) (float64, bool) {
		d, ok1 := deref(m.Diversity)
		r, ok2 := deref(m.DiversityReal)
		return d / r, ok1 && ok2 && r > 0
	}},
	{"class entropy ÷ log2(10)", func(m store.Metrics) (float64, bool) {
		e, ok := deref(m.ClassEntropy)
		return e / math.Log2(10), ok
	}},
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// numericAxis returns each run's value of the only varied key as a number, or ok = false
// when the sweep varies several keys or a non-numeric one.
func numericAxis(keys []string, runs []*runView) (key string, xs []float64, ok bool) {
	if len(keys) != 1 {
		return "", nil, false
	}
	for _, r := range runs {
		x, err := strconv.ParseFloat(r.varied[keys[0]], 64)
		if err != nil {
			return "", nil, false
		}
		xs = append(xs, x)
	}
	return keys[0], xs, true
}

// tradeoffChart draws the quality measures of the done runs against the varied key, or returns
// nil when fewer than two runs have metrics.
func tradeoffChart(title, key string, xs []float64, runs []*runView) ([]byte, error) {
	return metricChart(title, key, "share / ratio", xs, runs, tradeoffSeries)
}

// fdChart draws FD, and the real-data floors beside it, against the varied key.
func fdChart(title, key string, xs []float64, runs []*runView) ([]byte, error) {
	return metricChart(title, key, "Fréchet distance (lower is better)", xs, runs, []metricLine{
		{"FD of the samples", func(m store.Metrics) (float64, bool) { return deref(m.FD) }},
		{"FD real vs real", func(m store.Metrics) (float64, bool) { return deref(m.FDReal) }},
		{"FD of as many real images", func(m store.Metrics) (float64, bool) { return deref(m.FDRealN) }},
	})
}

func metricChart(title, key, yLabel string, xs []float64, runs []*runView, lines []metricLine) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = key
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	drawn := false
	for i, s := range lines {
		var xys plotter.XYs
		for j, r := range runs {
			if r.Summary == nil || r.Status.State != store.Done {
				continue
			}
			if y, ok := s.get(r.Summary.Metrics); ok && !math.IsNaN(y) && !math.IsInf(y, 0) {
				xys = append(xys, plotter.XY{X: xs[j], Y: y})
			}
		}
		if len(xys) < 2 {
			continue
		}
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = runColor(i), vg.Points(2)
		pts.Color, pts.Shape = runColor(i), plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(s.label, l, pts)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Add(plotter.NewGrid())
	return render(p)
}
