package job

import (
	"errors"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestOpenGuide checks which runs may guide a config by autoguidance: a trained run of the same
// data, schedule and labels; anything else is a *SourceError that names sample.guide_run.
func TestOpenGuide(t *testing.T) {
	st, createRun := testStore(t)
	create := func(configTOML string) string { return createRun(configTOML, configTOML) }
	small := create("[model]\nbase_channels = 16\n") // a smaller net of the same data: a guide
	fashion := create("[data]\ndataset = \"fashion_mnist\"\n")
	cosine := create("[diffusion]\nschedule = \"cosine\"\n")
	conditional := create("[model]\nconditional = true\n")
	sampling := create("[sample]\nfrom_run = \"" + small + "\"\n")

	cfg := config.Default()
	cfg.Sample.AutoGuidance = 1
	for _, tc := range []struct {
		name, guide, want string // want "" = no error in the checks before the checkpoint
	}{
		{"smaller net", small, ""},
		{"other data", fashion, "was trained on fashion_mnist, this run on mnist"},
		{"other schedule", cosine, "has the noise schedule cosine (T = 1000, β from 0.0001 to 0.02), this run linear"},
		{"other labels", conditional, "model.conditional is true there and false here"},
		{"sampling-only", sampling, "is itself a sampling-only run"},
		{"unknown", "ffffffffffff", `sample.guide_run = "ffffffffffff"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Sample.GuideRun = store.Short(tc.guide)
			_, err := OpenGuide(st, c)
			var se *SourceError
			if tc.want == "" {
				// The run may guide, but has not been trained: the error says to train it.
				if !errors.As(err, &se) || !strings.Contains(err.Error(), "has no checkpoint yet; train it first") {
					t.Errorf("OpenGuide: %v; want a *SourceError saying the guide has no checkpoint", err)
				}
				return
			}
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sample.guide_run") {
				t.Errorf("OpenGuide: %v; want a *SourceError naming sample.guide_run and containing %q", err, tc.want)
			}
		})
	}
}
