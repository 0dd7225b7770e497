package pipelines

import (
	"context"
	"os"
	"testing"

	"github.com/accord-build/accord/internal/testutil"
)

// catalogStylePins pins every image the catalog-style definitions name;
// loading needs a pinned reference, not the image itself.
var catalogStylePins = map[string]string{
	testutil.CatalogGoImage:      pinnedImage,
	testutil.CatalogBusyboxImage: pinnedImage,
	testutil.CatalogAppImage:     pinnedImage,
}

// catalogStyleLoads are the catalog-style pipelines, each with the Tasks
// and StepActions it uses (pipelines/testdata/catalog-style).
var catalogStyleLoads = []struct {
	pipeline string
	uses     []string
}{
	{"golang-build", []string{"golang-build@0.3"}},
	{"golang-build", []string{"golang-build@0.4"}},
	{"image-env", []string{"image-env"}},
	{"home-cache", []string{"home-cache"}},
	{"emptydir-cache", []string{"emptydir-cache"}},
	{"step-results", []string{"step-results", "write-result"}},
	{"sidecar-ping", []string{"sidecar-ping"}},
	{"matrix", []string{"platform-report"}},
}

// catalogStyleLoadPending are the catalog-style pipelines that need another
// helper's loader work of issue 11 (value: the helper). The lead deletes
// this table after merging; a pipeline listed here that loads fails the
// test, so that the entry is removed.
var catalogStyleLoadPending = map[string]string{}

// TestCatalogStyleLoads: every catalog-style Task, StepAction and Pipeline
// loads and resolves unchanged apart from pinning its images.
func TestCatalogStyleLoads(t *testing.T) {
	for _, tc := range catalogStyleLoads {
		t.Run(tc.pipeline+"/"+tc.uses[0], func(t *testing.T) {
			err := loadCatalogStyle(t, tc.pipeline, tc.uses)
			helper, pending := catalogStyleLoadPending[tc.pipeline]
			switch {
			case pending && err == nil:
				t.Errorf("loads now: remove %q from catalogStyleLoadPending", tc.pipeline)
			case pending:
				t.Logf("waits on %s's work: %v", helper, err)
			case err != nil:
				t.Fatal(err)
			}
		})
	}
}

func loadCatalogStyle(t *testing.T, pipeline string, uses []string) error {
	ctx := context.Background()
	dir := testutil.PinnedCatalogStyle(t, catalogStylePins, uses...)
	c, err := FromFS(ctx, os.DirFS(dir), "catalog-style")
	if err != nil {
		return err
	}
	r, err := c.Resolve(ctx, testutil.PinnedCatalogStylePipeline(t, pipeline, catalogStylePins))
	if err != nil {
		return err
	}
	if len(r.Tasks) == 0 && pipeline != "golang-build" {
		t.Errorf("pipeline %s resolved no task from the catalog", pipeline)
	}
	return nil
}
