package reports

import (
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

func ptr(v float64) *float64 { return &v }

// fakeRun is a run with the given state, final loss and metrics (nil summary when loss < 0).
func fakeRun(lr string, state store.State, loss float64, m store.Metrics) *runView {
	r := &runView{Short: "h" + lr, Label: "train.lr=" + lr, varied: map[string]string{"train.lr": lr}}
	r.Status.State = state
	if loss >= 0 {
		r.Summary = &store.Summary{FinalLoss: loss, BestLoss: loss, Metrics: m}
	}
	return r
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []*runView
		want string
	}{
		{
			name: "recognizable first",
			runs: []*runView{
				fakeRun("1", store.Done, 0.03, store.Metrics{Recognizable: ptr(0.5), FD: ptr(3)}),
				fakeRun("2", store.Done, 0.05, store.Metrics{Recognizable: ptr(0.8), FD: ptr(9)}),
			},
			want: "Best by recognizable %: train.lr=2 (80%); best final loss: train.lr=1 (0.03)",
		},
		{
			name: "FD when no recognizable",
			runs: []*runView{
				fakeRun("1", store.Done, 0.03, store.Metrics{FD: ptr(3)}),
				fakeRun("2", store.Done, 0.05, store.Metrics{FD: ptr(1.5)}),
			},
			want: "Best by FD: train.lr=2 (1.50); best final loss: train.lr=1 (0.03)",
		},
		{
			name: "loss only",
			runs: []*runView{
				fakeRun("1", store.Done, 0.04, store.Metrics{}),
				fakeRun("2", store.Done, 0.02, store.Metrics{}),
			},
			want: "Best final loss: train.lr=2 (0.02)",
		},
		{
			name: "failed runs never win",
			runs: []*runView{
				fakeRun("1", store.Failed, 0.001, store.Metrics{}),
				fakeRun("2", store.Done, 0.02, store.Metrics{}),
			},
			want: "Best final loss: train.lr=2 (0.02)",
		},
		{
			name: "nothing finished",
			runs: []*runView{
				fakeRun("1", store.Failed, -1, store.Metrics{}),
				fakeRun("2", store.Running, -1, store.Metrics{}),
			},
			want: "No run finished, so there is no winner.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := buildResults([]string{"train.lr"}, tc.runs)
			if res.verdict != tc.want {
				t.Errorf("verdict:\n got %q\nwant %q", res.verdict, tc.want)
			}
			if n := res.frame.Nrow(); n != len(tc.runs) {
				t.Errorf("frame has %d rows, want %d", n, len(tc.runs))
			}
		})
	}
}
