package local_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/images"
	"github.com/accord-build/accord/internal/testutil"
	"github.com/accord-build/accord/pipelines"
)

// Catalog-style definitions (pipelines/testdata/catalog-style) run
// unchanged apart from pinning their images: the catalog's golang-build in
// v1beta1 and v1, Tasks that read their image's env, write outside their
// workspaces ($HOME, /root/.cache, a new top-level directory), use a
// sidecar, an emptyDir volume, step results and a StepAction, and a matrix
// pipeline with CEL when expressions. hack/test.sh runs this package as
// root and as an unprivileged user, so each runs both ways.

// catalogStyleCase is one catalog-style pipeline run.
type catalogStyleCase struct {
	name     string
	pipeline string   // pipeline/NAME.yaml
	uses     []string // its Tasks and StepActions (NAME or NAME@VERSION)
	goImage  bool     // needs the Go builder image
	source   bool     // gets the hello module as its source workspace
	// check looks at the result of a run that succeeded.
	check func(res *engine.Result, rec *recorder) error
}

var catalogStyleCases = []catalogStyleCase{
	{name: "golang-build v1beta1", pipeline: "golang-build", uses: []string{"golang-build@0.3"}, goImage: true, source: true, check: checkGolangBuild},
	{name: "golang-build v1", pipeline: "golang-build", uses: []string{"golang-build@0.4"}, goImage: true, source: true, check: checkGolangBuild},
	{name: "image env", pipeline: "image-env", uses: []string{"image-env"}, check: func(res *engine.Result, _ *recorder) error {
		return wantResult(res, "image-env", "report", "APP_HOME=/srv/app TOOL_MODE=strict PWD=/srv/app")
	}},
	{name: "writes outside workspaces", pipeline: "home-cache", uses: []string{"home-cache"}, check: func(res *engine.Result, rec *recorder) error {
		if out := rec.stdout("home-cache", "write"); out != "configured\ncached\nstate\n" {
			return fmt.Errorf("step write printed %q, want what it wrote under $HOME, /root/.cache and /opt", out)
		}
		return wantResult(res, "home-cache", "seen", "fresh")
	}},
	{name: "emptyDir volume", pipeline: "emptydir-cache", uses: []string{"emptydir-cache"}, check: func(res *engine.Result, _ *recorder) error {
		return wantResult(res, "emptydir-cache", "lines", "2")
	}},
	{name: "step results and a StepAction", pipeline: "step-results", uses: []string{"step-results", "write-result"}, check: func(res *engine.Result, _ *recorder) error {
		for _, r := range [][2]string{{"version", "1.2.3"}, {"greeting", "version 1.2.3"}, {"lint-exit-code", "3"}} {
			if err := wantResult(res, "step-results", r[0], r[1]); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "sidecar", pipeline: "sidecar-ping", uses: []string{"sidecar-ping"}, check: func(res *engine.Result, _ *recorder) error {
		return wantResult(res, "sidecar-ping", "reply", "PONG")
	}},
	{name: "matrix and CEL", pipeline: "matrix", uses: []string{"platform-report"}, check: checkMatrix},
}

// catalogStylePending are the cases that need another helper's work of
// issue 11 (value: the helper and what). On this branch they run and their
// failure is logged, not reported; one that succeeds fails the test, so
// that its entry is removed. The lead deletes this table after merging.
var catalogStylePending = map[string]string{}

func TestCatalogStyle(t *testing.T) {
	f := newFixture(t)
	pins := map[string]string{
		testutil.CatalogBusyboxImage: f.image,
		testutil.CatalogAppImage:     putImage(t, f, "accord.dev/test/app-runtime", appRuntimeImage(t)),
	}
	var goOnce sync.Once
	for _, tc := range catalogStyleCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.goImage {
				goOnce.Do(func() { pins[testutil.CatalogGoImage] = putImage(t, f, images.GoBuilderRef, testutil.GoImage(t)) })
			}
			err := runCatalogStyle(t, f, tc, pins)
			why, pending := catalogStylePending[tc.name]
			switch {
			case pending && err == nil:
				t.Errorf("runs now: remove %q from catalogStylePending", tc.name)
			case pending:
				t.Logf("waits on %s: %v", why, err)
			case err != nil:
				t.Fatal(err)
			}
		})
	}
}

