package local_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
)

// crossPipeline fans a build out over platforms (a pipeline param) and
// flavors, with an include that adds a combination and one that adds a
// param to the combinations it matches, as Tekton's docs and the catalog
// write matrices; every run writes a file into the shared workspace and a
// result. A later task consumes the results whole and the matrix lengths;
// pipeline results aggregate them too.
const crossPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: cross-build
spec:
  params:
    - name: platform
    - name: flavor
      default: small
    - name: extra
      default: "no"
  workspaces:
    - name: out
  results:
    - name: binary
  steps:
    - name: build
      image: {{IMAGE}}
      script: |
        name="$(params.platform)-$(params.flavor)-$(params.extra)"
        printf '%s' "$name" > $(workspaces.out.path)/$name
        printf '%s' "$name" > $(results.binary.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: cross
spec:
  params:
    - name: platforms
      type: array
      default: [amd64, arm64]
  workspaces:
    - name: out
  results:
    - name: binaries
      value: $(tasks.build.results.binary[*])
    - name: listed
      value: $(tasks.collect.results.listed)
  tasks:
    - name: build
      taskRef: {name: cross-build}
      workspaces:
        - {name: out, workspace: out}
      matrix:
        params:
          - name: platform
            value: $(params.platforms[*])
          - name: flavor
            value: [small, large]
        include:
          - name: large ones get extras
            params:
              - {name: flavor, value: large}
              - {name: extra, value: "yes"}
          - name: riscv
            params:
              - {name: platform, value: riscv64}
    - name: collect
      params:
        - name: binaries
          value: $(tasks.build.results.binary[*])
        - name: runs
          value: $(tasks.build.matrix.length)
        - name: results
          value: $(tasks.build.matrix.binary.length)
      taskSpec:
        params:
          - name: binaries
            type: array
          - name: runs
          - name: results
        results:
          - name: listed
        steps:
          - name: list
            image: {{IMAGE}}
            args: ["$(params.binaries[*])"]
            script: |
              #!/bin/sh
              printf '%s %s %s' "$(params.runs)" "$(params.results)" "$*" > $(results.listed.path)
`

// matrixParams builds a combination's params (Tekton sorts them by name).
func matrixParams(kv ...string) v1.Params {
	var ps v1.Params
	for i := 0; i < len(kv); i += 2 {
		ps = append(ps, v1.Param{Name: kv[i], Value: str(kv[i+1])})
	}
	return ps
}

// TestMatrixFanOut: a matrixed task runs once per combination of Tekton's
// FanOut, named as Tekton names its TaskRuns (without the PipelineRun's
// prefix), each with its combination's params; results are aggregated
// into arrays for a later task and for pipeline results; the matrix
// lengths are substituted.
func TestMatrixFanOut(t *testing.T) {
	f := newFixture(t)
	b, rec := f.build(t, crossPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s (%v)", res.Reason, statuses(res))
	}
	want := []engine.MatrixRun{
		{PipelineTask: "build", Index: 0, Params: matrixParams("flavor", "small", "platform", "amd64")},
		{PipelineTask: "build", Index: 1, Params: matrixParams("flavor", "small", "platform", "arm64")},
		{PipelineTask: "build", Index: 2, Params: matrixParams("extra", "yes", "flavor", "large", "platform", "amd64")},
		{PipelineTask: "build", Index: 3, Params: matrixParams("extra", "yes", "flavor", "large", "platform", "arm64")},
		{PipelineTask: "build", Index: 4, Params: matrixParams("platform", "riscv64")},
	}
	binaries := []string{"amd64-small-no", "arm64-small-no", "amd64-large-yes", "arm64-large-yes", "riscv64-small-no"}
	var names []string
	var got []engine.MatrixRun
	for i, tr := range res.Tasks[:len(res.Tasks)-1] {
		names = append(names, tr.Name)
		if tr.Matrix == nil {
			t.Fatalf("task %s has no matrix run info", tr.Name)
		}
		got = append(got, *tr.Matrix)
		if diff := cmp.Diff([]v1.TaskRunResult{strResult("binary", binaries[i])}, tr.Results); diff != "" {
			t.Errorf("%s results (-want +got):\n%s", tr.Name, diff)
		}
		if tr.Task != "cross-build" || tr.Status != engine.Succeeded {
			t.Errorf("%s: task %q, status %s", tr.Name, tr.Task, tr.Status)
		}
	}
	if diff := cmp.Diff([]string{"build-0", "build-1", "build-2", "build-3", "build-4"}, names); diff != "" {
		t.Errorf("run names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("combinations (-want +got):\n%s", diff)
	}
	collect := task(t, res, "collect")
	listed := "5 5 " + strings.Join(binaries, " ")
	if diff := cmp.Diff([]v1.TaskRunResult{strResult("listed", listed)}, collect.Results); diff != "" {
		t.Errorf("collect results (-want +got):\n%s", diff)
	}
	wantPR := []v1.PipelineRunResult{
		pipelineResult("binaries", *v1.NewStructuredValues(binaries[0], binaries[1:]...)),
		pipelineResult("listed", str(listed)),
	}
	if diff := cmp.Diff(wantPR, res.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
	out := readTree(t, wsFS(t, task(t, res, "build-4"), "/workspace/out"))
	wantFiles := map[string]string{}
	for _, bin := range binaries {
		wantFiles[bin] = bin
	}
	if diff := cmp.Diff(wantFiles, out); diff != "" {
		t.Errorf("shared workspace after the fan-out (-want +got):\n%s", diff)
	}
	if got := rec.stdout("build-3", "build"); got != "" {
		t.Errorf("unexpected stdout %q", got)
	}
	started := rec.startedTasks()
	if len(started) != 6 || started[5] != "collect" {
		t.Errorf("observer saw tasks start: %v", started)
	}
}
