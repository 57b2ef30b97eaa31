package sweep

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// load parses a sweep given as text, with testdata/base.toml as its base.
func load(t *testing.T, src string) (*Sweep, error) {
	t.Helper()
	return parse("testdata/sweep.toml", []byte(`name = "t"`+"\n"+`base = "base.toml"`+"\n"+src), loadBase)
}

func mustPlan(t *testing.T, src, scale string, sets ...string) *Plan {
	t.Helper()
	s, err := load(t, src)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	p, err := s.Expand(scale, sets)
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	return p
}

func labels(p *Plan) []string {
	var out []string
	for _, r := range p.Runs {
		out = append(out, r.Label())
	}
	return out
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		scale string
		sets  []string
		want  []string // Label() of each run, in order
		dups  int
	}{
		{name: "no axes is one run", src: "", want: []string{""}},
		{name: "grid product, last axis fastest", src: `
[grid]
"train.lr" = [1e-4, 2e-4]
"train.batch_size" = [32, 64, 128]`, want: []string{
			"train.lr=0.0001 train.batch_size=32", "train.lr=0.0001 train.batch_size=64", "train.lr=0.0001 train.batch_size=128",
			"train.lr=0.0002 train.batch_size=32", "train.lr=0.0002 train.batch_size=64", "train.lr=0.0002 train.batch_size=128"}},
		{name: "dotted keys are config keys", src: `
[grid]
model.base_channels = [8, 32]`, want: []string{"model.base_channels=8", "model.base_channels=32"}},
		{name: "zip varies together, times grid", src: `
[grid]
"diffusion.schedule" = ["linear", "cosine"]
[[zip]]
"train.epochs" = [5, 10]
"train.batch_size" = [64, 128]`, want: []string{
			"diffusion.schedule=linear train.epochs=5 train.batch_size=64",
			"diffusion.schedule=linear train.epochs=10 train.batch_size=128",
			"diffusion.schedule=cosine train.epochs=5 train.batch_size=64",
			"diffusion.schedule=cosine train.epochs=10 train.batch_size=128"}},
		{name: "cases after the product", src: `
[grid]
"train.lr" = [1e-4, 2e-4]
[[case]]
"diffusion.schedule" = "cosine"
[[case]]
"train.lr" = 1e-3`, want: []string{
			"train.lr=0.0001 diffusion.schedule=linear", "train.lr=0.0002 diffusion.schedule=linear",
			"train.lr=0.0002 diffusion.schedule=cosine", "train.lr=0.001 diffusion.schedule=linear"}},
		{name: "cases alone", src: `
[[case]]
"data.dataset" = "mnist"
[[case]]
"data.dataset" = "fashion_mnist"`, want: []string{"data.dataset=mnist", "data.dataset=fashion_mnist"}},
		{name: "seeds, config-major", src: `seeds = [3, 1]
[grid]
"train.lr" = [1e-4, 2e-4]`, want: []string{
			"train.lr=0.0001 seed=3", "train.lr=0.0001 seed=1", "train.lr=0.0002 seed=3", "train.lr=0.0002 seed=1"}},
		{name: "duplicates collapse to the first", src: `
[grid]
"train.lr" = [1e-4, 2e-4]
[[case]]
"train.lr" = 0.0001
[[case]]
"train.lr" = 3e-4`, want: []string{"train.lr=0.0001", "train.lr=0.0002", "train.lr=0.0003"}, dups: 1},
		{name: "axes win over the scale", src: `
[grid]
"train.epochs" = [7, 9]
[scale.quick]
"train.epochs" = 1
"train.batch_size" = 16`, want: []string{"train.epochs=7", "train.epochs=9"}},
		{name: "a scale's grid gives an axis new values", src: `
[grid]
"train.lr" = [1e-4, 2e-4]
"train.epochs" = [7, 9]
[scale.quick]
"train.batch_size" = 16
[scale.quick.grid]
"train.lr" = [5e-4, 2e-3, 4e-3]
[scale.full]`, want: []string{
			"train.lr=0.0005 train.epochs=7", "train.lr=0.0005 train.epochs=9", "train.lr=0.002 train.epochs=7",
			"train.lr=0.002 train.epochs=9", "train.lr=0.004 train.epochs=7", "train.lr=0.004 train.epochs=9"}},
		{name: "a scale's grid leaves other scales alone", scale: "full", src: `
[grid]
"train.lr" = [1e-4, 2e-4]
[scale.quick.grid]
"train.lr" = [5e-4]
[scale.full]`, want: []string{"train.lr=0.0001", "train.lr=0.0002"}},
		{name: "--set applies to every run", src: `
[grid]
"train.epochs" = [7, 9]`, sets: []string{"train.lr=5e-4"}, want: []string{"train.epochs=7", "train.epochs=9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.src, tt.scale, tt.sets...)
			if got := labels(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if p.Duplicates != tt.dups {
				t.Errorf("Duplicates = %d; want %d", p.Duplicates, tt.dups)
			}
			for _, r := range p.Runs {
				if err := r.Config.Validate(); err != nil || r.Hash != r.Config.Hash() {
					t.Errorf("run %s: invalid or wrong hash: %v", r.Label(), err)
				}
				if tt.sets != nil && r.Config.Train.LR != 5e-4 {
					t.Errorf("--set not applied: lr %v", r.Config.Train.LR)
				}
			}
		})
	}
}

