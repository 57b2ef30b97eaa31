// Package config implements the typed run config of ddpmlab: strict TOML decoding with
// file:line:field errors, defaults, validation, --set overrides, and the canonical form and
// content hash that name a run in the store.
//
// Keys are addressed by dotted paths ("train.lr", "model.base_channels") everywhere: in
// --set, in sweep files and in errors. configs/default.toml lists every key with its default.
//
// Everything except data.dir and the [runtime] table is hashed: where the data lives and
// where the computation happens do not change what is computed.
package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is one run's complete configuration. The zero value is not useful; start from
// Default, LoadFile or Parse.
type Config struct {
	Seed      int64     `toml:"seed"` // seeds data order, noise and init
	Data      Data      `toml:"data"`
	Model     Model     `toml:"model"`
	Diffusion Diffusion `toml:"diffusion"`
	Train     Train     `toml:"train"`
	Sample    Sample    `toml:"sample"`
	Eval      Eval      `toml:"eval"`
	Runtime   Runtime   `toml:"runtime" hash:"-"`
}

// Data chooses the training images.
//
// The conversion keys (image_size, channels, resize) and digest were added after the first
// stores (canonical:"omitdefault", see Model). Digest is not written by hand: for a "folder"
// dataset ResolveData fills it in with the folder's data.FolderDigest when the config is
// loaded, so the images are part of the run's identity; set, it pins the folder's contents.
type Data struct {
	Dataset     string `toml:"dataset"`                            // "mnist" | "fashion_mnist" | "cifar10" | "folder"
	Dir         string `toml:"dir" hash:"-"`                       // folder with the data files (required for "folder"); "" = search
	TrainSubset int    `toml:"train_subset"`                       // 0 = whole train split, else the first N images
	ImageSize   int    `toml:"image_size" canonical:"omitdefault"` // cifar10, folder: side S of the SxS images; 0 = as stored
	Channels    int    `toml:"channels" canonical:"omitdefault"`   // cifar10, folder: 1 (grey) | 3 (RGB); 0 = the dataset's own
	Resize      string `toml:"resize" canonical:"omitdefault"`     // with image_size: "resize" | "center_crop"
	Digest      string `toml:"digest" canonical:"omitdefault"`     // folder: SHA-256 of its images; filled in by ResolveData
}

// Model sizes the U-Net.
//
// Keys tagged canonical:"omitdefault" (here, in Diffusion and in Train) were added after the
// first stores were written: at their default value they are left out of the canonical form,
// so every older run keeps its hash. Keys tagged list:"…" hold a list of integers, kept as a
// canonical string ("7,14"); a TOML list ([7, 14]) or a single integer is accepted too.
type Model struct {
	BaseChannels int  `toml:"base_channels"` // multiple of 8 (GroupNorm with 8 groups)
	TimeEmbDim   int  `toml:"time_emb_dim"`  // even: half sines, half cosines
	Conditional  bool `toml:"conditional"`   // class-conditional (classifier-free guidance)
	// ChannelMult gives each level's width as a multiple of base_channels ("1,2" is the
	// guide's: C at 28×28, 2C at 14×14, and the bottleneck at 7×7 at the last level's width).
	ChannelMult    string  `toml:"channel_mult" list:"seq" canonical:"omitdefault"`
	ResBlocks      int     `toml:"res_blocks" canonical:"omitdefault"`           // blocks per level, down and up
	Attention      string  `toml:"attention" list:"set" canonical:"omitdefault"` // resolutions with self-attention; "" = none
	AttentionHeads int     `toml:"attention_heads" canonical:"omitdefault"`      // heads of each attention block
	Activation     string  `toml:"activation" canonical:"omitdefault"`           // "silu" | "gelu" | "relu" | "mish"
	Dropout        float64 `toml:"dropout" canonical:"omitdefault"`              // in each block, between the convolutions; training only
	// Block is the block type: "guide" (the guide's DownBlock) or "resnet" (Ho et al. 2020's
	// pre-activation residual block, its second convolution starting at zero).
	Block string `toml:"block" canonical:"omitdefault"`
}

// Diffusion sets the forward process.
type Diffusion struct {
	Timesteps int     `toml:"timesteps"`
	Schedule  string  `toml:"schedule"`   // "linear" | "cosine"
	BetaStart float64 `toml:"beta_start"` // linear schedule only
	BetaEnd   float64 `toml:"beta_end"`   // linear schedule only
	// Prediction is what the network predicts: "eps" (the noise ε, Ho et al.) or "v"
	// (v = √ᾱ·ε − √(1 − ᾱ)·x_0, Salimans & Ho 2022).
	Prediction string `toml:"prediction" canonical:"omitdefault"`
}

