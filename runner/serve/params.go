package serve

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// Limits on a generation's parameters. A request outside them is a 400.
const (
	maxImages   = 16
	maxGuidance = 20
	maxSeed     = 1<<53 - 1 // the largest integer a browser's Number holds exactly
	maxQuery    = 2048      // bytes of a query string
	// frameTarget is about how many frames a generation streams when "every" is not given.
	frameTarget = 25
)

// maxAutoGuidance bounds the autoguidance weight ag, as it bounds config's sample.autoguidance.
const maxAutoGuidance = config.MaxAutoGuidance

// Params are one generation's settings, exactly as the URL's query string encodes them: the
// same Params give the same images, so a URL is a shareable, reproducible result.
type Params struct {
	Run      string  // the run's full hash, from the store's index
	Class    int     // class of every image; -1 = unconditional
	Seed     int64   // 0..maxSeed
	Sampler  string  // one of config.Samplers
	Steps    int     // 1..T
	Guidance float64 // classifier-free guidance w, 0..maxGuidance
	// AutoGuidance is the autoguidance weight (ag) by the run's guide (runEntry.Guide),
	// 0..maxAutoGuidance; 0 = off, and always 0 for a run without a guide.
	AutoGuidance float64
	N            int // images, 1..maxImages
	Every        int // a frame every this many steps, 1..Steps
}

// Query encodes p in a fixed key order (a canonical URL): run, class, seed, sampler, steps,
// w, ag, n, every.
func (p Params) Query() string {
	class := "none"
	if p.Class >= 0 {
		class = strconv.Itoa(p.Class)
	}
	// url.Values.Encode sorts its keys; the order here is the form's, easier to read.
	parts := []string{
		"run=" + url.QueryEscape(p.Run),
		"class=" + class,
		"seed=" + strconv.FormatInt(p.Seed, 10),
		"sampler=" + url.QueryEscape(p.Sampler),
		"steps=" + strconv.Itoa(p.Steps),
		"w=" + strconv.FormatFloat(p.Guidance, 'g', -1, 64),
		"ag=" + strconv.FormatFloat(p.AutoGuidance, 'g', -1, 64),
		"n=" + strconv.Itoa(p.N),
		"every=" + strconv.Itoa(p.Every),
	}
	return strings.Join(parts, "&")
}

// childArgs are the flags of the generation child (runner _generate) for p. --autoguidance is
// always given, so the child never falls back on the run's own weight: p says what it draws.
func (p Params) childArgs() []string {
	return []string{
		"--run", p.Run,
		"--class", strconv.Itoa(p.Class),
		"--seed", strconv.FormatInt(p.Seed, 10),
		"--sampler", p.Sampler,
		"--steps", strconv.Itoa(p.Steps),
		"--guidance", strconv.FormatFloat(p.Guidance, 'g', -1, 64),
		"--autoguidance", strconv.FormatFloat(p.AutoGuidance, 'g', -1, 64),
		"--n", strconv.Itoa(p.N),
		"--every", strconv.Itoa(p.Every),
	}
}

// badRequest is an error a client made: the server answers 400 with its message.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// isBadRequest reports whether err is the client's mistake.
func isBadRequest(err error) bool { return errors.As(err, new(badRequest)) }

// paramKeys are the query keys of a generation; suffix is "" or "2" (the right side of a
// comparison). Other keys ("go") are the page's, not the generation's.
var paramKeys = []string{"run", "class", "seed", "sampler", "steps", "w", "ag", "n", "every"}