func TestScaleLayers(t *testing.T) {
	src := `
[set]
"train.batch_size" = 32
"train.lr" = 1e-3
[grid]
"train.epochs" = [7]
[scale.quick]
"train.epochs" = 1
"train.batch_size" = 16
[scale.full]
`
	quick := mustPlan(t, src, "", "train.lr=5e-4").Runs[0].Config // "" is quick
	if quick.Train.Epochs != 7 || quick.Train.BatchSize != 16 || quick.Train.LR != 5e-4 || quick.Model.BaseChannels != 16 {
		t.Errorf("quick: epochs %d batch %d lr %v base %d; want 7 16 0.0005 16 (axis > --set > scale > set > base)",
			quick.Train.Epochs, quick.Train.BatchSize, quick.Train.LR, quick.Model.BaseChannels)
	}
	full := mustPlan(t, src, "full").Runs[0].Config
	if full.Train.BatchSize != 32 || full.Train.LR != 1e-3 {
		t.Errorf("full: batch %d lr %v; want 32 0.001", full.Train.BatchSize, full.Train.LR)
	}
	s, _ := load(t, src)
	if got := s.Scales(); !reflect.DeepEqual(got, []string{"full", "quick"}) {
		t.Errorf("Scales() = %v", got)
	}
}

func TestRandom(t *testing.T) {
	src := `seeds = [0, 1]
[grid]
"train.lr" = [1e-4, 2e-4, 3e-4, 4e-4]
"train.batch_size" = [32, 64, 128]
[random]
n = 3
seed = 7`
	first := labels(mustPlan(t, src, ""))
	if len(first) != 6 {
		t.Fatalf("%d runs; want 3 configs x 2 seeds:\n%s", len(first), strings.Join(first, "\n"))
	}
	for range 5 {
		if again := labels(mustPlan(t, src, "")); !reflect.DeepEqual(again, first) {
			t.Fatalf("random sample changed between expansions:\n%v\n%v", first, again)
		}
	}
	// The pinned choice: a change here means every user's sampled sweep changes.
	want := []string{
		"train.lr=0.0002 train.batch_size=32 seed=0", "train.lr=0.0002 train.batch_size=32 seed=1",
		"train.lr=0.0003 train.batch_size=32 seed=0", "train.lr=0.0003 train.batch_size=32 seed=1",
		"train.lr=0.0004 train.batch_size=32 seed=0", "train.lr=0.0004 train.batch_size=32 seed=1",
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("sample:\n%s\nwant:\n%s", strings.Join(first, "\n"), strings.Join(want, "\n"))
	}
	other := labels(mustPlan(t, strings.Replace(src, "seed = 7", "seed = 8", 1), ""))
	if reflect.DeepEqual(other, first) {
		t.Log("seeds 7 and 8 chose the same sample (possible, but unlikely)")
	}
}

