package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/queue"
)

// Runs is where the pages read runs from (the queue implements it).
type Runs interface {
	// Jobs returns up to limit runs, newest first.
	Jobs(ctx context.Context, limit int) ([]queue.Job, error)
	// Job returns the run with that id; false when there is none.
	Job(ctx context.Context, id string) (*queue.Job, bool, error)
}

// Evidence reads stored evidence (provenance, SBOMs, divergence reports,
// verification summaries) by the Ref of a [queue.RecordEvidence].
type Evidence interface {
	// Fetch returns the stored bytes of ev, evidence of job; an error
	// wrapping [fs.ErrNotExist] when nothing is stored under its Ref.
	Fetch(ctx context.Context, job *queue.Job, ev queue.RecordEvidence) ([]byte, error)
}

// Options tune the pages. The zero value is ready to use.
type Options struct {
	// Title names the server in every page's heading; default "accord".
	Title string
	// Limit is how many recent runs the index lists; default 50.
	Limit int
	// Prefix is the path the handler is mounted under ("/ci"), put in
	// front of every link; default none. The handler itself sees paths
	// without it (mount it with [http.StripPrefix]).
	Prefix string
	// Refresh, when positive, makes the index and the pages of live runs
	// reload themselves that often (a meta refresh: no script); default
	// off.
	Refresh time.Duration
	// Logger gets the errors of Runs and Evidence (the pages show only
	// that something went wrong); default discards.
	Logger *slog.Logger
}

// DefaultLimit is how many runs the index lists unless Options.Limit says.
const DefaultLimit = 50

// contentSecurityPolicy allows nothing but inline styles: the pages have no
// script, image, frame, form or font, so markup that slipped through could
// not run or load anything either.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// evidencePolicy is for stored evidence: shown as data, never as a page.
const evidencePolicy = "default-src 'none'; sandbox"

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"class": class}).ParseFS(templateFS, "templates/*.html"))

// class makes a CSS class word of a status: lower case letters only.
func class(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
}

// runID is the shape of a run id in a path ("r12"); anything else is not a
// run.
var runID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type handler struct {
	runs Runs
	ev   Evidence
	opts Options
	log  *slog.Logger
}

// New returns the status pages: GET / (recent runs), GET /runs/{id} (one
// run: tasks, steps, timings, logs, artifacts, evidence), GET
// /runs/{id}.json (the run as JSON) and GET /runs/{id}/evidence/{n} (the
// stored bytes of the run's n-th evidence). ev may be nil: evidence links
// then answer 404. The handler is safe for concurrent use.
func New(runs Runs, ev Evidence, opts Options) http.Handler {
	if opts.Title == "" {
		opts.Title = "accord"
	}
	if opts.Limit <= 0 {
		opts.Limit = DefaultLimit
	}
	opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	h := &handler{runs: runs, ev: ev, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /runs/{id}", h.run)
	mux.HandleFunc("GET /runs/{id}/evidence/{n}", h.evidence)
	return secureHeaders(mux)
}

// secureHeaders sets the headers every answer carries, errors included.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	jobs, err := h.runs.Jobs(r.Context(), h.opts.Limit)
	if err != nil {
		h.log.ErrorContext(r.Context(), "listing runs for the status page", "err", err)
		h.fail(w, http.StatusInternalServerError, "The runs could not be read; the server's log says why.")
		return
	}
	v := indexView{page: h.page("Runs"), Runs: make([]runView, 0, len(jobs))}
	for i := range jobs {
		rv := h.runView(&jobs[i])
		if !jobs[i].State.Final() {
			v.Refresh = h.refresh()
		}
		v.Runs = append(v.Runs, rv)
	}
	if len(jobs) == 0 {
		v.Refresh = h.refresh()
	}
	h.render(w, http.StatusOK, "index.html", v)
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	id, asJSON := strings.CutSuffix(r.PathValue("id"), ".json")
	job, ok := h.lookup(w, r, id)
	if !ok {
		return
	}
	if asJSON {
		b, err := json.MarshalIndent(job, "", "  ")
		if err != nil {
			h.log.ErrorContext(r.Context(), "encoding run", "run", id, "err", err)
			h.fail(w, http.StatusInternalServerError, "The run could not be encoded.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(b, '\n'))
		return
	}
	v := h.detailView(job)
	h.render(w, http.StatusOK, "run.html", v)
}

// lookup finds the run named in the path, or answers 404 or 500 itself.
func (h *handler) lookup(w http.ResponseWriter, r *http.Request, id string) (*queue.Job, bool) {
	if !runID.MatchString(id) {
		h.fail(w, http.StatusNotFound, "No such run: run ids look like r12.")
		return nil, false
	}
	job, ok, err := h.runs.Job(r.Context(), id)
	if err != nil {
		h.log.ErrorContext(r.Context(), "reading run for the status page", "run", id, "err", err)
		h.fail(w, http.StatusInternalServerError, "The run could not be read; the server's log says why.")
		return nil, false
	}
	if !ok || job == nil {
		h.fail(w, http.StatusNotFound, fmt.Sprintf("There is no run %s (the index lists the recent runs).", id))
		return nil, false
	}
	return job, true
}

func (h *handler) evidence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	job, ok := h.lookup(w, r, id)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || strconv.Itoa(n) != r.PathValue("n") || job.Record == nil || n < 0 || n >= len(job.Record.Evidence) {
		h.fail(w, http.StatusNotFound, fmt.Sprintf("Run %s has no such evidence (its page links what it has).", id))
		return
	}
	if h.ev == nil {
		h.fail(w, http.StatusNotFound, "This server shows no stored evidence.")
		return
	}
	e := job.Record.Evidence[n]
	b, err := h.ev.Fetch(r.Context(), job, e)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.fail(w, http.StatusNotFound, fmt.Sprintf("The %s of run %s is no longer stored.", e.Kind, id))
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "fetching evidence", "run", id, "evidence", n, "ref", e.Ref, "err", err)
		h.fail(w, http.StatusBadGateway, "The evidence could not be read from the store; the server's log says why.")
		return
	}
	writeEvidence(w, fmt.Sprintf("%s-%d-%s", id, n, fileWord(e.Kind)), b)
}

// writeEvidence answers stored bytes as data that no browser runs: JSON
// shown inline as JSON, anything else only as a download.
func writeEvidence(w http.ResponseWriter, name string, b []byte) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", evidencePolicy)
	if json.Valid(b) {
		hd.Set("Content-Type", "application/json")
		hd.Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name+".json"))
	} else {
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// fileWord keeps the letters, digits and dashes of s, for a file name.
func fileWord(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
	if s == "" || len(s) > 32 {
		return "evidence"
	}
	return s
}

// render executes a page into a buffer first, so a template error is a
// clean 500 and never half a page.
func (h *handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("rendering status page", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail answers an error page with a message for people.
func (h *handler) fail(w http.ResponseWriter, code int, msg string) {
	h.render(w, code, "error.html", errorView{page: h.page(http.StatusText(code)), Code: code, Message: msg})
}

func (h *handler) refresh() int {
	if h.opts.Refresh <= 0 {
		return 0
	}
	return max(1, int(h.opts.Refresh.Round(time.Second)/time.Second))
}
