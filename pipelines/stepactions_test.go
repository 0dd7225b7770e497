package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
)

// usesStepAction is a Task whose step runs StepAction sa with a param
// from the task's, and whose result is the StepAction's step result.
const usesStepAction = `apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: greet
spec:
  params:
    - name: who
      default: world
  results:
    - name: said
      value: $(steps.greet.results.said)
  steps:
    - name: greet
      ref:
        name: sa
      params:
        - name: greeting
          value: hello $(params.who)
`

const usesTask = `apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: p
spec:
  tasks:
    - name: a
      taskRef: {name: greet}
    - name: b
      taskSpec:
        steps:
          - name: inline
            ref: {name: sa}
`

// stepActionCatalog is a catalog holding the StepAction and the task.
func stepActionCatalog(t *testing.T, sa string) *Catalog {
	t.Helper()
	c, err := FromFS(context.Background(), fstest.MapFS{
		"sa.yaml":    {Data: []byte(sa)},
		"greet.yaml": {Data: []byte(usesStepAction)},
	}, "catalog")
	if err != nil {
		t.Fatalf("loading the catalog: %v", err)
	}
	return c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStepActionFromCatalog(t *testing.T) {
	ctx := context.Background()
	c := stepActionCatalog(t, stepAction("tekton.dev/v1beta1", ""))
	r, err := c.Resolve(ctx, writeFile(t, usesTask))
	if err != nil {
		t.Fatal(err)
	}
	sa, ok := r.StepActions["sa"]
	if !ok || sa.File != "catalog/sa.yaml" || sa.Kind != StepActionKind {
		t.Fatalf("StepActions = %v, want sa from catalog/sa.yaml", r.StepActions)
	}
	var kinds []string
	for _, d := range r.Definitions() {
		kinds = append(kinds, d.Kind+" "+d.Name)
	}
	if diff := cmp.Diff([]string{"Pipeline p", "Task greet", "StepAction sa"}, kinds); diff != "" {
		t.Errorf("Definitions (-want +got):\n%s", diff)
	}
	if got := StepImages(sa); len(got) != 1 || got[0] != pinnedImage {
		t.Errorf("StepImages(sa) = %v, want the StepAction's image", got)
	}
	if got := sa.StepAction.Spec.Params[0].Default.StringVal; got != "hello" {
		t.Errorf("param default = %q", got)
	}
}

// TestStepActionDigests: the resolved pipeline's digest covers each
// StepAction it uses, so changing one changes the recorded digest; a
// v1alpha1 StepAction digests as its v1beta1 form.
func TestStepActionDigests(t *testing.T) {
	ctx := context.Background()
	digest := func(sa string) string {
		t.Helper()
		r, err := stepActionCatalog(t, sa).Resolve(ctx, writeFile(t, usesTask))
		if err != nil {
			t.Fatal(err)
		}
		return r.Digest
	}
	base := digest(stepAction("tekton.dev/v1beta1", ""))
	for _, tc := range []struct {
		name, sa string
		changes  bool
	}{
		{"v1alpha1", stepAction("tekton.dev/v1alpha1", ""), false},
		{"formatting and comments", strings.ReplaceAll(stepAction("tekton.dev/v1beta1", ""), "\n", " # c\n"), false},
		{"script", strings.Replace(stepAction("tekton.dev/v1beta1", ""), "tee", "tee -a", 1), true},
		{"param default", strings.Replace(stepAction("tekton.dev/v1beta1", ""), "default: hello", "default: bye", 1), true},
		{"image", strings.Replace(stepAction("tekton.dev/v1beta1", ""), "eee4", "eee5", 1), true},
		{"workingDir", stepAction("tekton.dev/v1beta1", "  workingDir: /tmp\n"), true},
		{"a label", strings.Replace(stepAction("tekton.dev/v1beta1", ""), "  name: sa\n", "  name: sa\n  labels: {v: \"2\"}\n", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if changed := digest(tc.sa) != base; changed != tc.changes {
				t.Errorf("pipeline digest changed = %v, want %v", changed, tc.changes)
			}
		})
	}
}

// TestStepActionFromFile: a StepAction in the pipeline's file wins over
// the catalog's of the same name, as a task does.
func TestStepActionFromFile(t *testing.T) {
	ctx := context.Background()
	c := stepActionCatalog(t, stepAction("tekton.dev/v1beta1", ""))
	local := strings.Replace(stepAction("tekton.dev/v1alpha1", ""), "default: hello", "default: local", 1)
	file := writeFile(t, usesTask+"---\n"+local)
	r, err := c.Resolve(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if sa := r.StepActions["sa"]; sa.File != file || sa.StepAction.Spec.Params[0].Default.StringVal != "local" {
		t.Errorf("StepAction sa from %s, want %s", sa.File, file)
	}
}

func TestUnknownStepAction(t *testing.T) {
	ctx := context.Background()
	c := stepActionCatalog(t, stepAction("tekton.dev/v1beta1", ""))
	for _, tc := range []struct{ name, yaml, object, field string }{
		{"in a task of the file", usesTask + "---\n" + strings.Replace(usesStepAction, "ref:\n        name: sa", "ref:\n        name: nope", 1), `Task "greet"`, "spec.steps[0].ref.name"},
		{"in an inline taskSpec", strings.Replace(usesTask, "ref: {name: sa}", "ref: {name: missing}", 1), `Pipeline "p"`, "spec.tasks[1].taskSpec.steps[0].ref.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.yaml)
			_, err := c.Resolve(ctx, file)
			pe := asError(t, err)
			if pe.Object != tc.object || pe.Field != tc.field || !strings.Contains(pe.Msg, "unknown StepAction") || !strings.Contains(pe.Fix, "sa") {
				t.Errorf("error = %v, want an unknown StepAction at %s %s, listing the catalog's", pe, tc.object, tc.field)
			}
		})
	}
}

// TestTaskFeaturesAccepted: what a catalog Task uses of volumes, step
// results and stepTemplate loads.
func TestTaskFeaturesAccepted(t *testing.T) {
	ctx := context.Background()
	for name, yaml := range map[string]string{
		"emptyDir volumes mounted by steps and stepTemplate": task("  volumes:\n    - name: cache\n      emptyDir: {}\n    - name: mem\n      emptyDir: {medium: Memory}\n  stepTemplate:\n    volumeMounts:\n      - {name: cache, mountPath: /cache}\n",
			"      volumeMounts:\n        - {name: mem, mountPath: /mem, subPath: a/b, readOnly: true}\n"),
		"step results and a task result from one": task("  results:\n    - name: r\n      value: $(steps.s.results.x)\n", "      results: [{name: x}, {name: y, type: array}]\n"),
		"a volume name from a param":              task("  params: [{name: v, default: cache}]\n  volumes:\n    - name: $(params.v)\n      emptyDir: {}\n", ""),
		"stepTemplate in full":                    task("  stepTemplate:\n    image: "+pinnedImage+"\n    workingDir: /tmp\n    env: [{name: A, value: b}]\n    computeResources: {limits: {memory: 1Gi}}\n", ""),
		"v1alpha1 StepAction":                     stepAction("tekton.dev/v1alpha1", ""),
		"v1beta1 StepAction with volumeMounts":    strings.Replace(stepAction("tekton.dev/v1beta1", "  volumeMounts:\n    - {name: $(params.cache), mountPath: /cache}\n"), "  params:\n", "  params:\n    - name: cache\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(ctx, "ok.yaml", []byte(yaml)); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

func TestWithStepActions(t *testing.T) {
	c := stepActionCatalog(t, stepAction("tekton.dev/v1beta1", ""))
	r, err := c.Resolve(context.Background(), writeFile(t, usesTask))
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := r.TaskSpec(&r.Pipeline.Pipeline.Spec.Tasks[0])
	got := r.WithStepActions(ts).Steps[0]
	if got.Ref != nil || got.Params != nil || got.Image != pinnedImage || !strings.Contains(got.Script, "tee $(step.results.said.path)") || got.Name != "greet" {
		t.Errorf("step = %+v, want the StepAction's step named greet", got)
	}
	if ts.Steps[0].Ref == nil {
		t.Error("WithStepActions changed the task's spec")
	}
}

// TestSidecarSubPathGuard: a step may not mount a subPath of a volume that
// a sidecar writes while the step starts (accord binds a subPath by name);
// a read-only sidecar mount, or the whole volume, is fine.
func TestSidecarSubPathGuard(t *testing.T) {
	spec := func(sidecarRO bool, subPath string) *v1.TaskSpec {
		return &v1.TaskSpec{
			Volumes:  []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Sidecars: []v1.Sidecar{{Name: "db", VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/data", ReadOnly: sidecarRO}}}},
			Steps:    []v1.Step{{Name: "s", VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v", SubPath: subPath}}}},
		}
	}
	if err := checkTaskExtras("spec.", spec(false, "a/b")); err == nil || !strings.Contains(err.Error(), `sidecar "db" writes`) || asError(t, err).Field != "spec.steps[0].volumeMounts[0].subPath" {
		t.Errorf("subPath of a volume a sidecar writes: %v", err)
	}
	for _, ok := range []*v1.TaskSpec{spec(true, "a/b"), spec(false, "")} {
		if err := checkTaskExtras("spec.", ok); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}
