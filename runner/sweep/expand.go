package sweep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// Plan is a sweep expanded at one scale: the runs to do, in a deterministic order.
type Plan struct {
	Sweep      string // the sweep's name
	Scale      string // the scale it was expanded at
	Runs       []PlannedRun
	VariedKeys []string // the keys the sweep varies, in file order ("seed" last when seeds is set)
	Duplicates int      // runs dropped because an earlier run had the same hash
}

// PlannedRun is one run of a plan.
type PlannedRun struct {
	Config config.Config
	Hash   config.Hash
	Varied []KV // the value of each of Plan.VariedKeys in this run, in that order
}

// KV is one key and its value, formatted with config.FormatValue.
type KV struct {
	Key, Value string
}

// VariedMap returns r.Varied as a map, the form of the sweep manifest.
func (r PlannedRun) VariedMap() map[string]string {
	m := make(map[string]string, len(r.Varied))
	for _, kv := range r.Varied {
		m[kv.Key] = kv.Value
	}
	return m
}

// Label returns the varied values as "k=v k=v", for logs and titles.
func (r PlannedRun) Label() string {
	parts := make([]string, len(r.Varied))
	for i, kv := range r.Varied {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(parts, " ")
}

// Expand builds the runs of the sweep at scale ("" means DefaultScale) with the command-line
// overrides sets ("key=value", as for config.Config.Set). See the package documentation for
// the order in which layers apply and runs are combined. The error is a config.ErrorList.
func (s *Sweep) Expand(scale string, sets []string) (*Plan, error) {
	if scale == "" {
		scale = DefaultScale
	}
	var missing config.ErrorList
	for _, key := range s.Requires {
		given := false
		for _, set := range sets {
			if k, _, err := config.SplitSet(set); err == nil && k == key {
				given = true
			}
		}
		if !given {
			missing = append(missing, &config.FieldError{File: s.File, Field: key,
				Msg: fmt.Sprintf("this sweep needs it from the command line: --set %s=… (see the sweep file's comments)", key)})
		}
	}
	if err := missing.Err(); err != nil {
		return nil, err
	}
	plan, errs := s.expand(scale, sets)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return plan, nil
}

// loc is where a key's value came from.
type loc struct {
	file string
	line int
}

// point is one combination of axis values (or one case), before seeds.
type point struct {
	overrides []override
	where     string // how the point was made, for error messages
}

func (s *Sweep) expand(scale string, sets []string) (*Plan, config.ErrorList) {
	var errs config.ErrorList
	scaleSets, ok := s.scales[scale]
	if !ok && len(s.scales) > 0 {
		return nil, config.ErrorList{{File: "--scale", Field: scale,
			Msg: fmt.Sprintf("%s has no [scale.%s] (it has %s)", s.File, scale, strings.Join(s.Scales(), ", "))}}
	}

	// 1. The layers every run shares: base, [set], [scale.S], --set.
	c0 := s.base
	from := map[string]loc{}
	for _, k := range config.Keys() {
		from[k] = loc{s.Base, s.basePos.Line(k)}
	}
	for _, o := range slices.Concat(s.set, scaleSets) {
		_ = c0.SetValue(o.key, o.value) // checked by Load
		from[o.key] = loc{s.File, o.line}
	}
	varied := s.variedKeys()
	for _, arg := range sets {
		key, value, err := config.SplitSet(arg)
		if err == nil && slices.Contains(varied, key) {
			err = &config.FieldError{File: "--set", Field: key, Msg: "key is varied by the sweep " + s.Name}
		}
		if err == nil {
			err = c0.Set(key, value)
		}
		var fe *config.FieldError
		if errors.As(err, &fe) {
			errs = append(errs, fe)
		}
		from[key] = loc{"--set", 0}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// 2. Every point, validated, then deduplicated by hash.
	plan := &Plan{Sweep: s.Name, Scale: scale, VariedKeys: varied}
	pts := s.points(scale)
	var runs []PlannedRun
	seen := map[config.Hash]bool{}
	type located struct {
		fe   *config.FieldError
		pt   int
		mine bool // the point itself sets the field
	}
	var bad []located
	failing := map[string]int{} // "field: msg" -> number of points it occurs in
	for i, pt := range pts {
		c := c0
		here := map[string]loc{}
		for _, o := range pt.overrides {
			_ = c.SetValue(o.key, o.value)
			here[o.key] = loc{s.File, o.line}
		}
		if s.seeds != nil {
			c.Seed = s.seeds[0] // validity does not depend on the seed; seeds are applied below
		}
		var list config.ErrorList
		err := c.Validate()
		if err == nil {
			err = c.ResolveData() // a folder dataset's images are part of the run's name
		}
		if errors.As(err, &list) {
			for _, fe := range list {
				l, mine := here[fe.Field]
				if !mine {
					l = from[fe.Field]
				}
				bad = append(bad, located{&config.FieldError{File: l.file, Line: l.line, Field: fe.Field, Msg: fe.Msg}, i, mine})
				failing[fe.Error()]++
			}
			continue
		}
		h := c.Hash()
		if seen[h] {
			plan.Duplicates++
			continue
		}
		seen[h] = true
		runs = append(runs, PlannedRun{Config: c, Hash: h})
	}
	// An error of every point comes from the shared layers and is reported once; an error of
	// some points only says which run has it, unless the point's own value is at fault.
	for _, b := range bad {
		if failing[(&config.FieldError{Field: b.fe.Field, Msg: b.fe.Msg}).Error()] < len(pts) && !b.mine && pts[b.pt].where != "" {
			b.fe.Msg += " (in the run with " + pts[b.pt].where + ")"
		}
		errs = append(errs, b.fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// 3. Random subsample of the distinct configs, then 4. seeds.
	if r := s.random; r != nil && r.n < len(runs) {
		runs = sample(runs, r.n, r.seed)
	}
	if s.seeds != nil {
		seeded := make([]PlannedRun, 0, len(runs)*len(s.seeds))
		for _, run := range runs {
			for _, seed := range s.seeds {
				run.Config.Seed = seed
				run.Hash = run.Config.Hash()
				seeded = append(seeded, run)
			}
		}
		runs = seeded
	}
	for i := range runs {
		runs[i].Varied = make([]KV, len(varied))
		for j, k := range varied {
			v, _ := runs[i].Config.Get(k)
			runs[i].Varied[j] = KV{k, config.FormatValue(v)}
		}
	}
	plan.Runs = runs
	return plan, nil
}

// variedKeys returns the axis keys, then the case keys not already listed, then "seed".
func (s *Sweep) variedKeys() []string {
	var keys []string
	add := func(k string) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, a := range s.axes() {
		add(a.key)
	}
	for _, c := range s.cases {
		for _, o := range c {
			add(o.key)
		}
	}
	if s.seeds != nil {
		add("seed")
	}
	return keys
}

// dims returns the dimensions of the product at scale: each grid axis (with the values of
// [scale.S.grid] where it gives them), then each zip group.
func (s *Sweep) dims(scale string) [][]axis {
	var dims [][]axis
	for _, a := range s.grid {
		if i := slices.IndexFunc(s.scaleGrids[scale], func(b axis) bool { return b.key == a.key }); i >= 0 {
			a = s.scaleGrids[scale][i]
		}
		dims = append(dims, []axis{a})
	}
	return append(dims, s.zips...)
}

// size returns the number of runs before deduplication at the scale that has the most, or an
// error above MaxRuns.
func (s *Sweep) size() (int, error) {
	n := 0
	for _, sc := range append(s.Scales(), DefaultScale) {
		m, err := s.sizeAt(sc)
		if err != nil {
			return m, err
		}
		n = max(n, m)
	}
	return n, nil
}

// sizeAt is size at one scale.
func (s *Sweep) sizeAt(scale string) (int, error) {
	n := 0
	if dims := s.dims(scale); len(dims) > 0 {
		n = 1
		for _, d := range dims {
			n *= len(d[0].values)
			if n > MaxRuns {
				break
			}
		}
	} else if len(s.cases) == 0 {
		n = 1
	}
	n += len(s.cases)
	if len(s.seeds) > 0 && n <= MaxRuns {
		n *= len(s.seeds)
	}
	if n > MaxRuns {
		return n, fmt.Errorf("expands to more than %d runs; split the sweep or use [random]", MaxRuns)
	}
	return n, nil
}

// points returns the product of the dimensions at scale (the last varying fastest), then the
// cases.
func (s *Sweep) points(scale string) []point {
	var pts []point
	dims := s.dims(scale)
	switch {
	case len(dims) > 0:
		idx := make([]int, len(dims))
		for {
			var pt point
			var where []string
			for d, i := range idx {
				for _, a := range dims[d] {
					pt.overrides = append(pt.overrides, override{key: a.key, value: a.values[i], line: a.lines[i]})
					where = append(where, a.key+"="+formatRaw(a.key, a.values[i]))
				}
			}
			pt.where = strings.Join(where, " ")
			pts = append(pts, pt)
			d := len(dims) - 1
			for ; d >= 0; d-- {
				if idx[d]++; idx[d] < len(dims[d][0].values) {
					break
				}
				idx[d] = 0
			}
			if d < 0 {
				break
			}
		}
	case len(s.cases) == 0:
		pts = append(pts, point{})
	}
	for i, c := range s.cases {
		pts = append(pts, point{overrides: c, where: fmt.Sprintf("[[case]] %d", i+1)})
	}
	return pts
}

// formatRaw formats an axis value as the config would hold it (so 1 for a float key is "1").
func formatRaw(key string, v any) string {
	var c config.Config
	_ = c.SetValue(key, v)
	got, _ := c.Get(key)
	return config.FormatValue(got)
}

// sample keeps n of runs chosen with a PCG seeded by seed (a partial Fisher–Yates shuffle
// drawing Uint64 directly, so the choice does not depend on math/rand's helper algorithms),
// in their original order.
func sample(runs []PlannedRun, n int, seed uint64) []PlannedRun {
	rng := rand.NewPCG(seed, 0x646470_6d6c6162) // "ddpmlab"
	idx := make([]int, len(runs))
	for i := range idx {
		idx[i] = i
	}
	for i := range n {
		j := i + int(rng.Uint64()%uint64(len(idx)-i))
		idx[i], idx[j] = idx[j], idx[i]
	}
	chosen := idx[:n]
	slices.Sort(chosen)
	out := make([]PlannedRun, n)
	for i, k := range chosen {
		out[i] = runs[k]
	}
	return out
}

// validateScales expands the sweep at every scale (or once, if it has none) and returns the
// errors, each marked with the scales it occurs at unless it occurs at all of them.
func (s *Sweep) validateScales() config.ErrorList {
	scales := s.Scales()
	if len(scales) == 0 {
		scales = []string{DefaultScale}
	}
	type seen struct {
		fe     *config.FieldError
		scales []string
	}
	var order []string
	byText := map[string]*seen{}
	for _, sc := range scales {
		_, errs := s.expand(sc, nil)
		for _, fe := range errs {
			t := fe.Error()
			if byText[t] == nil {
				byText[t] = &seen{fe: fe}
				order = append(order, t)
			}
			byText[t].scales = append(byText[t].scales, sc)
		}
	}
	var out config.ErrorList
	for _, t := range order {
		e := byText[t]
		fe := *e.fe
		if len(s.scales) > 0 && len(e.scales) < len(scales) {
			fe.Msg += " (at --scale " + strings.Join(e.scales, ", ") + ")"
		}
		out = append(out, &fe)
	}
	return out
}
