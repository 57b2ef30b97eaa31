package reports

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// metricLine is one line of a chart of settings: a measure and whether its points get the
// table's error bars (the Wilson interval of one run's share, or ± sd across seeds).
type metricLine struct {
	label string
	m     measure
	bars  bool
}

// ratioMeasure is a measure whose value is a ratio of a run's metrics, for the trade-off chart.
func ratioMeasure(get func(store.Metrics) (float64, bool)) measure {
	return measure{format: fmtFixed(2), value: func(r *runView) float64 {
		if r.Summary == nil {
			return math.NaN()
		}
		v, ok := get(r.Summary.Metrics)
		if !ok {
			return math.NaN()
		}
		return v
	}}
}

// tradeoffSeries are the quality measures drawn against a numeric varied key, all shares or
// ratios in [0, 1]-ish, so that one axis fits them: the quality/diversity trade-off of, say, a
// guidance sweep reads off one chart.
var tradeoffSeries = []metricLine{
	{label: "recognizable share", m: measureByKey("recognizable"), bars: true},
	{label: "class accuracy", m: measureByKey("class_accuracy"), bars: true},
	{label: "diversity ÷ real data's", m: ratioMeasure(func(m store.Metrics) (float64, bool) {
		d, ok1 := deref(m.Diversity)
		r, ok2 := deref(m.DiversityReal)
		return d / r, ok1 && ok2 && r > 0
	})},
	{label: "class entropy ÷ log2(10)", m: ratioMeasure(func(m store.Metrics) (float64, bool) {
		e, ok := deref(m.ClassEntropy)
		return e / math.Log2(10), ok
	})},
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// numericAxis returns each setting's value of the only varied key other than the seed as a
// number, or ok = false when the settings vary several keys or a non-numeric one.
func numericAxis(settings []*setting) (key string, xs []float64, ok bool) {
	keys := settingKeys(settings)
	if len(keys) != 1 {
		return "", nil, false
	}
	for _, s := range settings {
		v, _ := s.value(keys[0])
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", nil, false
		}
		xs = append(xs, x)
	}
	return keys[0], xs, true
}

// tradeoffChart draws the quality measures of the settings against the varied key, or returns
// nil when fewer than two settings have metrics.
func tradeoffChart(title, key string, xs []float64, settings []*setting) ([]byte, error) {
	return metricChart(title, key, "share / ratio", xs, settings, tradeoffSeries)
}

// fdChart draws FD, and the real-data floors beside it, against the varied key. FD's bars are
// one sd over seeds, or a single run's 95% bootstrap interval when it recorded one.
func fdChart(title, key string, xs []float64, settings []*setting) ([]byte, error) {
	floor := func(get func(store.Metrics) *float64) measure {
		return ratioMeasure(func(m store.Metrics) (float64, bool) { return deref(get(m)) })
	}
	return metricChart(title, key, "Fréchet distance (lower is better)", xs, settings, []metricLine{
		{label: "FD of the samples", m: measureByKey("fd"), bars: true},
		{label: "FD real vs real", m: floor(func(m store.Metrics) *float64 { return m.FDReal })},
		{label: "FD of as many real images", m: floor(func(m store.Metrics) *float64 { return m.FDRealN })},
	})
}

func metricChart(title, key, yLabel string, xs []float64, settings []*setting, lines []metricLine) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = key
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	drawn := false
	for i, s := range lines {
		var pts errPoints
		for j, st := range settings {
			e := estimateOf(s.m, st.Runs)
			if e.k == 0 {
				continue
			}
			pt := errPoint{x: xs[j], y: e.v}
			if lo, hi, ok := e.bar(); ok && s.bars {
				pt.lo, pt.hi = e.v-lo, hi-e.v
			}
			pts = append(pts, pt)
		}
		if len(pts) < 2 {
			continue
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].x < pts[b].x })
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = runColor(i), vg.Points(2)
		sc.Color, sc.Shape = runColor(i), plotutil.Shape(i)
		p.Add(l, sc)
		if s.bars && pts.anyBar() {
			eb, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return nil, err
			}
			eb.Color, eb.Width = runColor(i), vg.Points(1.2)
			p.Add(eb)
		}
		p.Legend.Add(s.label, l, sc)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Add(plotter.NewGrid())
	return render(p)
}

// shareChart draws the shares (recognizable %, class accuracy) of every setting side by side,
// each with the table's error bar, so that overlapping intervals are seen at a glance. It
// returns nil when no setting measured a share.
func shareChart(title string, settings []*setting, tick func(*setting) string) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = strings.Join(settingKeys(settings), ", ")
	p.Y.Label.Text = "% of evaluation samples"
	p.Legend.Top = true
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = tick(s)
	}
	p.NominalX(names...)
	var series []metricLine
	for _, key := range []string{"recognizable", "class_accuracy"} {
		if m := measureByKey(key); m.measured(settings) {
			series = append(series, metricLine{label: m.name, m: m, bars: true})
		}
	}
	if len(series) == 0 {
		return nil, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, line := range series {
		var pts errPoints
		offset := 0.0
		if len(series) > 1 {
			offset = 0.12 * (float64(i) - 0.5) // side by side within a setting's column
		}
		for j, s := range settings {
			e := estimateOf(line.m, s.Runs)
			if e.k == 0 {
				continue
			}
			pt := errPoint{x: float64(j) + offset, y: 100 * e.v}
			bl, bh := e.v, e.v
			if l, h, ok := e.bar(); ok {
				bl, bh = l, h
				pt.lo, pt.hi = 100*(e.v-l), 100*(h-e.v)
			}
			lo, hi = math.Min(lo, 100*bl), math.Max(hi, 100*bh)
			pts = append(pts, pt)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = runColor(i), draw.CircleGlyph{}, vg.Points(4)
		p.Add(sc)
		if pts.anyBar() {
			eb, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return nil, err
			}
			eb.Color, eb.Width = runColor(i), vg.Points(1.5)
			p.Add(eb)
		}
		p.Legend.Add(line.label, sc)
	}
	pad := math.Max(1, 0.08*(hi-lo)) // room above the highest bar for the legend, below the lowest
	p.Y.Min, p.Y.Max = math.Max(0, lo-pad), math.Min(100, hi+2*pad)
	p.X.Min, p.X.Max = -0.5, float64(len(settings))-0.5
	p.Add(plotter.NewGrid())
	return render(p)
}

// tickLabel is a setting's label on a chart axis: its varied values without the key names (or
// its short label, which needs them), prefixed by its role ("A", "B") on compare pages.
func tickLabel() func(*setting) string {
	return func(s *setting) string {
		var vals []string
		for _, v := range s.Values {
			vals = append(vals, v.Value)
		}
		l := strings.Join(vals, ", ")
		if l == "" || s.short {
			l = s.Label
		}
		if s.Role != "" {
			l = s.Role + ": " + l
		}
		return l
	}
}

// errPoint is a point with its error bar, as distances below and above y.
type errPoint struct{ x, y, lo, hi float64 }

type errPoints []errPoint

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) { return e[i].lo, e[i].hi }

func (e errPoints) anyBar() bool {
	for _, p := range e {
		if p.lo != 0 || p.hi != 0 {
			return true
		}
	}
	return false
}
