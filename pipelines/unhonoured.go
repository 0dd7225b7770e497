package pipelines

import (
	"encoding/json"
	"fmt"
	"sort"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
)

// checkUnhonoured refuses fields that Tekton's validation accepts and that
// accord's engines would otherwise skip without a word: resource claims, a sidecar port on the host, custom tasks
// embedded in a pipeline, and
// the container fields of v1beta1 steps that v1 dropped (Tekton's
// conversion keeps them in an annotation, where nothing reads them).
// docs/tekton-compat.md lists every field; its test keeps the two in step.
func checkUnhonoured(d *Definition) error {
	if d.Task != nil {
		if err := checkDeprecated(d.Task.Annotations, func(string) string { return "spec." }); err != nil {
			return err
		}
		return checkTaskUnhonoured("spec.", &d.Task.Spec)
	}
	ps := &d.Pipeline.Spec
	// Tekton keys a pipeline's deprecations by pipeline task name.
	prefix := func(name string) string {
		for i, pt := range allPipelineTasks(ps) {
			if pt.Name == name {
				return taskPath(ps, i) + ".taskSpec."
			}
		}
		return "spec."
	}
	if err := checkDeprecated(d.Pipeline.Annotations, prefix); err != nil {
		return err
	}
	for i, pt := range allPipelineTasks(ps) {
		p := taskPath(ps, i) + "."
		if pt.TaskSpec == nil {
			continue
		}
		et := pt.TaskSpec
		const why = "custom tasks (accord runs Tasks only)"
		switch {
		case et.APIVersion != "":
			return unsupported(p+"taskSpec.apiVersion", why)
		case et.Kind != "":
			return unsupported(p+"taskSpec.kind", why)
		case len(et.Spec.Raw) > 0:
			return unsupported(p+"taskSpec.spec", why)
		}
		if err := checkTaskUnhonoured(p+"taskSpec.", &et.TaskSpec); err != nil {
			return err
		}
	}
	return nil
}

func checkTaskUnhonoured(p string, ts *v1.TaskSpec) error {
	if ts.StepTemplate != nil && len(ts.StepTemplate.ComputeResources.Claims) > 0 {
		return claimsRefused(p + "stepTemplate.")
	}
	for i, s := range ts.Steps {
		sp := fmt.Sprintf("%ssteps[%d].", p, i)
		if len(s.ComputeResources.Claims) > 0 {
			return claimsRefused(sp)
		}
	}
	for i, s := range ts.Sidecars {
		sp := fmt.Sprintf("%ssidecars[%d].", p, i)
		if len(s.ComputeResources.Claims) > 0 {
			return claimsRefused(sp)
		}
		for j, port := range s.Ports {
			if port.HostPort != 0 || port.HostIP != "" {
				return unsupported(fmt.Sprintf("%sports[%d].hostPort", sp, j), "a port on the host: a sidecar listens in the task's own loopback-only network, nothing is exposed on the host")
			}
		}
	}
	return nil
}

func claimsRefused(p string) error {
	return unsupported(p+"computeResources.claims", "dynamic resource claims (the sandbox has no devices to claim)")
}

// checkDeprecated refuses what Tekton's v1beta1-to-v1 conversion moved into
// its deprecations annotation: v1beta1 step fields that v1 has not. prefix
// gives the field path of the task spec that Tekton's key names.
func checkDeprecated(annotations map[string]string, prefix func(name string) string) error {
	s, ok := annotations[v1beta1.TaskDeprecationsAnnotationKey]
	if !ok {
		return nil
	}
	var deps map[string]struct {
		Steps        []v1beta1.Step        `json:"deprecatedSteps"`
		StepTemplate *v1beta1.StepTemplate `json:"deprecatedStepTemplate"`
	}
	if err := json.Unmarshal([]byte(s), &deps); err != nil {
		return &Error{Field: "metadata.annotations." + v1beta1.TaskDeprecationsAnnotationKey, Msg: "cannot be read: " + err.Error(), Fix: "remove the annotation; Tekton writes it when converting v1beta1"}
	}
	for _, name := range sortedKeys(deps) {
		d, p := deps[name], prefix(name)
		for i := range d.Steps {
			if f := deprecatedField(&d.Steps[i]); f != "" {
				return deprecatedRefused(fmt.Sprintf("%ssteps[%d].%s", p, i, f))
			}
		}
		if t := d.StepTemplate; t != nil {
			if t.DeprecatedName != "" {
				return deprecatedRefused(p + "stepTemplate.name")
			}
			if f := deprecatedField(&v1beta1.Step{
				DeprecatedPorts: t.DeprecatedPorts, DeprecatedLivenessProbe: t.DeprecatedLivenessProbe,
				DeprecatedReadinessProbe: t.DeprecatedReadinessProbe, DeprecatedStartupProbe: t.DeprecatedStartupProbe,
				DeprecatedLifecycle: t.DeprecatedLifecycle, DeprecatedTerminationMessagePath: t.DeprecatedTerminationMessagePath,
				DeprecatedTerminationMessagePolicy: t.DeprecatedTerminationMessagePolicy,
				DeprecatedStdin:                    t.DeprecatedStdin, DeprecatedStdinOnce: t.DeprecatedStdinOnce, DeprecatedTTY: t.DeprecatedTTY,
			}); f != "" {
				return deprecatedRefused(p + "stepTemplate." + f)
			}
		}
	}
	return nil
}

// deprecatedField is the v1beta1 JSON name of the first deprecated field
// set in s, or "".
func deprecatedField(s *v1beta1.Step) string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"ports", len(s.DeprecatedPorts) > 0},
		{"livenessProbe", s.DeprecatedLivenessProbe != nil},
		{"readinessProbe", s.DeprecatedReadinessProbe != nil},
		{"startupProbe", s.DeprecatedStartupProbe != nil},
		{"lifecycle", s.DeprecatedLifecycle != nil},
		{"terminationMessagePath", s.DeprecatedTerminationMessagePath != ""},
		{"terminationMessagePolicy", s.DeprecatedTerminationMessagePolicy != ""},
		{"stdin", s.DeprecatedStdin},
		{"stdinOnce", s.DeprecatedStdinOnce},
		{"tty", s.DeprecatedTTY},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}

func deprecatedRefused(field string) error {
	return unsupported(field, "a v1beta1 step field that Tekton v1 no longer has (a step's ports, probes, lifecycle, termination message, stdin and tty)")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
