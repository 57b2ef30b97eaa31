package reports

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// seedKey is the varied key a sweep's `seeds` list sets (runner/sweep puts it last).
const seedKey = "seed"

// setting is one configuration of a sweep: the runs that differ only in their seed, or the
// one run when the sweep has no seeds. The table shows one row per setting and the verdict
// compares settings, so that seed-to-seed noise is never mistaken for a difference.
type setting struct {
	Label  string // the varied values except the seed: "train.lr=0.0002"; the run's short hash when nothing varies; see shortenLabels
	Values []kv   // the same, one pair per key
	Sweep  string // the sweep it belongs to
	Role   string // "A" or "B" on a compare page, "" on a sweep page
	Color  string // its colour in every chart, as #rrggbb
	color  color.Color
	Runs   []*runView // in seed order
	Seeded bool       // the sweep varies the seed, so the row folds its runs below it
	short  bool       // Label names only the values that differ from the common ones (shortenLabels)
}

// done returns the setting's finished runs.
func (s *setting) done() []*runView {
	var out []*runView
	for _, r := range s.Runs {
		if r.Status.State == store.Done {
			out = append(out, r)
		}
	}
	return out
}

// states counts the setting's runs by state: "3 done" or "2 done, 1 failed".
func (s *setting) states() string {
	counts := map[string]int{}
	for _, r := range s.Runs {
		counts[string(r.Status.State)]++
	}
	var parts []string
	for _, st := range stateOrder {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	for _, st := range sortedKeys(counts) {
		if !slices.Contains(stateOrder, st) {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return strings.Join(parts, ", ")
}

// groupSettings groups runs (sorted by loadRuns) into settings by their varied values other
// than the seed, keeping the order of first appearance, and gives each setting and its runs
// the setting's colour.
func groupSettings(sweep string, varied []string, runs []*runView) []*setting {
	seeded := slices.Contains(varied, seedKey)
	var out []*setting
	index := map[string]*setting{}
	for _, r := range runs {
		var values []kv
		var label []string
		for _, k := range varied {
			if k == seedKey {
				continue
			}
			values = append(values, kv{k, r.varied[k]})
			label = append(label, k+"="+r.varied[k])
		}
		key := strings.Join(label, ", ")
		if key == "" && !seeded {
			key = r.Short // nothing varies: each run is its own setting
		}
		s, ok := index[key]
		if !ok {
			s = &setting{Label: key, Values: values, Sweep: sweep, Seeded: seeded}
			if s.Label == "" {
				s.Label = "all seeds"
			}
			index[key] = s
			out = append(out, s)
		}
		s.Runs = append(s.Runs, r)
	}
	shortenLabels(out)
	paint(out)
	return out
}

// shortLabelKeys is the number of varied keys from which a setting's label names only the
// values that differ from the most common ones. A sweep of [[case]]s that each change one or
// two keys then reads as what each case changes ("model.dropout=0.1", "a=1 + b=2"), not as
// nine keys' values; the table still shows every key.
const shortLabelKeys = 4

// commonLabel is the short label of the setting that has the most common value of every key:
// in a sweep of cases, the baseline.
const commonLabel = "the common values"

// shortenLabels gives the settings, and their runs, short labels when they vary shortLabelKeys
// keys or more. Two settings never get the same label: they differ in some key, and a value
// that is not the most common one is named.
func shortenLabels(settings []*setting) {
	if len(settings) < 2 || len(settings[0].Values) < shortLabelKeys {
		return
	}
	common := make([]string, len(settings[0].Values))
	for i := range common {
		counts := map[string]int{}
		for _, s := range settings {
			v := s.Values[i].Value
			if counts[v]++; counts[v] > counts[common[i]] {
				common[i] = v // a tie keeps the value seen first
			}
		}
	}
	for _, s := range settings {
		var parts []string
		for i, v := range s.Values {
			if v.Value != common[i] {
				parts = append(parts, v.Key+"="+v.Value)
			}
		}
		s.Label, s.short = strings.Join(parts, " + "), true // "a + b": a case that changes two keys
		if s.Label == "" {
			s.Label = commonLabel
		}
		for _, r := range s.Runs { // grid captions and run pages say the same
			r.Label = s.Label
			if s.Seeded {
				r.Label += ", " + seedKey + "=" + r.varied[seedKey]
			}
		}
	}
}

// paint gives the i-th setting, and its runs, the i-th chart colour.
func paint(settings []*setting) {
	for i, s := range settings {
		s.color = runColor(i)
		s.Color = hexColor(s.color)
		for _, r := range s.Runs {
			r.Color = s.Color
		}
	}
}

func hexColor(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// measure is a number the table shows for each setting and the verdict may compare.
type measure struct {
	key, label string // label heads the table column
	name       string // the measure in the verdict's sentences
	group      string // column group: "training", "sampling" or "quality"
	better     better
	format     func(float64) string
	value      func(*runView) float64 // NaN when the run did not measure it
	// samples is the number of evaluation samples behind a share (recognizable %, class
	// accuracy), which gives one run's value a Wilson interval; nil when the measure is no
	// share of samples.
	samples func(*runView) int
	// plain measures (times, throughput) show the mean over seeds without a spread.
	plain bool
	// points measures are shown as percentages, so their spreads are percentage points.
	points bool
	// spread formats a spread when the value's format would show too many digits; nil means format.
	spread func(float64) string
	// title explains the column header.
	title string
	// single says why one run's value has no interval; used by the verdict.
	single string
	// interval is one run's bootstrap interval of a measure that is no share (FD), with the
	// bootstrap's replicates; ok is false when the run recorded none. nil for other measures.
	interval func(*runView) (lo, hi float64, replicates []float64, ok bool)
}

// share reports whether the measure is a share of samples.
func (m measure) share() bool { return m.samples != nil }

// spreadText formats a spread (an interval's half-width or an sd) in the measure's unit:
// percentage points for measures shown as percentages, the value's own format otherwise.
func (m measure) spreadText(d float64) string {
	if m.points {
		return strconv.FormatFloat(d*100, 'f', 1, 64)
	}
	if m.spread != nil {
		return m.spread(d)
	}
	return m.format(d)
}

// diffText formats the size of a difference between two values: "0.8 points" for percentages.
func (m measure) diffText(d float64) string {
	d = math.Abs(d)
	if m.points {
		return strconv.FormatFloat(d*100, 'f', 1, 64) + " points"
	}
	return m.format(d)
}

// metricValue reads one of the summary's quality metrics.
func metricValue(get func(store.Metrics) *float64) func(*runView) float64 {
	return func(r *runView) float64 {
		if r.Summary == nil {
			return math.NaN()
		}
		if p := get(r.Summary.Metrics); p != nil {
			return *p
		}
		return math.NaN()
	}
}

const noSeedSpread = "one run per setting, so there is no spread across seeds to test it against"

// measures are the table's numeric columns, in order. The verdict judges verdictMeasures.
var measures = []measure{
	{key: "final_loss", label: "final loss", name: "final loss", group: "training", better: lowerBetter, format: fmtSig(3), spread: fmtSig(2),
		title: "mean loss of the last epoch",
		value: summaryValue(func(s *store.Summary) float64 { return s.FinalLoss }), single: noSeedSpread},
	{key: "train_seconds", label: "time", title: "training time", group: "training", better: lowerBetter, format: fmtDuration, plain: true,
		value: summaryValue(func(s *store.Summary) float64 { return s.TrainSeconds })},
	{key: "images_per_sec", label: "img/s", title: "training images per second", group: "training", better: higherBetter, format: fmtFixed(0), plain: true,
		value: summaryValue(func(s *store.Summary) float64 { return s.ImagesPerSec })},
	{key: "sample_seconds_per_64", label: "s/64", title: "seconds to sample 64 images", group: "sampling", better: lowerBetter, format: fmtFixed(1), plain: true,
		value: summaryValue(func(s *store.Summary) float64 { return s.SampleSecondsPer64 })},
	{key: "fd", label: "FD", name: "FD", title: "Fréchet distance to the test split in the classifier's features", group: "quality", better: lowerBetter, format: fmtFixed(2),
		value:    metricValue(func(m store.Metrics) *float64 { return m.FD }),
		interval: fdInterval,
		single:   "one run per setting, and the runs were evaluated before FD's bootstrap was recorded, so they have no interval"},
	{key: "recognizable", label: "recognizable", title: "share of samples the classifier assigns a class with at least 90% confidence", name: "recognizable %", group: "quality", better: higherBetter, format: fmtPercent1, points: true,
		value:   metricValue(func(m store.Metrics) *float64 { return m.Recognizable }),
		samples: func(r *runView) int { return r.EvalN }, single: "the number of evaluation samples is unknown"},
	{key: "class_accuracy", label: "class acc.", title: "share of samples classified as the class asked for", name: "class accuracy", group: "quality", better: higherBetter, format: fmtPercent1, points: true,
		value:   metricValue(func(m store.Metrics) *float64 { return m.ClassAccuracy }),
		samples: func(r *runView) int { return r.ClassN }, single: "the number of evaluation samples is unknown"},
	{key: "class_entropy", label: "entropy", title: "entropy of the predicted classes in bits; log2(10) = 3.32 when all are equally frequent", group: "quality", better: higherBetter, format: fmtFixed(2),
		value: metricValue(func(m store.Metrics) *float64 { return m.ClassEntropy })},
	{key: "min_class_share", label: "min class", title: "share of the rarest predicted class; 10% at best", group: "quality", better: higherBetter, format: fmtPercent1, points: true,
		value: metricValue(func(m store.Metrics) *float64 { return m.MinClassShare })},
	{key: "diversity", label: "diversity", title: "mean within-class feature distance of the samples", group: "quality", better: higherBetter, format: fmtFixed(2),
		value: metricValue(func(m store.Metrics) *float64 { return m.Diversity })},
}

// verdictMeasures are the measures the verdict judges, the first present one heading it.
var verdictMeasures = []string{"recognizable", "class_accuracy", "fd", "final_loss"}

// measureByKeyOK is the measure named key, or the zero measure when there is none.
func measureByKeyOK(key string) measure {
	for _, m := range measures {
		if m.key == key {
			return m
		}
	}
	return measure{}
}

func measureByKey(key string) measure {
	for _, m := range measures {
		if m.key == key {
			return m
		}
	}
	panic("reports: no measure " + key)
}

// measured reports whether some finished run of the settings has the measure.
func (m measure) measured(settings []*setting) bool {
	for _, s := range settings {
		for _, r := range s.done() {
			if v := m.value(r); !math.IsNaN(v) && !math.IsInf(v, 0) {
				return true
			}
		}
	}
	return false
}

// fdInterval is a run's 95% bootstrap interval of FD over its samples and the replicates
// behind it (summary.json's fd_lo, fd_hi and fd_bootstrap).
func fdInterval(r *runView) (lo, hi float64, replicates []float64, ok bool) {
	if r.Summary == nil {
		return 0, 0, nil, false
	}
	m := r.Summary.Metrics
	if m.FD == nil || m.FDLow == nil || m.FDHigh == nil {
		return 0, 0, nil, false
	}
	return *m.FDLow, *m.FDHigh, m.FDBootstrap, true
}

// estimate is a measure of one setting with its uncertainty.
type estimate struct {
	v      float64   // one run's value, or the mean over the seeds
	lo, hi float64   // 95% interval: Wilson for one run's share, the bootstrap's for one run's FD, m ± t·s/√k over seeds; NaN when none
	boot   []float64 // one run's bootstrap replicates (FD), for a bootstrapped difference; nil when none
	sd     float64   // sample sd over the seeds; NaN with one run
	k      int       // finished runs behind v; 0 means no estimate
	n      int       // evaluation samples per run behind a share (0 when unknown, mixed or no share)
	vals   []float64 // the per-run values
}

// estimateOf measures m over the finished runs among runs.
func estimateOf(m measure, runs []*runView) estimate {
	e := estimate{lo: math.NaN(), hi: math.NaN(), sd: math.NaN(), v: math.NaN()}
	ns := map[int]bool{}
	var last *runView
	for _, r := range runs {
		if r.Status.State != store.Done {
			continue
		}
		v := m.value(r)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		e.vals, last = append(e.vals, v), r
		if m.share() {
			ns[m.samples(r)] = true
		}
	}
	e.k = len(e.vals)
	if e.k == 0 {
		return e
	}
	if len(ns) == 1 {
		for n := range ns {
			e.n = n
		}
	}
	e.v, e.sd = meanSD(e.vals)
	switch {
	case e.k == 1 && m.share() && e.n > 0:
		e.lo, e.hi = wilson(e.v, e.n, z95) // eq. in wilson
	case e.k == 1 && m.interval != nil:
		if lo, hi, reps, ok := m.interval(last); ok {
			e.lo, e.hi, e.boot, e.n = lo, hi, reps, last.EvalN
		}
	case e.k >= 2:
		half := tQuantile95(e.k) * e.sd / math.Sqrt(float64(e.k)) // m ± t_{0.975,k−1}·s/√k
		e.lo, e.hi = e.v-half, e.v+half
	}
	return e
}

// hasInterval reports whether e carries an uncertainty the table can show.
func (e estimate) hasInterval() bool { return e.k >= 2 || !math.IsNaN(e.lo) }

// bar is what the table's "±" and the charts' error bars show: the Wilson interval of one
// run's share, or one sd either side of the mean over seeds. ok is false when there is none.
func (e estimate) bar() (lo, hi float64, ok bool) {
	switch {
	case e.k >= 2:
		return e.v - e.sd, e.v + e.sd, true
	case e.k == 1 && !math.IsNaN(e.lo):
		return e.lo, e.hi, true
	}
	return 0, 0, false
}

// text shows the estimate as the table does: the value, and the "±" part separately.
func (e estimate) text(m measure) (value, spread string) {
	if e.k == 0 {
		return "", ""
	}
	value = m.format(e.v)
	switch {
	case m.plain:
	case e.k >= 2:
		spread = "± " + m.spreadText(e.sd)
	case m.bootstrapped(e):
		// A bootstrap interval need not be symmetric: "289 [270, 310]", three digits each.
		value, spread = fmtSig(3)(e.v), "["+fmtSig(3)(e.lo)+", "+fmtSig(3)(e.hi)+"]"
	case !math.IsNaN(e.lo):
		spread = "± " + m.spreadText((e.hi-e.lo)/2)
	}
	return value, spread
}

// title is the tooltip of the estimate: how the "±" was computed, and the raw numbers.
func (e estimate) title(m measure) string {
	switch {
	case e.k == 0 || m.plain:
		return ""
	case e.k >= 2:
		vals := make([]string, len(e.vals))
		for i, v := range e.vals {
			vals[i] = m.format(v)
		}
		return fmt.Sprintf("mean ± sd over %d seeds (%s); 95%% interval of the mean %s to %s",
			e.k, strings.Join(vals, ", "), m.format(e.lo), m.format(e.hi))
	case m.bootstrapped(e):
		n := ""
		if e.n > 0 {
			n = fmt.Sprintf(" of n = %d samples", e.n)
		}
		return fmt.Sprintf("95%% bootstrap interval %s to %s (%d resamples%s)", m.format(e.lo), m.format(e.hi), len(e.boot), n)
	case !math.IsNaN(e.lo):
		return fmt.Sprintf("95%% Wilson interval %s to %s, n = %d samples", m.format(e.lo), m.format(e.hi), e.n)
	}
	return ""
}

// bootstrapped reports whether e is one run's value with a bootstrap interval of m.
func (m measure) bootstrapped(e estimate) bool {
	return e.k == 1 && m.interval != nil && !math.IsNaN(e.lo)
}

// fmtPercent1 shows a share as a percentage with one decimal: 0.304 → "30.4%".
func fmtPercent1(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

// fmtCount writes n with thousands separators: 51447 → "51,447".
func fmtCount(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// shareMeasure returns the measure named key when it is a share of samples.
func shareMeasure(key string) (measure, bool) {
	for _, m := range measures {
		if m.key == key && m.share() {
			return m, true
		}
	}
	return measure{}, false
}
