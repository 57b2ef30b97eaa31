//go:build linux

// End-to-end tests of `runner serve` with the real generation child: a tiny class-conditional
// run is trained once per package test run (base 8, T = 50, one epoch of 256 images), then
// generations stream from it through an httptest server, reproduce from their URL, and play in
// headless Chromium. -short skips them, as it skips every test that trains.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/serve"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// serveRun is the tiny conditional run the serve tests generate from, trained once.
var serveRun struct {
	once       sync.Once
	root, hash string
	err        error
}

// tinyConditionalRun trains (once) and returns the store and the hash of a tiny
// class-conditional run.
func tinyConditionalRun(t *testing.T) (root, hash string) {
	t.Helper()
	needTraining(t)
	bin := runnerBin(t)
	serveRun.once.Do(func() {
		dir := filepath.Join(filepath.Dir(bin), "serve-fixture") // removed with the binary by TestMain
		if serveRun.err = os.MkdirAll(dir, 0o755); serveRun.err != nil {
			return
		}
		cfg := filepath.Join(dir, "tiny_conditional.toml")
		serveRun.err = os.WriteFile(cfg, []byte(`seed = 5
[data]
train_subset = 256
[model]
base_channels = 8
time_emb_dim = 16
conditional = true
[diffusion]
timesteps = 50
[train]
epochs = 1
batch_size = 32
sample_every = 0
[sample]
sampler = "ddim"
steps = 10
num_images = 4
[runtime]
threads = 1
`), 0o644)
		if serveRun.err != nil {
			return
		}
		serveRun.root = filepath.Join(dir, "store")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "run", cfg, "--store", serveRun.root)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			serveRun.err = fmt.Errorf("train the tiny conditional run: %v\n%s", err, out)
			return
		}
		st := &store.Store{Root: serveRun.root}
		hashes, err := st.Hashes()
		if err != nil || len(hashes) != 1 {
			serveRun.err = fmt.Errorf("store holds %v (%v), want one run", hashes, err)
			return
		}
		serveRun.hash = hashes[0]
	})
	if serveRun.err != nil {
		t.Fatal(serveRun.err)
	}
	return serveRun.root, serveRun.hash
}

// newServeServer serves root with the real runner binary as the generation child.
func newServeServer(t *testing.T, root string, slots int) *httptest.Server {
	t.Helper()
	s, err := serve.New(serve.Options{
		Store: &store.Store{Root: root}, Exe: runnerBin(t), Slots: slots,
		ChildEnv: []string{"DDPMLAB_THREADS=1"}, Log: zerolog.New(io.Discard),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return srv
}

// timedEvent is a server-sent event and when the test read it.
type timedEvent struct {
	name string
	data []byte
	at   time.Time
}

func streamEvents(t *testing.T, url string) []timedEvent {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	var out []timedEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	var ev timedEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data, ev.at = []byte(line[len("data: "):]), time.Now()
		case line == "":
			out = append(out, ev)
			ev = timedEvent{}
		}
	}
	return out
}

