package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/pipelines"
)

// resolveWithCatalog resolves the pipeline file yaml against a catalog
// directory holding catalog (both with {{IMAGE}} replaced).
func (f *fixture) resolveWithCatalog(t *testing.T, catalog, yaml string) *pipelines.Resolved {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "catalog.yaml"), []byte(strings.ReplaceAll(catalog, "{{IMAGE}}", f.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := pipelines.FromFS(context.Background(), os.DirFS(dir), "catalog")
	if err != nil {
		t.Fatalf("loading the test catalog: %v", err)
	}
	file := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(yaml, "{{IMAGE}}", f.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Resolve(context.Background(), file)
	if err != nil {
		t.Fatalf("resolving the test pipeline: %v", err)
	}
	return r
}

// volumesPipeline: task use shares two emptyDir volumes between its steps
// (one through the stepTemplate, one with a subPath, then read-only);
// task other, after it, has a fresh volume of the same name.
const volumesPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: volumes
spec:
  results:
    - name: seen
      value: $(tasks.use.results.seen)
  tasks:
    - name: use
      params:
        - name: vol
          value: scratch
      taskSpec:
        params:
          - name: vol
        results:
          - name: seen
        volumes:
          - name: cache
            emptyDir: {}
          - name: $(params.vol)
            emptyDir:
              medium: Memory
        stepTemplate:
          volumeMounts:
            - name: cache
              mountPath: /workspace/cache
        steps:
          - name: write
            image: {{IMAGE}}
            volumeMounts:
              - name: $(params.vol)
                mountPath: /tmp/scratch
                subPath: deep/sub
            script: |
              echo from-write > /workspace/cache/file
              echo sub > /tmp/scratch/s
          - name: read
            image: {{IMAGE}}
            volumeMounts:
              - name: scratch
                mountPath: /tmp/whole
                readOnly: true
            script: |
              cat /workspace/cache/file /tmp/whole/deep/sub/s | tr '\n' ' ' > $(results.seen.path)
              if touch /tmp/whole/x 2>/dev/null; then echo "wrote to a read-only volume mount" >&2; exit 1; fi
    - name: other
      runAfter: [use]
      taskSpec:
        volumes:
          - name: cache
            emptyDir: {}
        steps:
          - image: {{IMAGE}}
            volumeMounts:
              - name: cache
                mountPath: /workspace/cache
            script: |
              test -d /workspace/cache
              if [ -e /workspace/cache/file ]; then echo "the volume of another task" >&2; exit 1; fi
`

func TestVolumes(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) { testVolumes(t, newFixtureWith(t, rt)) })
	}
}

func testVolumes(t *testing.T, f *fixture) {
	for _, tc := range []struct {
		version string
		uid     int
	}{{"v1", 0}, {"v1beta1", 0}, {"v1", 1000}} {
		uid := tc.uid
		t.Run(fmt.Sprintf("%s uid %d", tc.version, uid), func(t *testing.T) {
			b, _ := f.build(t, strings.ReplaceAll(volumesPipeline, "tekton.dev/v1\n", "tekton.dev/"+tc.version+"\n"), nil)
			b.Variation.UID, b.Variation.GID = uid, uid
			if uid != 0 && f.runner.Rootless() {
				// A rootless runner owns one host id: it refuses the variation.
				res, err := f.executor().Run(t.Context(), b)
				msg := ""
				if err != nil {
					msg = err.Error()
				} else if !res.Succeeded {
					msg = res.Reason
				}
				if !strings.Contains(msg, "rootless") {
					t.Errorf("a rootless runner ran a uid variation, or did not say why: %q", msg)
				}
				return
			}
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if diff := cmp.Diff([]v1.PipelineRunResult{pipelineResult("seen", str("from-write sub "))}, res.Results); diff != "" {
				t.Errorf("pipeline results (-want +got):\n%s", diff)
			}
			if got := task(t, res, "use").MountPaths(); len(got) != 0 {
				t.Errorf("volumes are reported as workspaces: %v", got)
			}
		})
	}
}

// stepResultsTask is a Task as the public catalog writes step results:
// a step writes them to $(step.results.R.path), a later step gets them in
// its env and args, the task's results take them.
const stepResultsTask = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: step-results
spec:
  results:
    - name: digest
      value: $(steps.build.results.digest)
    - name: list
      type: array
      value: $(steps.build.results.list)
    - name: plain
    - name: code
    - name: ran
  steps:
    - name: build
      image: {{IMAGE}}
      results:
        - name: digest
        - name: list
          type: array
        - name: obj
          type: object
          properties:
            a: {type: string}
      script: |
        printf 'sha256:abc' > $(step.results.digest.path)
        printf '["x","y z"]' > $(step.results.list.path)
        printf '{"a":"A"}' > $(step.results.obj.path)
    - name: use
      image: {{IMAGE}}
      env:
        - name: DIGEST
          value: $(steps.build.results.digest)
        - name: KEY
          value: $(steps.build.results.obj.a)
        - name: SECOND
          value: $(steps.build.results.list[1])
      command: [sh, -c, 'printf "%s|%s|%s|%s|%s" "$DIGEST" "$KEY" "$SECOND" "$1" "$2" > $(results.plain.path)', sh]
      args: ["$(steps.build.results.list[*])"]
    - name: fail
      image: {{IMAGE}}
      onError: continue
      script: exit 3
    - name: check
      image: {{IMAGE}}
      script: |
        cat $(steps.step-fail.exitCode.path) > $(results.code.path)
        if echo 0 2>/dev/null > $(steps.step-fail.exitCode.path); then echo "a step rewrote an exit code" >&2; exit 9; fi
        if echo x 2>/dev/null > /tekton/steps/step-build/results/digest; then echo "a step wrote another's result" >&2; exit 8; fi
        if echo x 2>/dev/null > /tekton/steps/step-check/other; then echo "a step wrote its step directory" >&2; exit 7; fi
    - name: skipped
      image: {{IMAGE}}
      when:
        - input: $(steps.build.results.digest)
          operator: notin
          values: ["sha256:abc"]
      script: exit 1
    - name: runs
      image: {{IMAGE}}
      when:
        - input: $(steps.build.results.obj.a)
          operator: in
          values: ["$(steps.build.results.list[*])", A]
      script: printf '%s' "$(cat $(steps.step-skipped.exitCode.path))" > $(results.ran.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: step-results
spec:
  results:
    - name: digest
      value: $(tasks.t.results.digest)
    - name: list
      value: $(tasks.t.results.list[*])
  tasks:
    - name: t
      taskRef:
        name: step-results
`

// TestStepResults: step results, their references, task results taken
// from them, and onError: continue with $(steps.step-NAME.exitCode.path),
// as Tekton runs them, in v1 and v1beta1.
func TestStepResults(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) { testStepResults(t, newFixtureWith(t, rt)) })
	}
}

