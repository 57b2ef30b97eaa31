package config

import (
	"slices"
	"strings"
)

// The accepted values of the recipe and architecture keys.
var (
	Activations       = []string{"silu", "gelu", "relu", "mish"}
	Blocks            = []string{"guide", "resnet"}
	Predictions       = []string{"eps", "v"}
	LossWeightings    = []string{"none", "min_snr"}
	LRSchedules       = []string{"constant", "cosine", "linear"}
	TimestepSamplings = []string{"uniform", "stratified"}
)

// ImageSize is the side of MNIST and Fashion-MNIST images (28×28), the default image side;
// the U-Net's levels are checked against the config's own side (Config.ImageSide).
const ImageSize = 28

// Limits of the architecture keys: generous, but a typo cannot ask for a week per epoch.
const (
	MaxChannelMult = 16
	MaxResBlocks   = 8
)

// Levels returns the U-Net's widths per level from base_channels and channel_mult, and the
// resolution of each level: level i works at ImageSize/2^i with base·mult[i] channels, and the
// bottleneck, one level further down, at the last level's width. The guide's "1,2" at base 64
// gives widths 64, 128, 128 at 28, 14, 7. ok is false if channel_mult does not parse.
func (m Model) Levels() (widths, resolutions []int, ok bool) { return m.LevelsAt(ImageSize) }

// LevelsAt is Levels for images of the given side: level i works at side/2^i.
func (m Model) LevelsAt(side int) (widths, resolutions []int, ok bool) {
	mult, err := IntList(m.ChannelMult)
	if err != nil || len(mult) == 0 {
		return nil, nil, false
	}
	for i, k := range mult {
		widths = append(widths, m.BaseChannels*k)
		resolutions = append(resolutions, side>>i)
	}
	widths = append(widths, widths[len(widths)-1])
	resolutions = append(resolutions, side>>len(mult))
	return widths, resolutions, true
}

// ImageSide returns the side of the images the model sees: data.image_size if set, else the
// dataset's own (28 for MNIST-like sets, 32 for cifar10), and 0 for a folder without
// data.image_size, whose side is only known once its images are read (ResolveData).
func (c Config) ImageSide() int {
	switch {
	case c.Data.ImageSize != 0:
		return c.Data.ImageSize
	case c.Data.Dataset == "cifar10":
		return 32
	case c.Data.Dataset == "folder":
		return 0
	}
	return ImageSize
}

// validateRecipe checks the architecture keys, diffusion.prediction and the training recipe.
func (c Config) validateRecipe(e *ErrorList) {
	m := c.Model
	if side := c.ImageSide(); side != 0 {
		c.validateLevels(e, side, side)
	} else {
		// A folder of images as stored: the sides are checked by ResolveData.
		checkList(e, "model.channel_mult", m.ChannelMult, false)
		checkList(e, "model.attention", m.Attention, true)
	}
	if m.ResBlocks < 1 || m.ResBlocks > MaxResBlocks {
		e.add("model.res_blocks", "must be in 1..%d, got %d", MaxResBlocks, m.ResBlocks)
	}
	if m.AttentionHeads < 1 {
		e.add("model.attention_heads", "must be >= 1, got %d", m.AttentionHeads)
	}
	c.validateTrainRecipe(e)
}

