package config

import (
	"reflect"
	"strings"
	"testing"
)

// The autoguidance keys: at their defaults they rename no stored run; set, they are hashed; bad
// values are errors at their line.
func TestAutoGuidanceKeys(t *testing.T) {
	c, err := LoadFile("../../configs/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	const before = "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e" // the default's hash before the keys
	for _, kv := range [][2]string{{"sample.autoguidance", "0"}, {"sample.guide_run", ""}, {"sample.guide_step", "0"}, {"train.snapshot_steps", "[]"}} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Hash().String(); got != before {
		t.Errorf("defaults written out: hash %s, want %s", got, before)
	}
	c.Sample.AutoGuidance, c.Sample.GuideRun = 1.5, "849f6860d77f"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	selfGuided := c
	selfGuided.Sample.GuideRun, selfGuided.Sample.GuideStep = "", 282
	if err := selfGuided.Set("train.snapshot_steps", "[564, 141]"); err != nil {
		t.Fatal(err)
	}
	if err := selfGuided.Validate(); err != nil {
		t.Fatal(err)
	}
	canonical := string(c.Canonical()) + string(selfGuided.Canonical())
	for _, want := range []string{`"autoguidance":1.5`, `"guide_run":"849f6860d77f"`, `"guide_step":282`, `"snapshot_steps":"141,564"`} {
		if !strings.Contains(canonical, want) {
			t.Errorf("canonical form lacks %s:\n%s", want, canonical)
		}
	}
	if c.Hash().String() == before {
		t.Error("autoguidance did not change the hash")
	}

	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"[sample]\nautoguidance = -1\n", []string{`bad.toml:2: sample.autoguidance: must be in [0, 20] (0 = off), got -1`}},
		{"[sample]\nautoguidance = 1.0\n", []string{`bad.toml:2: sample.autoguidance: needs a guide: sample.guide_run (a weaker run of the same data) or sample.guide_step (a snapshot of this run's own training) (got autoguidance 1)`}},
		{"[sample]\nguide_step = -1\n", []string{`bad.toml:2: sample.guide_step: must be >= 0 (0 = the guide's final weights), got -1`}},
		{"[sample]\nguide_step = 5\n", []string{`bad.toml:2: sample.guide_step: is only used with sample.autoguidance > 0; set both or neither`}},
		{"[train]\nsnapshot_steps = [0, 5]\n", []string{`bad.toml:2: train.snapshot_steps: steps must be >= 1, got 0`}},
		{"[train]\nsnapshot_steps = [5, 5]\n", []string{`bad.toml:2: train.snapshot_steps: step 5 is listed twice`}},
		{"[sample]\nguide_run = \"849f6860d77f\"\n", []string{`bad.toml:2: sample.guide_run: is only used with sample.autoguidance > 0; set both or neither`}},
		{"[sample]\nautoguidance = 1.0\nguide_run = \"last\"\n", []string{`bad.toml:3: sample.guide_run: must be a run hash (4 to 64 hex digits, see ` + "`runner list`" + `), got "last"`}},
		{"[sample]\nautoguidance = \"1\"\n", nil}, // a wrong type: the message is the TOML decoder's, checked below
	} {
		_, err := Parse("bad.toml", []byte(tc.src))
		if err == nil {
			t.Errorf("%q: no error", tc.src)
			continue
		}
		if tc.want == nil {
			if !strings.Contains(err.Error(), "sample.autoguidance") {
				t.Errorf("%q: error %q does not name sample.autoguidance", tc.src, err)
			}
			continue
		}
		if got := strings.Split(errString(err), "\n"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: errors\n%s\nwant\n%s", tc.src, errString(err), strings.Join(tc.want, "\n"))
		}
	}
}
