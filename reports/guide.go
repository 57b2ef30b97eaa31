package reports

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// guideRow is one row of the guide's expected results for MNIST (shared/seed/ddpm-guide.txt,
// "After 10 Epochs (Quick test)" to "After 100 Epochs (Thorough)").
type guideRow struct {
	epochs             int
	lossLo, lossHi     float64 // "Loss: ~0.04-0.06"
	digits             string  // "Sample quality: 60% look like digits", as the guide puts it
	digitsLo, digitsHi float64 // the same as a band of shares; lo == hi for "~60%"
}

var guideRows = []guideRow{
	{epochs: 10, lossLo: 0.04, lossHi: 0.06, digits: "~60%", digitsLo: 0.60, digitsHi: 0.60},
	{epochs: 20, lossLo: 0.025, lossHi: 0.035, digits: "80–90%", digitsLo: 0.80, digitsHi: 0.90},
	{epochs: 50, lossLo: 0.020, lossHi: 0.028, digits: "90–95%", digitsLo: 0.90, digitsHi: 0.95},
	{epochs: 100, lossLo: 0.015, lossHi: 0.025, digits: "95%+", digitsLo: 0.95, digitsHi: 1},
}

// epochsKey is the varied key of a training-duration sweep (experiments/training_duration.toml).
const epochsKey = "train.epochs"

// guideView is the guide's table beside the runs of a training-duration sweep.
type guideView struct {
	Rows  []guideLine
	Notes []string
}

// guideLine is one row: a guide row, a setting, or both when their epochs agree.
type guideLine struct {
	Epochs                  int
	Setting, Href, Color    string // "" on a guide-only row
	GuideLoss, GuideDigits  string // "" when the guide has no band for these epochs
	Between                 bool   // the guide has no row for these epochs; the bands span the rows either side
	Loss, LossSpread        string
	LossRead                string // "within", "below" or "above" the guide's band
	Digits, DigitsSpread    string
	DigitsRead, DigitsTitle string
}

// guideFor returns the guide's table for a sweep that varies train.epochs on MNIST (or on a
// dataset its runs do not name), else nil.
func guideFor(m store.Manifest, settings []*setting) *guideView {
	if !slices.Contains(m.VariedKeys, epochsKey) {
		return nil
	}
	for _, s := range settings {
		for _, r := range s.Runs {
			if r.Dataset != "" && r.Dataset != "mnist" {
				return nil
			}
		}
	}
	loss, recog := measureByKey("final_loss"), measureByKey("recognizable")
	g := &guideView{}
	covered := map[int]bool{}
	for _, s := range settings {
		v, _ := s.value(epochsKey)
		epochs, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		covered[epochs] = true
		line := guideLine{Epochs: epochs, Setting: s.Label, Color: s.Color}
		if !s.Seeded && len(s.Runs) > 0 {
			line.Href = s.Runs[0].Page
		}
		band, between, ok := guideBand(epochs)
		if ok {
			line.Between = between
			line.GuideLoss = fmt.Sprintf("%s–%s", fmtSig(3)(band.lossLo), fmtSig(3)(band.lossHi))
			line.GuideDigits = band.digits
		}
		if e := estimateOf(loss, s.Runs); e.k > 0 {
			line.Loss, line.LossSpread = e.text(loss)
			if ok {
				line.LossRead = readBand(e, band.lossLo, band.lossHi)
			}
		}
		if e := estimateOf(recog, s.Runs); e.k > 0 {
			line.Digits, line.DigitsSpread = e.text(recog)
			line.DigitsTitle = e.title(recog)
			if ok {
				line.DigitsRead = readBand(e, band.digitsLo, band.digitsHi)
			}
		}
		g.Rows = append(g.Rows, line)
	}
	for _, row := range guideRows {
		if !covered[row.epochs] {
			g.Rows = append(g.Rows, guideLine{Epochs: row.epochs,
				GuideLoss:   fmt.Sprintf("%s–%s", fmtSig(3)(row.lossLo), fmtSig(3)(row.lossHi)),
				GuideDigits: row.digits})
		}
	}
	slices.SortStableFunc(g.Rows, func(a, b guideLine) int { return a.Epochs - b.Epochs })
	g.Notes = []string{
		"The guide's numbers are for MNIST with its default model trained on the full train split (configs/default.toml, scale full).",
		"The guide judges \"look like digits\" by eye; recognizable is the share of samples the reference classifier " +
			"assigns a class with at least 90% confidence, the closest measured stand-in, shown with the table's ± " +
			"(Wilson interval, or sd across seeds). A run reads \"within\" when its interval meets the guide's band.",
	}
	if slices.ContainsFunc(g.Rows, func(l guideLine) bool { return l.Between }) {
		g.Notes = append(g.Notes, "Where the guide has no row for a run's epochs, the band spans the guide's rows either side (marked \"between\").")
	}
	if m.Scale != "" && m.Scale != "full" {
		g.Notes = append(g.Notes, fmt.Sprintf("This sweep ran at scale %s: a smaller model and fewer training images than the guide's, "+
			"so its runs are not expected to reach the guide's bands; the comparison shows how far they are.", m.Scale))
	}
	return g
}

// guideBand is the guide's row for epochs, or the band spanning the rows either side of it
// (between = true). ok is false outside the guide's 10 to 100 epochs.
func guideBand(epochs int) (band guideRow, between, ok bool) {
	for i, row := range guideRows {
		if row.epochs == epochs {
			return row, false, true
		}
		if i > 0 && guideRows[i-1].epochs < epochs && epochs < row.epochs {
			lo := guideRows[i-1]
			return guideRow{
				epochs: epochs,
				lossLo: math.Min(lo.lossLo, row.lossLo), lossHi: math.Max(lo.lossHi, row.lossHi),
				digits: strings.TrimSuffix(fmtPercent(math.Min(lo.digitsLo, row.digitsLo)), "%") + "–" +
					fmtPercent(math.Max(lo.digitsHi, row.digitsHi)),
				digitsLo: math.Min(lo.digitsLo, row.digitsLo), digitsHi: math.Max(lo.digitsHi, row.digitsHi),
			}, true, true
		}
	}
	return guideRow{}, false, false
}

// readBand says where an estimate lies against the band [lo, hi]: "within" when its bar (or,
// without one, its value) meets the band, else "below" or "above".
func readBand(e estimate, lo, hi float64) string {
	bl, bh, ok := e.bar()
	if !ok {
		bl, bh = e.v, e.v
	}
	switch {
	case bh < lo:
		return "below"
	case bl > hi:
		return "above"
	}
	return "within"
}
