package reports

import (
	"bytes"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// curve is one run's metrics as a chart draws them.
type curve struct {
	label  string
	color  color.Color
	loss   []store.LossRow
	epochs []store.EpochRow
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

// lossChart draws the per-step loss of every curve: raw faint, moving average solid, one
// colour per curve. With logY the y axis is logarithmic and non-positive losses are dropped.
// It returns nil when there is nothing to draw.
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
		var steps, ys []float64
		for _, pt := range c.loss {
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
		stride := max(1, len(ys)/maxRawPoints)
		raw, smooth := make(plotter.XYs, 0, len(ys)/stride+1), make(plotter.XYs, 0, len(ys))
		for i := range ys {
			if i%stride == 0 {
				raw = append(raw, plotter.XY{X: steps[i], Y: ys[i]})
			}
			smooth = append(smooth, plotter.XY{X: steps[i], Y: avg[i]})
		}
		rl, err := plotter.NewLine(raw)
		if err != nil {
			return nil, err
		}
		rl.Color = faint(c.color, 50)
		rl.Width = vg.Points(0.7)
		sl, err := plotter.NewLine(smooth)
		if err != nil {
			return nil, err
		}
		sl.Color = c.color
		sl.Width = vg.Points(2)
		p.Add(rl, sl)
		p.Legend.Add(c.label, sl)
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Add(plotter.NewGrid())
	return render(p)
}

// epochChart draws the mean loss per epoch of every curve, or returns nil without data.
func epochChart(title string, curves []curve) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "mean loss"
	p.Legend.Top = true
	drawn := false
	for i, c := range curves {
		var xys plotter.XYs
		for _, e := range c.epochs {
			if !math.IsNaN(e.MeanLoss) && !math.IsInf(e.MeanLoss, 0) {
				xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: e.MeanLoss})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c.color, vg.Points(2)
		pts.Color, pts.Shape = c.color, plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(c.label, l, pts)
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