// Train sets the optimisation.
type Train struct {
	Epochs          int     `toml:"epochs"` // 0 = no training
	BatchSize       int     `toml:"batch_size"`
	LR              float64 `toml:"lr"`
	GradClip        float64 `toml:"grad_clip"`        // max global grad norm; 0 = off
	EMADecay        float64 `toml:"ema_decay"`        // 0 = off
	EMAWarmup       bool    `toml:"ema_warmup"`       // decay min(ema_decay, (1+n)/(10+n))
	PUncond         float64 `toml:"p_uncond"`         // label dropout for conditional models
	CheckpointEvery int     `toml:"checkpoint_every"` // epochs; 0 = only the last
	SampleEvery     int     `toml:"sample_every"`     // epochs between sample grids; 0 = never

	LRSchedule       string  `toml:"lr_schedule" canonical:"omitdefault"`       // "constant" | "cosine" | "linear", after the warm-up
	WarmupSteps      int     `toml:"warmup_steps" canonical:"omitdefault"`      // linear warm-up of the lr from 0; 0 = none
	LossWeighting    string  `toml:"loss_weighting" canonical:"omitdefault"`    // "none" | "min_snr"
	MinSNRGamma      float64 `toml:"min_snr_gamma" canonical:"omitdefault"`     // γ of Min-SNR-γ weighting
	TimestepSampling string  `toml:"timestep_sampling" canonical:"omitdefault"` // "uniform" | "stratified"
	EMAPower         float64 `toml:"ema_power" canonical:"omitdefault"`         // > 0: decay min(ema_decay, 1 − (1 + n)^−power); 0 = off
	EMAEvery         int     `toml:"ema_every" canonical:"omitdefault"`         // optimizer steps between EMA updates
	EMAStart         int     `toml:"ema_start" canonical:"omitdefault"`         // optimizer steps before averaging starts
	AdamBeta1        float64 `toml:"adam_beta1" canonical:"omitdefault"`        // Adam's β1, decay of the gradient's running mean
	AdamBeta2        float64 `toml:"adam_beta2" canonical:"omitdefault"`        // Adam's β2, decay of the squared gradient's running mean
	// Precision is the arithmetic of the U-Net's convolutions and matrix products while
	// training: "fp32" | "bf16" (mixed precision: the weights and Adam's moments stay fp32).
	Precision string `toml:"precision" canonical:"omitdefault"`
	// SnapshotSteps lists optimizer steps ("282" or "141,282") at which the weights are kept
	// in snapshots/, for sampling-only runs guided by them (sample.guide_step). A run guided by
	// its own snapshot keeps that one whether it is listed or not.
	SnapshotSteps string `toml:"snapshot_steps" list:"set" canonical:"omitdefault"`
}

// Sample sets how the final images are generated.
type Sample struct {
	Sampler   string  `toml:"sampler"` // "ddpm" | "ddim" | "dpmpp_2m" | "dpmpp_2m_sde" | "dpmpp_3m" | "dpmpp_3m_sde" | "unipc"
	Steps     int     `toml:"steps"`   // 0 = all timesteps
	Eta       float64 `toml:"eta"`     // DDIM eta
	NumImages int     `toml:"num_images"`
	Guidance  float64 `toml:"guidance"` // classifier-free guidance weight; conditional models only
	UseEMA    bool    `toml:"use_ema"`
	ClipX0    bool    `toml:"clip_x0"` // clamp the predicted x_0 to [-1, 1] at every step
	// Spacing is the sampler's timestep grid: "trailing" | "logsnr" | "karras".
	Spacing string `toml:"spacing" canonical:"omitdefault"`
	// Precision is the U-Net's arithmetic while sampling and evaluating, as train.precision:
	// "fp32" | "bf16"; the sampler's own arithmetic is always fp32.
	Precision string `toml:"precision" canonical:"omitdefault"`
	// FromRun makes a sampling-only run: the hash of a trained run whose last checkpoint is
	// sampled and evaluated, with no training. Its data, model, diffusion and train settings
	// are the source run's.
	FromRun string `toml:"from_run"`
	// AutoGuidance is the weight w of autoguidance (Karras et al. 2024): ε̂ = (1 + w)·ε_θ −
	// w·ε_guide, where the guide is a weaker model of the same data, the final weights of
	// GuideRun; 0 = off. It needs no class label.
	AutoGuidance float64 `toml:"autoguidance" canonical:"omitdefault"`
	// GuideRun is the hash of the trained run that guides (any unique prefix in a file; stored as
	// the full hash): a smaller or shorter-trained model of the same data and schedule.
	GuideRun string `toml:"guide_run" canonical:"omitdefault"`
	// GuideStep > 0 guides with the weights at that training step instead of the final ones:
	// GuideRun's snapshot (train.snapshot_steps there), or, when GuideRun is "", the sampled
	// run's own, which a training run keeps in snapshots/ as it passes that step.
	GuideStep int `toml:"guide_step" canonical:"omitdefault"`
}

