package pipelines

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// NetworkAnnotation marks a Task that needs network access. Only such tasks
// get the host's network in the sandbox, and that is recorded in the run's
// output. Every other step runs with loopback only.
const NetworkAnnotation = "accord.dev/network"

// NeedsNetwork reports whether the task is marked with [NetworkAnnotation] "true".
func NeedsNetwork(t *v1.Task) bool {
	return t != nil && t.Annotations[NetworkAnnotation] == "true"
}

// IsPinned reports whether ref names an image by digest. The registry may
// be implicit ("busybox@sha256:..."): the digest is what pins the image, and
// it is the form the "not pinned" fix suggests.
func IsPinned(ref string) bool {
	_, err := name.NewDigest(ref, name.WeakValidation)
	return err == nil
}

func checkPinned(d *Definition, allow bool) error {
	for _, u := range stepImages(d) {
		if IsPinned(u.image) || allow {
			continue
		}
		if strings.Contains(u.image, "$(") {
			return &Error{
				Field: u.field,
				Msg:   fmt.Sprintf("image %q comes from a substitution, so its digest cannot be checked before the run", u.image),
				Fix:   "write the image itself in the step, pinned by digest (REPO@sha256:<digest>), in place of the parameter (the catalog is where images are chosen), or pass --allow-unpinned to run it anyway (recorded in the run's output)",
			}
		}
		return &Error{
			Field: u.field,
			Msg:   fmt.Sprintf("image %q is not pinned by digest", u.image),
			Fix:   fmt.Sprintf("reference it as %s@sha256:<digest> (the digest of the exact image you mean), or pass --allow-unpinned to run it anyway (recorded in the run's output)", repoOf(u.image)),
		}
	}
	return nil
}

type imageUse struct{ field, image string }

// stepImages lists every image the definition would run (steps' and
// sidecars'), with its field path.
func stepImages(d *Definition) []imageUse {
	var out []imageUse
	if d.StepAction != nil {
		if img := d.StepAction.Spec.Image; img != "" {
			out = append(out, imageUse{"spec.image", img})
		}
		return out
	}
	addTask := func(prefix string, ts *v1.TaskSpec) {
		if ts.StepTemplate != nil && ts.StepTemplate.Image != "" {
			out = append(out, imageUse{prefix + "stepTemplate.image", ts.StepTemplate.Image})
		}
		for i, s := range ts.Steps {
			if s.Image != "" {
				out = append(out, imageUse{fmt.Sprintf("%ssteps[%d].image", prefix, i), s.Image})
			}
		}
		for i, s := range ts.Sidecars {
			out = append(out, imageUse{fmt.Sprintf("%ssidecars[%d].image", prefix, i), s.Image})
		}
	}
	if d.Task != nil {
		addTask("spec.", &d.Task.Spec)
		return out
	}
	for i, pt := range allPipelineTasks(&d.Pipeline.Spec) {
		if pt.TaskSpec != nil {
			addTask(taskPath(&d.Pipeline.Spec, i)+".taskSpec.", &pt.TaskSpec.TaskSpec)
		}
	}
	return out
}

// StepImages lists every image the definition's steps and sidecars run
// (stepTemplate included), in order, duplicates kept.
func StepImages(d *Definition) []string {
	var out []string
	for _, u := range stepImages(d) {
		out = append(out, u.image)
	}
	return out
}

// UnpinnedImages lists the images of d that are not pinned by digest.
func UnpinnedImages(d *Definition) []string {
	var out []string
	for _, u := range stepImages(d) {
		if !IsPinned(u.image) {
			out = append(out, u.image)
		}
	}
	return out
}

func allPipelineTasks(ps *v1.PipelineSpec) []v1.PipelineTask {
	return append(append([]v1.PipelineTask{}, ps.Tasks...), ps.Finally...)
}