func testStepResults(t *testing.T, f *fixture) {
	for _, version := range []string{"v1", "v1beta1"} {
		t.Run(version, func(t *testing.T) {
			b, _ := f.build(t, strings.ReplaceAll(stepResultsTask, "tekton.dev/v1\n", "tekton.dev/"+version+"\n"), nil)
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			tr := task(t, res, "t")
			list := *v1.NewStructuredValues("x", "y z")
			if diff := cmp.Diff([]v1.TaskRunResult{
				strResult("code", "3"),
				strResult("digest", "sha256:abc"),
				{Name: "list", Type: v1.ResultsTypeArray, Value: list},
				strResult("plain", "sha256:abc|A|y z|x|y z"),
				strResult("ran", "0"),
			}, tr.Results); diff != "" {
				t.Errorf("task results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]v1.PipelineRunResult{pipelineResult("digest", str("sha256:abc")), pipelineResult("list", list)}, res.Results); diff != "" {
				t.Errorf("pipeline results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]engine.StepResult{
				{Name: "build", Image: f.image, Status: engine.Succeeded},
				{Name: "use", Image: f.image, Status: engine.Succeeded},
				{Name: "fail", Image: f.image, Status: engine.Failed, ExitCode: 3},
				{Name: "check", Image: f.image, Status: engine.Succeeded},
				{Name: "skipped", Image: f.image, Status: engine.Skipped},
				{Name: "runs", Image: f.image, Status: engine.Succeeded},
			}, tr.Steps, stepsOpt); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

// stepActionCatalog is a StepAction as the public catalog writes one
// (v1alpha1 here; the same file's is v1beta1): params with defaults, a
// result, params reaching the script through env.
const stepActionCatalog = `
apiVersion: tekton.dev/v1alpha1
kind: StepAction
metadata:
  name: echo-greeting
spec:
  params:
    - name: greeting
      type: string
    - name: suffix
      type: string
      default: "!"
  results:
    - name: greeting
  image: {{IMAGE}}
  env:
    - name: GREETING
      value: $(params.greeting)$(params.suffix)
  script: |
    #!/bin/sh
    printf '%s' "$GREETING" > $(step.results.greeting.path)
    echo "template says $FROM_TEMPLATE"
`

// stepActionPipeline uses echo-greeting from the catalog in a v1beta1
// Task, and a StepAction of its own file in an inline task.
const stepActionPipeline = `
apiVersion: tekton.dev/v1beta1
kind: Task
metadata:
  name: greet
spec:
  params:
    - name: who
      type: string
      default: world
  results:
    - name: greeting
      value: $(steps.say.results.greeting)
    - name: shown
  stepTemplate:
    env:
      - name: FROM_TEMPLATE
        value: hi
  steps:
    - name: say
      ref:
        name: echo-greeting
      params:
        - name: greeting
          value: hello $(params.who)
    - name: show
      image: {{IMAGE}}
      env:
        - name: SAID
          value: $(steps.say.results.greeting)
      script: printf '%s' "$SAID" > $(results.shown.path)
---
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: count
spec:
  params:
    - name: items
      type: array
    - name: volume
      default: data
  results:
    - name: number
  image: {{IMAGE}}
  volumeMounts:
    - name: $(params.volume)
      mountPath: /workspace/data
  command: [sh, -c, 'printf "%s" "$#" > $(step.results.number.path); printf "%s" "$*" > /workspace/data/items', sh]
  args: ["$(params.items[*])"]
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: step-actions
spec:
  results:
    - name: greeting
      value: $(tasks.greet.results.greeting)
    - name: shown
      value: $(tasks.greet.results.shown)
    - name: number
      value: $(tasks.count.results.number)
    - name: items
      value: $(tasks.count.results.items)
  tasks:
    - name: greet
      taskRef:
        name: greet
      params:
        - name: who
          value: accord
    - name: count
      taskSpec:
        results:
          - name: number
            value: $(steps.count.results.number)
          - name: items
        volumes:
          - name: data
            emptyDir: {}
        steps:
          - name: count
            ref:
              name: count
            params:
              - name: items
                value: [a, b, "c d"]
          - name: read
            image: {{IMAGE}}
            volumeMounts:
              - name: data
                mountPath: /workspace/in
            script: cat /workspace/in/items > $(results.items.path)
`

func TestStepActions(t *testing.T) {
	f := newFixture(t)
	rec := &recorder{out: map[string]*lockedBuffer{}}
	b, _ := f.build(t, resultPipeline("true"), nil)
	b.Pipeline = f.resolveWithCatalog(t, stepActionCatalog, stepActionPipeline)
	b.Observer = rec
	if got := len(b.Pipeline.StepActions); got != 2 {
		t.Fatalf("resolved %d StepActions, want 2", got)
	}
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	if diff := cmp.Diff([]v1.PipelineRunResult{
		pipelineResult("greeting", str("hello accord!")),
		pipelineResult("shown", str("hello accord!")),
		pipelineResult("number", str("3")),
		pipelineResult("items", str("a b c d")),
	}, res.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
	if got := rec.stdout("greet", "say"); got != "template says hi\n" {
		t.Errorf("the StepAction's step printed %q, want the stepTemplate's env", got)
	}
	if diff := cmp.Diff([]engine.StepResult{
		{Name: "say", Image: f.image, Status: engine.Succeeded},
		{Name: "show", Image: f.image, Status: engine.Succeeded},
	}, task(t, res, "greet").Steps, stepsOpt); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// TestStepActionMissingParam: a StepAction param without a default that
// the step does not give fails the task, saying so.
func TestStepActionMissingParam(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, resultPipeline("true"), nil)
	b.Pipeline = f.resolveWithCatalog(t, stepActionCatalog, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: t
      taskSpec:
        steps:
          - name: say
            ref: {name: echo-greeting}
`)
	res := f.run(t, b)
	tr := task(t, res, "t")
	if res.Succeeded || tr.Status != engine.Failed || !strings.Contains(tr.Reason, "greeting") || !strings.Contains(tr.Reason, "fix:") {
		t.Errorf("task %s (%s), want it failed naming the missing param", tr.Status, tr.Reason)
	}
}

// TestVolumeMountErrors: mounts that only substitution makes wrong are
// refused when the task runs, naming the volume.
func TestVolumeMountErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, vol, mount, path, want string }{
		{"no such volume", "cache", "cahce", "/workspace/v", `volumeMount "cahce" names no volume of the task`},
		{"volume name not a DNS label", "Not_A_Label", "Not_A_Label", "/workspace/v", `volume name "Not_A_Label" is not a DNS label`},
		{"mountPath of a workspace", "cache", "cache", "/workspace/ws", `mounts volume "cache" at /workspace/ws, where a workspace is mounted`},
		{"mountPath of the results", "cache", "cache", "/tekton/results", `mountPath "/tekton/results" is under /tekton`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := f.build(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - name: t
      workspaces: [{name: ws}]
      params: [{name: vol, value: `+tc.vol+`}, {name: mount, value: `+tc.mount+`}, {name: path, value: `+tc.path+`}]
      taskSpec:
        params: [{name: vol}, {name: mount}, {name: path}]
        volumes: [{name: $(params.vol), emptyDir: {}}]
        workspaces: [{name: ws}]
        steps:
          - image: {{IMAGE}}
            volumeMounts: [{name: $(params.mount), mountPath: $(params.path)}]
            script: "true"
`, nil)
			res := f.run(t, b)
			tr := task(t, res, "t")
			if res.Succeeded || !strings.Contains(tr.Reason, tc.want) || !strings.Contains(tr.Reason, "fix:") {
				t.Errorf("task %s: %q, want it failed saying %q", tr.Status, tr.Reason, tc.want)
			}
		})
	}
}

// stepTemplatePipeline: the stepTemplate gives every step its image,
// workingDir, env and a volume mount; a step overrides the workingDir.
const stepTemplatePipeline = `
apiVersion: tekton.dev/v1beta1
kind: Pipeline
metadata:
  name: step-template
spec:
  workspaces:
    - name: ws
  tasks:
    - name: t
      workspaces:
        - name: ws
      taskSpec:
        workspaces:
          - name: ws
        results:
          - name: wd
          - name: own
        volumes:
          - name: cache
            emptyDir: {}
        stepTemplate:
          image: {{IMAGE}}
          workingDir: $(workspaces.ws.path)/sub
          env:
            - name: CACHE
              value: /workspace/cache
          volumeMounts:
            - name: cache
              mountPath: /workspace/cache
        steps:
          - name: first
            script: |
              pwd > $(results.wd.path)
              echo cached > $CACHE/f
          - name: second
            workingDir: /tmp
            script: |
              printf '%s %s' "$(pwd)" "$(cat $CACHE/f)" > $(results.own.path)
`

func TestStepTemplateInFull(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, stepTemplatePipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	tr := task(t, res, "t")
	if diff := cmp.Diff([]v1.TaskRunResult{strResult("own", "/tmp cached"), strResult("wd", "/workspace/ws/sub\n")}, tr.Results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, s := range tr.Steps {
		if s.Image != f.image {
			t.Errorf("step %s ran image %q, want the stepTemplate's", s.Name, s.Image)
		}
	}
}