// Load reports every problem of a sweep file at once, each at its line.
func TestLoadErrors(t *testing.T) {
	want := []string{
		`testdata/bad.toml:1: name: must match [a-z0-9_-]+, got "Bad Name"`,
		`testdata/bad.toml:2: bsae: unknown key (did you mean "base"?)`,
		`testdata/bad.toml:4: seeds: seed 1 is listed twice`,
		`testdata/bad.toml:7: train.lrr: unknown key (did you mean "train.lr"?)`,
		`testdata/bad.toml:8: train.epochs: set in [set] and varied in [grid] at line 11; remove one`,
		`testdata/bad.toml:14: train.lr: must be > 0, got -0.001`,
		`testdata/bad.toml:15: train.lr: must be a number, got string "fast"`,
		`testdata/bad.toml:17: model.base_channels: empty list in [grid]: an axis needs at least one value`,
		`testdata/bad.toml:19: zip: lists must have equal lengths: train.batch_size has 2 values, sample.steps has 3`,
		`testdata/bad.toml:24: train.lr: varied twice (also in [grid] at line 12)`,
		`testdata/bad.toml:27: diffusion.schedule: must be one of "linear" | "cosine", got "sigmoid"`,
		`testdata/bad.toml:30: diffusion.timesteps: must be in 1..100000, got 0`,
	}
	_, err := Load("testdata/bad.toml")
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var list config.ErrorList
	if !errors.As(err, &list) {
		t.Errorf("not an ErrorList: %T", err)
	}
}

