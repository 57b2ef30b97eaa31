package sweep

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// MaxRuns caps the runs one sweep may expand to (before deduplication and sampling), so that
// a typo cannot plan a million runs.
const MaxRuns = 10_000

// DefaultScale is the scale used when none is named.
const DefaultScale = "quick"

// validName is the form of sweep and scale names: they become file names.
var validName = regexp.MustCompile(`^[a-z0-9_-]+$`)

// topKeys are the keys allowed at the top level of a sweep file.
var topKeys = []string{"name", "description", "base", "requires", "seeds", "set", "grid", "zip", "case", "random", "scale"}

// Sweep is a parsed and fully validated sweep file.
type Sweep struct {
	Name        string
	Description string
	File        string // the sweep file, as given to Load
	Base        string // the base config file, resolved against the sweep file's folder
	// Requires lists config keys the user must give with --set, such as the trained run a
	// sampling-only sweep samples (sample.from_run).
	Requires []string

	base    config.Config
	basePos config.Positions
	seeds   []int64
	set     []override
	grid    []axis
	zips    [][]axis
	cases   [][]override
	random  *random
	scales  map[string][]override
	// scaleGrids holds each scale's [scale.S.grid]: new values for some of [grid]'s axes.
	scaleGrids map[string][]axis
}

// override is one key = value of [set], [scale.S] or a [[case]], with its line.
type override struct {
	key   string
	value any
	line  int
}

// axis is one varied key and its values, with their lines.
type axis struct {
	key    string
	values []any
	line   int
	lines  []int // line of each value
	where  string
}

type random struct {
	n    int
	seed uint64
}

// Scales returns the names of the sweep's scales, sorted.
func (s *Sweep) Scales() []string { return sortedKeys(s.scales) }

// Load reads and validates a sweep file and its base config. The error lists every problem
// in the file (an config.ErrorList of *config.FieldError, each with file and line).
func Load(path string) (*Sweep, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, loadBase)
}

// loadBase reads a base config file, giving back its key positions for error messages.
func loadBase(path string) (config.Config, config.Positions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, nil, err
	}
	c, err := config.Parse(path, data)
	return c, config.ScanPositions(data), err
}

// parser gathers the errors of one sweep file.
type parser struct {
	file string
	pos  config.Positions
	errs config.ErrorList
}