// runCatalogStyle pins and runs the case's pipeline, and checks it.
func runCatalogStyle(t *testing.T, f *fixture, tc catalogStyleCase, pins map[string]string) error {
	ctx := context.Background()
	c, err := pipelines.FromFS(ctx, os.DirFS(testutil.PinnedCatalogStyle(t, pins, tc.uses...)), "catalog-style")
	if err != nil {
		return err
	}
	p, err := c.Resolve(ctx, testutil.PinnedCatalogStylePipeline(t, tc.pipeline, pins))
	if err != nil {
		return err
	}
	rec := &recorder{out: map[string]*lockedBuffer{}}
	b := &engine.Build{
		ID:       fmt.Sprintf("cs%d-%d", os.Getpid(), buildSeq.Add(1)),
		Pipeline: p,
		Source:   engine.Source{DateEpoch: 1700000000},
		Observer: rec,
		Timeout:  15 * time.Minute,
	}
	if tc.source {
		b.Source.Dir = testutil.CatalogStyleDir(t) + "/src/hello"
	}
	ex := f.executor()
	defer ex.Cleanup(ctx, b)
	res, err := ex.Run(ctx, b)
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return fmt.Errorf("the run failed: %s (tasks: %v)", res.Reason, statuses(res))
	}
	return tc.check(res, rec)
}

func checkGolangBuild(res *engine.Result, _ *recorder) error {
	for _, r := range res.Results {
		if r.Name == "output" {
			if !strings.Contains(r.Value.StringVal, "hello from a catalog-style build") {
				return fmt.Errorf("the built program printed %q", r.Value.StringVal)
			}
			return nil
		}
	}
	return fmt.Errorf("no pipeline result output (results: %v)", res.Results)
}

// checkMatrix: the include entry matches the GOARCH=amd64 combination and
// adds its flavor to it (Tekton's semantics), the collecting task gets the
// matrixed results as an array, and of the CEL-guarded tasks only dry-run
// runs.
func checkMatrix(res *engine.Result, _ *recorder) error {
	var got string
	for _, r := range res.Results {
		if r.Name == "platforms" {
			got = r.Value.StringVal
		}
	}
	if want := "linux/amd64-race linux/arm64-plain "; got != want {
		return fmt.Errorf("pipeline result platforms = %q, want %q", got, want)
	}
	st := statuses(res)
	if st["announce"] != engine.Skipped || st["dry-run"] != engine.Succeeded {
		return fmt.Errorf("announce %s and dry-run %s, want Skipped and Succeeded (release is false)", st["announce"], st["dry-run"])
	}
	return nil
}

// wantResult checks one string result of a task.
func wantResult(res *engine.Result, taskName, result, want string) error {
	for _, tr := range res.Tasks {
		if tr.Name != taskName {
			continue
		}
		for _, r := range tr.Results {
			if r.Name == result {
				if r.Value.StringVal != want {
					return fmt.Errorf("task %s result %s = %q, want %q", taskName, result, r.Value.StringVal, want)
				}
				return nil
			}
		}
		return fmt.Errorf("task %s has no result %s (results: %v)", taskName, result, tr.Results)
	}
	return fmt.Errorf("no task %s (tasks: %v)", taskName, statuses(res))
}

// putImage stores img under name and returns its pinned reference.
func putImage(t *testing.T, f *fixture, name string, img ggcrv1.Image) string {
	t.Helper()
	h, err := f.store.Put(context.Background(), name, img)
	if err != nil {
		t.Fatal(err)
	}
	return name + "@" + h.String()
}

// appRuntimeImage is the base image with an application's configuration,
// as a vendor's runtime image has: its own env and a working directory.
func appRuntimeImage(t *testing.T) ggcrv1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"srv/", "srv/app/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testutil.BaseImage(t), static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Env = append(cfg.Config.Env, "APP_HOME=/srv/app", "TOOL_MODE=strict")
	cfg.Config.WorkingDir = "/srv/app"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
