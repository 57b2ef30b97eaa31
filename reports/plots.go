package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// curve is one setting's metrics as a chart draws them: one run, or one run per seed.
type curve struct {
	label  string
	color  color.Color
	loss   [][]store.LossRow  // per run
	epochs [][]store.EpochRow // per run
}

const (
	plotWidth  = 9 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	// maxRawPoints bounds the faint per-step line; the moving average uses every step.
	maxRawPoints = 2000
)

// runColor is the colour of the i-th run in every chart of a sweep.
func runColor(i int) color.Color { return plotutil.DarkColors[i%len(plotutil.DarkColors)] }

// faint returns c with alpha a (0–255).
func faint(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), a}
}

// movingAverage is the trailing mean over window steps (shorter at the start).
func movingAverage(ys []float64, window int) []float64 {
	out := make([]float64, len(ys))
	sum, n := 0.0, 0
	for i, y := range ys {
		sum += y
		n++
		if n > window {
			sum -= ys[i-window]
			n--
		}
		out[i] = sum / float64(n)
	}
	return out
}

// smoothingWindow picks a window of about 1/20 of the run, between 1 and 200 steps.
func smoothingWindow(n int) int { return max(1, min(200, n/20)) }

// lossChart draws the per-step loss of every curve, one colour per curve. A curve of one run
// shows the raw loss faint and its moving average solid; a curve of several seeds shows the mean
// of their moving averages solid and their range as a band. With logY the y axis is logarithmic
// and non-positive losses are dropped. It returns nil when there is nothing to draw.
func lossChart(title string, curves []curve, logY bool) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	if logY {
		p.Title.Text += " (log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	drawn := false
	for _, c := range curves {
		var runs []plotter.XYs // per run: the moving average at each step
		var raw plotter.XYs    // one run: the raw loss, thinned
		for _, loss := range c.loss {
			var steps, ys []float64
			for _, pt := range loss {
				if math.IsNaN(pt.Loss) || math.IsInf(pt.Loss, 0) || (logY && pt.Loss <= 0) {
					continue
				}
				steps = append(steps, float64(pt.Step))
				ys = append(ys, pt.Loss)
			}
			if len(ys) == 0 {
				continue
			}
			avg := movingAverage(ys, smoothingWindow(len(ys)))
			smooth := make(plotter.XYs, len(ys))
			stride := max(1, len(ys)/maxRawPoints)
			raw = raw[:0]
			for i := range ys {
				smooth[i] = plotter.XY{X: steps[i], Y: avg[i]}
				if i%stride == 0 {
					raw = append(raw, plotter.XY{X: steps[i], Y: ys[i]})
				}
			}
			runs = append(runs, smooth)
		}
		if len(runs) == 0 {
			continue
		}
		if len(runs) == 1 {
			rl, err := plotter.NewLine(raw)
			if err != nil {
				return nil, err
			}
			rl.Color = faint(c.color, 50)
			rl.Width = vg.Points(0.7)
			p.Add(rl)
		}
		sl, err := addBand(p, c.color, runs)
		if err != nil {
			return nil, err
		}
		p.Legend.Add(bandLabel(c.label, len(runs)), sl)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Add(plotter.NewGrid())
	return render(p)
}

// bandLabel names a curve in the legend, saying when it is a mean over seeds.
func bandLabel(label string, runs int) string {
	if runs < 2 {
		return label
	}
	return fmt.Sprintf("%s (mean of %d seeds, band: their range)", label, runs)
}

// addBand draws the mean of the runs' lines solid and, for several runs, the range between
// their lowest and highest value at each x as a faint band. Only the x values every run has
// are drawn. It returns the mean line for the legend.
func addBand(p *plot.Plot, c color.Color, runs []plotter.XYs) (*plotter.Line, error) {
	mean, lo, hi := spreadAcross(runs)
	if len(runs) > 1 && len(mean) > 1 {
		ring := make(plotter.XYs, 0, 2*len(mean))
		stride := max(1, len(mean)/maxRawPoints)
		for i := 0; i < len(mean); i += stride {
			ring = append(ring, plotter.XY{X: mean[i].X, Y: hi[i]})
		}
		for i := (len(mean) - 1) / stride * stride; i >= 0; i -= stride {
			ring = append(ring, plotter.XY{X: mean[i].X, Y: lo[i]})
		}
		band, err := plotter.NewPolygon(ring)
		if err != nil {
			return nil, err
		}
		band.Color = faint(c, 60)
		band.LineStyle.Width = 0
		p.Add(band)
	}
	l, err := plotter.NewLine(mean)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(2)
	p.Add(l)
	return l, nil
}

// spreadAcross aligns the runs' lines on their x values and returns, at each x that every run
// has (in increasing order), the mean and the lowest and highest y.
func spreadAcross(runs []plotter.XYs) (mean plotter.XYs, lo, hi []float64) {
	type acc struct {
		sum, lo, hi float64
		n           int
	}
	at := map[float64]*acc{}
	for _, run := range runs {
		for _, pt := range run {
			a, ok := at[pt.X]
			if !ok {
				a = &acc{lo: math.Inf(1), hi: math.Inf(-1)}
				at[pt.X] = a
			}
			a.sum += pt.Y
			a.lo, a.hi = math.Min(a.lo, pt.Y), math.Max(a.hi, pt.Y)
			a.n++
		}
	}
	xs := make([]float64, 0, len(at))
	for x, a := range at {
		if a.n == len(runs) {
			xs = append(xs, x)
		}
	}
	slices.Sort(xs)
	for _, x := range xs {
		a := at[x]
		mean = append(mean, plotter.XY{X: x, Y: a.sum / float64(a.n)})
		lo, hi = append(lo, a.lo), append(hi, a.hi)
	}
	return mean, lo, hi
}

// epochChart draws the mean loss per epoch of every curve (the mean and range over seeds for
// a curve of several), or returns nil without data.
func epochChart(title string, curves []curve) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "mean loss"
	p.Legend.Top = true
	drawn := false
	for i, c := range curves {
		var runs []plotter.XYs
		for _, epochs := range c.epochs {
			var xys plotter.XYs
			for _, e := range epochs {
				if !math.IsNaN(e.MeanLoss) && !math.IsInf(e.MeanLoss, 0) {
					xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: e.MeanLoss})
				}
			}
			if len(xys) > 0 {
				runs = append(runs, xys)
			}
		}
		if len(runs) == 0 {
			continue
		}
		l, err := addBand(p, c.color, runs)
		if err != nil {
			return nil, err
		}
		mean, _, _ := spreadAcross(runs)
		pts, err := plotter.NewScatter(mean)
		if err != nil {
			return nil, err
		}
		pts.Color, pts.Shape = c.color, plotutil.Shape(i)
		p.Add(pts)
		p.Legend.Add(bandLabel(c.label, len(runs)), l, pts)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Add(plotter.NewGrid())
	return render(p)
}

func render(p *plot.Plot) ([]byte, error) {
	w, err := p.WriterTo(plotWidth, plotHeight, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
