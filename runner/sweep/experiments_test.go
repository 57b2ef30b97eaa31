package sweep

import (
	"path/filepath"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// Every shipped sweep loads and expands at every scale.
func TestShippedExperiments(t *testing.T) {
	files, err := filepath.Glob("../../experiments/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no experiments found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Base(f); s.Name+".toml" != want {
				t.Errorf("name %q does not match the file name %s", s.Name, want)
			}
			for _, scale := range []string{"quick", "full"} {
				p, err := s.Expand(scale, requiredSets(s))
				if err != nil {
					t.Fatalf("scale %s: %v", scale, err)
				}
				if len(p.Runs) < 2 || p.Duplicates != 0 {
					t.Errorf("scale %s: %d runs, %d duplicates", scale, len(p.Runs), p.Duplicates)
				}
				for _, r := range p.Runs {
					t.Logf("%s %s %s", scale, r.Hash.Short(), r.Label())
				}
			}
		})
	}
}

// requiredSets gives every key a sweep requires from the command line a valid stand-in value.
func requiredSets(s *Sweep) []string {
	var sets []string
	for _, key := range s.Requires {
		if key == "sample.from_run" {
			sets = append(sets, key+"=0123456789ab")
			continue
		}
		v, _ := config.Default().Get(key)
		sets = append(sets, key+"="+config.FormatValue(v))
	}
	return sets
}