// "A 7" from the conditional run: the stream carries a frame every 2 of 20 steps with x_t and
// x̂_0 as 2×2 grids of 28×28 images, the last frame's x is the final grid, and the test logs
// the latencies (ms per step in the child; ms from the child writing a frame to the test
// reading its event).
func TestServeGenerateLive(t *testing.T) {
	root, hash := tinyConditionalRun(t)
	srv := newServeServer(t, root, 1)
	evs := streamEvents(t, srv.URL+"/api/generate?run="+hash+"&class=7&seed=3&steps=20&every=2&n=4&w=1.5")
	var (
		frames       []serve.ChildEvent
		relay, perMs []float64
		done         serve.ChildEvent
		names        []string
	)
	for _, e := range evs {
		names = append(names, e.name)
		var ev serve.ChildEvent
		if e.name == serve.EventFrame || e.name == serve.EventDone || e.name == serve.EventStart {
			if err := json.Unmarshal(e.data, &ev); err != nil {
				t.Fatal(err)
			}
		}
		switch e.name {
		case serve.EventFrame:
			frames = append(frames, ev)
			relay = append(relay, float64(e.at.UnixNano()-ev.Sent)/1e6)
			perMs = append(perMs, ev.MsPerStep)
		case serve.EventDone:
			done = ev
		case "failed":
			t.Fatalf("generation failed: %s", e.data)
		}
	}
	if len(frames) != 10 || names[len(names)-1] != serve.EventDone {
		t.Fatalf("events %v: want 10 frames then done", names)
	}
	for i, f := range frames {
		if f.Step != 2*(i+1) || f.Steps != 20 {
			t.Errorf("frame %d: step %d of %d, want %d of 20", i, f.Step, f.Steps, 2*(i+1))
		}
		for _, b := range [][]byte{f.X, f.X0} {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			// 2 columns of 28 px tiles with 2 px of padding around each: 2·(28+2)+2 = 62.
			if r := img.Bounds(); r.Dx() != 62 || r.Dy() != 62 {
				t.Errorf("frame %d is %v, want 62×62", i, r)
			}
		}
	}
	if !bytes.Equal(frames[len(frames)-1].X, done.PNG) {
		t.Error("the last frame's x_0 differs from the final grid")
	}
	t.Logf("latency over %d frames: %.1f ms per step (min %.1f, max %.1f) in the child; child → SSE event %.2f ms mean (max %.2f)",
		len(frames), mean(perMs), slices.Min(perMs), slices.Max(perMs), mean(relay), slices.Max(relay))
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / math.Max(1, float64(len(v)))
}

// The URL reproduces the result: the same query gives the same PNG (and the stream's), another
// seed or class another.
func TestServeReproducible(t *testing.T) {
	root, hash := tinyConditionalRun(t)
	srv := newServeServer(t, root, 1)
	fetch := func(q string) []byte {
		t.Helper()
		resp, err := http.Get(srv.URL + "/image.png?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("image.png?%s: %d %s", q, resp.StatusCode, b)
		}
		return b
	}
	base := "run=" + hash + "&class=7&seed=11&sampler=ddpm&steps=10"
	a, b := fetch(base), fetch(base)
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different images (ddpm, a stochastic sampler)")
	}
	if bytes.Equal(a, fetch(strings.Replace(base, "seed=11", "seed=12", 1))) {
		t.Error("another seed gave the same images")
	}
	if bytes.Equal(a, fetch(strings.Replace(base, "class=7", "class=3", 1))) {
		t.Error("another class gave the same images")
	}
	var done serve.ChildEvent
	for _, e := range streamEvents(t, srv.URL+"/api/generate?"+base) {
		if e.name == serve.EventDone {
			json.Unmarshal(e.data, &done)
		}
	}
	if !bytes.Equal(done.PNG, a) {
		t.Error("the streamed result differs from image.png of the same query")
	}
}

// The training child keeps progress.json in its run folder, and its last record is the end of
// training.
func TestServeProgressFile(t *testing.T) {
	root, hash := tinyConditionalRun(t)
	p, err := serve.ReadRunProgress(filepath.Join(root, hash))
	if err != nil {
		t.Fatal(err)
	}
	if p.Epochs != 1 || p.PID == 0 || p.Updated.IsZero() {
		t.Errorf("progress.json: %+v, want the tiny run's last report (1 epoch) with pid and time", p)
	}
}

