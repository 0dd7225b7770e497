package local

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	trr "github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"k8s.io/apimachinery/pkg/runtime"
)

// resolveStepActions replaces each step that references a StepAction
// (ref: {name: ...}) with the StepAction's step, its params substituted,
// with Tekton's own resolution (GetStepActionsData: the task's params
// into the step's params, then the StepAction's defaults, then step
// result references), reading the StepActions the loader resolved from
// the catalog through a client that holds only them. A spec without
// references is returned as it is.
func (r *run) resolveStepActions(ctx context.Context, spec *v1.TaskSpec, trun *v1.TaskRun) (*v1.TaskSpec, error) {
	if !hasStepRefs(spec) {
		return spec, nil
	}
	var objs []runtime.Object
	for _, name := range r.stepActionNames() {
		sa := r.b.Pipeline.StepActions[name].StepAction.DeepCopy()
		sa.Namespace = trun.Namespace
		objs = append(objs, sa)
	}
	steps, err := trr.GetStepActionsData(ctx, *spec, trun.DeepCopy(), fake.NewSimpleClientset(objs...), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("resolving StepActions: %w\n  fix: give the step (steps[].params) every param its StepAction declares without a default, of the type it declares", err)
	}
	spec = spec.DeepCopy()
	spec.Steps = steps
	return spec, nil
}

func hasStepRefs(spec *v1.TaskSpec) bool {
	for _, s := range spec.Steps {
		if s.Ref != nil {
			return true
		}
	}
	return false
}

// stepActionNames are the names of the build's StepActions, sorted.
func (r *run) stepActionNames() []string {
	if r.b.Pipeline == nil {
		return nil
	}
	names := make([]string, 0, len(r.b.Pipeline.StepActions))
	for name := range r.b.Pipeline.StepActions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// prefetchStepActionImages is prefetchImages for the images of the
// StepActions the pipeline uses.
func (r *run) prefetchStepActionImages(ctx context.Context, seen map[string]bool) error {
	for _, name := range r.stepActionNames() {
		img := r.b.Pipeline.StepActions[name].StepAction.Spec.Image
		if img == "" || strings.Contains(img, "$(") || seen[img] {
			continue
		}
		seen[img] = true
		if _, err := r.image(ctx, img); err != nil {
			return err
		}
	}
	return nil
}
