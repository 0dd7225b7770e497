package pipelines

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// checkTaskExtras checks what accord supports of a task beyond plain
// steps: emptyDir volumes and the steps' (and stepTemplate's) mounts of
// them, results taken from step results, StepAction references, and the
// stepTemplate, whose fields are checked as a step's.
func checkTaskExtras(p string, ts *v1.TaskSpec) error {
	if err := checkVolumes(p, ts.Volumes); err != nil {
		return err
	}
	declared := map[string]bool{}
	for _, v := range ts.Volumes {
		declared[v.Name] = true
		if strings.Contains(v.Name, "$(") {
			// Known once substituted: the engine checks the mounts.
			declared[anyVolume] = true
		}
	}
	if t := ts.StepTemplate; t != nil {
		if err := checkVolumeMounts(p+"stepTemplate.", t.VolumeMounts, declared); err != nil {
			return err
		}
		if err := checkStepTemplate(p, ts); err != nil {
			return err
		}
	}
	shared := sidecarVolumes(ts)
	for i, s := range ts.Steps {
		sp := fmt.Sprintf("%ssteps[%d].", p, i)
		if s.Ref != nil && (s.Ref.Resolver != "" || len(s.Ref.Params) > 0) {
			return unsupported(sp+"ref.resolver", "remote resolution of StepActions; they come from the policy-controlled catalog (ref: {name: ...})")
		}
		if err := checkVolumeMounts(sp, s.VolumeMounts, declared); err != nil {
			return err
		}
		for j, w := range s.When {
			if w.CEL != "" {
				return unsupported(fmt.Sprintf("%swhen[%d].cel", sp, j), "CEL in a step's when expressions (use input, operator and values)")
			}
		}
		for j, m := range s.VolumeMounts {
			if sc, ok := shared[m.Name]; ok && m.SubPath != "" {
				return &Error{Field: fmt.Sprintf("%svolumeMounts[%d].subPath", sp, j), Msg: fmt.Sprintf("a subPath of volume %q, which sidecar %q writes while the steps run: accord binds a subPath by its name, which a running container could replace with a link", m.Name, sc), Fix: "mount the whole volume in the step (no subPath), or mount it read-only in the sidecar"}
			}
		}
	}
	return checkResultValues(p, ts)
}

// anyVolume in a set of declared volume names stands for names not known
// before substitution.
const anyVolume = "$(*)"

// checkStepTemplate checks the stepTemplate's fields as a step's: what a
// step may set, the stepTemplate may set, with the same errors.
func checkStepTemplate(p string, ts *v1.TaskSpec) error {
	t := ts.StepTemplate
	s := v1.Step{Image: t.Image, Command: t.Command, Args: t.Args, WorkingDir: t.WorkingDir, EnvFrom: t.EnvFrom, Env: t.Env,
		ComputeResources: t.ComputeResources, VolumeMounts: t.VolumeMounts, VolumeDevices: t.VolumeDevices, SecurityContext: t.SecurityContext}
	err := checkTaskSpec(p, &v1.TaskSpec{Volumes: ts.Volumes, Steps: []v1.Step{s}})
	return relabelField(err, p+"steps[0].", p+"stepTemplate.")
}

// volumeReasons says why a volume type other than emptyDir is refused.
var volumeReasons = map[string]string{
	"hostPath":              "a step never sees the host's files",
	"secret":                "secrets never enter accord's sandbox: a hermetic build needs none",
	"configMap":             "there are no ConfigMaps outside Kubernetes: pass the data as params or in a workspace",
	"persistentVolumeClaim": "there are no PersistentVolumeClaims outside Kubernetes: use a workspace",
	"projected":             "projected volumes carry Kubernetes secrets, tokens and pod data",
	"downwardAPI":           "there is no pod whose fields a step could read",
}

// checkVolumes accepts emptyDir volumes (medium "" or Memory, no
// sizeLimit, which accord cannot enforce) with DNS-label names (the
// engine checks a name with a substitution once substituted), and refuses
// every other volume type by its name.
func checkVolumes(p string, vols []corev1.Volume) error {
	for i, v := range vols {
		vp := fmt.Sprintf("%svolumes[%d].", p, i)
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 && !strings.Contains(v.Name, "$(") {
			return &Error{Field: vp + "name", Msg: fmt.Sprintf("volume name %q is not a DNS label: %s", v.Name, strings.Join(errs, "; ")), Fix: "name the volume with lower-case letters, digits and '-' (as Kubernetes requires)"}
		}
		if v.EmptyDir == nil {
			typ := volumeType(v.VolumeSource)
			why, ok := volumeReasons[typ]
			if !ok {
				why = "it needs a Kubernetes cluster"
			}
			return &Error{Field: vp + typ, Msg: fmt.Sprintf("not supported by accord's engines: volumes of type %s (%s); only emptyDir volumes are", typ, why), Fix: "use an emptyDir volume (emptyDir: {}) or a workspace"}
		}
		if v.EmptyDir.SizeLimit != nil {
			return unsupported(vp+"emptyDir.sizeLimit", "an emptyDir's sizeLimit (accord cannot enforce it)")
		}
		if m := v.EmptyDir.Medium; m != corev1.StorageMediumDefault && m != corev1.StorageMediumMemory {
			return unsupported(vp+"emptyDir.medium", fmt.Sprintf("medium %q (only the default and Memory)", m))
		}
	}
	return nil
}

