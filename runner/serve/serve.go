// Package serve implements `runner serve`: a local web server that browses a run store (its
// sweeps' reports, rendered from the store on request; every run's status, config, metrics,
// loss curve and grids; a running run's live progress) and generates images from a finished
// run in the browser, streaming the denoising over server-sent events.
//
// Generation runs in a child process of the runner binary (GenerateCommand), as training does,
// because a libtorch failure inside gotch ends the process that meets it. Children run at most
// Options.Slots at a time; the others wait in line and are told their place. A browser that
// leaves cancels its generation: the child is killed.
//
// Every path the server opens comes from the store's own index (see index): a request names a
// run by its hash or a sweep by its name, and only names found in the store are joined into
// paths. GET requests never write to the store. All pages are html/template, so all text is
// escaped. A bad request gets a 400 with a message.
package serve

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// Options configure a Server.
type Options struct {
	Store *store.Store
	// Exe is the runner binary; a generation runs `Exe _generate --store … --run …`.
	Exe string
	// ChildEnv is added to the environment of every generation child (e.g. DDPMLAB_THREADS=2).
	ChildEnv []string
	// Slots is how many generations run at once (at least 1); the rest queue.
	Slots int
	// ReportDir is where sweep reports are built, outside the store; "" = a temporary folder.
	ReportDir string
	// Public allows requests for any Host; otherwise only loopback names (localhost,
	// 127.0.0.1, ::1) are served, which keeps other web pages from reaching the server through
	// DNS rebinding.
	Public  bool
	Version string
	Log     zerolog.Logger
}

// Server is the web server of one store. Its Handler is safe for concurrent use.
type Server struct {
	opts     Options
	queue    *queue
	reports  *reportCache
	mux      *http.ServeMux
	children atomic.Int64 // generation children alive now
}

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"short": store.Short,
	"pct":   func(a, b int) int { return 100 * a / max(b, 1) },
}).ParseFS(templateFS, "templates/*.html"))

// New makes a server. It fails if the report folder cannot be made.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("serve: Options.Store is nil")
	}
	if opts.ReportDir == "" {
		dir, err := os.MkdirTemp("", "ddpmlab-serve-reports-")
		if err != nil {
			return nil, fmt.Errorf("serve: report folder: %w", err)
		}
		opts.ReportDir = dir
	}
	s := &Server{opts: opts, queue: newQueue(opts.Slots), reports: newReportCache(opts.ReportDir)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /runs/{hash}", s.handleRun)
	mux.HandleFunc("GET /runs/{hash}/files/{file...}", s.handleRunFile)
	mux.HandleFunc("GET /runs/{hash}/loss.png", s.handleLossPNG)
	mux.HandleFunc("GET /api/runs/{hash}/progress", s.handleProgress)
	mux.HandleFunc("GET /sweeps/{name}/{file...}", s.handleSweep)
	// A report's "all sweeps" link points at the report folder's index: the store's page here.
	mux.Handle("GET /sweeps/index.html", http.RedirectHandler("/", http.StatusFound))
	mux.Handle("GET /sweeps/{$}", http.RedirectHandler("/", http.StatusFound))
	mux.HandleFunc("GET /generate", s.handleGeneratePage)
	mux.HandleFunc("GET /compare", s.handleComparePage)
	mux.HandleFunc("GET /api/generate", s.handleGenerateStream)
	mux.HandleFunc("GET /api/queue", s.handleQueue)
	mux.HandleFunc("GET /image.png", s.handleImage)
	mux.HandleFunc("GET /image.gif", s.handleImage)
	s.mux = mux
	return s, nil
}

// Close removes the report folder if New made it.
func (s *Server) Close() error { return s.reports.close() }

// Handler is the server's HTTP handler: the routes behind the host check, security headers
// and a recover that turns a panic into a plain 500.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'")
		if !s.opts.Public && !loopbackHost(r.Host) {
			http.Error(w, "this server answers only to localhost (start it with --public to serve other names)", http.StatusMisdirectedRequest)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.opts.Log.Error().Str("path", r.URL.Path).Interface("panic", v).Msg("handler panicked")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		s.mux.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine's loopback interface.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listen address (host:port) binds only the loopback
// interface; an empty host (all interfaces) is not.
func IsLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return false, nil
	}
	return loopbackHost(host), nil
}

// ListenAndServe serves on addr until ctx ends, then shuts down, giving requests in flight 5 s
// (generations in flight are cancelled with their requests). ready, if not nil, is called
// with the bound address once the server listens.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// No WriteTimeout: a generation's event stream lasts as long as the generation.
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return srv.Close()
	}
	return nil
}

// fail answers err: 400 for a bad request, 404 for an unknown run, sweep or file, else 500
// with a plain message (the error itself is logged, not shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case isBadRequest(err):
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
	case errors.Is(err, errNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, context.Canceled):
		// The client left; nothing to answer.
	default:
		s.opts.Log.Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
		http.Error(w, "internal error (see the server's log)", http.StatusInternalServerError)
	}
}

// render executes a page template; a template error is logged and answered with a 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf strings.Builder
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.fail(w, r, fmt.Errorf("template %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(buf.String()))
}
