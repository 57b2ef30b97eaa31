package reports

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// trainCPUMinutes is what a run's training cost in CPU-minutes: its training wall time
// (summary.json's train_seconds) times the libtorch threads it trained with (fingerprint.json),
// over 60. NaN for a run that did not train (a sampling-only run) or did not record either.
// It is measured, so a run trained beside other work costs more here than on a quiet machine.
func trainCPUMinutes(r *runView) float64 {
	if r.Summary == nil || r.Summary.TrainSeconds <= 0 || r.Fingerprint.Threads <= 0 {
		return math.NaN()
	}
	return r.Summary.TrainSeconds * float64(r.Fingerprint.Threads) / 60
}

// budgetChart draws each setting's recognizable share, with the table's error bar, against
// its training CPU-minutes (the mean over its finished runs): sample quality per unit of
// compute, which is what a recipe is judged by on a CPU. Each setting is one point in its own
// colour, the colour of its swatch in the table. It returns nil when fewer than two settings
// have both.
func budgetChart(title string, settings []*setting) ([]byte, error) {
	recognizable := measureByKey("recognizable")
	cost := measure{value: trainCPUMinutes}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "training CPU-minutes (train wall time × libtorch threads)"
	p.Y.Label.Text = "recognizable % of evaluation samples"
	p.X.Min, p.Y.Min = 0, 0
	drawn, top := 0, 0.0
	for i, s := range settings {
		x, y := estimateOf(cost, s.Runs), estimateOf(recognizable, s.Runs)
		if x.k == 0 || y.k == 0 {
			continue
		}
		pt := errPoints{{x: x.v, y: 100 * y.v}}
		if lo, hi, ok := y.bar(); ok {
			pt[0].lo, pt[0].hi = 100*(y.v-lo), 100*(hi-y.v)
		}
		c := s.color
		if c == nil {
			c = runColor(i)
		}
		sc, err := plotter.NewScatter(pt)
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = c, draw.CircleGlyph{}, vg.Points(4)
		p.Add(sc)
		if pt.anyBar() {
			eb, err := plotter.NewYErrorBars(pt)
			if err != nil {
				return nil, err
			}
			eb.Color, eb.Width = c, vg.Points(1.2)
			p.Add(eb)
		}
		drawn, top = drawn+1, math.Max(top, pt[0].y+pt[0].hi)
	}
	if drawn < 2 {
		return nil, nil
	}
	p.Y.Max = math.Min(100, top+5) // room above the highest bar
	p.Add(plotter.NewGrid())
	return render(p)
}
