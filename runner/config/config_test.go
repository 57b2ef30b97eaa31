package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

// configs/default.toml must list every key, with exactly Default's values.
func TestDefaultFile(t *testing.T) {
	const path = "../../configs/default.toml"
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c != Default() {
		t.Errorf("LoadFile(%s) differs from Default():\n%s\nwant\n%s", path, c.TOML(), Default().TOML())
	}
	data, _ := os.ReadFile(path)
	pos := ScanPositions(data)
	for _, k := range Keys() {
		if len(pos[k]) == 0 {
			t.Errorf("%s does not list %s", path, k)
		}
	}
}

func TestShippedConfigsValidate(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.toml")
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string // every line of the error, in order
	}{
		{"unknown_key.toml", []string{`testdata/unknown_key.toml:4: train.learning_rat: unknown key (did you mean "train.lr"?)`}},
		{"wrong_type.toml", []string{`testdata/wrong_type.toml:2: train.lr: must be a number, got string "fast"`}},
		{"negative_lr.toml", []string{`testdata/negative_lr.toml:5: train.lr: must be > 0, got -0.001`}},
		{"zero_timesteps.toml", []string{`testdata/zero_timesteps.toml:2: diffusion.timesteps: must be in 1..100000, got 0`}},
		{"unknown_dataset.toml", []string{`testdata/unknown_dataset.toml:2: data.dataset: must be one of "mnist" | "fashion_mnist" | "cifar10" | "folder", got "imagenet"`}},
		{"unknown_schedule.toml", []string{`testdata/unknown_schedule.toml:2: diffusion.schedule: must be one of "linear" | "cosine", got "sigmoid"`}},
		{"syntax_error.toml", []string{`testdata/syntax_error.toml:3: train.epochs: expected value but found '=' instead`}},
		{"many_errors.toml", []string{
			`testdata/many_errors.toml:2: seed: must be an integer, got float 1.5`,
			`testdata/many_errors.toml:6: data.train_subset: must be >= 0, got -1`,
			`testdata/many_errors.toml:9: model.base_channels: must be a multiple of 8 and >= 8 (GroupNorm has 8 groups), got 60`,
			`testdata/many_errors.toml:11: trian: unknown table (did you mean [train]?)`,
			`testdata/many_errors.toml:15: sample.steps: must be 0 (all) or in 1..diffusion.timesteps (1000), got 5000`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatal("LoadFile succeeded; want an error")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Errorf("errors.As(err, *ErrorList) failed for %T", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File == "" || fe.Line == 0 {
				t.Errorf("errors.As(err, **FieldError) = %+v; want one with file and line", fe)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile("testdata/no_such_file.toml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v; want os.ErrNotExist", err)
	}
}

// The hash depends on the values only: not on key order, formatting, number spelling, or
// whether a default is written out.
func TestHashStable(t *testing.T) {
	def := Default().Hash()
	for _, f := range []string{"testdata/reordered.toml", "../../configs/default.toml"} {
		c, err := LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash() != def {
			t.Errorf("%s: hash %s, want Default's %s\n%s", f, c.Hash().Short(), def.Short(), c.Canonical())
		}
	}
	// Set with other spellings of the default.
	c := Default()
	for _, kv := range [][2]string{{"train.lr", "0.0002"}, {"train.grad_clip", "0"}, {"diffusion.schedule", "linear"}, {"diffusion.beta_end", "2.0e-2"}} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if c.Hash() != def {
		t.Errorf("Set with default values changed the hash:\n%s", c.Canonical())
	}
	// A round trip through TOML() keeps the config and so the hash.
	back, err := Parse("TOML()", Default().TOML())
	if err != nil || back != Default() {
		t.Errorf("Parse(Default().TOML()) = %+v, %v", back, err)
	}
}

// Changing any hashed key changes the hash; data.dir and runtime.* do not.
func TestHashChanges(t *testing.T) {
	def := Default()
	seen := map[Hash]string{def.Hash(): "default"}
	for _, k := range Keys() {
		c := def
		v, _ := c.Get(k)
		var nv any
		switch x := v.(type) {
		case int64:
			nv = x + 8
		case float64:
			nv = x*2 + 0.5
		case string:
			nv = x + "x"
			if fieldByKey[k].list != "" {
				nv = "8" // a list key takes integers only
			}
		case bool:
			nv = !x
		}
		if err := c.SetValue(k, nv); err != nil {
			t.Fatal(err)
		}
		h := c.Hash()
		if IsHashed(k) {
			if prev, dup := seen[h]; dup {
				t.Errorf("changing %s gives the same hash as %s", k, prev)
			}
			seen[h] = k
		} else if h != def.Hash() {
			t.Errorf("changing %s (not hashed) changed the hash", k)
		}
	}
	for _, k := range []string{"data.dir", "runtime.device", "runtime.threads"} {
		if IsHashed(k) {
			t.Errorf("IsHashed(%s) = true", k)
		}
	}
}

func TestCanonicalGolden(t *testing.T) {
	tests := []struct{ name, config string }{
		{"default", ""},
		{"quick", "../../configs/quick.toml"},
		{"dotted", "testdata/dotted.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if tt.config != "" {
				var err error
				if c, err = LoadFile(tt.config); err != nil {
					t.Fatal(err)
				}
			}
			got := append(c.Canonical(), '\n')
			got = append(got, c.Hash().String()+"\n"...)
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("canonical form changed (this renames every run!):\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		key, value string
		want       any    // the value Get returns afterwards
		err        string // the error, if any
	}{
		{key: "train.lr", value: "2e-4", want: 2e-4},
		{key: "train.lr", value: "0.0005", want: 5e-4},
		{key: "train.lr", value: "1", want: 1.0},
		{key: "train.epochs", value: "64", want: int64(64)},
		{key: "seed", value: "-3", want: int64(-3)},
		{key: "diffusion.schedule", value: `"cosine"`, want: "cosine"},
		{key: "diffusion.schedule", value: "cosine", want: "cosine"},
		{key: "data.dir", value: "/data/mnist", want: "/data/mnist"},
		{key: "data.dir", value: "123", want: "123"},
		{key: "model.conditional", value: "true", want: true},
		{key: "train.lrr", value: "1", err: `--set: train.lrr: unknown key (did you mean "train.lr"?)`},
		{key: "train.lr", value: "fast", err: `--set: train.lr: "fast" is not a TOML value`},
		{key: "train.lr", value: `"fast"`, err: `--set: train.lr: must be a number, got string "fast"`},
		{key: "train.epochs", value: "2.5", err: `--set: train.epochs: must be an integer, got float 2.5`},
		{key: "model.conditional", value: "yes", err: `--set: model.conditional: "yes" is not a TOML value`},
		{key: "model.conditional", value: "1", err: `--set: model.conditional: must be true or false, got integer 1`},
		{key: "train", value: "1", err: `--set: train: unknown key (see configs/default.toml for every key)`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Set error = %v; want %s", err, tt.err)
				}
				if c != Default() {
					t.Error("a failed Set changed the config")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Get(tt.key); got != tt.want {
				t.Errorf("Get(%s) = %#v; want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestValidateAllAtOnce(t *testing.T) {
	c := Default()
	c.Train.LR = 0
	c.Train.BatchSize = 0
	c.Sample.Guidance = 2
	c.Diffusion.BetaStart = 0.5
	c.Diffusion.BetaEnd = 0.1
	err := c.Validate()
	want := []string{
		"diffusion.beta_end: must be > diffusion.beta_start (0.5), got 0.1",
		"sample.guidance: needs model.conditional = true (got guidance 2 on an unconditional model)",
		"train.batch_size: must be >= 1, got 0",
		"train.lr: must be > 0, got 0",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestSuggest(t *testing.T) {
	tests := map[string]string{
		"train.learning_rat":  "train.lr",
		"train.learning_rate": "train.lr",
		"model.lr":            "train.lr",
		"train.bach_size":     "train.batch_size",
		"diffusion.num_steps": "diffusion.timesteps",
		"runtime.gpu":         "",
		"sample.stepss":       "sample.steps",
		"trian.lr":            "train.lr",
	}
	for key, want := range tests {
		if got := Suggest(key); got != want {
			t.Errorf("Suggest(%q) = %q; want %q", key, got, want)
		}
	}
}

func TestScanPositions(t *testing.T) {
	src := `a = 1 # comment
"b.c" = [
  1,   # first
  "x,]", 
  [2, 3],
]
[t] # comment
k = """multi
line"""
k2 = 'lit'
[[arr]]
x = {y = 1, z = [1,
 2]}
[[arr]]
x = 2
[arr.sub]
w = 1
`
	want := map[string]int{
		"a": 1, "b.c": 2, "b.c.0": 3, "b.c.1": 4, "b.c.2": 5, "b.c.2.1": 5,
		"t": 7, "t.k": 8, "t.k2": 10, "arr": 11, "arr.0": 11, "arr.0.x": 12, "arr.0.x.y": 12,
		"arr.0.x.z.1": 13, "arr.1.x": 15, "arr.1.sub": 16, "arr.1.sub.w": 17,
	}
	pos := ScanPositions([]byte(src))
	for k, line := range want {
		if got := pos.Line(k); got != line {
			t.Errorf("Line(%s) = %d; want %d", k, got, line)
		}
	}
}

func TestExplain(t *testing.T) {
	c := Default()
	c.Train.LR = 5e-4
	c.Runtime.Threads = 2
	e := c.Explain()
	for _, want := range []string{c.Hash().String(), "* train.lr", "= 0.0005", "not hashed", "runtime.threads", string(c.Canonical())} {
		if !strings.Contains(e, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, e)
		}
	}
}
