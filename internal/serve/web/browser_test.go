package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// chromiumPath finds the Chromium the browser test drives: ACCORD_CHROMIUM,
// else chromium or chromium-browser on PATH (hack/lib.sh's install_deps
// installs Debian's chromium). Missing, the test skips, or fails under
// ACCORD_REQUIRE_CHROMIUM=1 (as hack/test.sh runs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser"}
	if p := os.Getenv("ACCORD_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium (looked for %s): install Debian's chromium (hack/lib.sh install_deps) or set ACCORD_CHROMIUM", strings.Join(names, ", "))
	if os.Getenv("ACCORD_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts a headless Chromium with its own profile, a phone's
// viewport (390×844), and a deadline for the whole test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancelDeadline)
	alloc, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// follow clicks the link and waits until the browser has loaded its page.
func follow(t *testing.T, ctx context.Context, base, href string) {
	t.Helper()
	sel := fmt.Sprintf(`a[href=%q]`, href)
	if err := chromedp.Do(ctx, chromedp.Click(sel, chromedp.NodeVisible)); err != nil {
		t.Fatalf("clicking %s: %v", sel, err)
	}
	for {
		// While the click navigates, the page asked may be gone
		// ("Inspected target navigated or closed"): ask again.
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil {
			state, err2 := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState`))
			if err2 == nil && loc == base+href && state == "complete" {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("clicking %s did not open %s (at %s, last error %v)", sel, href, loc, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fitsPhone checks the page is laid out for the phone (the viewport meta
// took effect) and that nothing overflows it sideways.
func fitsPhone(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	w := eval[[]int](t, ctx, `[window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]`)
	if w[0] != 390 || w[1] > w[0] || w[2] > w[0] {
		t.Errorf("%s: innerWidth %d (want 390), scrollWidth %d and body %d (want at most innerWidth)", page, w[0], w[1], w[2])
	}
}

// noInjected checks the markup in payload text made no element.
func noInjected(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	n := eval[int](t, ctx, `document.querySelectorAll('script, img, svg, iframe, object, embed, [onerror], [onload], a[href^="javascript"]').length`)
	if n != 0 {
		t.Errorf("%s: %d elements made from payload markup", page, n)
	}
}

// TestBrowser loads the pages in a real headless Chromium at a phone's
// size: the index lists the runs, a run's link opens its page with its
// steps and logs, the evidence link returns the JSON, the markup in a
// commit message and a branch name made no element, and nothing overflows.
func TestBrowser(t *testing.T) {
	start := time.Now()
	srv := httptest.NewServer(New(&fakeRuns{jobs: testJobs()}, testEvidence, Options{}))
	defer srv.Close()
	ctx := browser(t)
	defer func() { t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond)) }()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("loading the index: %v", err)
	}
	runs := eval[[]string](t, ctx, `[...document.querySelectorAll('li.run')].map(e => e.id)`)
	if diff := cmp.Diff([]string{"run-r4", "run-r3", "run-r2", "run-r1"}, runs); diff != "" {
		t.Errorf("runs listed (-want +got):\n%s", diff)
	}
	text := eval[string](t, ctx, `document.body.innerText`)
	for _, want := range []string{hostileText, "refs/heads/\"><img src=x onerror=alert(3)>", "builders disagree", "released", "sha256:4b825dc642cb", "runc-a, crun-b"} {
		if !strings.Contains(text, want) {
			t.Errorf("index does not show %q", want)
		}
	}
	noInjected(t, ctx, "index")
	fitsPhone(t, ctx, "index")

	follow(t, ctx, srv.URL, "/runs/r2")
	steps := eval[[]string](t, ctx, `[...document.querySelectorAll('.step')].map(e => e.id + (e.open ? ' open' : ''))`)
	if diff := cmp.Diff([]string{"t0-s0", "t1-s0 open"}, steps); diff != "" {
		t.Errorf("steps of r2 (-want +got):\n%s", diff)
	}
	if got := eval[string](t, ctx, `document.querySelector('#t1-s0 pre').textContent`); got != hostileLog {
		t.Errorf("failed step's log shows %q, want %q", got, hostileLog)
	}
	if got := eval[string](t, ctx, `document.querySelector('.title').textContent`); got != hostileText {
		t.Errorf("title shows %q, want %q", got, hostileText)
	}
	noInjected(t, ctx, "run r2")
	fitsPhone(t, ctx, "run r2")

	follow(t, ctx, srv.URL, "/")
	follow(t, ctx, srv.URL, "/runs/r3")
	if got := eval[int](t, ctx, `document.querySelectorAll('.builder .step').length`); got != 6 {
		t.Errorf("r3 shows %d steps, want 6", got)
	}
	fitsPhone(t, ctx, "run r3")
	follow(t, ctx, srv.URL, "/runs/r3/evidence/0")
	if got := eval[string](t, ctx, `document.querySelector('pre') ? document.querySelector('pre').textContent : document.body.textContent`); got != string(provenanceJSON) {
		t.Errorf("evidence link shows %q, want the provenance %s", got, provenanceJSON)
	}
}
