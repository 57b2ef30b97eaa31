package config

import (
	"strings"
	"testing"
)

// The samplers added after the first runs (DPM-Solver++(3M), its SDE variant, UniPC) validate,
// each hashes apart from the others, and a wrong name's error lists them all.
func TestSampleSamplers(t *testing.T) {
	c, err := LoadFile("../../configs/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Hash]string{}
	for _, sampler := range Samplers {
		k := c
		k.Sample.Sampler = sampler
		if err := k.Validate(); err != nil {
			t.Errorf("sampler %s: %v", sampler, err)
		}
		if prev, dup := seen[k.Hash()]; dup {
			t.Errorf("sampler %s hashes like %s", sampler, prev)
		}
		seen[k.Hash()] = sampler
	}
	bad := c
	bad.Sample.Sampler = "dpmpp_4m"
	want := `sample.sampler: must be one of "ddpm" | "ddim" | "dpmpp_2m" | "dpmpp_2m_sde" | "dpmpp_3m" | "dpmpp_3m_sde" | "unipc", got "dpmpp_4m"`
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}
