package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// fixture is a store for the handler tests: reports' fake store (sweeps with done and failed
// runs), plus a conditional and an unconditional run that can generate (with a stand-in
// checkpoints folder: the fake child never reads it), three unconditional runs that sample with
// autoguidance, a running run with a progress file, and a secret file beside the store that no
// request may reach.
type fixture struct {
	root, secret string
	st           *store.Store
	cond, uncond string // generatable runs
	running      string
	failed       string // a run that cannot generate
	// Generatable runs that sample with autoguidance: w = 1 by their own snapshot at step 2,
	// kept (a stand-in folder) or gone, and w = 0.5 by another run (uncond).
	selfGuided, guideGone, guideRun string
	sweep                           string
	fakeDir                         string // the fake child's folder
}

const secretText = "TOP-SECRET-not-in-the-store"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "store"), secret: filepath.Join(base, "secret.txt"), fakeDir: filepath.Join(base, "fake")}
	if err := os.CopyFS(f.root, os.DirFS("../../reports/testdata/store")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{f.fakeDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.secret, []byte(secretText), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	f.cond = f.addRun(t, true, store.Done, 1, nil)
	f.uncond = f.addRun(t, false, store.Done, 2, nil)
	f.running = f.addRun(t, false, store.Running, 3, nil)
	f.failed = f.addRun(t, true, store.Failed, 4, nil)
	ownSnapshot := func(s *config.Sample) { s.AutoGuidance, s.GuideStep = 1, 2 }
	f.selfGuided = f.addRun(t, false, store.Done, 5, ownSnapshot)
	if err := os.MkdirAll(store.SnapshotDir(st.RunDir(f.selfGuided), 2), 0o755); err != nil {
		t.Fatal(err)
	}
	f.guideGone = f.addRun(t, false, store.Done, 6, ownSnapshot)
	f.guideRun = f.addRun(t, false, store.Done, 7, func(s *config.Sample) { s.AutoGuidance, s.GuideRun = 0.5, f.uncond })
	if err := WriteRunProgress(st.RunDir(f.running), RunProgress{ProgressReport: progressReport(3, 7, 0.0421)}); err != nil {
		t.Fatal(err)
	}
	// A lock held by this (live) process, so the running run does not read as abandoned.
	lock, err := st.Lock(f.running)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Unlock() })
	ms, err := st.Manifests()
	if err != nil || len(ms) == 0 {
		t.Fatalf("fixture store has no sweeps: %v", err)
	}
	f.sweep = ms[0].Name
	return f
}

