package local_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
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

// notesPipeline is written as the catalog writes v1beta1: a Task with
// params with defaults, and a Pipeline whose task fans out by an
// include-only matrix (explicit combinations, no matrix.params) and takes
// one param as a plain param.
const notesPipeline = `
apiVersion: tekton.dev/v1beta1
kind: Task
metadata:
  name: release-notes
  labels:
    app.kubernetes.io/version: "0.1"
spec:
  params:
    - name: lang
      type: string
      description: Language of the notes.
    - name: title
      type: string
      default: Notes
    - name: version
      type: string
  results:
    - name: path
      description: Where the notes are.
  workspaces:
    - name: output
  steps:
    - name: write
      image: {{IMAGE}}
      script: |
        #!/bin/sh
        set -e
        mkdir -p $(workspaces.output.path)/notes
        printf '%s %s %s' "$(params.title)" "$(params.version)" "$(params.lang)" > $(workspaces.output.path)/notes/$(params.lang).txt
        printf '%s' notes/$(params.lang).txt > $(results.path.path)
---
apiVersion: tekton.dev/v1beta1
kind: Pipeline
metadata:
  name: notes
spec:
  workspaces:
    - name: shared
  tasks:
    - name: notes
      taskRef:
        name: release-notes
      params:
        - name: version
          value: "1.2"
      workspaces:
        - name: output
          workspace: shared
      matrix:
        include:
          - name: english
            params:
              - name: lang
                value: en
          - name: german
            params:
              - name: lang
                value: de
              - name: title
                value: Hinweise
  results:
    - name: paths
      value: $(tasks.notes.results.path[*])
`

