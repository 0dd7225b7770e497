package proof

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/pipelines"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestLayoutStepsGolden pins the in-toto steps (names, workspace
// prefixes, expected commands) of every catalog pipeline and of a pipeline
// with every kind of step command: layouts already signed must still
// verify the links the local engine writes.
func TestLayoutStepsGolden(t *testing.T) {
	ctx := context.Background()
	cat, err := pipelines.Builtin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{filepath.Join("testdata", "layout-commands.yaml")}
	for _, d := range cat.Pipelines() {
		refs = append(refs, d.Name)
	}
	got := map[string][]attest.LayoutStep{}
	for _, ref := range refs {
		r, err := cat.Resolve(ctx, ref)
		if err != nil {
			t.Fatalf("resolving %s: %v", ref, err)
		}
		steps, err := layoutSteps(r)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		got[r.Pipeline.Name] = steps
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "layout-steps.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(b)+"\n"); diff != "" {
		t.Errorf("layout steps changed (-want +got):\n%s", diff)
	}
}

// layoutSteps are the steps for the local engine, as accord layout writes them.
func layoutSteps(r *pipelines.Resolved) ([]attest.LayoutStep, error) {
	return LayoutSteps(r, local.Commands{})
}
