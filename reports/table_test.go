package reports

import (
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

func ptr(v float64) *float64 { return &v }

// fakeRun is a run with the given state, final loss, metrics and evaluation samples (nil
// summary when loss < 0). seed "" means the sweep has no seeds.
func fakeRun(lr, seed string, state store.State, loss float64, n int, m store.Metrics) *runView {
	r := &runView{Short: "h" + lr + "s" + seed, varied: map[string]string{"train.lr": lr}}
	r.Label = "train.lr=" + lr
	if seed != "" {
		r.varied[seedKey] = seed
		r.Label += ", seed=" + seed
	}
	r.Status.State = state
	r.EvalN, r.ClassN = n, n
	if loss >= 0 {
		r.Summary = &store.Summary{FinalLoss: loss, BestLoss: loss, Metrics: m}
	}
	return r
}

func recog(p float64) store.Metrics { return store.Metrics{Recognizable: ptr(p)} }

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seeds    bool
		runs     []*runView
		headline string
		findings []string // substrings of the findings, in measure order
	}{
		{
			name: "issue 17: the lead is inside the noise",
			runs: []*runView{
				fakeRun("0.0001", "", store.Done, 0.0612, 250, recog(0.276)),
				fakeRun("0.0002", "", store.Done, 0.0571, 250, recog(0.304)),
				fakeRun("0.0005", "", store.Done, 0.0549, 250, recog(0.296)),
			},
			headline: "No winner beyond noise on recognizable %: train.lr=0.0002 leads with 30.4% ± 5.7 (n = 250), but every other setting is within noise of it.",
			findings: []string{
				"No setting is ahead beyond noise: train.lr=0.0002 30.4% ± 5.7, train.lr=0.0005 29.6% ± 5.6, " +
					"train.lr=0.0001 27.6% ± 5.5 (train.lr=0.0002 against train.lr=0.0005: z = 0.20, p = 0.85).",
				"train.lr=0.0005 is lowest (0.0549; next train.lr=0.0002, 0.0571), not tested against noise: one run per setting",
			},
		},
		{
			name: "a winner beyond noise",
			runs: []*runView{
				fakeRun("1", "", store.Done, 0.03, 250, recog(0.83)),
				fakeRun("2", "", store.Done, 0.05, 250, recog(0.92)),
			},
			headline: "train.lr=2 wins on recognizable % beyond noise: 92.0% ± 3.4 against 83.0% ± 4.6 for train.lr=1 (p = 0.0023).",
			findings: []string{"train.lr=2 wins beyond noise: 92.0% ± 3.4 against 83.0% ± 4.6 for the runner-up train.lr=1 (z = 3.04, p = 0.0023)."},
		},
		{
			name: "two level, one behind",
			runs: []*runView{
				fakeRun("1", "", store.Done, 0.03, 250, recog(0.60)),
				fakeRun("2", "", store.Done, 0.03, 250, recog(0.62)),
				fakeRun("3", "", store.Done, 0.03, 250, recog(0.40)),
			},
			headline: "No single winner on recognizable %: train.lr=2 leads, but train.lr=1 is within noise of it.",
			findings: []string{"No single winner: train.lr=2 leads with 62.0% ± 6.0, but train.lr=1 60.0% ± 6.0 (p = 0.65) is within noise of it; " +
				"train.lr=3 40.0% ± 6.0 (p < 0.001) is behind it beyond noise."},
		},
		{
			name:  "seeds: Welch over the seeds",
			seeds: true,
			runs: []*runView{
				fakeRun("1", "1", store.Done, 0.052, 200, recog(0.52)),
				fakeRun("1", "2", store.Done, 0.053, 200, recog(0.55)),
				fakeRun("1", "3", store.Done, 0.051, 200, recog(0.50)),
				fakeRun("2", "1", store.Done, 0.041, 200, recog(0.71)),
				fakeRun("2", "2", store.Done, 0.042, 200, recog(0.74)),
				fakeRun("2", "3", store.Failed, -1, 0, store.Metrics{}),
			},
			// Welch: t = 0.2017/√(0.02517²/3 + 0.02121²/2) = 9.657 on ν = 2.609 df; p = 0.00412 by
			// numerical integration of Student's t density.
			headline: "train.lr=2 wins on recognizable % beyond noise: 72.5% ± 2.1 against 52.3% ± 2.5 for train.lr=1 (p = 0.0041).",
			findings: []string{
				"train.lr=2 wins beyond noise: 72.5% ± 2.1 against 52.3% ± 2.5 for the runner-up train.lr=1 (Welch t = 9.7 on 2.6 df, p = 0.0041).",
				"train.lr=2 wins beyond noise: 0.0415 ± 0.00071 against 0.052 ± 0.001",
			},
		},
		{
			name: "loss only",
			runs: []*runView{
				fakeRun("1", "", store.Done, 0.04, 0, store.Metrics{}),
				fakeRun("2", "", store.Done, 0.02, 0, store.Metrics{}),
			},
			headline: "train.lr=2 is lowest on final loss (0.02), not tested against noise.",
		},
		{
			name: "shares without n are not tested",
			runs: []*runView{
				fakeRun("1", "", store.Done, 0.04, 0, recog(0.5)),
				fakeRun("2", "", store.Done, 0.02, 0, recog(0.8)),
			},
			headline: "train.lr=2 is highest on recognizable % (80.0%), not tested against noise.",
			findings: []string{"not tested against noise: the number of evaluation samples is unknown."},
		},
		{
			name: "failed runs never win",
			runs: []*runView{
				fakeRun("1", "", store.Failed, 0.001, 0, store.Metrics{}),
				fakeRun("2", "", store.Done, 0.02, 0, store.Metrics{}),
			},
			headline: "Only one setting finished, so there is no winner.",
		},
		{
			name: "nothing finished",
			runs: []*runView{
				fakeRun("1", "", store.Failed, -1, 0, store.Metrics{}),
				fakeRun("2", "", store.Running, -1, 0, store.Metrics{}),
			},
			headline: "No run finished, so there is no winner.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			varied := []string{"train.lr"}
			if tc.seeds {
				varied = append(varied, seedKey)
			}
			settings := groupSettings("s", varied, tc.runs)
			v := judgeAll(settings)
			if v.Headline != tc.headline {
				t.Errorf("headline:\n got %q\nwant %q", v.Headline, tc.headline)
			}
			var all []string
			for _, m := range v.Measures {
				all = append(all, m.Finding)
			}
			text := strings.Join(all, "\n")
			for _, f := range tc.findings {
				if !strings.Contains(text, f) {
					t.Errorf("findings lack %q:\n%s", f, text)
				}
			}
			if res := buildResults(varied, tc.runs); res.frame.Nrow() != len(tc.runs) {
				t.Errorf("frame has %d rows, want %d", res.frame.Nrow(), len(tc.runs))
			}
		})
	}
}

