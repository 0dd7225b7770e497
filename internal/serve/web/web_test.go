package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/accord-build/accord/internal/queue"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGolden pins the pages' HTML (go test -update rewrites testdata/).
func TestGolden(t *testing.T) {
	h := New(&fakeRuns{jobs: testJobs()}, testEvidence, Options{})
	for _, tc := range []struct{ path, golden string }{
		{"/", "index.html"},
		{"/runs/r2", "run-r2.html"},
		{"/runs/r3", "run-r3.html"},
		{"/runs/r4", "run-r4.html"},
		{"/runs/r1", "run-r1.html"},
		{"/runs/r9", "not-found.html"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got := body(t, get(t, h, "GET", tc.path))
			file := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("GET %s differs from %s (-want +got; go test -update if intended):\n%s", tc.path, file, diff)
			}
		})
	}
}

// scan parses a page and fails on any element or attribute that markup
// from a payload could have made: script, img, svg, iframe, object, embed,
// link, on* handlers, javascript: URLs, and meta other than ours.
func scan(t *testing.T, page string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	styles := 0 // the layout's <style> and <title>
	defer func() {
		if styles != 2 {
			t.Errorf("page has %d style and title elements, want the layout's 2", styles)
		}
	}()
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("parsing page: %v", z.Err())
			}
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "img", "svg", "iframe", "object", "embed", "link", "form", "base", "input", "audio", "video":
				t.Errorf("page has an element <%s %v> that no template writes", tok.Data, tok.Attr)
			case "style", "title":
				styles++
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "style" {
					t.Errorf("page has attribute %s=%q on <%s>", a.Key, a.Val, tok.Data)
				}
				if (a.Key == "href") && !strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "https://") {
					t.Errorf("page links %q", a.Val)
				}
			}
		}
	}
}

// TestEscapesPayloadText puts markup into every field a webhook payload
// controls (commit message, branch, sender, repository, clone URL, logs,
// errors) and checks that the pages show it as text and that it made no
// element or attribute.
func TestEscapesPayloadText(t *testing.T) {
	for _, s := range []string{
		`<script>alert(1)</script>`,
		`"><img src=x onerror=alert(1)>`,
		`'><svg onload=alert(1)>`,
		`</pre></details><script>alert(1)</script>`,
		`</title><iframe src=//evil>`,
		`<!--<script>alert(1)//-->`,
		`<a href="javascript:alert(1)">x</a>`,
		`<style>*{display:none}</style><form action=//evil><input name=q>`,
		`<meta http-equiv="refresh" content="0;url=//evil">`,
	} {
		t.Run(s, func(t *testing.T) {
			h := New(&fakeRuns{jobs: hostile(testJobs(), s)}, testEvidence, Options{})
			for _, path := range []string{"/", "/runs/r1", "/runs/r2", "/runs/r3", "/runs/r4"} {
				page := body(t, get(t, h, "GET", path))
				scan(t, page)
				if strings.Count(page, "<meta") != 3 {
					t.Errorf("GET %s: %d meta elements, want the 3 of the layout", path, strings.Count(page, "<meta"))
				}
				if !strings.Contains(page, templateEscaped(s)) {
					t.Errorf("GET %s does not show %q as text", path, s)
				}
			}
		})
	}
}