// addRun creates a run of a tiny config; seed makes each one distinct, and sample, if not nil,
// changes its sample settings.
func (f *fixture) addRun(t *testing.T, conditional bool, state store.State, seed int64, sample func(*config.Sample)) string {
	t.Helper()
	cfg := config.Default()
	cfg.Seed = seed
	cfg.Model.Conditional = conditional
	cfg.Diffusion.Timesteps = 50
	cfg.Sample.Sampler, cfg.Sample.Steps = "ddim", 10
	if sample != nil {
		sample(&cfg.Sample)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	hash := cfg.Hash().String()
	if _, err := f.st.Create(hash, cfg.TOML(), cfg.Canonical()); err != nil {
		t.Fatal(err)
	}
	st := store.Status{State: state, Epoch: 1, Epochs: 20, Reason: `<script>alert("x")</script>`}
	if err := f.st.WriteStatus(hash, st); err != nil {
		t.Fatal(err)
	}
	if state == store.Done {
		if err := f.st.WriteSummary(hash, store.Summary{FinalLoss: 0.031, Sampler: "ddim", SampleSteps: 10}); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(f.st.RunDir(hash), "checkpoints", "step_1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := f.st.WriteLoss(hash, []store.LossRow{{Step: 1, Epoch: 1, Loss: 0.5}, {Step: 2, Epoch: 1, Loss: 0.3}}); err != nil {
			t.Fatal(err)
		}
	}
	return hash
}

// server makes a server whose generation child is this test binary as the fake child.
func (f *fixture) server(t *testing.T, slots int, env ...string) *Server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Store: f.st, Exe: exe, Slots: slots, ReportDir: filepath.Join(t.TempDir(), "reports"),
		ChildEnv: append([]string{fakeChildEnv + "=1", fakeDirEnv + "=" + f.fakeDir}, env...),
		Log:      zerolog.New(io.Discard),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// get runs one GET through the handler, as from a browser on this machine.
func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "127.0.0.1:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestBrowse(t *testing.T) {
	f := newFixture(t)
	h := f.server(t, 1).Handler()
	for _, tc := range []struct {
		name, target string
		code         int
		want         []string // in the body
		contentType  string
	}{
		{name: "index", target: "/", code: 200, want: []string{store.Short(f.cond), f.sweep, "/generate?run=" + f.cond, "epoch 3/7, step 21, loss 0.0421", `class="liveprogress" data-run="` + f.running + `"`, "/api/runs/"}},
		{name: "run", target: "/runs/" + f.cond, code: 200, want: []string{f.cond, "runner rerun " + f.cond + " --store ", "Generate from this run", "/runs/" + f.cond + "/loss.png", "[diffusion]"}},
		{name: "run by prefix", target: "/runs/" + f.cond[:8], code: 200, want: []string{f.cond}},
		{name: "run upper case", target: "/runs/" + strings.ToUpper(f.cond[:10]), code: 200, want: []string{f.cond}},
		{name: "running run", target: "/runs/" + f.running, code: 200, want: []string{"epoch 3/7", "/api/runs/" + f.running + "/progress"}},
		{name: "escaped reason", target: "/runs/" + f.failed, code: 200, want: []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"}},
		{name: "run file", target: "/runs/" + f.cond + "/files/config.toml", code: 200, want: []string{"[diffusion]"}, contentType: "text/plain; charset=utf-8"},
		{name: "metrics file", target: "/runs/" + f.cond + "/files/metrics/loss.csv", code: 200, want: []string{"step,epoch,loss"}},
		{name: "loss plot", target: "/runs/" + f.cond + "/loss.png", code: 200, want: []string{"\x89PNG"}, contentType: "image/png"},
		{name: "progress", target: "/api/runs/" + f.running + "/progress", code: 200, want: []string{`"state":"running"`, `"epoch":3`, `"step":21`}},
		{name: "queue", target: "/api/queue", code: 200, want: []string{`"running":0`, `"slots":1`}},
		{name: "sweep report", target: "/sweeps/" + f.sweep + "/", code: 200, want: []string{"<html", f.sweep}, contentType: "text/html; charset=utf-8"},
		{name: "generate page", target: "/generate?run=" + f.cond, code: 200, want: []string{`value="` + f.cond + `" selected`, "unconditional", ">3 · 3<", "randomize", "EventSource"}},
		{name: "generate page, default run", target: "/generate", code: 200, want: []string{"Generate"}},
		{name: "generate page, autoguided run", target: "/generate?run=" + f.selfGuided, code: 200, want: []string{`name="ag"`, `value="1"`, "guided by its own weights at step 2 (sample.guide_step)"}},
		{name: "generate page, guide run", target: "/generate?run=" + f.guideRun, code: 200, want: []string{`value="0.5"`, "guided by run " + store.Short(f.uncond) + " (sample.guide_run)"}},
		{name: "generate page, no guide", target: "/generate?run=" + f.uncond, code: 200, want: []string{`name="ag" type="number" min="0" max="20" step="0.1" value="0" readonly`, "(0: it names no sample.guide_run or sample.guide_step)"}},
		{name: "generate page, snapshot gone", target: "/generate?run=" + f.guideGone, code: 200, want: []string{`value="0" readonly`, "its own snapshot at sample.guide_step = 2 is gone from its folder"}},
		{name: "compare page, autoguided against unguided", target: "/compare?run=" + f.selfGuided + "&run2=" + f.uncond + "&go=1", code: 200, want: []string{"10 steps · autoguidance w = 1</h2>", `name="ag2" type="number" min="0" step="0.1" value="0" readonly`}},
		{name: "compare page", target: "/compare?run=" + f.cond + "&run2=" + f.uncond + "&go=1", code: 200, want: []string{"left:", "right:", store.Short(f.uncond)}},
		{name: "unknown run", target: "/runs/" + strings.Repeat("e", 64), code: 404},
		{name: "unknown sweep", target: "/sweeps/no_such_sweep/", code: 404},
		{name: "missing run file", target: "/runs/" + f.cond + "/files/samples/none.png", code: 404},
		{name: "checkpoints are not served", target: "/runs/" + f.cond + "/files/checkpoints/step_1", code: 404},
		{name: "no loss yet", target: "/runs/" + f.running + "/loss.png", code: 404},
		{name: "bad hash", target: "/runs/not-a-hash", code: 400},
		{name: "short prefix", target: "/runs/abc", code: 400},
		{name: "unknown path", target: "/nothing/here", code: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.target)
			if rec.Code != tc.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tc.target, rec.Code, tc.code, clip(rec.Body.String()))
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("GET %s: body lacks %q", tc.target, w)
				}
			}
			if tc.contentType != "" && rec.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("GET %s: Content-Type %q, want %q", tc.target, rec.Header().Get("Content-Type"), tc.contentType)
			}
			if strings.Contains(rec.Body.String(), "goroutine ") || strings.Contains(rec.Body.String(), "panic") {
				t.Errorf("GET %s: the body shows a stack trace", tc.target)
			}
		})
	}
}