// validateLevels checks model.channel_mult and model.attention against images of h×w.
func (c Config) validateLevels(e *ErrorList, h, w int) {
	m := c.Model
	levelsOK := checkList(e, "model.channel_mult", m.ChannelMult, false)
	if mult, _ := IntList(m.ChannelMult); levelsOK {
		// Max-pooling halves the side at every level and the transposed convolutions double it
		// back, so the side must divide exactly: 28 → 14 → 7 allows two levels.
		maxLevels := 0
		for s := min(h&-h, w&-w); s%2 == 0; s /= 2 {
			maxLevels++
		}
		switch {
		case len(mult) < 1 || len(mult) > maxLevels:
			e.add("model.channel_mult", "must have 1 to %d levels (%d×%d images halve exactly %d times), got %d",
				maxLevels, h, w, maxLevels, len(mult))
			levelsOK = false
		case slices.ContainsFunc(mult, func(k int) bool { return k < 1 || k > MaxChannelMult }):
			e.add("model.channel_mult", "every multiplier must be in 1..%d, got %q", MaxChannelMult, m.ChannelMult)
			levelsOK = false
		}
	}
	if checkList(e, "model.attention", m.Attention, true) && levelsOK {
		widths, resolutions, _ := m.LevelsAt(h)
		att, _ := IntList(m.Attention)
		for i, r := range att {
			level := slices.Index(resolutions, r)
			switch {
			case i > 0 && att[i-1] == r:
				e.add("model.attention", "resolution %d is listed twice", r)
			case level < 0:
				e.add("model.attention", "resolution %d is not one of the U-Net's (%s, from model.channel_mult = %q)",
					r, strings.ReplaceAll(formatIntList(resolutions), ",", ", "), m.ChannelMult)
			case m.AttentionHeads >= 1 && widths[level]%m.AttentionHeads != 0:
				e.add("model.attention_heads", "must divide the %d channels at resolution %d, got %d",
					widths[level], r, m.AttentionHeads)
			}
		}
	}
}

// validateTrainRecipe checks the rest of the recipe keys: activation, block, dropout, prediction
// and the training recipe.
func (c Config) validateTrainRecipe(e *ErrorList) {
	m := c.Model
	oneOf(e, "model.activation", m.Activation, Activations)
	oneOf(e, "model.block", m.Block, Blocks)
	if !(m.Dropout >= 0 && m.Dropout < 1) {
		e.add("model.dropout", "must be in [0, 1), got %s", formatFloat(m.Dropout))
	}

	oneOf(e, "diffusion.prediction", c.Diffusion.Prediction, Predictions)

	t := c.Train
	oneOf(e, "train.lr_schedule", t.LRSchedule, LRSchedules)
	atLeast(e, "train.warmup_steps", t.WarmupSteps, 0)
	oneOf(e, "train.loss_weighting", t.LossWeighting, LossWeightings)
	if !(t.MinSNRGamma > 0) {
		e.add("train.min_snr_gamma", "must be > 0, got %s", formatFloat(t.MinSNRGamma))
	}
	oneOf(e, "train.timestep_sampling", t.TimestepSampling, TimestepSamplings)
	if !(t.EMAPower >= 0) {
		e.add("train.ema_power", "must be 0 (off) or > 0, got %s", formatFloat(t.EMAPower))
	} else if t.EMAPower > 0 && t.EMAWarmup {
		e.add("train.ema_power", "is a warm-up of its own: set train.ema_warmup = false to use it, or ema_power = 0 (got %s)", formatFloat(t.EMAPower))
	}
	atLeast(e, "train.ema_every", t.EMAEvery, 1)
	atLeast(e, "train.ema_start", t.EMAStart, 0)
	for _, beta := range []struct {
		key   string
		value float64
	}{{"train.adam_beta1", t.AdamBeta1}, {"train.adam_beta2", t.AdamBeta2}} {
		if !(beta.value > 0 && beta.value < 1) {
			e.add(beta.key, "must be in (0, 1), got %s", formatFloat(beta.value))
		}
	}
	if checkList(e, "train.snapshot_steps", t.SnapshotSteps, true) {
		steps, _ := IntList(t.SnapshotSteps)
		for i, step := range steps {
			if step < 1 {
				e.add("train.snapshot_steps", "steps must be >= 1, got %d", step)
			} else if i > 0 && steps[i-1] == step {
				e.add("train.snapshot_steps", "step %d is listed twice", step)
			}
		}
	}
}

// checkList reports whether the list key's value parses and is in its canonical spelling
// (which LoadFile and Set always produce; a config built in code may not).
func checkList(e *ErrorList, key, v string, sorted bool) bool {
	list, err := IntList(v)
	if err != nil {
		e.add(key, `must be a list of integers such as "7,14": %v`, err)
		return false
	}
	if sorted {
		slices.Sort(list)
	}
	if want := formatIntList(list); want != v {
		e.add(key, "write it as %q, got %q", want, v)
		return false
	}
	return true
}