// Eval sets the quality metrics.
type Eval struct {
	NumSamples int `toml:"num_samples"` // 0 = skip
}

// Runtime says where the run computes. It is not hashed.
type Runtime struct {
	Device  string `toml:"device"`  // "auto" | "cpu" | "cuda"
	Threads int    `toml:"threads"` // libtorch intra-op threads; 0 = decided by the runner
}

// Default returns the defaults of the DDPM guide (configs/default.toml lists the same values).
func Default() Config {
	return Config{
		Seed:      0,
		Data:      Data{Dataset: "mnist", Resize: "resize"},
		Model:     Model{BaseChannels: 64, TimeEmbDim: 256, ChannelMult: "1,2", ResBlocks: 1, AttentionHeads: 4, Activation: "silu", Block: "guide"},
		Diffusion: Diffusion{Timesteps: 1000, Schedule: "linear", BetaStart: 1e-4, BetaEnd: 0.02, Prediction: "eps"},
		Train: Train{Epochs: 20, BatchSize: 128, LR: 2e-4, PUncond: 0.1,
			CheckpointEvery: 5, SampleEvery: 1,
			LRSchedule: "constant", LossWeighting: "none", MinSNRGamma: 5, TimestepSampling: "uniform", EMAEvery: 1,
			AdamBeta1: 0.9, AdamBeta2: 0.999, Precision: "fp32"},
		Sample:  Sample{Sampler: "ddpm", Spacing: "trailing", Precision: "fp32", NumImages: 64, UseEMA: true, ClipX0: true},
		Runtime: Runtime{Device: "auto"},
	}
}

// field is one leaf key of Config.
type field struct {
	key    string // dotted path
	index  []int  // reflect field index from Config
	kind   reflect.Kind
	hashed bool
	// omitDefault leaves the key out of the canonical form while it has its default value
	// (tag canonical:"omitdefault"): keys added after runs were stored must not rename them.
	omitDefault bool
	// list is "seq" (an ordered list of integers) or "set" (order does not matter; kept
	// sorted) for string keys holding a list (tag list:"…"), else "".
	list string
}

// fields lists every key in declaration order; it is derived from the struct tags once.
var fields, fieldByKey = func() ([]field, map[string]field) {
	var fs []field
	var walk func(t reflect.Type, prefix string, index []int, hashed bool)
	walk = func(t reflect.Type, prefix string, index []int, hashed bool) {
		for i := range t.NumField() {
			sf := t.Field(i)
			key := prefix + sf.Tag.Get("toml")
			idx := append(append([]int(nil), index...), i)
			h := hashed && sf.Tag.Get("hash") != "-"
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, key+".", idx, h)
				continue
			}
			fs = append(fs, field{key: key, index: idx, kind: sf.Type.Kind(), hashed: h,
				omitDefault: sf.Tag.Get("canonical") == "omitdefault", list: sf.Tag.Get("list")})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil, true)
	m := make(map[string]field, len(fs))
	for _, f := range fs {
		m[f.key] = f
	}
	return fs, m
}()