// `runner serve` binds loopback by default; another address needs --public, and warns.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	res := run(t, dir, "serve", "--store", filepath.Join(dir, "store"), "--addr", "0.0.0.0:0")
	if res.code != 2 || !strings.Contains(res.stderr, "--public") {
		t.Errorf("non-loopback without --public: %s", res)
	}
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{args: []string{"--addr", "127.0.0.1:0"}},
		{args: []string{"--addr", "0.0.0.0:0", "--public"}, warn: true},
	} {
		s := start(t, dir, append([]string{"serve", "--store", filepath.Join(dir, "store")}, tc.args...)...)
		re := regexp.MustCompile(`serving .* on (http://\S+/)`)
		var url string
		waitFor(t, 30*time.Second, "the server to listen", func() bool {
			m := re.FindStringSubmatch(s.stdout.String())
			if m != nil {
				url = m[1]
			}
			return m != nil
		})
		if strings.Contains(url, "0.0.0.0") {
			url = strings.Replace(url, "0.0.0.0", "127.0.0.1", 1)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%v: GET / = %d", tc.args, resp.StatusCode)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		r := s.wait(t)
		if r.code != 0 {
			t.Errorf("%v: exit %s after SIGTERM", tc.args, r)
		}
		if got := strings.Contains(r.stderr, "WARNING"); got != tc.warn {
			t.Errorf("%v: warning printed %v, want %v:\n%s", tc.args, got, tc.warn, r.stderr)
		}
	}
}

// findChromium returns a Chromium binary, skipping the test without one.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found")
	return ""
}

// chromiumAt loads url in headless Chromium with extra flags and returns stdout. Virtual time
// stops while a request is in flight, so the budget runs out only after the event stream has
// ended: the page has its final image by then.
func chromiumAt(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=20000", "--window-size=1280,900",
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// screenshotDir is where the browser tests save their screenshots: $TMPDIR/ddpmlab-serve-screenshots,
// which outlives the test so that a person can look at them.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "ddpmlab-serve-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bodyData reads data-NAME="…" from the <body> tag of a dumped DOM.
func bodyData(dom []byte, name string) (string, bool) {
	body := regexp.MustCompile(`<body[^>]*>`).Find(dom)
	m := regexp.MustCompile(`data-` + name + `="([^"]*)"`).FindSubmatch(body)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// The generate page in headless Chromium: it starts from its URL (go=1), streams the frames,
// shows the final image and its animation, and no image on it is broken; so does the compare
// page. Screenshots go to $TMPDIR/ddpmlab-serve-screenshots/ and their paths are logged.
func TestServeBrowser(t *testing.T) {
	bin := findChromium(t)
	root, hash := tinyConditionalRun(t)
	srv := newServeServer(t, root, 1)
	shots := screenshotDir(t)
	for _, tc := range []struct {
		name, url  string
		minImages  int
		wantFrames []string // data-frames of the panes
	}{
		{name: "generate", url: "/generate?run=" + hash + "&class=7&seed=3&steps=20&every=2&n=4&w=1.5&go=1", minImages: 4, wantFrames: []string{"10"}},
		{name: "compare", url: "/compare?run=" + hash + "&class=7&seed=3&steps=20&every=4&sampler=ddim&sampler2=dpmpp_2m&go=1", minImages: 8, wantFrames: []string{"5", "5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dom := chromiumAt(t, bin, srv.URL+tc.url, "--dump-dom")
			if v, _ := bodyData(dom, "done"); v != "1" {
				t.Fatalf("the page did not finish its generation:\n%s", clipDOM(dom))
			}
			broken, _ := bodyData(dom, "broken-images")
			images, _ := bodyData(dom, "images")
			if n, _ := strconv.Atoi(images); broken != "0" || n < tc.minImages {
				t.Errorf("%s images, %s broken; want at least %d, none broken", images, broken, tc.minImages)
			}
			var frames []string
			for _, m := range regexp.MustCompile(`class="pane"[^>]*data-frames="(\d+)"|data-frames="(\d+)"[^>]*class="pane"`).FindAllSubmatch(dom, -1) {
				frames = append(frames, string(m[1])+string(m[2]))
			}
			if !slices.Equal(frames, tc.wantFrames) {
				t.Errorf("panes received %v frames, want %v", frames, tc.wantFrames)
			}
			if ok := regexp.MustCompile(`data-ok="(\d)"`).FindAllSubmatch(dom, -1); len(ok) != len(tc.wantFrames) || bytes.Contains(dom, []byte(`data-ok="0"`)) {
				t.Errorf("panes ended %q, want every one ok:\n%s", ok, clipDOM(dom))
			}
			path := filepath.Join(shots, tc.name+".png")
			chromiumAt(t, bin, srv.URL+tc.url, "--screenshot="+path, "--window-size=1280,1500")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			t.Logf("screenshot: %s", path)
		})
	}
}

// The browsing pages of the tiny run in headless Chromium: every image decodes (the loss plot
// drawn on request, the grids and the denoising GIF served from the run folder).
func TestServeBrowserPages(t *testing.T) {
	bin := findChromium(t)
	root, hash := tinyConditionalRun(t)
	srv := newServeServer(t, root, 1)
	shots := screenshotDir(t)
	for _, tc := range []struct {
		name, url string
		minImages int
	}{
		{name: "index", url: "/", minImages: 0},
		{name: "run", url: "/runs/" + hash, minImages: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dom := chromiumAt(t, bin, srv.URL+tc.url, "--dump-dom")
			images, _ := bodyData(dom, "loaded-images")
			broken, ok := bodyData(dom, "broken-loaded")
			if n, _ := strconv.Atoi(images); !ok || broken != "0" || n < tc.minImages {
				t.Errorf("%s images, %s broken; want at least %d, none broken", images, broken, tc.minImages)
			}
			path := filepath.Join(shots, "browse-"+tc.name+".png")
			chromiumAt(t, bin, srv.URL+tc.url, "--screenshot="+path, "--window-size=1280,1400")
			t.Logf("screenshot: %s", path)
		})
	}
}

func clipDOM(dom []byte) string {
	if len(dom) > 3000 {
		return string(dom[:3000]) + "…"
	}
	return string(dom)
}

// The generation child checks its flags before it loads anything: exit 2 with a message.
func TestServeChildBadArgs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args: []string{"--run", "../../etc"}, want: "--run"},
		{args: []string{"--run", strings.Repeat("a", 64)}, want: "--run"},
		{args: []string{"--run", "abc", "--n", "0"}, want: "--run"},
	} {
		res := run(t, dir, append([]string{serve.GenerateCommand, "--store", root}, tc.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) || res.stdout != "" {
			t.Errorf("%v: %s", tc.args, res)
		}
	}
}

