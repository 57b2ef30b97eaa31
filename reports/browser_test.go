package reports

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// -keep builds the browser test's reports into a folder that outlives the test, to look at
// by hand (the screenshots go to reports/html/screenshots/ either way):
//
//	go test ./reports -run TestBrowser -v -keep=$PWD/reports/html
var keep = flag.String("keep", "", "build the browser test's reports into this output root and keep them")

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

// bodyText reads a text data-* attribute that the page's self-check script put on <body>.
func bodyText(dom []byte, name string) string {
	m := regexp.MustCompile(name + `="([^"]*)"`).FindSubmatch(bodyAttrRE.Find(dom))
	if m == nil {
		return ""
	}
	return string(m[1])
}

// screenshotDir is where TestBrowser saves its screenshots: under reports/html/, which
// .gitignore leaves out of the repository.
const screenshotDir = "html/screenshots"

// maxRowHeight is the tallest a one-line row of the results table may be: 13 px text, a
// 28 px thumbnail and padding.
const maxRowHeight = 40

// TestBrowser loads every fixture report in headless Chromium from file:// in a 1280×800
// window and checks that every image decodes, that the results table has one row per
// setting of one line each, and that no element sticks out of the viewport on either side;
// then it saves screenshots of the quick learning-rate report (issue 17's case) under
// reports/html/screenshots/ and logs their paths.
func TestBrowser(t *testing.T) {
	bin := findChromium(t)
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	out := *keep
	if out == "" {
		out = filepath.Join(t.TempDir(), "html")
	}
	pages := buildAllFixtures(t, out)
	abs := func(rel string) string {
		p, err := filepath.Abs(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, page string
		rows       int // rows of the main table; -1 when the page has none
		minImages  int
		wraps      bool // the main table's rows may wrap (the index's descriptions)
	}{
		{name: "lr_demo", page: "lr_demo/index.html", rows: 3, minImages: 12},
		{name: "learning_rate-quick", page: "learning_rate-quick/index.html", rows: 3, minImages: 12},
		{name: "seeds_demo", page: "seeds_demo/index.html", rows: 2, minImages: 12},
		{name: "training_duration-quick", page: "training_duration-quick/index.html", rows: 3, minImages: 12},
		{name: "compare", page: pages.compare, rows: 6, minImages: 10},
		{name: "run with denoise", page: "lr_demo/runs/a0b1c2d3e4f5.html", rows: -1, minImages: 7},
		{name: "failed run", page: "lr_demo/runs/1b2c3d4e5f60.html", rows: -1, minImages: 3},
		{name: "index", page: "index.html", rows: 6, minImages: 0, wraps: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dom := chromium(t, bin, abs(tc.page), "--dump-dom", "--window-size=1280,800", "--hide-scrollbars")
			if n := bodyAttr(t, dom, "data-broken-images"); n != 0 {
				t.Errorf("%d broken images in %s", n, tc.page)
			}
			if n := bodyAttr(t, dom, "data-images"); n < tc.minImages {
				t.Errorf("%d images in %s, want at least %d", n, tc.page, tc.minImages)
			}
			if vw := bodyAttr(t, dom, "data-viewport"); vw != 1280 {
				t.Errorf("viewport is %d px wide, want 1280", vw)
			}
			if n := bodyAttr(t, dom, "data-overflow"); n != 0 {
				t.Errorf("%d elements stick out of the 1280 px viewport (scroll width %d), first: %s",
					n, bodyAttr(t, dom, "data-scroll-width"), bodyText(dom, "data-overflow-first"))
			}
			if w := bodyAttr(t, dom, "data-scroll-width"); w > 1280 {
				t.Errorf("the page scrolls sideways: %d px wide", w)
			}
			if tc.rows >= 0 {
				if n := bodyAttr(t, dom, "data-rows"); n != tc.rows {
					t.Errorf("main table has %d rows, want %d", n, tc.rows)
				}
				if h := bodyAttr(t, dom, "data-tallest-row"); h > maxRowHeight && !tc.wraps {
					t.Errorf("the tallest table row is %d px, want one line (at most %d px)", h, maxRowHeight)
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
	// And it must notice an element wider than the viewport.
	t.Run("overflow is noticed", func(t *testing.T) {
		dom := chromium(t, bin, abs("lr_demo/index.html"), "--dump-dom", "--window-size=700,800", "--hide-scrollbars")
		if n := bodyAttr(t, dom, "data-overflow"); n == 0 {
			t.Error("data-overflow = 0 in a 700 px window, where the table cannot fit")
		}
	})

	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, shot := range []struct {
		name, page    string
		width, height int
	}{
		{name: "learning_rate-quick-1280x800.png", page: "learning_rate-quick/index.html", width: 1280, height: 800},   // what a laptop shows first
		{name: "learning_rate-quick-1280x3000.png", page: "learning_rate-quick/index.html", width: 1280, height: 3000}, // the whole page
		{name: "seeds_demo-1280x800.png", page: "seeds_demo/index.html", width: 1280, height: 800},
		{name: "training_duration-quick-1280x1400.png", page: "training_duration-quick/index.html", width: 1280, height: 1400},
		{name: "compare-1280x1400.png", page: pages.compare, width: 1280, height: 1400},
	} {
		page := abs(shot.page)
		tmp := filepath.Join(t.TempDir(), "shot.png")
		chromium(t, bin, page, "--screenshot="+tmp, fmt.Sprintf("--window-size=%d,%d", shot.width, shot.height), "--hide-scrollbars")
		b, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if r := img.Bounds(); r.Dx() != shot.width || r.Dy() != shot.height {
			t.Errorf("screenshot is %v, want %dx%d", r, shot.width, shot.height)
		}
		// A blank page compresses to a few kB; the report has text, a table and grids.
		if len(b) < 30_000 {
			t.Errorf("screenshot %s is only %d bytes: the page looks empty", shot.name, len(b))
		}
		path, err := filepath.Abs(filepath.Join(screenshotDir, shot.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	if *keep != "" {
		t.Logf("reports kept under %s", out)
	}
}
