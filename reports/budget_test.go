package reports

import (
	"bytes"
	"image/png"
	"math"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// budgetRun is a finished run that trained for seconds on threads libtorch threads, with the
// given recognizable share of n = 1000 samples.
func budgetRun(seconds float64, threads int, recognizable float64) *runView {
	n := 1000
	return &runView{runData: runData{
		Status:      store.Status{State: store.Done},
		Summary:     &store.Summary{TrainSeconds: seconds, Metrics: store.Metrics{Recognizable: &recognizable, N: &n}},
		Fingerprint: store.Fingerprint{Threads: threads},
		EvalN:       n,
	}}
}

func TestTrainCPUMinutes(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *runView
		want float64 // NaN: no place on the chart
	}{
		{"2 threads for 4 minutes", budgetRun(240, 2, 0.5), 8},
		{"1 thread for 90 s", budgetRun(90, 1, 0.5), 1.5},
		{"sampling-only run", budgetRun(0, 2, 0.5), math.NaN()},
		{"no fingerprint", budgetRun(240, 0, 0.5), math.NaN()},
		{"no summary", &runView{runData: runData{Fingerprint: store.Fingerprint{Threads: 2}}}, math.NaN()},
	} {
		got := trainCPUMinutes(tc.r)
		if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %g CPU-minutes, want %g", tc.name, got, tc.want)
		}
	}
}

func TestBudgetChart(t *testing.T) {
	one := func(label string, r *runView) *setting { return &setting{Label: label, Runs: []*runView{r}} }
	settings := []*setting{
		one("epochs=3", budgetRun(204, 2, 0.30)),
		one("epochs=6", budgetRun(408, 2, 0.40)),
		one("sampling only", budgetRun(0, 2, 0.52)), // no training cost: left out
	}
	b, err := budgetChart("budget", settings)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("budget chart is no PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 300 || r.Dy() < 200 {
		t.Errorf("budget chart is %v, want a readable size", r)
	}
	// One setting that trained is no curve: nothing to draw.
	if b, err := budgetChart("budget", settings[1:]); err != nil || b != nil {
		t.Errorf("one trained setting: %d bytes, error %v; want nil, nil", len(b), err)
	}
}
