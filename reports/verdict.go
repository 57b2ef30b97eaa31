package reports

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The verdict says, for each measure in verdictMeasures, whether one setting is ahead of the
// others by more than the noise of the measurement, and if not, what would settle it.
//
// Two settings are told apart by a two-sided test at 95%: the two-proportion z-test when each
// has one run and the measure is a share of n samples (the binomial noise of n samples), and
// Welch's t-test over seeds when both have at least two finished seeds (the noise of training
// and sampling together), and for FD of one run each the paired bootstrap of the difference
// (bootstrapDifference: beyond noise when its 95% interval excludes 0). Other pairs are not
// tested, and the verdict says why.

// comparison is the outcome of testing two estimates of one measure.
type comparison struct {
	ok     bool                 // a test applied
	method string               // "z", "t" or "boot"
	stat   float64              // z or t; the difference a − b for "boot"
	df     float64              // degrees of freedom of t
	lo, hi float64              // "boot": the 95% interval of the difference
	p      float64              // two-sided p-value
	why    string               // when !ok: why there is no test
	format func(float64) string // "boot": the measure's format, for the difference
}

// significant reports whether the difference is beyond noise at 95%.
func (c comparison) significant() bool { return c.ok && c.p < alpha }

// text is "z = 0.20, p = 0.84" or "Welch t = 3.1 on 3.9 df, p = 0.037"; the statistic's
// size only, since the finding says which way the difference goes.
func (c comparison) text() string {
	if c.method == "boot" {
		d, lo, hi := c.stat, c.lo, c.hi
		if d < 0 { // the size, as for z and t: the finding says which way
			d, lo, hi = -d, -hi, -lo
		}
		return fmt.Sprintf("bootstrapped difference %s [%s, %s], %s", c.format(d), c.format(lo), c.format(hi), pText(c.p))
	}
	if c.method == "t" {
		return fmt.Sprintf("Welch t = %s on %s df, %s", fmtSig(2)(math.Abs(c.stat)), fmtSig(2)(c.df), pText(c.p))
	}
	return fmt.Sprintf("z = %s, %s", strconv.FormatFloat(math.Abs(c.stat), 'f', 2, 64), pText(c.p))
}

func pText(p float64) string {
	if p < 0.001 {
		return "p < 0.001"
	}
	return "p = " + fmtSig(2)(p)
}

// compareEstimates tests a against b on measure m.
func compareEstimates(m measure, a, b estimate, single string) comparison {
	switch {
	case a.k >= 2 && b.k >= 2:
		t, df, p, ok := welch(a.v, a.sd, a.k, b.v, b.sd, b.k)
		if !ok {
			return comparison{why: "its values do not vary across seeds"}
		}
		return comparison{ok: true, method: "t", stat: t, df: df, p: p}
	case a.k == 1 && b.k == 1 && m.share() && a.n > 0 && b.n > 0:
		z, p := twoProportionZ(a.v, a.n, b.v, b.n)
		return comparison{ok: true, method: "z", stat: z, p: p}
	case a.k == 1 && b.k == 1 && m.interval != nil && len(a.boot) > 0 && len(b.boot) > 0:
		lo, hi, p, ok := bootstrapDifference(a.v, b.v, a.boot, b.boot)
		if !ok {
			return comparison{why: fmt.Sprintf("the two runs' bootstraps have %d and %d resamples", len(a.boot), len(b.boot))}
		}
		return comparison{ok: true, method: "boot", stat: a.v - b.v, lo: lo, hi: hi, p: p, format: fmtSig(2)}
	case a.k == 1 && b.k == 1:
		return comparison{why: single}
	}
	return comparison{why: "the settings have different numbers of finished seeds"}
}

// ranked is one setting's estimate in a measure's ranking.
type ranked struct {
	s *setting
	e estimate
}

// measureVerdict is the verdict on one measure.
type measureVerdict struct {
	Key      string
	Label    string
	Finding  string // who is ahead, with the numbers
	Settle   string // what would settle it; "" when one setting wins beyond noise or seeds would
	Headline string // the finding in one plain sentence, for the top of the page and the index
	Winner   *setting
	Leader   *setting // the best value, beyond noise or not
	Tested   bool     // the leader was tested against the others
	needSeed bool     // untested for want of seeds
}