func TestSettle(t *testing.T) {
	runs := []*runView{
		fakeRun("0.0002", "", store.Done, 0.0571, 250, recog(0.304)),
		fakeRun("0.0005", "", store.Done, 0.0549, 250, recog(0.296)),
	}
	v := judgeAll(groupSettings("s", []string{"train.lr"}, runs))
	// samplesToResolve(0.304, 0.296) = 51447 and resolvableDifference(…, 250) = 11.5 points
	// (see TestSampleSizes).
	want := "To tell train.lr=0.0002 from train.lr=0.0005 (a difference of 0.8 points) at 95% with 80% power " +
		"takes about n = 51,447 evaluation samples per run (now 250); at n = 250 only differences above about 11.5 points show."
	if got := v.Measures[0].Settle; got != want {
		t.Errorf("settle:\n got %q\nwant %q", got, want)
	}
}

func TestGroupSettings(t *testing.T) {
	runs := []*runView{
		fakeRun("1", "1", store.Done, 0.05, 0, store.Metrics{}),
		fakeRun("1", "2", store.Failed, -1, 0, store.Metrics{}),
		fakeRun("2", "1", store.Done, 0.04, 0, store.Metrics{}),
	}
	settings := groupSettings("s", []string{"train.lr", seedKey}, runs)
	if len(settings) != 2 || len(settings[0].Runs) != 2 || len(settings[1].Runs) != 1 {
		t.Fatalf("got %d settings, want 2 (of 2 and 1 runs)", len(settings))
	}
	if got := settings[0].states(); got != "1 done, 1 failed" {
		t.Errorf("states = %q", got)
	}
	if runs[0].Color != runs[1].Color || runs[0].Color == runs[2].Color {
		t.Errorf("seeds of a setting share its colour, settings differ: %s %s %s", runs[0].Color, runs[1].Color, runs[2].Color)
	}
	e := estimateOf(measureByKey("final_loss"), settings[0].Runs)
	if e.k != 1 || e.v != 0.05 {
		t.Errorf("estimate over the finished seed: k %d v %v", e.k, e.v)
	}
}