// templateEscaped is how html/template writes s in text.
func templateEscaped(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

// TestCommitLinks: a commit links to its forge only from an https clone URL
// and a full SHA.
func TestCommitLinks(t *testing.T) {
	for _, tc := range []struct{ clone, commit, want string }{
		{"https://github.com/acme/app.git", commitMain, "https://github.com/acme/app/commit/" + commitMain},
		{"https://ghe.example/acme/app", commitMain, "https://ghe.example/acme/app/commit/" + commitMain},
		{"https://github.com/acme/app.git", "8d3c1f0", ""},
		{"https://github.com/acme/app.git", "HEAD", ""},
		{"javascript:alert(1)//github.com/a/b", commitMain, ""},
		{"http://github.com/acme/app.git", commitMain, ""},
		{"https://user:tok@github.com/acme/app.git", commitMain, ""},
		{"https://github.com/acme/app.git?x=1", commitMain, ""},
		{"https://github.com/app.git", commitMain, ""},
		{"git@github.com:acme/app.git", commitMain, ""},
		{"", commitMain, ""},
	} {
		if got := commitURL(tc.clone, tc.commit); got != tc.want {
			t.Errorf("commitURL(%q, %q) = %q, want %q", tc.clone, tc.commit, got, tc.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0.0s"}, {0.44, "0.4s"}, {12.34, "12.3s"}, {59.94, "59.9s"}, {60, "1m00s"}, {84.2, "1m24s"},
		{3725, "1h02m05s"}, {-1, ""},
	} {
		if got := seconds(tc.in); got != tc.want {
			t.Errorf("seconds(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := stamp(at(5, 0)); got != "2026-12-01T13:05:00Z" {
		t.Errorf("stamp = %q, want UTC RFC 3339", got)
	}
}

// TestRoutes checks every route's code, type and headers, errors included.
func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	runs := &fakeRuns{jobs: testJobs()}
	h := New(runs, testEvidence, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, tc := range []struct {
		method, path string
		code         int
		ctype        string
		has          string
		disposition  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `href="/runs/r3"`, ""},
		{"HEAD", "/", 200, "text/html; charset=utf-8", "", ""},
		{"GET", "/runs/r3", 200, "text/html; charset=utf-8", "fetch-source", ""},
		{"GET", "/runs/r3.json", 200, "application/json", `"id": "r3"`, ""},
		{"GET", "/runs/r3/evidence/0", 200, "application/json", string(provenanceJSON), `inline; filename="r3-0-provenance.json"`},
		{"GET", "/runs/r2/evidence/0", 200, "application/octet-stream", "<b>not json</b>", `attachment; filename="r2-0-divergence"`},
		{"GET", "/runs/r2/evidence/1", 404, "text/html; charset=utf-8", "no longer stored", ""},
		{"GET", "/runs/r2/evidence/2", 502, "text/html; charset=utf-8", "could not be read", ""},
		{"GET", "/runs/r2/evidence/3", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r2/evidence/01", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r2/evidence/+1", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r2/evidence/-1", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r2/evidence/x", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r4/evidence/0", 404, "text/html; charset=utf-8", "no such evidence", ""},
		{"GET", "/runs/r9", 404, "text/html; charset=utf-8", "There is no run r9", ""},
		{"GET", "/runs/r9.json", 404, "text/html; charset=utf-8", "There is no run r9", ""},
		{"GET", "/runs/r%3Cb%3E", 404, "text/html; charset=utf-8", "run ids look like", ""},
		{"GET", "/runs/..%2f..%2fetc", 404, "text/html; charset=utf-8", "run ids look like", ""},
		{"GET", "/nope", 404, "text/plain; charset=utf-8", "not found", ""},
		{"POST", "/", 405, "text/plain; charset=utf-8", "", ""},
		{"DELETE", "/runs/r3", 405, "text/plain; charset=utf-8", "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := get(t, h, tc.method, tc.path)
			b := body(t, res)
			if res.StatusCode != tc.code {
				t.Errorf("code %d, want %d; body:\n%s", res.StatusCode, tc.code, b)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if !strings.Contains(b, tc.has) {
				t.Errorf("body lacks %q:\n%s", tc.has, b)
			}
			if got := res.Header.Get("Content-Disposition"); got != tc.disposition {
				t.Errorf("Content-Disposition %q, want %q", got, tc.disposition)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
				t.Errorf("Content-Security-Policy %q allows more than inline styles", csp)
			}
			if strings.Contains(tc.path, "/evidence/") && res.StatusCode == 200 && !strings.Contains(csp, "sandbox") {
				t.Errorf("evidence served without a sandbox policy: %q", csp)
			}
		})
	}
	if !strings.Contains(logs.String(), "store unreachable") {
		t.Errorf("the store's error was not logged:\n%s", logs.String())
	}
}

// TestRunsErrors: a failing queue gives a 500 page that hides the error
// (it goes to the log) and no evidence store gives 404s.
func TestRunsErrors(t *testing.T) {
	var logs bytes.Buffer
	h := New(&fakeRuns{err: errors.New("bolt: database not open")}, nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, path := range []string{"/", "/runs/r3", "/runs/r3.json", "/runs/r3/evidence/0"} {
		res := get(t, h, "GET", path)
		b := body(t, res)
		if res.StatusCode != 500 || strings.Contains(b, "bolt") {
			t.Errorf("GET %s: %d %q, want a 500 that does not show the error", path, res.StatusCode, b)
		}
	}
	if strings.Count(logs.String(), "bolt: database not open") != 4 {
		t.Errorf("want 4 logged errors:\n%s", logs.String())
	}
	h = New(&fakeRuns{jobs: testJobs()}, nil, Options{})
	if res := get(t, h, "GET", "/runs/r3/evidence/0"); res.StatusCode != 404 {
		t.Errorf("evidence without a store: %d, want 404", res.StatusCode)
	}
}

// TestJSON: the run's JSON is the queue's Job.
func TestJSON(t *testing.T) {
	h := New(&fakeRuns{jobs: testJobs()}, testEvidence, Options{})
	for _, want := range testJobs() {
		var got queue.Job
		if err := json.Unmarshal([]byte(body(t, get(t, h, "GET", "/runs/"+want.ID+".json"))), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("%s.json (-want +got):\n%s", want.ID, diff)
		}
	}
}

// TestOptions: Prefix goes in front of every link, Limit reaches the
// queue, Refresh reloads only pages with live runs, Title names the site.
func TestOptions(t *testing.T) {
	runs := &fakeRuns{jobs: testJobs()}
	h := New(runs, testEvidence, Options{Prefix: "ci/", Limit: 3, Refresh: 5 * time.Second, Title: "acme <ci>"})
	index := body(t, get(t, h, "GET", "/"))
	for _, want := range []string{`href="/ci/runs/r4"`, `href="/ci/runs/r4.json"`, `href="/ci/runs/r2/evidence/0"`, `href="/ci/"`, `content="5"`, "acme &lt;ci&gt;"} {
		if !strings.Contains(index, want) {
			t.Errorf("index lacks %s", want)
		}
	}
	if strings.Contains(index, `run-r1"`) {
		t.Error("index lists r1 beyond Limit 3")
	}
	if diff := cmp.Diff([]int{3}, runs.limits); diff != "" {
		t.Errorf("limits asked of the queue (-want +got):\n%s", diff)
	}
	if !strings.Contains(body(t, get(t, h, "GET", "/runs/r4")), `http-equiv="refresh"`) {
		t.Error("a queued run's page does not refresh")
	}
	if strings.Contains(body(t, get(t, h, "GET", "/runs/r3")), `http-equiv="refresh"`) {
		t.Error("a finished run's page refreshes")
	}
	if strings.Contains(body(t, get(t, New(runs, nil, Options{}), "GET", "/")), `http-equiv="refresh"`) {
		t.Error("refresh without Options.Refresh")
	}
}

// TestSteps: tasks are grouped by builder, the primary first, and only the
// logs of failed steps are open.
func TestSteps(t *testing.T) {
	h := &handler{opts: Options{}}
	jobs := testJobs()
	v := h.detailView(&jobs[2])
	var got []string
	for _, b := range v.Builders {
		for _, tk := range b.Tasks {
			for _, s := range tk.Steps {
				got = append(got, b.Name+"/"+tk.Name+"/"+s.Name+"/"+map[bool]string{true: "open", false: "closed"}[s.Open])
			}
		}
	}
	want := []string{"runc-a/build/compile/closed", "crun-b/build/compile/open"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// FuzzEscape: whatever text a payload carries, the pages make no element
// or attribute of it.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{hostileText, hostileRef, hostileLog, "<svg/onload=alert(1)>", "\x00<script>", "<<script>>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := New(&fakeRuns{jobs: hostile(testJobs(), s)}, testEvidence, Options{})
		for _, path := range []string{"/", "/runs/r2"} {
			res := get(t, h, "GET", path)
			if res.StatusCode != 200 {
				t.Fatalf("GET %s: %d", path, res.StatusCode)
			}
			scan(t, body(t, res))
		}
	})
}
