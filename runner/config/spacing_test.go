package config

import (
	"strings"
	"testing"
)

// sample.spacing came after the first runs were stored: at its default it must leave the
// canonical form, and so every hash, as it was; set, it is hashed and validated.
func TestSampleSpacing(t *testing.T) {
	// The hash of configs/default.toml before sample.spacing existed.
	const before = "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"
	c, err := LoadFile("../../configs/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sample.Spacing != "trailing" {
		t.Fatalf("default sample.spacing = %q, want trailing", c.Sample.Spacing)
	}
	if got := c.Hash().String(); got != before || strings.Contains(string(c.Canonical()), "spacing") {
		t.Errorf("configs/default.toml hashes to %s, want %s (spacing must be left out at its default):\n%s", got, before, c.Canonical())
	}
	seen := map[Hash]string{c.Hash(): "trailing"}
	for _, spacing := range []string{"logsnr", "karras"} {
		k := c
		if err := k.Set("sample.spacing", spacing); err != nil {
			t.Fatal(err)
		}
		if err := k.Validate(); err != nil {
			t.Errorf("spacing %s: %v", spacing, err)
		}
		if !strings.Contains(string(k.Canonical()), `"spacing":"`+spacing+`"`) {
			t.Errorf("spacing %s is not in the canonical form: %s", spacing, k.Canonical())
		}
		if prev, dup := seen[k.Hash()]; dup {
			t.Errorf("spacing %s hashes like %s", spacing, prev)
		}
		seen[k.Hash()] = spacing
	}
	bad := c
	bad.Sample.Spacing = "uniform"
	want := `sample.spacing: must be one of "trailing" | "logsnr" | "karras", got "uniform"`
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
	for _, sampler := range []string{"dpmpp_2m", "dpmpp_2m_sde"} {
		k := c
		k.Sample.Sampler = sampler
		if err := k.Validate(); err != nil {
			t.Errorf("sampler %s: %v", sampler, err)
		}
	}
}