// TestMatrixIncludeOnlyV1beta1: a v1beta1 pipeline whose matrix has only
// explicit combinations runs one TaskRun per include, in order.
func TestMatrixIncludeOnlyV1beta1(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, notesPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s (%v)", res.Reason, statuses(res))
	}
	if diff := cmp.Diff(map[string]engine.Status{"notes-0": engine.Succeeded, "notes-1": engine.Succeeded}, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(matrixParams("lang", "de", "title", "Hinweise"), task(t, res, "notes-1").Matrix.Params); diff != "" {
		t.Errorf("second combination (-want +got):\n%s", diff)
	}
	got := readTree(t, wsFS(t, task(t, res, "notes-0"), "/workspace/output"))
	want := map[string]string{"notes/en.txt": "Notes 1.2 en", "notes/de.txt": "Hinweise 1.2 de"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workspace (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]v1.PipelineRunResult{pipelineResult("paths", *v1.NewStructuredValues("notes/en.txt", "notes/de.txt"))}, res.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
}

// matrixEdgePipeline: one run of a matrix fails (the others still run, as
// Tekton runs all the TaskRuns it created); a matrix whose array param is
// empty is skipped, and so is the task that uses its results.
const matrixEdgePipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: edges
spec:
  params:
    - name: none
      type: array
      default: []
  tasks:
    - name: empty
      matrix:
        params:
          - name: v
            value: $(params.none[*])
      taskSpec:
        params: [{name: v}]
        results: [{name: r}]
        steps:
          - image: {{IMAGE}}
            script: printf '%s' "$(params.v)" > $(results.r.path)
    - name: uses-empty
      params:
        - name: all
          value: $(tasks.empty.results.r[*])
      taskSpec:
        params: [{name: all, type: array}]
        steps:
          - image: {{IMAGE}}
            script: echo never
    - name: some-fail
      matrix:
        params:
          - name: code
            value: ["0", "3", "0"]
      taskSpec:
        params: [{name: code}]
        steps:
          - name: exit
            image: {{IMAGE}}
            script: exit $(params.code)
`

func TestMatrixFailedRunAndEmptyArray(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, matrixEdgePipeline, nil)
	res := f.run(t, b, local.WithParallel(1))
	if res.Succeeded {
		t.Fatal("build succeeded with a failing run")
	}
	want := map[string]engine.Status{"empty": engine.Skipped, "uses-empty": engine.Skipped,
		"some-fail-0": engine.Succeeded, "some-fail-1": engine.Failed, "some-fail-2": engine.Succeeded}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if r := task(t, res, "empty").Reason; !strings.Contains(r, "Matrix Parameters have an empty array (v)") {
		t.Errorf("empty: reason %q", r)
	}
	if want := `task "some-fail-1" failed: step "exit" exited with code 3`; !strings.HasPrefix(res.Reason, want) {
		t.Errorf("Reason = %q, want it to start with %q", res.Reason, want)
	}
}

// TestMatrixInputErrors: a matrix that Tekton refuses once the params are
// applied is an InputError before any task runs.
func TestMatrixInputErrors(t *testing.T) {
	f := newFixture(t)
	many := make([]string, 17)
	for i := range many {
		many[i] = string(rune('a' + i))
	}
	const tooMany = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: many
spec:
  params:
    - name: xs
      type: array
  tasks:
    - name: fan
      matrix:
        params:
          - name: x
            value: $(params.xs[*])
          - name: z
            value: $(params.xs[*])
      taskSpec:
        params: [{name: x}, {name: z}]
        steps:
          - image: {{IMAGE}}
            script: exit 1
`
	const arrayParam = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: arrayparam
spec:
  tasks:
    - name: fan
      matrix:
        params:
          - name: x
            value: [a, b]
      taskSpec:
        params: [{name: x, type: array}]
        steps:
          - image: {{IMAGE}}
            script: exit 1
`
	for _, tc := range []struct {
		name, yaml string
		params     v1.Params
		want       string
	}{
		{"more than 256 combinations", tooMany, v1.Params{{Name: "xs", Value: *v1.NewStructuredValues(many[0], many[1:]...)}}, `pipeline task "fan": matrix fans out into 289 runs, more than Tekton's limit of 256`},
		{"a matrix param the task takes as an array", arrayParam, nil, `pipeline task "fan": invalid input params for task fan: param types don't match the user-specified type: [x]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, rec := f.build(t, tc.yaml, tc.params)
			_, err := f.executor().Run(context.Background(), b)
			var ie *local.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix: ") {
				t.Fatalf("err = %v, want an InputError containing %q and a fix", err, tc.want)
			}
			if s := rec.startedTasks(); len(s) != 0 {
				t.Errorf("tasks started: %v", s)
			}
		})
	}
}

// fedPipeline fans out by an array result of an earlier task, and again
// by the aggregated results of that fan-out.
const fedPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: fed
spec:
  params:
    - name: count
      default: "3"
  tasks:
    - name: list
      params:
        - {name: count, value: $(params.count)}
      taskSpec:
        params: [{name: count}]
        results:
          - {name: items, type: array}
        steps:
          - image: {{IMAGE}}
            script: |
              i=0; sep=; printf '[' > $(results.items.path)
              while [ $i -lt $(params.count) ]; do printf '%s"i%d"' "$sep" $i >> $(results.items.path); sep=,; i=$((i + 1)); done
              printf ']' >> $(results.items.path)
    - name: fan
      matrix:
        params:
          - name: item
            value: $(tasks.list.results.items[*])
          - name: again
            value: $(tasks.list.results.items[*])
      taskSpec:
        params: [{name: item}, {name: again}]
        results: [{name: out}]
        steps:
          - image: {{IMAGE}}
            script: printf '%s.%s' $(params.item) $(params.again) > $(results.out.path)
    - name: refan
      matrix:
        params:
          - name: in
            value: $(tasks.fan.results.out[*])
      taskSpec:
        params: [{name: in}]
        steps:
          - image: {{IMAGE}}
            script: echo $(params.in)
`

// TestMatrixFedByResults: a matrix fans out by a result array, and by the
// aggregated results of another matrix. Results can make a matrix larger
// than Tekton's limit, which Tekton checks only on the definition: accord
// checks the fan-out again, once the results are in, and fails the task.
func TestMatrixFedByResults(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, fedPipeline, v1.Params{{Name: "count", Value: str("2")}})
	res := f.run(t, b, local.WithParallel(2))
	if !res.Succeeded {
		t.Fatalf("build failed: %s (%v)", res.Reason, statuses(res))
	}
	want := map[string]engine.Status{"list": engine.Succeeded}
	for i := range 4 {
		want[engine.MatrixRunName("fan", i, 4)] = engine.Succeeded
		want[engine.MatrixRunName("refan", i, 4)] = engine.Succeeded
	}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(matrixParams("in", "i1.i0"), task(t, res, "refan-1").Matrix.Params); diff != "" {
		t.Errorf("refan-1 params (-want +got):\n%s", diff)
	}

	b, rec := f.build(t, fedPipeline, v1.Params{{Name: "count", Value: str("17")}})
	res = f.run(t, b)
	if res.Succeeded {
		t.Fatal("a fan-out into 289 runs succeeded")
	}
	fan := task(t, res, "fan")
	if fan.Status != engine.Failed || !strings.Contains(fan.Reason, "matrix fans out into 289 runs, more than Tekton's limit of 256") {
		t.Errorf("fan: %s, %q", fan.Status, fan.Reason)
	}
	if s := rec.startedTasks(); len(s) != 1 {
		t.Errorf("started %v, want only list", s)
	}
}