func (p *parser) errorf(path, field, format string, args ...any) {
	p.errs = append(p.errs, &config.FieldError{File: p.file, Line: p.pos.Line(path), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func parse(file string, data []byte, load func(string) (config.Config, config.Positions, error)) (*Sweep, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, config.ErrorList{{File: file, Line: pe.Position.Line, Field: pe.LastKey, Msg: pe.Message}}
		}
		return nil, config.ErrorList{{File: file, Msg: err.Error()}}
	}
	p := &parser{file: file, pos: config.ScanPositions(data)}
	s := &Sweep{File: file, scales: map[string][]override{}, scaleGrids: map[string][]axis{}}

	for _, k := range sortedKeys(doc) {
		if slices.Contains(topKeys, k) {
			continue
		}
		switch {
		case isConfigKey(k):
			p.errorf(k, k, "config keys go in [set], [grid], [[zip]], [[case]] or [scale.NAME]")
		case config.Closest(k, topKeys) != "":
			p.errorf(k, k, "unknown key (did you mean %q?)", config.Closest(k, topKeys))
		default:
			p.errorf(k, k, "unknown key (a sweep file has %s)", strings.Join(topKeys, ", "))
		}
	}

	s.Name = p.str(doc, "name", true)
	if s.Name != "" && !validName.MatchString(s.Name) {
		p.errorf("name", "name", "must match [a-z0-9_-]+, got %q", s.Name)
	}
	s.Description = p.str(doc, "description", false)
	baseOK := false
	if b := p.str(doc, "base", true); b != "" {
		s.Base = b
		if !filepath.IsAbs(b) {
			s.Base = filepath.Join(filepath.Dir(file), b)
		}
		c, pos, err := load(s.Base)
		var list config.ErrorList
		switch {
		case errors.As(err, &list):
			p.errs = append(p.errs, list...) // they name the base file and its lines
		case errors.Is(err, fs.ErrNotExist):
			p.errorf("base", "base", "no such file: %s", s.Base)
		case err != nil:
			p.errorf("base", "base", "%v", err)
		default:
			baseOK = true
		}
		s.base, s.basePos = c, pos
	}

	if v, ok := doc["requires"]; ok {
		s.Requires = p.requires(v)
	}
	if v, ok := doc["seeds"]; ok {
		s.seeds = p.seeds(v)
	}
	if v, ok := doc["set"]; ok {
		s.set = p.overrides(v, "set", "[set]")
	}
	if v, ok := doc["grid"]; ok {
		if m, ok := p.table(v, "grid", "[grid]"); ok {
			s.grid = p.axes(m, "grid", "[grid]")
		}
	}
	if v, ok := doc["zip"]; ok {
		for i, t := range p.tables(v, "zip") {
			path := "zip." + strconv.Itoa(i)
			if z := p.zip(t, path); z != nil {
				s.zips = append(s.zips, z)
			}
		}
	}
	if v, ok := doc["case"]; ok {
		for i, t := range p.tables(v, "case") {
			path := "case." + strconv.Itoa(i)
			s.cases = append(s.cases, p.overrides(t, path, fmt.Sprintf("[[case]] %d", i+1)))
		}
	}
	if v, ok := doc["random"]; ok {
		s.random = p.random(v)
	}
	if v, ok := doc["scale"]; ok {
		if m, ok := p.table(v, "scale", "[scale]"); ok {
			for _, name := range sortedKeys(m) {
				path := "scale." + name
				if !validName.MatchString(name) {
					p.errorf(path, "scale."+name, "scale names must match [a-z0-9_-]+")
					continue
				}
				t, isTable := m[name].(map[string]any)
				if !isTable {
					p.errorf(path, "scale."+name, "must be a table ([scale.%s]), got %s", name, config.Describe(m[name]))
					continue
				}
				// [scale.S.grid] is not a config key (no key starts with "grid"): take it out first.
				if g, ok := t["grid"]; ok {
					t = maps.Clone(t)
					delete(t, "grid")
					where := "[scale." + name + ".grid]"
					if gm, ok := p.table(g, path+".grid", where); ok {
						s.scaleGrids[name] = p.axes(gm, path+".grid", where)
					}
				}
				s.scales[name] = p.overrides(t, path, "[scale."+name+"]")
			}
		}
	}
	p.crossCheck(s)

	n, sizeErr := s.size()
	if sizeErr != nil {
		p.errs = append(p.errs, &config.FieldError{File: file, Msg: sizeErr.Error()})
	}
	// Phase 2: build every run at every scale and validate it, if the base config is usable.
	if baseOK && sizeErr == nil && n > 0 {
		p.errs = append(p.errs, s.validateScales()...)
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func isConfigKey(k string) bool {
	for _, key := range config.Keys() {
		if k == key || strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// str returns the string at doc[key], reporting a wrong type or a missing required key.
func (p *parser) str(doc map[string]any, key string, required bool) string {
	v, ok := doc[key]
	if !ok {
		if required {
			p.errs = append(p.errs, &config.FieldError{File: p.file, Field: key, Msg: "missing (required)"})
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.errorf(key, key, "must be a string, got %s", config.Describe(v))
	}
	return s
}

func (p *parser) table(v any, path, where string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		p.errorf(path, path, "must be a table (%s), got %s", where, config.Describe(v))
	}
	return m, ok
}

// tables returns the tables of an array of tables ([[zip]], [[case]]).
func (p *parser) tables(v any, path string) []map[string]any {
	list, ok := v.([]map[string]any)
	if !ok {
		p.errorf(path, path, "must be written as [[%s]] tables, got %s", path, config.Describe(v))
	}
	return list
}

func (p *parser) seeds(v any) []int64 {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		p.errorf("seeds", "seeds", "must be a non-empty list of integers, got %s", config.Describe(v))
		return nil
	}
	var seeds []int64
	for i, x := range list {
		path := "seeds." + strconv.Itoa(i)
		n, ok := x.(int64)
		switch {
		case !ok:
			p.errorf(path, "seeds", "must be integers, got %s", config.Describe(x))
		case slices.Contains(seeds, n):
			p.errorf(path, "seeds", "seed %d is listed twice", n)
		default:
			seeds = append(seeds, n)
		}
	}
	return seeds
}

func (p *parser) random(v any) *random {
	m, ok := p.table(v, "random", "[random]")
	if !ok {
		return nil
	}
	r := &random{}
	for _, k := range sortedKeys(m) {
		path := "random." + k
		x, isInt := m[k].(int64)
		switch {
		case k != "n" && k != "seed":
			p.errorf(path, path, "unknown key ([random] has n and seed)")
		case !isInt:
			p.errorf(path, path, "must be an integer, got %s", config.Describe(m[k]))
		case k == "n" && x < 1:
			p.errorf(path, path, "must be >= 1, got %d", x)
		case k == "n":
			r.n = int(min(x, MaxRuns))
		default:
			r.seed = uint64(x)
		}
	}
	if _, ok := m["n"]; !ok {
		p.errorf("random", "random.n", "missing (required)")
	}
	if r.n == 0 {
		return nil
	}
	return r
}

// flatten turns a table of config keys, written quoted ("train.lr") or dotted (train.lr), into
// dotted keys; a key written both ways is reported.
func (p *parser) flatten(m map[string]any, path, where string) map[string]any {
	out := map[string]any{}
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for _, k := range sortedKeys(m) {
			key := prefix + k
			if sub, ok := m[k].(map[string]any); ok {
				walk(sub, key+".")
				continue
			}
			if _, dup := out[key]; dup {
				line := 0
				if lines := p.pos[path+"."+key]; len(lines) > 0 {
					line = lines[len(lines)-1]
				}
				p.errs = append(p.errs, &config.FieldError{File: p.file, Line: line, Field: key,
					Msg: fmt.Sprintf("written twice in %s", where)})
				continue
			}
			out[key] = m[k]
		}
	}
	walk(m, "")
	return out
}

// checkKey reports whether key, met inside a table, is a config key, reporting it if not.
func (p *parser) checkKey(key, path string) bool {
	if slices.Contains(topKeys, key) && !isConfigKey(key) {
		p.errorf(path, key, "is a top-level key: write it before the first [table] (TOML puts the keys after a header into that table)")
		return false
	}
	return true
}

// checkValue reports whether v may be assigned to key, reporting the problem if not.
func (p *parser) checkValue(key string, v any, path string) bool {
	var c config.Config
	var fe *config.FieldError
	if err := c.SetValue(key, v); errors.As(err, &fe) {
		p.errs = append(p.errs, &config.FieldError{File: p.file, Line: p.pos.Line(path), Field: fe.Field, Msg: fe.Msg})
		return false
	}
	return true
}

// overrides reads a table of key = value overrides ([set], [[case]], [scale.S]).
func (p *parser) overrides(v any, path, where string) []override {
	m, ok := p.table(v, path, where)
	if !ok {
		return nil
	}
	flat := p.flatten(m, path, where)
	var out []override
	for _, k := range sortedKeys(flat) {
		kp := path + "." + k
		if !p.checkKey(k, kp) {
			continue
		}
		if _, isList := flat[k].([]any); isList {
			p.errorf(kp, k, "one value per key in %s; lists go in [grid] or [[zip]]", where)
			continue
		}
		if p.checkValue(k, flat[k], kp) {
			out = append(out, override{key: k, value: flat[k], line: p.pos.Line(kp)})
		}
	}
	sortByLine(out, func(o override) int { return o.line })
	return out
}

// axes reads a table of key = [values] axes ([grid] or one [[zip]]).
func (p *parser) axes(m map[string]any, path, where string) []axis {
	flat := p.flatten(m, path, where)
	var out []axis
	for _, k := range sortedKeys(flat) {
		kp := path + "." + k
		if !p.checkKey(k, kp) {
			continue
		}
		list, ok := flat[k].([]any)
		if !ok {
			p.errorf(kp, k, "must be a list of values in %s, got %s (put single values in [set])", where, config.Describe(flat[k]))
			continue
		}
		if len(list) == 0 {
			p.errorf(kp, k, "empty list in %s: an axis needs at least one value", where)
			continue
		}
		a := axis{key: k, line: p.pos.Line(kp), where: where}
		seen := map[string]bool{}
		for i, v := range list {
			vp := kp + "." + strconv.Itoa(i)
			if !p.checkValue(k, v, vp) {
				continue // the axis keeps its good values, so they are still checked
			}
			f := formatRaw(k, v)
			if seen[f] {
				p.errorf(vp, k, "value %s is listed twice", f)
				continue
			}
			seen[f] = true
			a.values = append(a.values, v)
			a.lines = append(a.lines, p.pos.Line(vp))
		}
		if len(a.values) > 0 {
			out = append(out, a)
		}
	}
	sortByLine(out, func(a axis) int { return a.line })
	return out
}

// zip reads one [[zip]] table: its lists must have equal lengths.
func (p *parser) zip(m map[string]any, path string) []axis {
	if len(m) == 0 {
		p.errorf(path, "zip", "empty [[zip]] table")
		return nil
	}
	z := p.axes(m, path, "[[zip]]")
	for _, a := range z[min(1, len(z)):] {
		if len(a.values) != len(z[0].values) {
			p.errorf(path, "zip", "lists must have equal lengths: %s has %d values, %s has %d",
				z[0].key, len(z[0].values), a.key, len(a.values))
			return nil
		}
	}
	return z
}

// crossCheck reports keys varied twice, set and varied, or setting seed beside seeds.
func (p *parser) crossCheck(s *Sweep) {
	varied := map[string]axis{}
	for _, a := range s.grid {
		varied[a.key] = a
	}
	// A key varied again in a [[zip]] is reported and dropped, so the rest is still checked.
	var zips [][]axis
	for _, z := range s.zips {
		z = slices.DeleteFunc(z, func(a axis) bool {
			prev, dup := varied[a.key]
			if dup {
				p.errs = append(p.errs, &config.FieldError{File: p.file, Line: a.line, Field: a.key,
					Msg: fmt.Sprintf("varied twice (also in %s at line %d)", prev.where, prev.line)})
			} else {
				varied[a.key] = a
			}
			return dup
		})
		if len(z) > 0 {
			zips = append(zips, z)
		}
	}
	s.zips = zips
	for _, name := range sortedKeys(s.scaleGrids) {
		s.scaleGrids[name] = slices.DeleteFunc(s.scaleGrids[name], func(a axis) bool {
			if g, ok := varied[a.key]; !ok || g.where != "[grid]" {
				p.errs = append(p.errs, &config.FieldError{File: p.file, Line: a.line, Field: a.key,
					Msg: fmt.Sprintf("not an axis of [grid]; %s gives new values to [grid]'s axes at this scale, it cannot add one", a.where)})
				return true
			}
			return false
		})
	}
	for _, o := range s.set {
		if a, ok := varied[o.key]; ok {
			p.errs = append(p.errs, &config.FieldError{File: p.file, Line: o.line, Field: o.key,
				Msg: fmt.Sprintf("set in [set] and varied in %s at line %d; remove one", a.where, a.line)})
		}
	}
	if s.seeds == nil {
		return
	}
	report := func(line int, where string) {
		p.errs = append(p.errs, &config.FieldError{File: p.file, Line: line, Field: "seed",
			Msg: fmt.Sprintf("set in %s, but the top-level seeds list already sets it", where)})
	}
	if a, ok := varied["seed"]; ok {
		report(a.line, a.where)
	}
	lists := map[string][]override{"[set]": s.set}
	for i, c := range s.cases {
		lists[fmt.Sprintf("[[case]] %d", i+1)] = c
	}
	for name, sc := range s.scales {
		lists["[scale."+name+"]"] = sc
	}
	for where, os := range lists {
		for _, o := range os {
			if o.key == "seed" {
				report(o.line, where)
			}
		}
	}
}

// axes returns the grid axes followed by every zip's axes.
func (s *Sweep) axes() []axis {
	all := slices.Clone(s.grid)
	for _, z := range s.zips {
		all = append(all, z...)
	}
	return all
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sortByLine orders items by their line in the file (stable, so equal lines keep key order).
func sortByLine[T any](items []T, line func(T) int) {
	slices.SortStableFunc(items, func(a, b T) int { return line(a) - line(b) })
}

// requires reads `requires = ["key", …]`: config keys that must come from --set.
func (p *parser) requires(v any) []string {
	list, ok := v.([]any)
	if !ok {
		p.errorf("requires", "requires", "must be a list of config keys, got %s", config.Describe(v))
		return nil
	}
	var keys []string
	for _, item := range list {
		k, ok := item.(string)
		if !ok {
			p.errorf("requires", "requires", "must be a list of config keys, got an element %s", config.Describe(item))
			continue
		}
		if !isConfigKey(k) {
			p.errorf("requires", "requires", "unknown config key %q%s", k, config.Suggest(k))
			continue
		}
		keys = append(keys, k)
	}
	return keys
}
