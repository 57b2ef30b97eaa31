package config

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Canonical returns the canonical JSON of the hashed keys: one object per table, keys sorted,
// integers as integers, floats as strconv.FormatFloat(v, 'g', -1, 64) (so 2e-4 and 0.0002 are
// the same bytes), no spaces. data.dir and [runtime] are left out. The hash is the SHA-256 of
// exactly these bytes, and the run store keeps them as canonical.json.
//
// Keys added after the first runs were stored (the recipe and architecture keys, tagged
// canonical:"omitdefault") are left out while they hold their default value, so a config that
// does not use them has the bytes, and so the hash, it had before they existed.
//
// A sampling-only config (sample.from_run set) is keyed by the source run's hash plus its own
// seed, [sample] and [eval]: the rest is the source run's and is left out. An empty
// sample.from_run is left out too, so ordinary configs hash as they always did.
//
// Canonical is meant for valid configs: a NaN or infinite float (which Validate rejects)
// would not give valid JSON.
func (c Config) Canonical() []byte {
	// Group the hashed keys by table; both levels are then written in sorted order.
	top := map[string]string{}             // top-level key -> JSON value
	tabs := map[string]map[string]string{} // table -> key -> JSON value
	def := Default()
	for _, f := range fields {
		if !f.hashed || !c.inIdentity(f.key) || c.omittedAtDefault(f, def) {
			continue
		}
		v, _ := c.Get(f.key)
		j := jsonValue(v)
		if table, key, ok := strings.Cut(f.key, "."); ok {
			if tabs[table] == nil {
				tabs[table] = map[string]string{}
			}
			tabs[table][key] = j
		} else {
			top[f.key] = j
		}
	}
	for t, kv := range tabs {
		var b strings.Builder
		writeObject(&b, kv)
		top[t] = b.String()
	}
	var b strings.Builder
	writeObject(&b, top)
	return []byte(b.String())
}

// omittedAtDefault reports whether f is a key added after runs were first stored (tag
// canonical:"omitdefault") that has its default value in c: such a key is left out of the
// canonical form, so adding it renamed no run. Set to anything else, it is written like any
// other key.
func (c Config) omittedAtDefault(f field, def Config) bool {
	if !f.omitDefault {
		return false
	}
	v, _ := c.Get(f.key)
	d, _ := def.Get(f.key)
	return v == d
}

// inIdentity reports whether a hashed key is part of this config's identity.
func (c Config) inIdentity(key string) bool {
	if key == "sample.from_run" {
		return c.SamplingOnly()
	}
	if !c.SamplingOnly() {
		return true
	}
	return key == "seed" || strings.HasPrefix(key, "sample.") || strings.HasPrefix(key, "eval.")
}

func writeObject(b *strings.Builder, kv map[string]string) {
	b.WriteByte('{')
	for i, k := range sortedKeys(kv) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(k) + ":" + kv[k])
	}
	b.WriteByte('}')
}

func jsonValue(v any) string {
	switch x := v.(type) {
	case string:
		return jsonString(x)
	case float64:
		return formatFloat(x)
	default: // int64, bool
		return fmt.Sprint(x)
	}
}

// jsonString quotes s as a JSON string; unlike encoding/json it leaves <, > and & alone.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatFloat is the one float spelling of the canonical form and of FormatValue.
func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// Hash is the SHA-256 of a config's canonical form: the name of its run. It is the store's
// one hash type, which also parses and checks hashes (store.ParseHash, store.CheckPrefix).
type Hash = store.Hash

// Hash returns the SHA-256 of c.Canonical().
func (c Config) Hash() Hash { return store.HashOf(c.Canonical()) }

// TOML returns the whole config as a TOML document: every key, in the order of
// configs/default.toml, floats always with a decimal point or exponent. Parse reads it back
// to an equal Config.
func (c Config) TOML() []byte {
	var b bytes.Buffer
	table := ""
	for _, f := range fields {
		t, key, ok := strings.Cut(f.key, ".")
		if !ok {
			t, key = "", f.key
		}
		if t != table {
			fmt.Fprintf(&b, "\n[%s]\n", t)
			table = t
		}
		v, _ := c.Get(f.key)
		fmt.Fprintf(&b, "%s = %s\n", key, tomlValue(v))
	}
	return b.Bytes()
}

func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return jsonString(x) // a JSON string with \u escapes is a TOML basic string
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		s := formatFloat(x)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	default:
		return fmt.Sprint(x)
	}
}

// Explain describes what went into c's hash, for `runner explain`: each hashed key and its
// value (marked * where it differs from Default), the keys left out and why, and the
// canonical JSON that was hashed.
func (c Config) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hash %s (short %s)\n", c.Hash(), c.Hash().Short())
	b.WriteString("= SHA-256 of the canonical JSON of these keys (* = not the default):\n")
	def := Default()
	var excluded, atDefault []string
	for _, f := range fields {
		v, _ := c.Get(f.key)
		d, _ := def.Get(f.key)
		mark := " "
		if v != d {
			mark = "*"
		}
		line := fmt.Sprintf("  %s %-24s = %s\n", mark, f.key, tomlValue(v))
		switch {
		case !f.hashed || !c.inIdentity(f.key):
			excluded = append(excluded, line)
		case c.omittedAtDefault(f, def):
			atDefault = append(atDefault, line)
		default:
			b.WriteString(line)
		}
	}
	if len(atDefault) > 0 {
		b.WriteString("hashed only when not the default (keys added after the first stores; left out at their defaults so older runs keep their hashes):\n")
		for _, l := range atDefault {
			b.WriteString(l)
		}
	}
	if c.SamplingOnly() {
		b.WriteString("not hashed (a sampling-only run takes data, model, diffusion and train from run " + c.Sample.FromRun + "; data.dir and runtime never count):\n")
	} else {
		b.WriteString("not hashed (where the data lives and where computing happens do not change what is computed):\n")
	}
	for _, l := range excluded {
		b.WriteString(l)
	}
	if c.Data.Dataset == "folder" && c.Data.Digest != "" {
		b.WriteString("note: data.digest " + c.Data.Digest + " is the SHA-256 of every image's path and bytes in " + c.Data.Dir +
			" (both splits), read when the config was loaded: changing any image changes the hash\n")
	}
	if c.Diffusion.Schedule != "linear" {
		b.WriteString("note: diffusion.beta_start and beta_end are hashed but unused by the " + c.Diffusion.Schedule + " schedule\n")
	}
	fmt.Fprintf(&b, "canonical JSON:\n  %s\n", c.Canonical())
	return b.String()
}
