package pipelines

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1alpha1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// StepActionKind is the kind of a Tekton StepAction definition.
const StepActionKind = "StepAction"

// parseStepAction decodes a StepAction (tekton.dev/v1beta1, or v1alpha1
// converted with Tekton's conversion), defaults and validates it with
// Tekton's code, checks its step fields as a task step's and its image
// pinned, and digests it.
func parseStepAction(ctx context.Context, file, apiVersion string, doc []byte, d *Definition, o *options) (*Definition, error) {
	obj := fmt.Sprintf("%s %q", d.Kind, d.Name)
	if apiVersion != "tekton.dev/v1beta1" && apiVersion != "tekton.dev/v1alpha1" {
		return nil, &Error{File: file, Object: obj, Field: "apiVersion", Msg: fmt.Sprintf("unsupported apiVersion %q for a StepAction", apiVersion), Fix: "use tekton.dev/v1beta1 (or tekton.dev/v1alpha1)"}
	}
	sa, err := decodeStepAction(ctx, apiVersion, doc)
	if err != nil {
		return nil, decodeError(file, obj, doc, err)
	}
	d.StepAction = sa
	sa.SetDefaults(ctx)
	if fe := sa.Validate(ctx); fe != nil {
		return nil, validationError(file, obj, fe)
	}
	if err := checkStepAction(sa); err != nil {
		return nil, validationError(file, obj, err)
	}
	if err := checkPinned(d, o.allowUnpinned); err != nil {
		return nil, validationError(file, obj, err)
	}
	if d.Digest, err = canonicalDigest(d); err != nil {
		return nil, err
	}
	return d, nil
}

func decodeStepAction(ctx context.Context, apiVersion string, doc []byte) (*v1beta1.StepAction, error) {
	if apiVersion == "tekton.dev/v1beta1" {
		sa := &v1beta1.StepAction{}
		return sa, yaml.UnmarshalStrict(doc, sa)
	}
	old := &v1alpha1.StepAction{}
	if err := yaml.UnmarshalStrict(doc, old); err != nil {
		return nil, err
	}
	old.SetDefaults(ctx)
	sa := &v1beta1.StepAction{}
	if err := old.ConvertTo(ctx, sa); err != nil {
		return nil, fmt.Errorf("converting v1alpha1 to v1beta1: %w", err)
	}
	return sa, nil
}

// checkStepAction runs the step checks of a task on the StepAction's
// step, reporting fields as the StepAction's ("spec.securityContext").
// Its volumeMounts name volumes of the Task that uses it, so they are
// checked where it is used (by the engine, after resolution).
func checkStepAction(sa *v1beta1.StepAction) error {
	step := *sa.Spec.ToStep()
	var vols []corev1.Volume
	for _, m := range step.VolumeMounts {
		vols = append(vols, corev1.Volume{Name: m.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	err := checkTaskSpec("spec.", &v1.TaskSpec{Volumes: vols, Steps: []v1.Step{step}})
	return relabelField(err, "spec.steps[0].", "spec.")
}

// relabelField rewrites the field path of an *Error that starts with from.
func relabelField(err error, from, to string) error {
	if pe, ok := err.(*Error); ok && strings.HasPrefix(pe.Field, from) {
		pe.Field = to + strings.TrimPrefix(pe.Field, from)
	}
	return err
}

// stepActionRef is one step of a task that references a StepAction.
type stepActionRef struct {
	field, name string
}

// stepActionRefs lists the steps of ts that reference a StepAction by
// name (resolvers are refused when the definition is loaded).
func stepActionRefs(prefix string, ts *v1.TaskSpec) []stepActionRef {
	var out []stepActionRef
	for i, s := range ts.Steps {
		if s.Ref != nil && s.Ref.Name != "" {
			out = append(out, stepActionRef{fmt.Sprintf("%ssteps[%d].ref.name", prefix, i), s.Ref.Name})
		}
	}
	return out
}

// resolveStepActions finds every StepAction the pipeline's tasks
// reference: in the pipeline's own file first, then the catalog.
func (c *Catalog) resolveStepActions(r *Resolved, local *Catalog) error {
	r.StepActions = map[string]*Definition{}
	type user struct {
		def    *Definition
		prefix string
		ts     *v1.TaskSpec
	}
	users := []user{}
	ps := &r.Pipeline.Pipeline.Spec
	for i, pt := range allPipelineTasks(ps) {
		if pt.TaskSpec != nil {
			users = append(users, user{r.Pipeline, taskPath(ps, i) + ".taskSpec.", &pt.TaskSpec.TaskSpec})
		}
	}
	for _, t := range sorted(r.Tasks) {
		users = append(users, user{t, "spec.", &t.Task.Spec})
	}
	for _, u := range users {
		for _, ref := range stepActionRefs(u.prefix, u.ts) {
			sa, ok := local.stepActions[ref.name]
			if !ok {
				sa, ok = c.stepActions[ref.name]
			}
			if !ok {
				return &Error{File: u.def.File, Object: fmt.Sprintf("%s %q", u.def.Kind, u.def.Name), Field: ref.field,
					Msg: fmt.Sprintf("unknown StepAction %q", ref.name),
					Fix: "use a StepAction from the catalog (" + strings.Join(names(c.StepActions()), ", ") + ") or define it in the same file (apiVersion tekton.dev/v1beta1, kind StepAction)"}
			}
			r.StepActions[ref.name] = sa
		}
	}
	return nil
}

// StepAction returns the named StepAction.
func (c *Catalog) StepAction(name string) (*Definition, bool) {
	d, ok := c.stepActions[name]
	return d, ok
}

// StepActions returns the catalog's StepActions sorted by name.
func (c *Catalog) StepActions() []*Definition { return sorted(c.stepActions) }

// WithStepActions returns ts with each step that references one of r's
// StepActions replaced by the StepAction's step, merged as Tekton merges
// it (image, command, args, script, workingDir, env, volumeMounts,
// results), its params not substituted: the definition as written, for
// what is known before a run (an in-toto layout's expected commands).
// Engines resolve StepActions with Tekton's code when the task runs.
func (r *Resolved) WithStepActions(ts *v1.TaskSpec) *v1.TaskSpec {
	out := ts
	for i, s := range ts.Steps {
		if s.Ref == nil {
			continue
		}
		d, ok := r.StepActions[s.Ref.Name]
		if !ok {
			continue
		}
		if out == ts {
			out = ts.DeepCopy()
		}
		sa := d.StepAction.Spec.ToStep()
		step := &out.Steps[i]
		step.Image, step.Command, step.Args, step.Script = sa.Image, sa.Command, sa.Args, sa.Script
		step.WorkingDir, step.Env, step.VolumeMounts, step.Results = sa.WorkingDir, sa.Env, sa.VolumeMounts, sa.Results
		step.SecurityContext = sa.SecurityContext
		step.Ref, step.Params = nil, nil
	}
	return out
}
