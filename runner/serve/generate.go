package serve

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/ddpmlab/ddpmlab/runner/config"
)

// generatePage is the generation form and its live view.
type generatePage struct {
	Title    string
	Runs     []*runEntry // the runs that can generate
	Run      *runEntry   // the chosen one; nil when the store has none
	P        Params
	Query    template.URL // P's canonical query, the stream's and the share link's (built from checked values)
	Auto     bool         // start at once (go=1 in the URL)
	Samplers []string
	MaxSteps int
	MaxSeed  int64
	MaxN     int
	MaxW     int
	MaxAG    int
	Error    string
}

func (s *Server) handleGeneratePage(w http.ResponseWriter, r *http.Request) {
	q, err := checkQuery(r.URL.RawQuery, []string{""}, "go")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := generatePage{Title: "generate", Runs: idx.generatable(), Samplers: config.Samplers,
		MaxSeed: maxSeed, MaxN: maxImages, MaxW: maxGuidance, MaxAG: maxAutoGuidance, Auto: q.Get("go") == "1"}
	if len(page.Runs) == 0 {
		s.render(w, r, "generate.html", page)
		return
	}
	if !q.Has("run") {
		q.Set("run", page.Runs[0].Hash)
	}
	p, err := parseParams(q, "", idx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page.Run, _ = idx.run(p.Run)
	page.P, page.Query = p, template.URL(p.Query())
	page.MaxSteps = page.Run.cfg.Diffusion.Timesteps
	s.render(w, r, "generate.html", page)
}

// comparePage shows one seed through two runs or two samplers.
type comparePage struct {
	Title       string
	Runs        []*runEntry
	Samplers    []string
	Left, Right Params
	LeftRun     *runEntry
	RightRun    *runEntry
	LeftQuery   template.URL
	RightQuery  template.URL
	Auto        bool
}

// compareKeys are the settings the right side may change; the seed, and so the start noise,
// is always the left side's.
var compareKeys = []string{"run", "class", "sampler", "steps", "w", "ag", "every"}

func (s *Server) handleComparePage(w http.ResponseWriter, r *http.Request) {
	q, err := checkQuery(r.URL.RawQuery, []string{"", "2"}, "go")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if q.Has("seed2") || q.Has("n2") {
		s.fail(w, r, badf("seed2, n2: a comparison uses one seed and one number of images for both sides"))
		return
	}
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := comparePage{Title: "compare", Runs: idx.generatable(), Samplers: config.Samplers, Auto: q.Get("go") == "1"}
	if len(page.Runs) == 0 {
		s.render(w, r, "compare.html", page)
		return
	}
	if !q.Has("run") {
		q.Set("run", page.Runs[0].Hash)
	}
	if page.Left, err = parseParams(q, "", idx); err != nil {
		s.fail(w, r, err)
		return
	}
	// The right side: the left's settings, changed where a …2 key says so.
	q2 := url.Values{}
	for _, k := range paramKeys {
		if v, ok := q[k]; ok {
			q2[k] = v
		}
	}
	for _, k := range compareKeys {
		if v, ok := q[k+"2"]; ok {
			q2[k] = v
		}
	}
	if q.Has("run2") && !q.Has("class2") {
		if r2, err := idx.run(q.Get("run2")); err == nil && len(r2.Classes) == 0 {
			q2.Del("class") // an unconditional run compared with a conditional one
		}
	}
	if q.Has("run2") && !q.Has("ag2") {
		q2.Del("ag") // another run: its own autoguidance, which its own guide allows
	}
	if page.Right, err = parseParams(q2, "", idx); err != nil {
		s.fail(w, r, badf("right side: %v", err))
		return
	}
	page.LeftRun, _ = idx.run(page.Left.Run)
	page.RightRun, _ = idx.run(page.Right.Run)
	page.LeftQuery, page.RightQuery = template.URL(page.Left.Query()), template.URL(page.Right.Query())
	s.render(w, r, "compare.html", page)
}

// streamParams reads the parameters of a generation request (the stream or an image).
func (s *Server) streamParams(r *http.Request) (Params, error) {
	q, err := checkQuery(r.URL.RawQuery, []string{""})
	if err != nil {
		return Params{}, err
	}
	idx, err := readIndex(s.opts.Store)
	if err != nil {
		return Params{}, err
	}
	return parseParams(q, "", idx)
}

// handleGenerateStream runs one generation and streams it as server-sent events: "params"
// (the canonical query), "queue" (the place in line, while waiting), then the child's "start",
// "frame"s and "done", or "failed" with a message. A client that leaves cancels it.
func (s *Server) handleGenerateStream(w http.ResponseWriter, r *http.Request) {
	p, err := s.streamParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, fmt.Errorf("response writer cannot stream"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data []byte) error {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	sendJSON := func(event string, v any) error {
		b, _ := json.Marshal(v)
		return send(event, b)
	}
	ctx := r.Context()
	_ = sendJSON("params", map[string]string{"query": p.Query()})
	release, err := s.queue.acquire(ctx, func(pos int) {
		running, waiting := s.queue.state()
		_ = sendJSON("queue", map[string]int{"position": pos, "running": running, "waiting": waiting})
	})
	if err != nil {
		return // the client left while waiting
	}
	defer release()
	err = s.runChild(ctx, p, func(kind string, line []byte) error {
		if strings.ContainsAny(kind, "\r\n") {
			return nil
		}
		return send(kind, line)
	})
	if err != nil && ctx.Err() == nil {
		s.opts.Log.Warn().Err(err).Str("query", p.Query()).Msg("generation failed")
		_ = sendJSON("failed", map[string]string{"message": err.Error()})
	}
}

// handleImage runs one generation and answers its final grid (image.png) or its denoising
// animation (image.gif): the download links of a result, reproducible from the URL alone.
func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) {
	p, err := s.streamParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	release, err := s.queue.acquire(ctx, func(int) {})
	if err != nil {
		return
	}
	defer release()
	var result ChildEvent
	err = s.runChild(ctx, p, func(kind string, line []byte) error {
		if kind == EventDone {
			return json.Unmarshal(line, &result)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, ct, ext := result.PNG, "image/png", "png"
	if strings.HasSuffix(r.URL.Path, ".gif") {
		body, ct, ext = result.GIF, "image/gif", "gif"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ddpmlab_%s_seed%d.%s"`, p.Run[:12], p.Seed, ext))
	_, _ = w.Write(body)
}

func (s *Server) handleQueue(w http.ResponseWriter, r *http.Request) {
	running, waiting := s.queue.state()
	writeJSON(w, map[string]int{"running": running, "waiting": waiting, "slots": s.queue.slots})
}
