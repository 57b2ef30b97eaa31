package reports

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// -keep builds the browser test's report into a folder that outlives the test, with the
// screenshot beside it, to look at by hand:
//
//	go test ./reports -run TestBrowser -keep=$PWD/reports/html
var keep = flag.String("keep", "", "build the browser test's report into this output root and keep it with lr_demo.png")

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found: apt-get install chromium")
	return ""
}

// chromium runs headless Chromium on a file:// URL with a fresh profile and the given extra
// flags, returning stdout.
func chromium(t *testing.T, bin, page string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

var bodyAttrRE = regexp.MustCompile(`<body[^>]*>`)

// bodyAttr reads a numeric data-* attribute that the page's self-check script put on <body>.
func bodyAttr(t *testing.T, dom []byte, name string) int {
	t.Helper()
	body := bodyAttrRE.Find(dom)
	m := regexp.MustCompile(name + `="(\d+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("<body> has no %s attribute (did the page's script run?): %s", name, body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestBrowser loads the fixture report in headless Chromium from file:// and checks that
// every image decodes and the results table has one row per run, then takes a screenshot.
func TestBrowser(t *testing.T) {
	bin := findChromium(t)
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	var out, index string
	if *keep != "" {
		out = *keep
		var err error
		if index, err = Build(Options{Store: fixtureStore, Sweep: "lr_demo", Out: out, Now: fixedNow, Version: "test"}); err != nil {
			t.Fatal(err)
		}
	} else {
		out, index = buildFixture(t, fixtureStore, "")
	}
	abs, err := filepath.Abs(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, page string
		rows       int // rows of the main table; -1 when the page has none
		minImages  int
	}{
		{"sweep", abs, 3, 12},
		{"run with denoise", filepath.Join(filepath.Dir(abs), "runs", "a0b1c2d3e4f5.html"), -1, 7},
		{"failed run", filepath.Join(filepath.Dir(abs), "runs", "1b2c3d4e5f60.html"), -1, 3},
		{"index", filepath.Join(filepath.Dir(filepath.Dir(abs)), "index.html"), 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dom := chromium(t, bin, tc.page, "--dump-dom")
			if n := bodyAttr(t, dom, "data-broken-images"); n != 0 {
				t.Errorf("%d broken images in %s", n, tc.page)
			}
			if n := bodyAttr(t, dom, "data-images"); n < tc.minImages {
				t.Errorf("%d images in %s, want at least %d", n, tc.page, tc.minImages)
			}
			if tc.rows >= 0 {
				if n := bodyAttr(t, dom, "data-rows"); n != tc.rows {
					t.Errorf("main table has %d rows, want %d", n, tc.rows)
				}
			}
		})
	}

	// The self-check must notice a broken image, or the checks above prove nothing.
	t.Run("broken image is noticed", func(t *testing.T) {
		copyOut := t.TempDir()
		if err := os.CopyFS(copyOut, os.DirFS(filepath.Join(out, "lr_demo"))); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(copyOut, "img", "loss.png")); err != nil {
			t.Fatal(err)
		}
		dom := chromium(t, bin, filepath.Join(copyOut, "index.html"), "--dump-dom")
		if n := bodyAttr(t, dom, "data-broken-images"); n != 1 {
			t.Errorf("data-broken-images = %d with one image removed, want 1", n)
		}
	})

	shot := filepath.Join(t.TempDir(), "sweep.png")
	chromium(t, bin, abs, "--screenshot="+shot, "--window-size=1400,2000", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 1000 || r.Dy() < 1000 {
		t.Errorf("screenshot is %v, want about 1400x2000", r)
	}
	// A blank page compresses to a few kB; the report has text, charts and grids.
	if len(b) < 50_000 {
		t.Errorf("screenshot is only %d bytes: the page looks empty", len(b))
	}
	if *keep != "" {
		path := filepath.Join(out, "lr_demo.png")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("report: %s, screenshot: %s", index, path)
	}
}
