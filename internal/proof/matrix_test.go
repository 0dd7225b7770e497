package proof

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/pipelines"
)

const matrixLayoutPipeline = `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fan}
spec:
  params:
    - {name: platforms, type: array, default: [amd64, arm64]}
  workspaces: [{name: out}]
  tasks:
    - name: build
      workspaces: [{name: out, workspace: out}]
      matrix:
        params:
          - {name: platform, value: "$(params.platforms[*])"}
        include:
          - params: [{name: platform, value: riscv64}]
      taskSpec:
        params: [{name: platform}]
        workspaces: [{name: out}]
        steps:
          - name: compile
            image: example.com/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111
            script: echo $(params.platform)
    - name: single
      matrix:
        include:
          - params: [{name: x, value: only}]
      taskSpec:
        params: [{name: x}]
        steps:
          - image: example.com/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111
            script: echo $(params.x)
%s`

const fedByResults = `    - name: fed
      matrix:
        params:
          - {name: platform, value: "$(tasks.build.results.list[*])"}
      taskSpec:
        params: [{name: platform}]
        steps:
          - image: example.com/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111
            script: echo $(params.platform)
`

func resolveYAML(t *testing.T, yaml string) *pipelines.Resolved {
	t.Helper()
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := (&pipelines.Catalog{}).Resolve(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLayoutStepsMatrix: the layout lists a step per run of a matrixed
// task, named as the local engine names the runs' links, counted with the
// param defaults; a matrix fed by results cannot be laid out in advance.
func TestLayoutStepsMatrix(t *testing.T) {
	steps, err := layoutSteps(resolveYAML(t, strings.Replace(matrixLayoutPipeline, "%s", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"build-0-compile", "build-1-compile", "build-2-compile", "single-step-0"}, names); diff != "" {
		t.Errorf("layout steps (-want +got):\n%s", diff)
	}
	_, err = layoutSteps(resolveYAML(t, strings.Replace(matrixLayoutPipeline, "%s", fedByResults, 1)))
	if err == nil || !strings.Contains(err.Error(), `pipeline task "fed": its matrix param "platform" uses $(tasks.build.results.list[*]), known only when the pipeline runs`) {
		t.Errorf("err = %v", err)
	}
}