// No request reaches a file outside the store's index: traversal with .., encoded dots and
// slashes, absolute paths and slashes in the hash give a 4xx or a redirect to a cleaned path,
// never the secret beside the store.
func TestPathTraversal(t *testing.T) {
	f := newFixture(t)
	h := f.server(t, 1).Handler()
	rel, _ := filepath.Rel(f.st.RunDir(f.cond), f.secret)
	for _, target := range []string{
		"/runs/../secret.txt",
		"/runs/%2e%2e/secret.txt",
		"/runs/%2e%2e%2fsecret.txt",
		"/runs/..%2f..%2fsecret.txt",
		"/runs/" + f.cond + "%2f..%2f..%2fsecret.txt",
		"/runs/" + f.cond + "/files/" + rel,
		"/runs/" + f.cond + "/files/../../secret.txt",
		"/runs/" + f.cond + "/files/%2e%2e/%2e%2e/secret.txt",
		"/runs/" + f.cond + "/files/%2e%2e%2f%2e%2e%2fsecret.txt",
		"/runs/" + f.cond + "/files/" + url.PathEscape(f.secret),
		"/runs/" + f.cond + "/files//" + f.secret,
		"/runs/" + f.cond + "/files/%2F" + strings.TrimPrefix(f.secret, "/"),
		"/runs/" + f.cond + "/files/..%5c..%5csecret.txt",
		"/runs/%2F" + strings.TrimPrefix(f.secret, "/"),
		"/sweeps/..%2f..%2fsecret.txt/",
		"/sweeps/%2e%2e/secret.txt",
		"/sweeps/" + f.sweep + "/../../../secret.txt",
		"/sweeps/" + f.sweep + "/%2e%2e/%2e%2e/%2e%2e/secret.txt",
		"/sweeps/" + f.sweep + "/..%2f..%2f..%2fsecret.txt",
		"/generate?run=..%2f..%2fsecret.txt",
		"/api/generate?run=%2e%2e",
		"/image.png?run=/etc/passwd",
	} {
		t.Run(target, func(t *testing.T) {
			rec := get(t, h, target)
			t.Logf("GET %s: %d %s", target, rec.Code, rec.Header().Get("Location"))
			if rec.Code == 200 || rec.Code >= 500 {
				t.Errorf("GET %s: %d, want a 4xx or a redirect", target, rec.Code)
			}
			if strings.Contains(rec.Body.String(), secretText) {
				t.Errorf("GET %s: served the secret file", target)
			}
		})
	}
}

