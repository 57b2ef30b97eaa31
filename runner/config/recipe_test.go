package config

import (
	"reflect"
	"strings"
	"testing"
)

// The hashes of configs/default.toml and of a quick-scale sweep config from before the recipe
// and architecture keys existed: adding keys must rename no stored run.
func TestRecipeKeysKeepOldHashes(t *testing.T) {
	quick := [][2]string{ // experiments/learning_rate.toml at --scale quick, lr 2e-4
		{"data.train_subset", "3000"}, {"model.base_channels", "32"}, {"model.time_emb_dim", "128"},
		{"train.epochs", "4"}, {"train.batch_size", "32"}, {"train.lr", "2e-4"},
		{"train.ema_decay", "0.995"}, {"train.ema_warmup", "true"}, {"train.checkpoint_every", "0"},
		{"train.sample_every", "1"}, {"sample.sampler", "ddim"}, {"sample.steps", "50"},
		{"eval.num_samples", "250"},
	}
	tests := []struct {
		name string
		sets [][2]string
		want string
	}{
		{name: "default", want: "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"},
		{name: "quick", sets: quick, want: "db11aa948644cfeb32e924c803890110a597e7a613c2ede4c064eece2c22da1e"},
		// Writing a new key at its default, in any spelling, changes nothing either.
		{name: "defaults written out", sets: [][2]string{
			{"model.channel_mult", "[1, 2]"}, {"model.attention", "[]"}, {"model.activation", "silu"},
			{"model.res_blocks", "1"}, {"model.dropout", "0"}, {"diffusion.prediction", "eps"},
			{"train.lr_schedule", "constant"}, {"train.min_snr_gamma", "5"}, {"train.ema_every", "1"},
			{"train.adam_beta1", "0.9"}, {"train.adam_beta2", "0.999"}, {"model.block", "guide"},
		}, want: "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"},
	}
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
			if got := c.Hash().String(); got != tt.want {
				t.Errorf("hash %s, want %s (the hash of this config before the new keys)\n%s", got, tt.want, c.Canonical())
			}
		})
	}
}