// volumeType is the JSON name of the volume source that is set
// ("hostPath", "secret", ...), or "volume source" when none is.
func volumeType(src corev1.VolumeSource) string {
	v := reflect.ValueOf(src)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "volume source"
}

// checkVolumeMounts checks a step's mounts: each of a declared volume,
// with a relative subPath inside it, and none of the fields accord
// cannot honour. Names that use a substitution are checked by the
// engine once substituted.
func checkVolumeMounts(sp string, mounts []corev1.VolumeMount, declared map[string]bool) error {
	for j, m := range mounts {
		mp := fmt.Sprintf("%svolumeMounts[%d].", sp, j)
		switch {
		case !declared[m.Name] && !declared[anyVolume] && !strings.Contains(m.Name, "$("):
			return &Error{Field: mp + "name", Msg: fmt.Sprintf("no volume %q in the task", m.Name), Fix: fmt.Sprintf("declare it in the task's volumes (`volumes: [{name: %s, emptyDir: {}}]`), or use a workspace", m.Name)}
		case m.SubPathExpr != "":
			return unsupported(mp+"subPathExpr", "subPathExpr (it expands the pod's environment); use subPath")
		case m.MountPropagation != nil:
			return unsupported(mp+"mountPropagation", "mount propagation between containers and the host")
		case m.RecursiveReadOnly != nil:
			return unsupported(mp+"recursiveReadOnly", "recursiveReadOnly (use readOnly)")
		}
		if err := CheckSubPath(m.SubPath); err != nil {
			return &Error{Field: mp + "subPath", Msg: err.Error(), Fix: "give a relative path inside the volume, without '..'"}
		}
	}
	return nil
}

// CheckSubPath refuses a volume mount's subPath that Kubernetes refuses:
// an absolute path, or one with a ".." component.
func CheckSubPath(sub string) error {
	if sub == "" {
		return nil
	}
	if path.IsAbs(sub) {
		return fmt.Errorf("subPath %q is absolute", sub)
	}
	for _, c := range strings.Split(sub, "/") {
		if c == ".." {
			return fmt.Errorf("subPath %q has a '..' component", sub)
		}
	}
	return nil
}

// sidecarVolumes maps each volume a sidecar mounts writable to that
// sidecar's name.
func sidecarVolumes(ts *v1.TaskSpec) map[string]string {
	m := map[string]string{}
	for _, sc := range ts.Sidecars {
		for _, vm := range sc.VolumeMounts {
			if !vm.ReadOnly {
				m[vm.Name] = sc.Name
			}
		}
	}
	return m
}

// checkResultValues checks task results taken from step results
// ($(steps.NAME.results.R), whose form Tekton's validation checked): the
// step must be one of the task's, and declare R unless it is a StepAction
// (whose results are known once it is resolved).
func checkResultValues(p string, ts *v1.TaskSpec) error {
	for i, r := range ts.Results {
		if r.Value == nil || r.Value.StringVal == "" {
			continue
		}
		field := fmt.Sprintf("%sresults[%d].value", p, i)
		stepName, result, err := v1.ExtractStepResultName(r.Value.StringVal)
		if err != nil {
			return &Error{Field: field, Msg: err.Error(), Fix: "write $(steps.STEP.results.RESULT)"}
		}
		step := findStep(ts.Steps, stepName)
		switch {
		case step == nil:
			return &Error{Field: field, Msg: fmt.Sprintf("no step %q in the task", stepName), Fix: "name a step of the task (steps[].name)"}
		case step.Ref == nil && !declaresResult(step, result):
			return &Error{Field: field, Msg: fmt.Sprintf("step %q declares no result %q", stepName, result), Fix: fmt.Sprintf("add `results: [{name: %s}]` to step %q", result, stepName)}
		}
	}
	return nil
}

func findStep(steps []v1.Step, name string) *v1.Step {
	for i := range steps {
		if steps[i].Name == name {
			return &steps[i]
		}
	}
	return nil
}

func declaresResult(s *v1.Step, name string) bool {
	for _, r := range s.Results {
		if r.Name == name {
			return true
		}
	}
	return false
}