// Bad generation parameters are a 400 with a message naming the parameter, on the stream, the
// image and the page alike; unknown runs a 404.
func TestBadParameters(t *testing.T) {
	f := newFixture(t)
	h := f.server(t, 1).Handler()
	c, u, g := "run="+f.cond, "run="+f.uncond, "run="+f.selfGuided
	for _, tc := range []struct {
		name, query, want string
		code              int
	}{
		{"negative seed", c + "&seed=-1", "seed", 400},
		{"seed not a number", c + "&seed=abc", "seed", 400},
		{"seed too large", c + "&seed=1152921504606846976", "seed", 400},
		{"zero steps", c + "&steps=0", "steps", 400},
		{"steps above T", c + "&steps=51", "steps", 400},
		{"unknown sampler", c + "&sampler=euler", "sampler", 400},
		{"sampler with markup", c + "&sampler=%3Cb%3E", "sampler", 400},
		{"negative w", c + "&w=-1", "w:", 400},
		{"w NaN", c + "&w=NaN", "w:", 400},
		{"w too large", c + "&w=100", "w:", 400},
		{"w on an unconditional run", u + "&w=1", "unconditional", 400},
		{"negative ag", g + "&ag=-1", "ag: want an autoguidance weight in [0, 20]", 400},
		{"ag NaN", g + "&ag=NaN", "ag:", 400},
		{"ag infinite", g + "&ag=Inf", "ag:", 400},
		{"ag too large", g + "&ag=20.5", "ag:", 400},
		{"ag not a number", g + "&ag=lots", "ag:", 400},
		{"ag on a run without a guide", u + "&ag=1", "ag: run " + store.Short(f.uncond) + " has no guide to autoguide with (it names no sample.guide_run", 400},
		{"ag when the snapshot is gone", "run=" + f.guideGone + "&ag=1", "sample.guide_step = 2 is gone from its folder), so ag must be 0", 400},
		{"no images", c + "&n=0", "n:", 400},
		{"too many images", c + "&n=17", "n:", 400},
		{"class out of range", c + "&class=10", "class", 400},
		{"negative class", c + "&class=-3", "class", 400},
		{"class not a number", c + "&class=seven", "class", 400},
		{"class on an unconditional run", u + "&class=3", "unconditional", 400},
		{"every 0", c + "&every=0", "every", 400},
		{"every above steps", c + "&steps=10&every=11", "every", 400},
		{"unknown key", c + "&foo=1", "unknown parameter", 400},
		{"key twice", c + "&seed=1&seed=2", "2 times", 400},
		{"malformed query", c + "&seed=%zz", "malformed", 400},
		{"query too long", c + "&seed=" + strings.Repeat("1", 3000), "at most", 400},
		{"no run", "seed=1", "run", 400},
		{"run not hex", "run=zzzz", "run", 400},
		{"run cannot generate", "run=" + f.failed, "cannot generate", 400},
		{"running run cannot generate", "run=" + f.running, "cannot generate", 400},
		{"unknown run", "run=" + strings.Repeat("e", 64), "not found", 404},
	} {
		for _, path := range []string{"/api/generate", "/image.png", "/image.gif"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				rec := get(t, h, path+"?"+tc.query)
				if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
					t.Errorf("GET %s?%s: %d %q, want %d with %q", path, clip(tc.query), rec.Code, clip(rec.Body.String()), tc.code, tc.want)
				}
			})
		}
	}
	// The page checks the same way (without a run it picks one, so "no run" passes there).
	for _, q := range []string{c + "&seed=-1", c + "&steps=0", c + "&foo=1", "run=zzzz"} {
		if rec := get(t, h, "/generate?"+q); rec.Code != 400 {
			t.Errorf("GET /generate?%s: %d, want 400", q, rec.Code)
		}
	}
	if rec := get(t, h, "/compare?run="+f.cond+"&seed2=4"); rec.Code != 400 {
		t.Errorf("compare with seed2: %d, want 400 (one seed for both sides)", rec.Code)
	}
	if rec := get(t, h, "/compare?run="+f.selfGuided+"&run2="+f.uncond+"&ag2=1"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "right side: ag:") {
		t.Errorf("compare with ag2 on a run without a guide: %d %q, want 400 naming ag", rec.Code, clip(rec.Body.String()))
	}
}

