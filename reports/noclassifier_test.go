package reports

import (
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// A run on an unlabelled dataset has FD but no classifier metrics: its recognizable % cell says
// "not measured" with a dash, never 0; a run with no metrics at all keeps a blank cell.
func TestMeasureCellWithoutClassifier(t *testing.T) {
	fd := 12.5
	done := store.Status{State: store.Done}
	unlabelled := &runView{runData: runData{Status: done, Summary: &store.Summary{Metrics: store.Metrics{FD: &fd}}, EvalN: 100}}
	unevaluated := &runView{runData: runData{Status: done, Summary: &store.Summary{}}}
	for _, tc := range []struct {
		name, key string
		run       *runView
		want      string
	}{
		{"unlabelled: recognizable", "recognizable", unlabelled, "—"},
		{"unlabelled: class entropy", "class_entropy", unlabelled, "—"},
		{"unlabelled: FD is measured", "fd", unlabelled, "12.50"},
		{"not evaluated: blank", "recognizable", unevaluated, ""},
		{"unlabelled: class accuracy of an unconditional model stays blank", "class_accuracy", unlabelled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &setting{Runs: []*runView{tc.run}}
			m := measureByKey(tc.key)
			c := measureCell(m, estimateOf(m, s.Runs), s, verdict{})
			if c.Text != tc.want {
				t.Errorf("cell %q (title %q), want %q", c.Text, c.Title, tc.want)
			}
		})
	}
}