// judge ranks the settings on measure m and tests the leader against each of the others.
// It returns false when fewer than two settings measured m.
func judge(m measure, settings []*setting) (measureVerdict, bool) {
	var rank []ranked
	for _, s := range settings {
		if e := estimateOf(m, s.Runs); e.k > 0 {
			rank = append(rank, ranked{s, e})
		}
	}
	if len(rank) < 2 {
		return measureVerdict{}, false
	}
	slices.SortStableFunc(rank, func(a, b ranked) int {
		if m.better == lowerBetter {
			return compareFloat(a.e.v, b.e.v)
		}
		return compareFloat(b.e.v, a.e.v)
	})
	v := measureVerdict{Key: m.key, Label: m.name, Leader: rank[0].s}
	best, second := rank[0], rank[1]
	tests := make([]comparison, len(rank))
	var untested string
	for i := 1; i < len(rank); i++ {
		tests[i] = compareEstimates(m, best.e, rank[i].e, m.single)
		if !tests[i].ok && untested == "" {
			untested = tests[i].why
		}
	}
	word := "highest"
	if m.better == lowerBetter {
		word = "lowest"
	}
	if untested != "" {
		v.Finding = fmt.Sprintf("%s is %s (%s; next %s, %s), not tested against noise: %s.",
			best.s.Label, word, estText(m, best.e), second.s.Label, estText(m, second.e), untested)
		v.Headline = fmt.Sprintf("%s is %s on %s (%s), not tested against noise.", best.s.Label, word, m.name, estText(m, best.e))
		v.needSeed = best.e.k < 2 || second.e.k < 2
		return v, true
	}
	v.Tested = true
	var level, behind []ranked
	var levelTests, behindTests []comparison
	for i := 1; i < len(rank); i++ {
		if tests[i].significant() {
			behind, behindTests = append(behind, rank[i]), append(behindTests, tests[i])
		} else {
			level, levelTests = append(level, rank[i]), append(levelTests, tests[i])
		}
	}
	switch {
	case len(level) == 0:
		v.Winner = best.s
		v.Finding = fmt.Sprintf("%s wins beyond noise: %s against %s for the runner-up %s (%s).",
			best.s.Label, estText(m, best.e), estText(m, second.e), second.s.Label, tests[1].text())
		v.Headline = fmt.Sprintf("%s wins on %s beyond noise: %s against %s for %s (%s).",
			best.s.Label, m.name, estText(m, best.e), estText(m, second.e), second.s.Label, pText(tests[1].p))
		return v, true
	case len(behind) == 0:
		var all []string
		for _, r := range rank {
			all = append(all, r.s.Label+" "+estText(m, r.e))
		}
		v.Finding = fmt.Sprintf("No setting is ahead beyond noise: %s (%s against %s: %s).",
			strings.Join(all, ", "), best.s.Label, second.s.Label, tests[1].text())
		others := "the other setting is"
		if len(level) > 1 {
			others = "every other setting is"
		}
		v.Headline = fmt.Sprintf("No winner beyond noise on %s: %s leads with %s%s, but %s within noise of it.",
			m.name, best.s.Label, estText(m, best.e), nText(best.e), others)
	default:
		var lv, bh []string
		for i, r := range level {
			lv = append(lv, fmt.Sprintf("%s %s (%s)", r.s.Label, estText(m, r.e), pText(levelTests[i].p)))
		}
		for i, r := range behind {
			bh = append(bh, fmt.Sprintf("%s %s (%s)", r.s.Label, estText(m, r.e), pText(behindTests[i].p)))
		}
		v.Finding = fmt.Sprintf("No single winner: %s leads with %s, but %s within noise of it; %s behind it beyond noise.",
			best.s.Label, estText(m, best.e), joinVerb(lv, "is", "are"), joinVerb(bh, "is", "are"))
		v.Headline = fmt.Sprintf("No single winner on %s: %s leads, but %s within noise of it.",
			m.name, best.s.Label, joinVerb(labels(level), "is", "are"))
	}
	v.Settle = settle(m, best, second)
	return v, true
}

// settle says how much more data would tell the leader from the runner-up at 95% with 80%
// power, in evaluation samples (one run each, shares) or in seeds.
func settle(m measure, best, second ranked) string {
	d := best.e.v - second.e.v
	if d == 0 {
		return fmt.Sprintf("%s and %s measured the same, so no amount of data separates them.", best.s.Label, second.s.Label)
	}
	if best.e.k >= 2 && second.e.k >= 2 {
		k := seedsToResolve(best.e.sd, second.e.sd, d)
		return fmt.Sprintf("To tell %s from %s (a difference of %s, sd %s and %s across seeds) at 95%% with 80%% power "+
			"takes about %s seeds per setting (now %d and %d).",
			best.s.Label, second.s.Label, m.diffText(d), m.spreadText(best.e.sd), m.spreadText(second.e.sd),
			fmtCount(k), best.e.k, second.e.k)
	}
	if m.interval != nil && m.bootstrapped(best.e) && m.bootstrapped(second.e) {
		return settleBootstrap(m, best, second, d)
	}
	n := samplesToResolve(best.e.v, second.e.v)
	now := min(best.e.n, second.e.n)
	return fmt.Sprintf("To tell %s from %s (a difference of %s) at 95%% with 80%% power takes about n = %s evaluation samples per run "+
		"(now %s); at n = %s only differences above about %s show.",
		best.s.Label, second.s.Label, m.diffText(d), fmtCount(n), fmtCount(now), fmtCount(now),
		m.diffText(resolvableDifference(best.e.v, second.e.v, now)))
}