// parseParams reads a generation's settings from q (keys with the given suffix), with the
// run's own settings as defaults for those not given. The run must be generatable.
// Every error is a badRequest, except a run the index does not know, which wraps errNotFound.
func parseParams(q url.Values, suffix string, idx *index) (Params, error) {
	get := func(k string) (string, bool) {
		vs, ok := q[k+suffix]
		if !ok {
			return "", false
		}
		if len(vs) != 1 {
			return "", true
		}
		return vs[0], true
	}
	var p Params
	runArg, _ := get("run")
	r, err := idx.run(runArg)
	if err != nil {
		return p, err
	}
	if !r.Generatable {
		return p, badf("run %s cannot generate: %s", r.Short, r.whyNot)
	}
	cfg := r.cfg
	p.Run = r.Hash
	T := cfg.Diffusion.Timesteps

	p.Class = -1
	if v, ok := get("class"); ok && v != "" && v != "none" {
		c, err := strconv.Atoi(v)
		switch {
		case len(r.Classes) == 0:
			return p, badf("class: run %s is unconditional; leave class out (or class=none)", r.Short)
		case err != nil || c < 0 || c >= len(r.Classes):
			return p, badf("class: want none or 0..%d, got %q", len(r.Classes)-1, v)
		}
		p.Class = c
	}
	if p.Seed, err = intParam(get, "seed", 0, 0, maxSeed); err != nil {
		return p, err
	}
	p.Sampler = cfg.Sample.Sampler
	if v, ok := get("sampler"); ok {
		if !slices.Contains(config.Samplers, v) {
			return p, badf("sampler: want one of %s, got %q", strings.Join(config.Samplers, ", "), v)
		}
		p.Sampler = v
	}
	defSteps := cfg.Sample.Steps
	if defSteps <= 0 {
		defSteps = T
	}
	steps, err := intParam(get, "steps", int64(defSteps), 1, int64(T))
	if err != nil {
		return p, err
	}
	p.Steps = int(steps)
	p.Guidance = cfg.Sample.Guidance
	if v, ok := get("w"); ok {
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(w) || w < 0 || w > maxGuidance {
			return p, badf("w: want a guidance scale in [0, %d], got %q", maxGuidance, v)
		}
		if w != 0 && len(r.Classes) == 0 {
			return p, badf("w: run %s is unconditional, so guidance must be 0, got %q", r.Short, v)
		}
		p.Guidance = w
	}
	// Autoguidance: the run's own weight by default, when its guide is there to use.
	if r.Guide != "" {
		p.AutoGuidance = cfg.Sample.AutoGuidance
	}
	if v, ok := get("ag"); ok {
		ag, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(ag) || ag < 0 || ag > maxAutoGuidance {
			return p, badf("ag: want an autoguidance weight in [0, %d], got %q", maxAutoGuidance, v)
		}
		if ag != 0 && r.Guide == "" {
			return p, badf("ag: run %s has no guide to autoguide with (%s), so ag must be 0, got %q", r.Short, r.NoGuide, v)
		}
		p.AutoGuidance = ag
	}
	n, err := intParam(get, "n", 4, 1, maxImages)
	if err != nil {
		return p, err
	}
	p.N = int(n)
	every, err := intParam(get, "every", int64(max(1, p.Steps/frameTarget)), 1, int64(p.Steps))
	if err != nil {
		return p, err
	}
	p.Every = int(every)
	return p, nil
}

// intParam reads an integer query value in [lo, hi], def when absent.
func intParam(get func(string) (string, bool), key string, def, lo, hi int64) (int64, error) {
	v, ok := get(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, badf("%s: want an integer in %d..%d, got %q", key, lo, hi, v)
	}
	return n, nil
}

// checkQuery rejects query strings that are too long, malformed, or hold keys a page does not
// know (allowed are the keys of a generation with each suffix, and extra).
func checkQuery(raw string, suffixes []string, extra ...string) (url.Values, error) {
	if len(raw) > maxQuery {
		return nil, badf("query string of %d bytes; at most %d", len(raw), maxQuery)
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badf("malformed query string: %v", err)
	}
	allowed := map[string]bool{}
	for _, s := range suffixes {
		for _, k := range paramKeys {
			allowed[k+s] = true
		}
	}
	for _, k := range extra {
		allowed[k] = true
	}
	for k, vs := range q {
		if !allowed[k] {
			return nil, badf("unknown parameter %q", k)
		}
		if len(vs) != 1 {
			return nil, badf("parameter %q given %d times", k, len(vs))
		}
	}
	return q, nil
}
