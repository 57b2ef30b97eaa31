package reports

import (
	"reflect"
	"testing"
)

func TestShortenLabels(t *testing.T) {
	run := func(values ...string) *runView {
		r := &runView{varied: map[string]string{}}
		for i := 0; i < len(values); i += 2 {
			r.varied[values[i]] = values[i+1]
		}
		return r
	}
	recipe := []string{"loss", "lr_schedule", "ema", "prediction"}
	for _, tc := range []struct {
		name   string
		varied []string
		runs   []*runView
		want   []string
		// runLabels are the runs' labels, in order, when they are not their settings' labels.
		runLabels []string
	}{
		{
			name:   "cases read as what each changes",
			varied: recipe,
			runs: []*runView{
				run("loss", "none", "lr_schedule", "constant", "ema", "0.995", "prediction", "eps"),
				run("loss", "min_snr", "lr_schedule", "constant", "ema", "0.995", "prediction", "eps"),
				run("loss", "none", "lr_schedule", "constant", "ema", "0.995", "prediction", "v"),
				run("loss", "min_snr", "lr_schedule", "cosine", "ema", "0.9999", "prediction", "eps"),
			},
			want: []string{commonLabel, "loss=min_snr", "prediction=v", "loss=min_snr + lr_schedule=cosine + ema=0.9999"},
		},
		{
			name:   "a tie keeps the value seen first as the common one",
			varied: recipe,
			runs: []*runView{
				run("loss", "a", "lr_schedule", "c", "ema", "e", "prediction", "p"),
				run("loss", "b", "lr_schedule", "d", "ema", "f", "prediction", "q"),
			},
			want: []string{commonLabel, "loss=b + lr_schedule=d + ema=f + prediction=q"},
		},
		{
			name:   "seeded runs keep their seed",
			varied: append(recipe, "seed"),
			runs: []*runView{
				run("loss", "none", "lr_schedule", "constant", "ema", "0.995", "prediction", "eps", "seed", "0"),
				run("loss", "none", "lr_schedule", "constant", "ema", "0.995", "prediction", "eps", "seed", "1"),
				run("loss", "none", "lr_schedule", "constant", "ema", "0.995", "prediction", "v", "seed", "0"),
			},
			want:      []string{commonLabel, "prediction=v"},
			runLabels: []string{commonLabel + ", seed=0", commonLabel + ", seed=1", "prediction=v, seed=0"},
		},
		{
			name:   "fewer keys keep every value",
			varied: []string{"train.lr", "train.batch_size", "seed"},
			runs: []*runView{
				run("train.lr", "1e-4", "train.batch_size", "32", "seed", "0"),
				run("train.lr", "1e-4", "train.batch_size", "32", "seed", "1"),
				run("train.lr", "2e-4", "train.batch_size", "32", "seed", "0"),
			},
			want: []string{"train.lr=1e-4, train.batch_size=32", "train.lr=2e-4, train.batch_size=32"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := groupSettings("s", tc.varied, tc.runs)
			var got, gotRuns, wantRuns []string
			for _, s := range settings {
				got = append(got, s.Label)
				for _, r := range s.Runs {
					gotRuns = append(gotRuns, r.Label)
					if s.short {
						wantRuns = append(wantRuns, s.Label)
					} else {
						wantRuns = append(wantRuns, r.Label) // set by build.go, not here
					}
				}
			}
			if tc.runLabels != nil {
				wantRuns = tc.runLabels
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("labels %q; want %q", got, tc.want)
			}
			if !reflect.DeepEqual(gotRuns, wantRuns) {
				t.Errorf("run labels %q; want %q", gotRuns, wantRuns)
			}
		})
	}
}