// settleBootstrap is settle for one run each with bootstrap intervals (FD): the noise of the
// difference is taken from the two intervals, se ≈ √(h_a² + h_b²)/1.96 with h the half-widths
// (independent runs; pairing only narrows it), and shrinks as 1/√n, so n samples resolve a
// difference d at 95% with 80% power when (z_{1−α/2} + z_{1−β})·se(n) ≤ |d|:
//
//	n ≈ n_now · ((z_{1−α/2} + z_{1−β}) · se / d)².
func settleBootstrap(m measure, best, second ranked, d float64) string {
	ha, hb := (best.e.hi-best.e.lo)/2, (second.e.hi-second.e.lo)/2
	se := math.Sqrt(ha*ha+hb*hb) / z95
	now := min(best.e.n, second.e.n)
	if now == 0 {
		return fmt.Sprintf("To tell %s from %s (a difference of %s) takes more evaluation samples per run; "+
			"the number behind these runs is unknown.", best.s.Label, second.s.Label, m.diffText(d))
	}
	k := (z95 + zPower) * se / d
	n := int(math.Ceil(float64(now) * k * k))
	return fmt.Sprintf("To tell %s from %s (a difference of %s) at 95%% with 80%% power takes about n = %s evaluation samples per run "+
		"(now %s, where FD's noise is about ± %s); at n = %s only differences above about %s show.",
		best.s.Label, second.s.Label, fmtSig(2)(math.Abs(d)), fmtCount(n), fmtCount(now), fmtSig(2)(z95*se), fmtCount(now),
		fmtSig(2)((z95+zPower)*se))
}

// estText is "30.4% ± 5.7" (the table's form).
func estText(m measure, e estimate) string {
	v, s := e.text(m)
	if s == "" {
		return v
	}
	return v + " " + s
}

func nText(e estimate) string {
	switch {
	case e.k >= 2:
		return fmt.Sprintf(" (mean ± sd over %d seeds)", e.k)
	case e.n > 0:
		return fmt.Sprintf(" (n = %s)", fmtCount(e.n))
	}
	return ""
}

func labels(rs []ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.s.Label
	}
	return out
}

// joinAnd joins items as "a", "a and b" or "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// joinVerb joins items as "a", "a and b" or "a, b and c" followed by the singular or plural verb.
func joinVerb(items []string, one, many string) string {
	switch len(items) {
	case 0:
		return "none " + one
	case 1:
		return items[0] + " " + one
	}
	return joinAnd(items) + " " + many
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verdict is the whole verdict of a set of settings.
type verdict struct {
	Headline string           // one line: the first measure's headline
	Measures []measureVerdict // one per judged measure, in verdictMeasures order
	// Seeds says that seeds would give the untested measures a test, naming them; "" when
	// every measure was tested or seeds would not help.
	Seeds string
}

// judgeAll judges every measure of verdictMeasures that at least two settings measured.
func judgeAll(settings []*setting) verdict {
	var v verdict
	for _, key := range verdictMeasures {
		if mv, ok := judge(measureByKey(key), settings); ok {
			v.Measures = append(v.Measures, mv)
		}
	}
	var untested []string
	for _, m := range v.Measures {
		if m.needSeed {
			untested = append(untested, m.Label)
		}
	}
	if len(untested) > 0 {
		them := "them"
		if len(untested) == 1 {
			them = "it"
		}
		v.Seeds = fmt.Sprintf("Seeds would settle %s: with seeds = [1, 2, 3] in the sweep file each setting runs three times, "+
			"and the spread across seeds gives %s a test.", joinAnd(untested), them)
	}
	switch {
	case len(v.Measures) > 0:
		v.Headline = v.Measures[0].Headline
	case len(settings) == 1 && len(settings[0].done()) > 0:
		v.Headline = "One setting only: there is nothing to compare it with."
	case slices.ContainsFunc(settings, func(s *setting) bool { return len(s.done()) > 0 }):
		v.Headline = "Only one setting finished, so there is no winner."
	default:
		v.Headline = "No run finished, so there is no winner."
	}
	return v
}

// winner is the setting that wins measure key beyond noise, or nil.
func (v verdict) winner(key string) *setting {
	for _, m := range v.Measures {
		if m.Key == key {
			return m.Winner
		}
	}
	return nil
}

// leader is the setting with the best value of measure key, or nil when it was not judged,
// and whether it was tested against the others.
func (v verdict) leader(key string) (*setting, bool) {
	for _, m := range v.Measures {
		if m.Key == key {
			return m.Leader, m.Tested
		}
	}
	return nil, false
}

// upperFirst capitalises the first letter of s.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