func TestGuideBand(t *testing.T) {
	for _, tc := range []struct {
		epochs         int
		ok, between    bool
		lossLo, lossHi float64
		digLo, digHi   float64
	}{
		{10, true, false, 0.04, 0.06, 0.60, 0.60},
		{30, true, true, 0.020, 0.035, 0.80, 0.95}, // the 20- and 50-epoch rows together
		{100, true, false, 0.015, 0.025, 0.95, 1},
		{5, false, false, 0, 0, 0, 0},
		{200, false, false, 0, 0, 0, 0},
	} {
		b, between, ok := guideBand(tc.epochs)
		if ok != tc.ok || between != tc.between || (ok && (b.lossLo != tc.lossLo || b.lossHi != tc.lossHi ||
			b.digitsLo != tc.digLo || b.digitsHi != tc.digHi)) {
			t.Errorf("guideBand(%d) = %+v, %v, %v", tc.epochs, b, between, ok)
		}
	}
	// 92% of 250 has the Wilson interval [0.8797, 0.9476], below the guide's "95%+".
	e := estimate{v: 0.92, k: 1, n: 250}
	e.lo, e.hi = wilson(0.92, 250, z95)
	if got := readBand(e, 0.95, 1); got != "below" {
		t.Errorf("readBand(92%% of 250, 95%%+) = %q, want below", got)
	}
	if got := readBand(e, 0.90, 0.95); got != "within" {
		t.Errorf("readBand(92%% of 250, 90–95%%) = %q, want within", got)
	}
}

// TestTableColumnsLineUp checks that every row of the HTML table covers as many columns as
// its header, whatever mix of finished, failed and seeded runs it shows.
func TestTableColumnsLineUp(t *testing.T) {
	done := store.Metrics{Recognizable: ptr(0.5), FD: ptr(3), ClassAccuracy: ptr(0.6)}
	for _, tc := range []struct {
		name   string
		seeds  bool
		runs   []*runView
		sweeps bool
	}{
		{name: "one run each, one failed", runs: []*runView{
			fakeRun("1", "", store.Done, 0.03, 250, done),
			fakeRun("2", "", store.Failed, -1, 0, store.Metrics{}),
		}},
		{name: "all failed, no columns", runs: []*runView{
			fakeRun("1", "", store.Failed, -1, 0, store.Metrics{}),
			fakeRun("2", "", store.Running, -1, 0, store.Metrics{}),
		}},
		{name: "seeds, one setting without a finished seed", seeds: true, runs: []*runView{
			fakeRun("1", "1", store.Done, 0.03, 250, done),
			fakeRun("1", "2", store.Failed, -1, 0, store.Metrics{}),
			fakeRun("2", "1", store.Failed, -1, 0, store.Metrics{}),
		}},
		{name: "compare page", sweeps: true, runs: []*runView{
			fakeRun("1", "", store.Done, 0.03, 250, done),
			fakeRun("2", "", store.Done, 0.04, 250, done),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			varied := []string{"train.lr"}
			if tc.seeds {
				varied = append(varied, seedKey)
			}
			settings := groupSettings("s", varied, tc.runs)
			tv := buildTable(settings, judgeAll(settings), tableOptions{sweepColumn: tc.sweeps})
			groups := 0
			for _, g := range tv.Groups {
				groups += g.Span
			}
			if groups != len(tv.Head) {
				t.Errorf("column groups span %d columns, the header has %d", groups, len(tv.Head))
			}
			for i, b := range tv.Bodies {
				for j, row := range append([]tableRow{b.Main}, b.Seeds...) {
					n := 0
					for _, c := range row.Cells {
						n += max(1, c.Span)
					}
					if n != len(tv.Head) {
						t.Errorf("setting %d, row %d covers %d columns, the header has %d", i, j, n, len(tv.Head))
					}
				}
			}
		})
	}
}