// tables lists the table names ("data", "model", …) in declaration order.
var tables = func() []string {
	var ts []string
	for _, f := range fields {
		if t, _, ok := strings.Cut(f.key, "."); ok && !containsStr(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}()

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Keys returns every dotted key, in the order of configs/default.toml.
func Keys() []string {
	ks := make([]string, len(fields))
	for i, f := range fields {
		ks[i] = f.key
	}
	return ks
}

// SamplingOnly reports whether c samples another run's checkpoint instead of training.
func (c Config) SamplingOnly() bool { return c.Sample.FromRun != "" }

// Trains reports whether a run of c trains a network: it has epochs and is not sampling-only.
func (c Config) Trains() bool { return c.Train.Epochs > 0 && !c.SamplingOnly() }

// WithSource returns the sampling-only config c with the data, model, diffusion and train
// settings of the trained run it samples from; sample, eval, seed and runtime stay c's.
func (c Config) WithSource(source Config) Config {
	out := c
	out.Data, out.Model, out.Diffusion, out.Train = source.Data, source.Model, source.Diffusion, source.Train
	return out
}

// IsHashed reports whether key is part of the hash (every key but data.dir and runtime.*).
func IsHashed(key string) bool { return fieldByKey[key].hashed }

// Get returns the value of key: an int64 for integers, float64, string or bool.
func (c Config) Get(key string) (any, error) {
	f, ok := fieldByKey[key]
	if !ok {
		return nil, &FieldError{Field: key, Msg: unknownKeyMsg(key)}
	}
	v := reflect.ValueOf(c).FieldByIndex(f.index)
	switch f.kind {
	case reflect.Int, reflect.Int64:
		return v.Int(), nil
	case reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	default:
		return v.Bool(), nil
	}
}

// SetValue sets key to v, a value as BurntSushi/toml decodes it (int64, float64, string, bool).
// Integers are accepted for float keys; nothing else is converted. It checks the type only,
// not the range (that is Validate's job). The error is a *FieldError naming key, with no file.
func (c *Config) SetValue(key string, v any) error {
	if fe := c.setValue(key, v); fe != nil {
		return fe
	}
	return nil
}

func (c *Config) setValue(key string, v any) *FieldError {
	f, ok := fieldByKey[key]
	if !ok {
		return &FieldError{Field: key, Msg: unknownKeyMsg(key)}
	}
	dst := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	bad := func(want string) *FieldError {
		return &FieldError{Field: key, Msg: fmt.Sprintf("must be %s, got %s", want, Describe(v))}
	}
	switch f.kind {
	case reflect.Int, reflect.Int64:
		i, ok := v.(int64)
		if !ok {
			return bad("an integer")
		}
		if dst.OverflowInt(i) {
			return bad("a smaller integer")
		}
		dst.SetInt(i)
	case reflect.Float64:
		switch x := v.(type) {
		case float64:
			dst.SetFloat(x)
		case int64:
			dst.SetFloat(float64(x))
		default:
			return bad("a number")
		}
	case reflect.String:
		if f.list != "" {
			s, ok := listString(v, f.list == "set")
			if !ok {
				return bad(`a list of integers ("7,14" or [7, 14])`)
			}
			dst.SetString(s)
			break
		}
		s, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return bad("true or false")
		}
		dst.SetBool(b)
	}
	return nil
}

// Set applies one --set override: key is a dotted path and value is parsed as a TOML value
// (2e-4, 64, true, "cosine"); for string keys a bare word (cosine, /data/mnist) is taken as
// it is. The error is a *FieldError with File "--set".
func (c *Config) Set(key, value string) error {
	f, known := fieldByKey[key]
	v, err := ParseValue(value)
	if known && f.kind == reflect.String {
		if _, isStr := v.(string); !isStr {
			v, err = value, nil
		}
	}
	if known && err != nil {
		return &FieldError{File: "--set", Field: key, Msg: fmt.Sprintf("%q is not a TOML value", value)}
	}
	if fe := c.setValue(key, v); fe != nil {
		fe.File = "--set"
		return fe
	}
	return nil
}

// ParseValue parses one TOML value ("2e-4", "64", "true", `"cosine"`, "[1, 2]").
func ParseValue(s string) (any, error) {
	var m map[string]any
	if _, err := toml.Decode("v = "+s, &m); err != nil {
		return nil, err
	}
	if v, ok := m["v"]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%q is not a TOML value", s)
}

// SplitSet splits a --set argument "key=value" into its key and value.
func SplitSet(arg string) (key, value string, err error) {
	key, value, ok := strings.Cut(arg, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return "", "", &FieldError{File: "--set", Field: arg, Msg: "want key=value"}
	}
	return key, strings.TrimSpace(value), nil
}

// Describe names a decoded TOML value's type and shows it, for "must be …, got …" messages.
func Describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return "float " + FormatValue(x)
	case bool:
		return fmt.Sprintf("bool %t", x)
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// FormatValue formats a config value canonically: integers in decimal, floats with
// strconv.FormatFloat(v, 'g', -1, 64) (so 2e-4 and 0.0002 both read "0.0002"), strings as they
// are, bools as true/false. Sweep manifests and reports use it for varied values.
func FormatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return formatFloat(x)
	case string:
		return x
	default:
		return fmt.Sprint(v)
	}
}
