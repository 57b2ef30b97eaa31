package reports

import (
	"math"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// steps returns base + scale·(j − 49) for j = 0..98: 99 evenly spaced replicates with mean
// base, whose empirical 2.5% and 97.5% quantiles (ranks ⌈0.025·99⌉ = 3 and ⌈0.975·99⌉ = 97)
// are base − 47·scale and base + 47·scale.
func steps(base, scale float64) []float64 {
	out := make([]float64, 99)
	for j := range out {
		out[j] = base + scale*float64(j-49)
	}
	return out
}

func constant(v float64, n int) []float64 {
	out := make([]float64, n)
	for j := range out {
		out[j] = v
	}
	return out
}

func TestBootstrapDifference(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b         float64
		aReps, bReps []float64
		lo, hi, p    float64
		ok           bool
	}{
		// d̂ = 5, d* = 5 + (j−49)/100: m* = 5, q = 4.53 and 5.47, so [5 − 0.47, 5 + 0.47]; no
		// centred replicate reaches 5, so p = 2·(1 + 0)/(99 + 1) = 0.02.
		{name: "narrow", a: 10, b: 5, aReps: steps(10, 0.01), bReps: constant(5, 99), lo: 4.53, hi: 5.47, p: 0.02, ok: true},
		// d* = 5 + (j−49): [5 − 47, 5 + 47]; the centred replicates j − 49 >= 5 are j = 54..98,
		// 45 of them, so p = 2·46/100 = 0.92.
		{name: "wide", a: 10, b: 5, aReps: steps(10, 1), bReps: constant(5, 99), lo: -42, hi: 52, p: 0.92, ok: true},
		// The mirror image of "narrow": d̂ = −5.
		{name: "negative", a: 5, b: 10, aReps: constant(5, 99), bReps: steps(10, 0.01), lo: -5.47, hi: -4.53, p: 0.02, ok: true},
		// Paired replicates that move together cancel: d* = 5 exactly, [5, 5], p = 2/100.
		{name: "paired", a: 10, b: 5, aReps: steps(10, 1), bReps: steps(5, 1), lo: 5, hi: 5, p: 0.02, ok: true},
		{name: "sizes differ", a: 10, b: 5, aReps: steps(10, 1), bReps: constant(5, 98)},
		{name: "none", a: 10, b: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi, p, ok := bootstrapDifference(tc.a, tc.b, tc.aReps, tc.bReps)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (!near(lo, tc.lo, 1e-9) || !near(hi, tc.hi, 1e-9) || !near(p, tc.p, 1e-12)) {
				t.Errorf("bootstrapDifference = [%v, %v], p = %v; want [%v, %v], p = %v", lo, hi, p, tc.lo, tc.hi, tc.p)
			}
		})
	}
}

// fdRun is a run with FD fd, its bootstrap interval [lo, hi] and replicates, at n = 1000.
func fdRun(lr string, fd, lo, hi float64, reps []float64) *runView {
	return fakeRun(lr, "", store.Done, 0.05, 1000, store.Metrics{FD: ptr(fd), FDLow: ptr(lo), FDHigh: ptr(hi), FDBootstrap: reps})
}

// TestVerdictFD: one run per setting, FD is told apart by the paired bootstrap of the
// difference, and shown as "289 [270, 310]".
func TestVerdictFD(t *testing.T) {
	for _, tc := range []struct {
		name     string
		runs     []*runView
		headline string
		settle   string
	}{
		{
			// The replicates move together (the same resamples): every d* = −39, p = 2/100.
			name: "beyond noise",
			runs: []*runView{
				fdRun("1", 250, 232, 268, steps(250, 0.4)),
				fdRun("2", 289, 270, 310, steps(289, 0.4)),
			},
			headline: "train.lr=1 wins on FD beyond noise: 250 [232, 268] against 289 [270, 310] for train.lr=2 (p = 0.02).",
		},
		{
			// Replicates in opposite order: d* = −1 + 2(j − 49)·0.4, far wider than d̂ = −1.
			// settleBootstrap: h = 20 and 18, se = √(400 + 324)/1.96 = 13.73; n = 1000·(2.8·13.73/1)²
			// = 1000·5676.16/3.8416 = 1,477,551.02, so 1,477,552; the noise is ± 1.96·se = 26.9, and 2.8·se = 38.
			name: "within noise",
			runs: []*runView{
				fdRun("1", 289, 270, 310, steps(289, 0.4)),
				fdRun("2", 290, 272, 308, reversed(steps(290, 0.4))),
			},
			headline: "No winner beyond noise on FD: train.lr=1 leads with 289 [270, 310] (n = 1,000), but the other setting is within noise of it.",
			settle: "To tell train.lr=1 from train.lr=2 (a difference of 1) at 95% with 80% power takes about n = 1,477,552 evaluation samples per run " +
				"(now 1,000, where FD's noise is about ± 27); at n = 1,000 only differences above about 38 show.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judgeAll(groupSettings("s", []string{"train.lr"}, tc.runs))
			var fd measureVerdict
			for _, m := range v.Measures {
				if m.Key == "fd" {
					fd = m
				}
			}
			if fd.Headline != tc.headline {
				t.Errorf("FD headline:\n got %q\nwant %q", fd.Headline, tc.headline)
			}
			if !strings.Contains(fd.Finding, "bootstrapped difference") {
				t.Errorf("FD finding should give the bootstrapped difference: %q", fd.Finding)
			}
			if fd.Settle != tc.settle {
				t.Errorf("FD settle:\n got %q\nwant %q", fd.Settle, tc.settle)
			}
		})
	}
	e := estimateOf(measureByKey("fd"), []*runView{fdRun("1", 289.4, 270.2, 310.3, steps(289, 1))})
	value, spread := e.text(measureByKey("fd"))
	if got := value + " " + spread; got != "289 [270, 310]" {
		t.Errorf("FD with its interval reads %q, want \"289 [270, 310]\"", got)
	}
	if lo, hi, ok := e.bar(); !ok || lo != 270.2 || hi != 310.3 {
		t.Errorf("FD's error bar = [%v, %v] (%v), want the bootstrap interval [270.2, 310.3]", lo, hi, ok)
	}
	if title := e.title(measureByKey("fd")); title != "95% bootstrap interval 270.20 to 310.30 (99 resamples of n = 1000 samples)" {
		t.Errorf("FD title = %q", title)
	}
}

func reversed(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}

// TestResultsFDInterval: results.csv carries fd_lo and fd_hi beside fd when a run has them.
func TestResultsFDInterval(t *testing.T) {
	runs := []*runView{fdRun("1", 289, 270, 310, steps(289, 1)), fakeRun("2", "", store.Done, 0.05, 1000, store.Metrics{FD: ptr(300)})}
	res := buildResults([]string{"train.lr"}, runs)
	for _, col := range []struct {
		name string
		want []float64
	}{{"fd", []float64{289, 300}}, {"fd_lo", []float64{270, math.NaN()}}, {"fd_hi", []float64{310, math.NaN()}}} {
		got := res.frame.Col(col.name).Float()
		for i, w := range col.want {
			if !(got[i] == w || math.IsNaN(got[i]) && math.IsNaN(w)) {
				t.Errorf("results column %s = %v, want %v", col.name, got, col.want)
				break
			}
		}
	}
}