// taskPath is the field path of the i-th task of allPipelineTasks(ps):
// "spec.tasks[i]", or "spec.finally[j]" for a finally task.
func taskPath(ps *v1.PipelineSpec, i int) string {
	if i < len(ps.Tasks) {
		return fmt.Sprintf("spec.tasks[%d]", i)
	}
	return fmt.Sprintf("spec.finally[%d]", i-len(ps.Tasks))
}

// unsupported is one field accord refuses rather than silently ignoring.
func unsupported(field, why string) error {
	return &Error{Field: field, Msg: "not supported by accord's engines: " + why, Fix: "remove the field; accord refuses what it cannot run with Tekton's semantics rather than ignoring it"}
}

func checkSupported(d *Definition) error {
	if err := checkSidecarNetwork(d); err != nil {
		return err
	}
	if err := checkUnhonoured(d); err != nil {
		return err
	}
	if d.Task != nil {
		return checkTaskSpec("spec.", &d.Task.Spec)
	}
	ps := &d.Pipeline.Spec
	if err := checkMatrixNames(ps); err != nil {
		return err
	}
	for i, pt := range ps.Tasks {
		if err := checkPipelineTask(fmt.Sprintf("spec.tasks[%d].", i), &pt); err != nil {
			return err
		}
	}
	for i, pt := range ps.Finally {
		if err := checkPipelineTask(fmt.Sprintf("spec.finally[%d].", i), &pt); err != nil {
			return err
		}
	}
	return nil
}

func checkPipelineTask(p string, pt *v1.PipelineTask) error {
	switch {
	case pt.PipelineRef != nil || pt.PipelineSpec != nil:
		return unsupported(p+"pipelineRef", "pipelines in pipelines")
	case pt.Retries != 0:
		return unsupported(p+"retries", "a hermetic build is deterministic; retrying hides flakiness")
	case pt.OnError != "":
		return unsupported(p+"onError", "pipeline task onError")
	case pt.TaskRef != nil && pt.TaskRef.Resolver != "":
		return unsupported(p+"taskRef.resolver", "remote resolution; tasks come from the policy-controlled catalog")
	case pt.TaskRef != nil && pt.TaskRef.Kind != "" && pt.TaskRef.Kind != v1.NamespacedTaskKind:
		return unsupported(p+"taskRef.kind", fmt.Sprintf("kind %q (only Task)", pt.TaskRef.Kind))
	case pt.TaskRef != nil && pt.TaskRef.APIVersion != "":
		return unsupported(p+"taskRef.apiVersion", "custom tasks")
	}
	if pt.TaskSpec != nil {
		return checkTaskSpec(p+"taskSpec.", &pt.TaskSpec.TaskSpec)
	}
	return nil
}

func checkTaskSpec(p string, ts *v1.TaskSpec) error {
	if err := checkTaskExtras(p, ts); err != nil {
		return err
	}
	if err := checkSidecars(p, ts); err != nil {
		return err
	}
	if ts.StepTemplate != nil {
		if err := checkSecurityContext(p+"stepTemplate.", ts.StepTemplate.SecurityContext); err != nil {
			return err
		}
	}
	for i, s := range ts.Steps {
		sp := fmt.Sprintf("%ssteps[%d].", p, i)
		switch {
		case len(s.VolumeDevices) > 0:
			return unsupported(sp+"volumeDevices", "devices")
		case len(s.EnvFrom) > 0:
			return unsupported(sp+"envFrom", "environment from ConfigMaps or Secrets")
		case s.StdoutConfig != nil || s.StderrConfig != nil:
			return unsupported(sp+"stdoutConfig", "redirecting step output")
		case len(s.Workspaces) > 0:
			return unsupported(sp+"workspaces", "step-level workspaces (declare them on the Task)")
		}
		if err := checkSecurityContext(sp, s.SecurityContext); err != nil {
			return err
		}
		for j, e := range s.Env {
			if e.ValueFrom != nil {
				return unsupported(fmt.Sprintf("%senv[%d].valueFrom", sp, j), "environment from Secrets, ConfigMaps or fields")
			}
		}
	}
	return nil
}

// repoOf strips tag and digest from an image reference, keeping the name as written.
func repoOf(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
