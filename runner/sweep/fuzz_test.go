package sweep

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// FuzzSweep feeds arbitrary sweep files to the parser and expander. Whatever the input,
// parse must not panic, and either report an error or give plans (at every scale) whose
// configs all validate and whose hashes are unique.
//
//	go test ./runner/sweep -run '^$' -fuzz FuzzSweep -fuzztime 30s
func FuzzSweep(f *testing.F) {
	files, _ := filepath.Glob("../../experiments/*.toml")
	more, _ := filepath.Glob("testdata/*.toml")
	for _, file := range append(files, more...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name = \"x\"\nbase = \"b\"\nseeds = [1, 2]\n[grid]\n\"train.lr\" = [1e-4, 2e-4]\n[[zip]]\n\"train.epochs\" = [1, 2]\n\"train.batch_size\" = [8, 16]\n[[case]]\n\"train.lr\" = 1e-4\n[random]\nn = 2\nseed = 3\n"))
	f.Add([]byte("name = \"x\"\nbase = \"b\"\n[grid]\ntrain.lr = [0.0001, 1e-4]\n"))
	f.Add([]byte("name = \"x\"\nbase = \"b\"\n[scale.quick]\n\"diffusion.timesteps\" = 10\n[grid]\n\"sample.steps\" = [5, 20]\n"))

	base := func(string) (config.Config, config.Positions, error) {
		return config.Default(), config.Positions{}, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tm := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("slow input: %q", data)) })
		defer tm.Stop()
		s, err := parse("fuzz.toml", data, base)
		if err != nil {
			return
		}
		scales := s.Scales()
		if len(scales) == 0 {
			scales = []string{""}
		}
		for _, scale := range scales {
			p, err := s.Expand(scale, requiredSets(s))
			if err != nil {
				t.Fatalf("Load accepted the sweep, but Expand(%q) failed: %v", scale, err)
			}
			if len(p.Runs) == 0 || len(p.Runs) > MaxRuns {
				t.Fatalf("scale %q: %d runs", scale, len(p.Runs))
			}
			seen := map[config.Hash]bool{}
			for _, r := range p.Runs {
				if err := r.Config.Validate(); err != nil {
					t.Fatalf("scale %q: planned config does not validate: %v", scale, err)
				}
				if r.Hash != r.Config.Hash() || seen[r.Hash] {
					t.Fatalf("scale %q: wrong or duplicate hash %s", scale, r.Hash.Short())
				}
				seen[r.Hash] = true
				if len(r.Varied) != len(p.VariedKeys) {
					t.Fatalf("scale %q: %d varied values for %d keys", scale, len(r.Varied), len(p.VariedKeys))
				}
			}
		}
	})
}