// A new key set away from its default is hashed under its table, like any other key.
func TestRecipeKeyInCanonical(t *testing.T) {
	c := Default()
	c.Model.Attention = "7,14"
	c.Train.LossWeighting = "min_snr"
	c.Train.AdamBeta2 = 0.99
	got := string(c.Canonical())
	for _, want := range []string{`"attention":"7,14"`, `"loss_weighting":"min_snr"`, `"adam_beta2":0.99`} {
		if !strings.Contains(got, want) {
			t.Errorf("canonical form lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "min_snr_gamma") || strings.Contains(got, "channel_mult") || strings.Contains(got, "adam_beta1") {
		t.Errorf("canonical form has a new key at its default:\n%s", got)
	}
	e := c.Explain()
	for _, want := range []string{"* model.attention", "hashed only when not the default", "train.min_snr_gamma"} {
		if !strings.Contains(e, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, e)
		}
	}
}

// Every spelling of a list is stored (and so hashed) as one canonical string.
func TestListKeys(t *testing.T) {
	tests := []struct {
		key, value string
		want       string
		err        string
	}{
		{key: "model.attention", value: "7,14", want: "7,14"},
		{key: "model.attention", value: "14, 7", want: "7,14"},
		{key: "model.attention", value: "[14, 7]", want: "7,14"},
		{key: "model.attention", value: "7", want: "7"},
		{key: "model.attention", value: `""`, want: ""},
		{key: "model.attention", value: "[]", want: ""},
		{key: "model.channel_mult", value: "[2, 1]", want: "2,1"}, // a sequence keeps its order
		{key: "model.channel_mult", value: "1, 2", want: "1,2"},
		{key: "model.attention", value: "7;14", err: `--set: model.attention: must be a list of integers ("7,14" or [7, 14]), got string "7;14"`},
		{key: "model.attention", value: `["7"]`, err: `--set: model.attention: must be a list of integers ("7,14" or [7, 14]), got string "[\"7\"]"`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Set error = %v; want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Get(tt.key); got != tt.want {
				t.Errorf("Get(%s) = %q; want %q", tt.key, got, tt.want)
			}
		})
	}
	// In a file, a TOML list is the natural spelling; it reads back from TOML() unchanged.
	c, err := Parse("m.toml", []byte("[model]\nattention = [14, 7]\nchannel_mult = [1, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Attention != "7,14" || c.Model.ChannelMult != "1,1" {
		t.Errorf("attention %q, channel_mult %q; want \"7,14\", \"1,1\"", c.Model.Attention, c.Model.ChannelMult)
	}
	if back, err := Parse("back.toml", c.TOML()); err != nil || back != c {
		t.Errorf("Parse(TOML()) = %+v, %v", back.Model, err)
	}
}

func TestRecipeValidation(t *testing.T) {
	src := `[model]
base_channels = 32
channel_mult = [1, 2, 2]
res_blocks = 0
attention_heads = 0
activation = "tanh"
dropout = 1.0
block = "dense"

[diffusion]
prediction = "x0"

[train]
lr_schedule = "step"
warmup_steps = -1
loss_weighting = "p2"
min_snr_gamma = 0
timestep_sampling = "importance"
ema_warmup = true
ema_power = 0.75
ema_every = 0
ema_start = -5
adam_beta1 = 1.0
adam_beta2 = 0
`
	want := []string{
		`recipe.toml:3: model.channel_mult: must have 1 to 2 levels (28×28 images halve exactly 2 times), got 3`,
		`recipe.toml:4: model.res_blocks: must be in 1..8, got 0`,
		`recipe.toml:5: model.attention_heads: must be >= 1, got 0`,
		`recipe.toml:6: model.activation: must be one of "silu" | "gelu" | "relu" | "mish", got "tanh"`,
		`recipe.toml:7: model.dropout: must be in [0, 1), got 1`,
		`recipe.toml:8: model.block: must be one of "guide" | "resnet", got "dense"`,
		`recipe.toml:11: diffusion.prediction: must be one of "eps" | "v", got "x0"`,
		`recipe.toml:14: train.lr_schedule: must be one of "constant" | "cosine" | "linear", got "step"`,
		`recipe.toml:15: train.warmup_steps: must be >= 0, got -1`,
		`recipe.toml:16: train.loss_weighting: must be one of "none" | "min_snr", got "p2"`,
		`recipe.toml:17: train.min_snr_gamma: must be > 0, got 0`,
		`recipe.toml:18: train.timestep_sampling: must be one of "uniform" | "stratified", got "importance"`,
		`recipe.toml:20: train.ema_power: is a warm-up of its own: set train.ema_warmup = false to use it, or ema_power = 0 (got 0.75)`,
		`recipe.toml:21: train.ema_every: must be >= 1, got 0`,
		`recipe.toml:22: train.ema_start: must be >= 0, got -5`,
		`recipe.toml:23: train.adam_beta1: must be in (0, 1), got 1`,
		`recipe.toml:24: train.adam_beta2: must be in (0, 1), got 0`,
	}
	_, err := Parse("recipe.toml", []byte(src))
	if got := strings.Split(errString(err), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", errString(err), strings.Join(want, "\n"))
	}

	attention := []struct {
		name, mult, attention string
		heads                 int
		err                   string // "" = valid
	}{
		{name: "7 and 14", mult: "1,2", attention: "7,14", heads: 4},
		{name: "28", mult: "1,2", attention: "28", heads: 4},
		{name: "one level: 14 is the bottleneck", mult: "2", attention: "14", heads: 4},
		{name: "one level has no 7", mult: "2", attention: "7", heads: 4,
			err: `model.attention: resolution 7 is not one of the U-Net's (28, 14, from model.channel_mult = "2")`},
		{name: "3 is no resolution", mult: "1,2", attention: "3", heads: 4,
			err: `model.attention: resolution 3 is not one of the U-Net's (28, 14, 7, from model.channel_mult = "1,2")`},
		{name: "twice", mult: "1,2", attention: "7,7", heads: 4, err: `model.attention: resolution 7 is listed twice`},
		{name: "heads divide the width", mult: "1,2", attention: "14", heads: 48,
			err: `model.attention_heads: must divide the 64 channels at resolution 14, got 48`},
		{name: "unsorted in code", mult: "1,2", attention: "14,7", heads: 4, err: `model.attention: write it as "7,14", got "14,7"`},
		{name: "multiplier range", mult: "0,2", attention: "", heads: 4, err: `model.channel_mult: every multiplier must be in 1..16, got "0,2"`},
	}
	for _, tt := range attention {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Model.BaseChannels, c.Model.ChannelMult, c.Model.Attention, c.Model.AttentionHeads = 32, tt.mult, tt.attention, tt.heads
			if got := errString(c.Validate()); got != tt.err {
				t.Errorf("Validate() = %q; want %q", got, tt.err)
			}
		})
	}
}

func TestModelLevels(t *testing.T) {
	tests := []struct {
		mult               string
		widths, resolution []int
	}{
		{"1,2", []int{64, 128, 128}, []int{28, 14, 7}},
		{"1,1", []int{64, 64, 64}, []int{28, 14, 7}},
		{"2", []int{128, 128}, []int{28, 14}},
		{"1,3", []int{64, 192, 192}, []int{28, 14, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.mult, func(t *testing.T) {
			w, r, ok := Model{BaseChannels: 64, ChannelMult: tt.mult}.Levels()
			if !ok || !reflect.DeepEqual(w, tt.widths) || !reflect.DeepEqual(r, tt.resolution) {
				t.Errorf("Levels() = %v, %v, %t; want %v, %v", w, r, ok, tt.widths, tt.resolution)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