// The server answers only to loopback host names unless it is public, and only GET.
func TestHostAndMethod(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		host   string
		public bool
		code   int
	}{
		{"127.0.0.1:8080", false, 200}, {"localhost:8080", false, 200}, {"[::1]:8080", false, 200},
		{"evil.example:8080", false, http.StatusMisdirectedRequest}, {"192.168.1.4", false, http.StatusMisdirectedRequest},
		{"evil.example:8080", true, 200},
	} {
		s := f.server(t, 1)
		s.opts.Public = tc.public
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("Host %s (public %v): %d, want %d", tc.host, tc.public, rec.Code, tc.code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/runs/"+f.cond, strings.NewReader("x"))
	req.Host = "127.0.0.1"
	rec := httptest.NewRecorder()
	f.server(t, 1).Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
		err  bool
	}{
		{"127.0.0.1:8080", true, false}, {"localhost:80", true, false}, {"[::1]:8080", true, false},
		{"127.0.0.2:1", true, false}, {":8080", false, false}, {"0.0.0.0:8080", false, false},
		{"192.168.0.3:8080", false, false}, {"example.com:80", false, false}, {"nonsense", false, true},
	} {
		got, err := IsLoopbackAddr(tc.addr)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("IsLoopbackAddr(%q) = %v, %v; want %v (error %v)", tc.addr, got, err, tc.want, tc.err)
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// scanEvents reads a text/event-stream body to its end, handing each event to each as it comes.
func scanEvents(r io.Reader, each func(sseEvent)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxEventLine)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = []byte(strings.TrimPrefix(line, "data: "))
		case line == "":
			each(ev)
			ev = sseEvent{}
		}
	}
}

// readEvents reads a text/event-stream body to its end.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	scanEvents(r, func(e sseEvent) { out = append(out, e) })
	return out
}

func names(evs []sseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.name)
	}
	return out
}

// A generation streams params, start, a frame every k steps and at the last, and done, whose
// images decode.
func TestGenerateStream(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.server(t, 1).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		query      string
		wantFrames []int
	}{
		{query: "run=" + f.cond + "&class=7&seed=42&steps=10&every=3", wantFrames: []int{3, 6, 9, 10}},
		{query: "run=" + f.uncond + "&steps=10&every=5", wantFrames: []int{5, 10}},
		{query: "run=" + f.cond[:6] + "&class=none&steps=4", wantFrames: []int{1, 2, 3, 4}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/api/generate?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			evs := readEvents(t, resp.Body)
			var steps []int
			for _, e := range evs {
				var ev ChildEvent
				if e.name == EventFrame || e.name == EventDone {
					if err := json.Unmarshal(e.data, &ev); err != nil {
						t.Fatal(err)
					}
				}
				switch e.name {
				case EventFrame:
					steps = append(steps, ev.Step)
					for _, b := range [][]byte{ev.X, ev.X0} {
						if _, err := png.Decode(bytes.NewReader(b)); err != nil {
							t.Errorf("frame %d: %v", ev.Step, err)
						}
					}
				case EventDone:
					if _, err := png.Decode(bytes.NewReader(ev.PNG)); err != nil || len(ev.GIF) == 0 {
						t.Errorf("done: PNG %v, %d bytes of GIF", err, len(ev.GIF))
					}
				}
			}
			got := names(evs)
			if len(got) < 3 || got[0] != "params" || got[1] != EventStart || got[len(got)-1] != EventDone {
				t.Errorf("events %v, want params, start, frames, done", got)
			}
			if fmt.Sprint(steps) != fmt.Sprint(tc.wantFrames) {
				t.Errorf("frames at steps %v, want %v", steps, tc.wantFrames)
			}
		})
	}
}

// A child that fails gives a "failed" event with the last line of its stderr.
func TestGenerateFailure(t *testing.T) {
	f := newFixture(t)
	rec := get(t, f.server(t, 1, fakeFailEnv+"=1").Handler(), "/api/generate?run="+f.cond)
	evs := readEvents(t, rec.Body)
	last := evs[len(evs)-1]
	if last.name != "failed" || !strings.Contains(string(last.data), "libtorch said no") {
		t.Errorf("last event %s %s, want failed with the child's message", last.name, last.data)
	}
	if rec := get(t, f.server(t, 1, fakeFailEnv+"=1").Handler(), "/image.png?run="+f.cond); rec.Code != 500 || strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("image of a failing child: %d %q, want a plain 500", rec.Code, rec.Body.String())
	}
}

