package proof

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine"
)

// TestPlatformDependencies: a step image pinned by an index records the
// platform manifest that ran, once, sorted; an image pinned by its own
// manifest records nothing more.
func TestPlatformDependencies(t *testing.T) {
	idx, man, own := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64), "sha256:"+strings.Repeat("3", 64)
	step := func(image, ran string) engine.StepResult { return engine.StepResult{Image: image, ImageDigest: ran} }
	in := &Input{Result: &engine.Result{Tasks: []engine.TaskResult{
		{Steps: []engine.StepResult{step("docker.io/library/golang@"+idx, man), step("accord.dev/builders/go@"+own, own)}},
		{Steps: []engine.StepResult{step("golang:1.22@"+idx, man), step("registry.example/z@"+idx, man), step("unpinned:latest", man), step("x/y@"+own, "")}},
	}}}
	want := []attest.Dependency{
		{Name: PlatformImageDependency, URI: "oci://index.docker.io/library/golang@" + idx, Digest: map[string]string{"sha256": strings.Repeat("2", 64)}},
		{Name: PlatformImageDependency, URI: "oci://registry.example/z@" + idx, Digest: map[string]string{"sha256": strings.Repeat("2", 64)}},
	}
	if diff := cmp.Diff(want, platformDependencies(in)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := platformDependencies(&Input{}); got != nil {
		t.Errorf("no result: %v", got)
	}
}