// A run that trains in another process shows its live progress through the server, read
// from the progress file the training child keeps (the server is not its parent).
func TestServeLiveTrainingProgress(t *testing.T) {
	needTraining(t)
	w := newWorkspace(t)
	cfg := writeTinyConfig(t, w.dir, 2048, 2)
	training := start(t, w.dir, "run", cfg, "--store", w.root)
	srv := newServeServer(t, w.root, 1)
	var hash string
	waitFor(t, 60*time.Second, "the run folder", func() bool {
		hs, _ := w.st.Hashes()
		if len(hs) == 1 {
			hash = hs[0]
		}
		return hash != ""
	})
	var got struct {
		State    store.State        `json:"state"`
		Progress *serve.RunProgress `json:"progress"`
	}
	waitFor(t, 90*time.Second, "live progress through the server", func() bool {
		resp, err := http.Get(srv.URL + "/api/runs/" + hash + "/progress")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		got.Progress = nil
		json.NewDecoder(resp.Body).Decode(&got)
		return got.State == store.Running && got.Progress != nil && got.Progress.Step > 0
	})
	if p := got.Progress; p.Epochs != 2 || p.Epoch < 1 || p.Loss <= 0 || p.PID == 0 {
		t.Errorf("live progress %+v: want epoch ≥ 1 of 2, a loss and the child's pid", p)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `class="liveprogress" data-run="`+hash+`"`) {
		t.Errorf("the store page does not show the running run's live progress")
	}
	training.cmd.Process.Signal(syscall.SIGTERM) // done with it: interrupt, as Ctrl-C would
	training.wait(t)
}
