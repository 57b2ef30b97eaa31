package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// LoadFile reads a config file strictly: its keys are decoded over Default(), and unknown
// keys, values of the wrong type and values out of range are all errors. Every problem is
// reported at once, as an ErrorList of *FieldError naming path:line: field.
func LoadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(path, data)
}

// Parse is LoadFile for a document already in memory; name is used in errors.
func Parse(name string, data []byte) (Config, error) {
	c := Default()
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return c, syntaxError(name, err)
	}
	pos := ScanPositions(data)
	var errs ErrorList
	c.apply(doc, "", func(fe *FieldError) {
		fe.File, fe.Line = name, pos.Line(fe.Field)
		errs = append(errs, fe)
	})
	errs = append(errs, Locate(c.Validate(), name, pos)...)
	return c, errs.Err()
}

// syntaxError turns a TOML parse error into an ErrorList with the file and line.
func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return ErrorList{{File: name, Line: pe.Position.Line, Field: pe.LastKey, Msg: pe.Message}}
	}
	return ErrorList{{File: name, Msg: err.Error()}}
}

// Locate gives the errors of err (an ErrorList or *FieldError, as Validate returns) the file
// name and, from pos, the line of their field. Other errors come back as one entry without a
// field.
func Locate(err error, name string, pos Positions) ErrorList {
	if err == nil {
		return nil
	}
	var list ErrorList
	var fe *FieldError
	switch {
	case errors.As(err, &list):
	case errors.As(err, &fe):
		list = ErrorList{fe}
	default:
		return ErrorList{{File: name, Msg: err.Error()}}
	}
	out := make(ErrorList, len(list))
	for i, e := range list {
		c := *e
		c.File, c.Line = name, pos.Line(e.Field)
		out[i] = &c
	}
	return out
}

// apply sets every key of a decoded TOML table on c; report gets one error per bad key.
func (c *Config) apply(doc map[string]any, prefix string, report func(*FieldError)) {
	for _, k := range sortedKeys(doc) {
		key, v := prefix+k, doc[k]
		sub, isTable := v.(map[string]any)
		switch {
		case prefix == "" && containsStr(tables, key):
			if !isTable {
				report(&FieldError{Field: key, Msg: fmt.Sprintf("must be a table ([%s]), got %s", key, Describe(v))})
				continue
			}
			c.apply(sub, key+".", report)
		case isTable && fieldByKey[key].key == "":
			report(&FieldError{Field: key, Msg: unknownTableMsg(key)})
		default:
			if fe := c.setValue(key, v); fe != nil {
				report(fe)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// aliases are names people carry over from other tools, mapped to our keys.
var aliases = map[string]string{
	"learning_rate": "train.lr", "num_epochs": "train.epochs", "batch": "train.batch_size",
	"bs": "train.batch_size", "num_timesteps": "diffusion.timesteps", "steps": "sample.steps",
	"dataset_name": "data.dataset", "channels": "model.base_channels", "ema": "train.ema_decay",
	"noise_schedule": "diffusion.schedule", "beta_schedule": "diffusion.schedule",
	"guidance_scale": "sample.guidance", "n_samples": "sample.num_images", "clip": "train.grad_clip",
}

// unknownKeyMsg says that key is unknown and suggests the key that was probably meant.
func unknownKeyMsg(key string) string {
	if s := Suggest(key); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	return "unknown key (see configs/default.toml for every key)"
}

// unknownTableMsg says that table is unknown and suggests the closest table name.
func unknownTableMsg(table string) string {
	if prefix, _, ok := strings.Cut(table, "."); ok && containsStr(tables, prefix) {
		return unknownKeyMsg(table)
	}
	if t := Closest(table, tables); t != "" {
		return fmt.Sprintf("unknown table (did you mean [%s]?)", t)
	}
	return fmt.Sprintf("unknown table (the tables are %s)", strings.Join(tables, ", "))
}

// Suggest returns the config key most likely meant by an unknown key, or "".
// It tries, in order: a small edit of the whole key; the same last part in another table
// ("model.lr" -> "train.lr"); a small edit of the last part within its table; a known alias
// from other tools ("learning_rate" -> "train.lr"), also misspelt.
func Suggest(key string) string {
	best, bestD := "", 3
	last := key[strings.LastIndexByte(key, '.')+1:]
	for _, f := range fields {
		if d := editDistance(key, f.key); d < bestD {
			best, bestD = f.key, d
		}
	}
	if best != "" {
		return best
	}
	for _, f := range fields {
		if strings.HasSuffix(f.key, "."+last) || f.key == last {
			return f.key
		}
	}
	for alias, target := range sortedAliases() {
		if editDistance(last, alias) <= max(1, len(alias)/5) {
			return target
		}
	}
	table, _, _ := strings.Cut(key, ".")
	for _, f := range fields {
		fl := f.key[strings.LastIndexByte(f.key, '.')+1:]
		if strings.HasPrefix(f.key, table+".") && editDistance(last, fl) <= max(1, len(fl)/3) {
			return f.key
		}
	}
	return ""
}

// sortedAliases iterates the aliases in a fixed order, so suggestions are deterministic.
func sortedAliases() func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		for _, k := range sortedKeys(aliases) {
			if !yield(k, aliases[k]) {
				return
			}
		}
	}
}

// Closest returns the candidate nearest to word by edit distance, if it is near enough to be a
// likely typo (at most 2 edits, or a third of the word), else "". Ties go to the first.
func Closest(word string, candidates []string) string {
	best, bestD := "", max(2, len(word)/3)+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
