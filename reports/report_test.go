package reports

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fixedNow is the clock of every test build, so pages are byte-for-byte stable.
var fixedNow = time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)

// buildFixture builds the lr_demo report from store into a fresh output root.
func buildFixture(t *testing.T, store, description string) (out, index string) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "html")
	index, err := Build(Options{Store: store, Sweep: "lr_demo", Out: out, Now: fixedNow, Version: "test",
		Description: description})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return out, index
}

// builtFixtures names the pages buildAllFixtures wrote, relative to its output root.
type builtFixtures struct {
	compare string // the compare page of the two learning-rate sweeps
}

// buildAllFixtures builds the report of every fixture sweep into out, then the page that
// compares learning_rate-next against learning_rate-quick.
func buildAllFixtures(t *testing.T, out string) builtFixtures {
	t.Helper()
	for _, sw := range fixtureSweeps {
		if _, err := Build(Options{Store: fixtureStore, Sweep: sw.name, Out: out, Now: fixedNow, Version: "test"}); err != nil {
			t.Fatalf("Build %s: %v", sw.name, err)
		}
	}
	index, err := Compare(CompareOptions{Store: fixtureStore, A: "learning_rate-quick", B: "learning_rate-next",
		Out: out, Now: fixedNow, Version: "test"})
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	rel, err := filepath.Rel(out, index)
	if err != nil {
		t.Fatal(err)
	}
	return builtFixtures{compare: filepath.ToSlash(rel)}
}

func TestBuildGolden(t *testing.T) {
	out := filepath.Join(t.TempDir(), "html")
	built := buildAllFixtures(t, out)
	if want := "learning_rate-quick_vs_learning_rate-next/index.html"; built.compare != want {
		t.Errorf("Compare wrote %q, want %q", built.compare, want)
	}
	for _, tc := range []struct{ file, golden string }{
		{"index.html", "index.html.golden"},
		{"lr_demo/index.html", "sweep.html.golden"},
		{"lr_demo/runs/7f1e2d3c4b5a.html", "run_done.html.golden"},
		{"lr_demo/runs/a0b1c2d3e4f5.html", "run_denoise.html.golden"},
		{"lr_demo/runs/1b2c3d4e5f60.html", "run_failed.html.golden"},
		{"lr_demo/results.csv", "results.csv.golden"},
		{"lr_demo/results.json", "results.json.golden"},
		{"lr_demo/report.json", "report.json.golden"},
		{"learning_rate-quick/index.html", "sweep_lr_quick.html.golden"},
		{"seeds_demo/index.html", "sweep_seeds.html.golden"},
		{"seeds_demo/results.csv", "results_seeds.csv.golden"},
		{"training_duration-quick/index.html", "sweep_duration.html.golden"},
		{built.compare, "compare.html.golden"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(out, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", tc.golden), got)
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test ./reports -update rewrites it):\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return "(only line endings differ)"
}

var srcRE = regexp.MustCompile(`(?:src|href)="([^"#]+)"`)

// TestLinksResolve checks that every src and href in every page points at a file that exists
// in the output, so the folder works from file:// without a browser.
func TestLinksResolve(t *testing.T) {
	out := filepath.Join(t.TempDir(), "html")
	buildAllFixtures(t, out)
	var pages []string
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".html") {
			pages = append(pages, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 25 {
		t.Fatalf("only %d pages built", len(pages))
	}
	images := 0
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range srcRE.FindAllSubmatch(b, -1) {
			link := string(m[1])
			if strings.Contains(link, ":") {
				t.Errorf("%s: absolute or external link %q (reports must work offline)", p, link)
				continue
			}
			target := filepath.Join(filepath.Dir(p), filepath.FromSlash(link))
			fi, err := os.Stat(target)
			if err != nil {
				t.Errorf("%s: link %q: %v", p, link, err)
				continue
			}
			if fi.Size() == 0 {
				t.Errorf("%s: link %q is an empty file", p, link)
			}
			if strings.HasSuffix(link, ".png") || strings.HasSuffix(link, ".gif") {
				images++
			}
		}
	}
	if images < 100 {
		t.Errorf("only %d image links in the pages; expected charts, grids and thumbnails", images)
	}
	for _, chart := range []string{"loss.png", "loss_log.png", "epochs.png", "shares.png", "quality.png", "fd.png"} {
		if _, err := os.Stat(filepath.Join(out, "lr_demo", "img", chart)); err != nil {
			t.Errorf("chart missing: %v", err)
		}
	}
}

// TestEscaping puts markup into a varied value, the description and a config value and
// checks that every page shows it as text.
func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	store := t.TempDir()
	if err := os.CopyFS(store, os.DirFS(fixtureStore)); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(store, "_sweeps", "lr_demo.json")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"train.lr": "0.002"`), []byte(`"train.lr": "\u003cscript\u003ealert(1)\u003c/script\u003e"`), 1)
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(store, "1b2c3d4e5f60718293a4b5c6d7e8f9011223344556677889aabbccddeeff0011", "config.toml")
	if err := os.WriteFile(cfg, []byte("[run]\nnote = \""+evil+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, _ := buildFixture(t, store, evil+" in the description")
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
	for _, tc := range []struct {
		page      string
		wantCount int // at least this many escaped copies
	}{
		{"lr_demo/index.html", 4},             // description, table cell, two captions
		{"lr_demo/runs/1b2c3d4e5f60.html", 2}, // label and config
		{"index.html", 1},                     // description
	} {
		b, err := os.ReadFile(filepath.Join(out, tc.page))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(evil)) {
			t.Errorf("%s contains the raw markup %s", tc.page, evil)
		}
		if n := bytes.Count(b, []byte(escaped)); n < tc.wantCount {
			t.Errorf("%s shows the escaped text %d times, want at least %d", tc.page, n, tc.wantCount)
		}
	}
	csv, err := os.ReadFile(filepath.Join(out, "lr_demo", "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(csv, []byte(evil)) {
		t.Errorf("results.csv should keep the value as data, got:\n%s", csv)
	}
}

func TestBuildRejectsBadSweepName(t *testing.T) {
	for _, name := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := Build(Options{Store: fixtureStore, Sweep: name, Out: t.TempDir()}); err == nil {
			t.Errorf("Build(Sweep: %q) succeeded, want an error", name)
		}
	}
}

func TestBuildReplacesOldReport(t *testing.T) {
	out := t.TempDir()
	stale := filepath.Join(out, "lr_demo", "runs", "stale.html")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Options{Store: fixtureStore, Sweep: "lr_demo", Out: out, Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale page survived a rebuild: %v", err)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary %s left in the output root", e.Name())
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"percent whole", fmtPercent(0.71), "71%"},
		{"percent tenth", fmtPercent(0.715), "71.5%"},
		{"seconds", fmtDuration(4.25), "4.2s"},
		{"minutes", fmtDuration(301.2), "5m01s"},
		{"hours", fmtDuration(7380), "2h03m"},
		{"sig", fmtSig(4)(0.041234), "0.04123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestCompareValues(t *testing.T) {
	vals := []string{"0.002", "abc", "0.0002", "1e-3", "0.0005"}
	want := []string{"0.0002", "0.0005", "1e-3", "0.002", "abc"}
	got := slices.Clone(vals)
	slices.SortFunc(got, compareValues)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}