func TestLoadErrorCases(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"missing base file", "", "testdata/missing_base.toml:2: base: no such file: testdata/no_such_base.toml"},
		{"base config errors name the base file", `[grid]
"train.lr" = [1e-4]`, ""},
		{"error only in some runs names the run", `[grid]
"diffusion.timesteps" = [10, 2000]
"train.epochs" = [1]
[set]
"sample.steps" = 100`, "testdata/sweep.toml:7: sample.steps: must be 0 (all) or in 1..diffusion.timesteps (10), got 100 (in the run with diffusion.timesteps=10 train.epochs=1)"},
		{"error only at one scale", `[scale.quick]
"train.lr" = 2
[scale.full]`, "testdata/sweep.toml:4: train.lr: must be < 1, got 2 (at --scale quick)"},
		{"scale grid adds an axis", `[grid]
"train.lr" = [1e-4]
[scale.quick.grid]
"train.epochs" = [1, 2]`, "testdata/sweep.toml:6: train.epochs: not an axis of [grid]; [scale.quick.grid] gives new values to [grid]'s axes at this scale, it cannot add one"},
		{"scale grid value checked at its line", `[grid]
"train.lr" = [1e-4]
[scale.quick.grid]
"train.lr" = [1e-4,
  -1]`, "testdata/sweep.toml:7: train.lr: must be > 0, got -1"},
		{"scale grid single value", `[grid]
"train.lr" = [1e-4]
[scale.quick.grid]
"train.lr" = 1e-3`, "testdata/sweep.toml:6: train.lr: must be a list of values in [scale.quick.grid], got float 0.001 (put single values in [set])"},
		{"config table at the top level", `[train]
lr = 1e-3`, "testdata/sweep.toml:3: train: config keys go in [set], [grid], [[zip]], [[case]] or [scale.NAME]"},
		{"top-level key after a table", `[[case]]
"train.lr" = 1e-3
seeds = [1, 2]`, "testdata/sweep.toml:5: seeds: is a top-level key: write it before the first [table] (TOML puts the keys after a header into that table)"},
		{"single value in grid", `[grid]
"train.lr" = 1e-3`, "testdata/sweep.toml:4: train.lr: must be a list of values in [grid], got float 0.001 (put single values in [set])"},
		{"list in set", `[set]
"train.lr" = [1e-3]`, "testdata/sweep.toml:4: train.lr: one value per key in [set]; lists go in [grid] or [[zip]]"},
		{"key written twice", `[grid]
"train.lr" = [1e-3]
train.lr = [2e-3]`, "testdata/sweep.toml:5: train.lr: written twice in [grid]"},
		{"seed beside seeds", `seeds = [1]
[grid]
seed = [1, 2]`, "testdata/sweep.toml:5: seed: set in [grid], but the top-level seeds list already sets it"},
		{"too many runs", `[grid]
"seed" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
"train.epochs" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
"train.batch_size" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
"sample.num_images" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]`, "testdata/sweep.toml: expands to more than 10000 runs; split the sweep or use [random]"},
		{"bad random", `[random]
n = 0
m = 1`, "testdata/sweep.toml:4: random.n: must be >= 1, got 0\ntestdata/sweep.toml:5: random.m: unknown key ([random] has n and seed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.name {
			case "missing base file":
				_, err = Load("testdata/missing_base.toml")
			case "base config errors name the base file":
				dir := t.TempDir()
				os.WriteFile(filepath.Join(dir, "base.toml"), []byte("[train]\nlr = -1\n"), 0o644)
				os.WriteFile(filepath.Join(dir, "s.toml"), []byte("name = \"s\"\nbase = \"base.toml\"\n"+tt.src), 0o644)
				_, err = Load(filepath.Join(dir, "s.toml"))
				tt.want = filepath.Join(dir, "base.toml") + ":2: train.lr: must be > 0, got -1"
			default:
				_, err = load(t, tt.src)
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	s, err := load(t, `[grid]
"train.lr" = [1e-4, 2e-4]
[scale.quick]
[scale.full]`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scale string
		sets  []string
		want  string
	}{
		{"quick", []string{"train.lr=1e-3"}, "--set: train.lr: key is varied by the sweep t"},
		{"quick", []string{"train.lrr=1e-3"}, `--set: train.lrr: unknown key (did you mean "train.lr"?)`},
		{"quick", []string{"train.epochs"}, "--set: train.epochs: want key=value"},
		{"quick", []string{"train.epochs=-1"}, "--set: train.epochs: must be >= 0, got -1"},
		{"huge", nil, "--scale: huge: testdata/sweep.toml has no [scale.huge] (it has full, quick)"},
	}
	for _, tt := range tests {
		if _, err := s.Expand(tt.scale, tt.sets); err == nil || err.Error() != tt.want {
			t.Errorf("Expand(%s, %v) error:\n%v\nwant:\n%s", tt.scale, tt.sets, err, tt.want)
		}
	}
}

func TestRequires(t *testing.T) {
	s, err := load(t, `requires = ["sample.from_run"]
[grid]
"sample.steps" = [10, 20]
`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expand("", nil); err == nil || !strings.Contains(err.Error(), "--set sample.from_run=") {
		t.Fatalf("Expand without the required --set: got %v, want an error naming --set sample.from_run", err)
	}
	p, err := s.Expand("", []string{"sample.from_run=abcdef012345"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Runs {
		if r.Config.Sample.FromRun != "abcdef012345" {
			t.Errorf("run %s: from_run %q", r.Label(), r.Config.Sample.FromRun)
		}
	}
	if _, err := load(t, "requires = [\"sample.form_run\"]\n"); err == nil || !strings.Contains(err.Error(), "unknown config key") {
		t.Errorf("unknown required key: got %v", err)
	}
}