// The URL reproduces the result: the same query gives the same bytes, another seed others.
func TestImageReproducible(t *testing.T) {
	f := newFixture(t)
	h := f.server(t, 1).Handler()
	q := "/image.png?run=" + f.cond + "&class=7&seed=5&steps=10"
	a, b, other := get(t, h, q), get(t, h, q), get(t, h, strings.Replace(q, "seed=5", "seed=6", 1))
	if a.Code != 200 || a.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("%d %s", a.Code, a.Header().Get("Content-Type"))
	}
	if !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) || bytes.Equal(a.Body.Bytes(), other.Body.Bytes()) {
		t.Error("same query must give the same PNG and another seed another")
	}
	if g := get(t, h, strings.Replace(q, "image.png", "image.gif", 1)); g.Code != 200 || !bytes.HasPrefix(g.Body.Bytes(), []byte("GIF8")) {
		t.Errorf("image.gif: %d, %q", g.Code, clip(g.Body.String()))
	}
}

// Params survive the trip through their URL.
func TestParamsQueryRoundTrip(t *testing.T) {
	f := newFixture(t)
	idx, err := readIndex(f.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{Run: f.cond, Class: 7, Seed: 123456789012, Sampler: "dpmpp_2m", Steps: 20, Guidance: 2.5, N: 16, Every: 3},
		{Run: f.uncond, Class: -1, Seed: 0, Sampler: "ddpm", Steps: 50, Guidance: 0, N: 1, Every: 50},
		{Run: f.selfGuided, Class: -1, Seed: 9, Sampler: "ddim", Steps: 10, AutoGuidance: 2.5, N: 4, Every: 1},
		{Run: f.selfGuided, Class: -1, Seed: 9, Sampler: "ddim", Steps: 10, AutoGuidance: 0, N: 4, Every: 1},
	} {
		q, err := url.ParseQuery(p.Query())
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseParams(q, "", idx)
		if err != nil || got != p {
			t.Errorf("round trip of %+v: %+v, %v", p, got, err)
		}
	}
}

