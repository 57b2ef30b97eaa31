package config

import (
	"reflect"
	"strings"
	"testing"
)

// train.precision and sample.precision came after the first runs were stored: at their default
// ("fp32", written out or not) the canonical form, and so every hash, stays as it was; set to
// "bf16" they are hashed under their table.
func TestPrecisionKeysKeepOldHashes(t *testing.T) {
	// The hash of configs/default.toml before the precision keys existed.
	const before = "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"
	tests := []struct {
		name string
		sets [][2]string
		want string // canonical fragment; "" = neither key in the canonical form
	}{
		{name: "default"},
		{name: "fp32 written out", sets: [][2]string{{"train.precision", "fp32"}, {"sample.precision", `"fp32"`}}},
		{name: "train bf16", sets: [][2]string{{"train.precision", "bf16"}}, want: `"precision":"bf16"`},
		{name: "sample bf16", sets: [][2]string{{"sample.precision", "bf16"}}, want: `"precision":"bf16"`},
	}
	seen := map[Hash]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadFile("../../configs/default.toml")
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range tt.sets {
				if err := c.Set(kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			canonical := string(c.Canonical())
			if tt.want == "" {
				if got := c.Hash().String(); got != before || strings.Contains(canonical, "precision") {
					t.Errorf("hash %s, want %s (precision must be left out at its default):\n%s", got, before, canonical)
				}
				return
			}
			if !strings.Contains(canonical, tt.want) {
				t.Errorf("canonical form lacks %s:\n%s", tt.want, canonical)
			}
			if prev, dup := seen[c.Hash()]; dup || c.Hash().String() == before {
				t.Errorf("hash %s is also %q's (or the default's)", c.Hash().Short(), prev)
			}
			seen[c.Hash()] = tt.name
		})
	}
}

// A sampling-only run is keyed by its [sample] table, so sample.precision set to bf16 names a
// different run, while the source's train.precision is not part of its identity.
func TestPrecisionSamplingOnly(t *testing.T) {
	c := Default()
	c.Sample.FromRun = "abcd1234"
	base := c.Hash()
	c.Train.Precision = "bf16"
	if c.Hash() != base {
		t.Errorf("train.precision changed a sampling-only run's hash:\n%s", c.Canonical())
	}
	c.Sample.Precision = "bf16"
	if c.Hash() == base {
		t.Errorf("sample.precision left a sampling-only run's hash unchanged:\n%s", c.Canonical())
	}
}

func TestPrecisionValidation(t *testing.T) {
	src := `[train]
precision = "fp16"

[sample]
precision = "BF16"
`
	want := []string{
		`precision.toml:2: train.precision: must be one of "fp32" | "bf16", got "fp16"`,
		`precision.toml:5: sample.precision: must be one of "fp32" | "bf16", got "BF16"`,
	}
	_, err := Parse("precision.toml", []byte(src))
	if got := strings.Split(errString(err), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", errString(err), strings.Join(want, "\n"))
	}
	c := Default()
	if err := c.Set("train.precision", "bf16"); err != nil || c.Train.Precision != "bf16" {
		t.Errorf("Set(train.precision, bf16) = %v, value %q", err, c.Train.Precision)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("train.precision = bf16: %v", err)
	}
}