// The autoguidance weight ag defaults to the run's own sample.autoguidance when its guide is
// there (its own snapshot, or a guide run) and to 0 when not, and reaches the generation child
// as --autoguidance, always given (the fake child names it in its start event).
func TestAutoGuidance(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.server(t, 1).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name, query string
		want        float64 // Params.AutoGuidance and the child's --autoguidance
	}{
		{name: "the run's own, by its snapshot", query: "run=" + f.selfGuided, want: 1},
		{name: "turned off", query: "run=" + f.selfGuided + "&ag=0", want: 0},
		{name: "another weight", query: "run=" + f.selfGuided + "&ag=2.5", want: 2.5},
		{name: "the largest weight", query: "run=" + f.selfGuided + "&ag=20", want: 20},
		{name: "the run's own, by a guide run", query: "run=" + f.guideRun, want: 0.5},
		{name: "snapshot gone: off", query: "run=" + f.guideGone, want: 0},
		{name: "snapshot gone, asked off", query: "run=" + f.guideGone + "&ag=0", want: 0},
		{name: "no guide", query: "run=" + f.uncond, want: 0},
		{name: "conditional, no guide", query: "run=" + f.cond + "&class=3&w=2", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := readIndex(f.st)
			if err != nil {
				t.Fatal(err)
			}
			q, err := url.ParseQuery(tc.query + "&steps=2")
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseParams(q, "", idx)
			if err != nil || p.AutoGuidance != tc.want {
				t.Fatalf("parseParams(%s): autoguidance %g, %v; want %g", tc.query, p.AutoGuidance, err, tc.want)
			}
			wantArg := fmt.Sprintf("ag=%g&", tc.want)
			if !strings.Contains(p.Query(), wantArg) {
				t.Errorf("query %s lacks %s", p.Query(), wantArg)
			}
			resp, err := http.Get(srv.URL + "/api/generate?" + tc.query + "&steps=2")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sampler string
			for _, e := range readEvents(t, resp.Body) {
				if e.name == EventStart {
					var ev ChildEvent
					if err := json.Unmarshal(e.data, &ev); err != nil {
						t.Fatal(err)
					}
					sampler = ev.Sampler
				}
			}
			if want := fmt.Sprintf("fake, autoguidance %g", tc.want); sampler != want {
				t.Errorf("the child's start event says %q; want %q (the child given --autoguidance %g)", sampler, want, tc.want)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakePIDs lists the fake children alive now.
func (f *fixture) fakePIDs() []string {
	m, _ := filepath.Glob(filepath.Join(f.fakeDir, "pid.*"))
	return m
}

// Three generations with one slot: one runs, the others wait in line and hear their places
// (2, then 1), and the children never overlap (the fake child fails if another is running).
func TestQueue(t *testing.T) {
	f := newFixture(t)
	s := f.server(t, 1, fakeHoldEnv+"=1")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	type stream struct {
		evs  []sseEvent
		seen chan string // the names of events as they arrive
	}
	open := func(seed int) *stream {
		st := &stream{seen: make(chan string, 100)}
		resp, err := http.Get(fmt.Sprintf("%s/api/generate?run=%s&seed=%d&steps=4&every=1", srv.URL, f.cond, seed))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			defer close(st.seen)
			scanEvents(resp.Body, func(ev sseEvent) {
				st.evs = append(st.evs, ev)
				name := ev.name
				if name == "queue" {
					var q struct{ Position int }
					json.Unmarshal(ev.data, &q)
					name = fmt.Sprintf("queue %d", q.Position)
				}
				st.seen <- name
			})
		}()
		return st
	}
	until := func(st *stream, want string) {
		t.Helper()
		for name := range st.seen {
			if name == want {
				return
			}
		}
		t.Fatalf("stream ended before %q", want)
	}
	a := open(1)
	until(a, EventFrame) // a's child runs and holds after its first frame
	b := open(2)
	until(b, "queue 1")
	c := open(3)
	until(c, "queue 2")
	if running, waiting := s.queue.state(); running != 1 || waiting != 2 {
		t.Errorf("queue: %d running, %d waiting; want 1 and 2", running, waiting)
	}
	if err := os.WriteFile(filepath.Join(f.fakeDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	until(c, "queue 1") // b took the slot; c moved up
	for _, st := range []*stream{a, b, c} {
		for range st.seen {
		}
		if got := names(st.evs); got[len(got)-1] != EventDone {
			t.Errorf("stream ended with %v, want done", got)
		}
	}
	if running, waiting := s.queue.state(); running != 0 || waiting != 0 {
		t.Errorf("after: %d running, %d waiting", running, waiting)
	}
}

// A browser that leaves cancels its generation: the child is killed and the slot freed; one
// that leaves while waiting leaves the line.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	s := f.server(t, 1, fakeHoldEnv+"=1")
	h := s.Handler()
	start := func(ctx context.Context) chan struct{} {
		done := make(chan struct{})
		req := httptest.NewRequest(http.MethodGet, "/api/generate?run="+f.cond+"&steps=4", nil).WithContext(ctx)
		req.Host = "127.0.0.1"
		go func() {
			defer close(done)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}()
		return done
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := start(ctxA)
	waitFor(t, "the child to start", func() bool { return len(f.fakePIDs()) == 1 })
	pid := 0
	fmt.Sscanf(filepath.Base(f.fakePIDs()[0]), "pid.%d", &pid)
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := start(ctxB)
	waitFor(t, "the second to queue", func() bool { _, w := s.queue.state(); return w == 1 })
	cancelB()
	<-doneB
	if _, w := s.queue.state(); w != 0 {
		t.Errorf("a cancelled waiter is still in line (%d waiting)", w)
	}
	cancelA()
	<-doneA
	// runChild has waited for the child, so it is reaped: kill(pid, 0) finds no process.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists after the browser left: kill(pid, 0) = %v", pid, err)
	}
	if running, waiting := s.queue.state(); running != 0 || waiting != 0 {
		t.Errorf("after cancel: %d running, %d waiting; want 0, 0", running, waiting)
	}
	if n := s.children.Load(); n != 0 {
		t.Errorf("%d children alive", n)
	}
}

// treeState is every file of a folder with its size, mode and time.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %v %d", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// No GET writes to the store: the tree is the same, file for file, after every kind of request.
func TestGetNeverWrites(t *testing.T) {
	f := newFixture(t)
	before := treeState(t, f.root)
	h := f.server(t, 1).Handler()
	for _, target := range []string{
		"/", "/runs/" + f.cond, "/runs/" + f.running, "/runs/" + f.cond + "/loss.png", "/runs/" + f.cond + "/files/config.toml",
		"/api/runs/" + f.running + "/progress", "/sweeps/" + f.sweep + "/", "/generate?run=" + f.cond, "/compare",
		"/api/generate?run=" + f.cond + "&steps=3", "/image.png?run=" + f.cond, "/image.gif?run=" + f.uncond, "/runs/../x",
	} {
		get(t, h, target)
	}
	after := treeState(t, f.root)
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s changed: %q → %q", p, before[p], v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		}
	}
}

// A sweep's report is built again when the store changes, and not otherwise.
func TestReportNeverStale(t *testing.T) {
	f := newFixture(t)
	s := f.server(t, 1)
	h := s.Handler()
	m, err := f.st.ReadManifest(f.sweep)
	if err != nil {
		t.Fatal(err)
	}
	first := get(t, h, "/sweeps/"+f.sweep+"/results.csv").Body.String()
	stamp := s.reports.built[f.sweep].stamp
	get(t, h, "/sweeps/"+f.sweep+"/")
	if s.reports.built[f.sweep].stamp != stamp {
		t.Error("the report was rebuilt with nothing changed")
	}
	hash := m.Runs[0].Hash
	sum, err := f.st.ReadSummary(hash)
	if err != nil {
		t.Fatal(err)
	}
	sum.FinalLoss = 0.123456789
	if err := f.st.WriteSummary(hash, sum); err != nil {
		t.Fatal(err)
	}
	second := get(t, h, "/sweeps/"+f.sweep+"/results.csv").Body.String()
	if second == first || !strings.Contains(second, "0.123456789") && !strings.Contains(second, "0.1235") {
		t.Errorf("results.csv after the summary changed does not show the new loss:\n%s", clip(second))
	}
}

func TestProgressFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := RunProgress{Updated: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), PID: 42, ProgressReport: progressReport(2, 5, 0.25)}
	if err := WriteRunProgress(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRunProgress(dir)
	want.Version = progressVersion
	if err != nil || got != want {
		t.Errorf("read %+v, %v; want %+v", got, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, ProgressFile), []byte(`{"version":99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRunProgress(dir); err == nil {
		t.Error("a progress file of another version must not read")
	}
	if _, err := ReadRunProgress(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestQueueUnit(t *testing.T) {
	q := newQueue(2)
	r1, _ := q.acquire(context.Background(), func(int) { t.Error("a free slot must not queue") })
	r2, _ := q.acquire(context.Background(), func(int) { t.Error("a free slot must not queue") })
	if running, _ := q.state(); running != 2 {
		t.Fatalf("%d running, want 2", running)
	}
	got := make(chan func(), 1)
	go func() {
		r, _ := q.acquire(context.Background(), func(int) {})
		got <- r
	}()
	waitFor(t, "a waiter", func() bool { _, w := q.state(); return w == 1 })
	r1()
	r1() // a second release is a no-op
	r3 := <-got
	if running, waiting := q.state(); running != 2 || waiting != 0 {
		t.Errorf("after handing on: %d running, %d waiting; want 2, 0", running, waiting)
	}
	r2()
	r3()
	if running, _ := q.state(); running != 0 {
		t.Errorf("%d running after all released", running)
	}
	// A cancelled context never gets a slot when none is free.
	q = newQueue(1)
	hold, _ := q.acquire(context.Background(), func(int) {})
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	_, err := q.acquire(ctx, func(int) { once.Do(cancel) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	hold()
	if running, waiting := q.state(); running != 0 || waiting != 0 {
		t.Errorf("%d running, %d waiting", running, waiting)
	}
}
