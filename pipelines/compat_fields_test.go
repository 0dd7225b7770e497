package pipelines

import (
	"fmt"
	"reflect"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file finds, by reflection over Tekton's v1 Go types, every field a
// Task or Pipeline can set: the rows docs/tekton-compat.md must have.

// field is one settable field: a row of docs/tekton-compat.md.
type field struct {
	// key names the row: the Go type that holds the field and the field's
	// JSON name ("Step.image"). Fields of embedded (inline) structs belong
	// to the type that embeds them ("TaskRef.resolver").
	key string
	// root is the kind ("Task" or "Pipeline") of the document in which
	// the field is first reached, and path is where: a Tekton field path
	// ("spec.steps[0].image").
	root string
	path []segment
	// typ is the field's Go type.
	typ reflect.Type
}

// segment is one step of a field path: a JSON key, or index 0 of a list.
// typ is the Go type of the value the segment leads to.
type segment struct {
	key   string // "" for a list index
	index bool
	typ   reflect.Type
}

// pathString renders a path the way Tekton's errors do: "spec.steps[0].image".
func pathString(p []segment) string {
	var b strings.Builder
	for _, s := range p {
		if s.index {
			b.WriteString("[0]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// expandK8s are the Kubernetes types whose fields get their own rows;
// every other Kubernetes type (an EnvVarSource, a hostPath volume, ...) is
// one row as a whole: accord supports or refuses it as a unit.
var expandK8s = map[reflect.Type]bool{
	reflect.TypeOf(metav1.ObjectMeta{}):                    true,
	reflect.TypeOf(corev1.EnvVar{}):                        true,
	reflect.TypeOf(corev1.VolumeMount{}):                   true,
	reflect.TypeOf(corev1.SecurityContext{}):               true,
	reflect.TypeOf(corev1.Capabilities{}):                  true,
	reflect.TypeOf(corev1.Volume{}):                        true,
	reflect.TypeOf(corev1.VolumeSource{}):                  true,
	reflect.TypeOf(corev1.EmptyDirVolumeSource{}):          true,
	reflect.TypeOf(corev1.ResourceRequirements{}):          true,
	reflect.TypeOf(corev1.Probe{}):                         true,
	reflect.TypeOf(corev1.ProbeHandler{}):                  true,
	reflect.TypeOf(corev1.ExecAction{}):                    true,
	reflect.TypeOf(corev1.ContainerPort{}):                 true,
	reflect.TypeOf(metav1.TypeMeta{}):                      true,
	reflect.TypeOf(corev1.ResourceClaim{}):                 false,
	reflect.TypeOf(corev1.EnvVarSource{}):                  false,
	reflect.TypeOf(corev1.EnvFromSource{}):                 false,
	reflect.TypeOf(corev1.HostPathVolumeSource{}):          false,
	reflect.TypeOf(corev1.SELinuxOptions{}):                false,
	reflect.TypeOf(corev1.SeccompProfile{}):                false,
	reflect.TypeOf(corev1.AppArmorProfile{}):               false,
	reflect.TypeOf(corev1.VolumeDevice{}):                  false,
	reflect.TypeOf(corev1.Lifecycle{}):                     false,
	reflect.TypeOf(corev1.HTTPGetAction{}):                 false,
	reflect.TypeOf(corev1.TCPSocketAction{}):               false,
	reflect.TypeOf(corev1.GRPCAction{}):                    false,
	reflect.TypeOf(corev1.WindowsSecurityContextOptions{}): false,
}

// opaqueTekton are Tekton types with their own JSON form (a string, list or
// object written in place): one row, not one per Go field.
var opaqueTekton = map[reflect.Type]bool{
	reflect.TypeOf(v1.ParamValue{}): true,
}

// documentedElsewhere are inline structs whose fields have their own
// section: a pipeline task's taskSpec is a TaskSpec.
var documentedElsewhere = map[reflect.Type]bool{
	reflect.TypeOf(v1.TaskSpec{}): true,
}

// sampleVia names, for types reached from several fields, the field
// through which their own fields are sampled: the one where accord
// supports the most (a sidecar's readinessProbe rather than its
// livenessProbe, a pipeline task's params and when rather than a step's).
var sampleVia = map[reflect.Type]string{
	reflect.TypeOf(corev1.Probe{}):      "Sidecar.readinessProbe",
	reflect.TypeOf(v1.Param{}):          "PipelineTask.params",
	reflect.TypeOf(v1.WhenExpression{}): "PipelineTask.when",
}

const tektonPkg = "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

// expands reports whether t's fields get rows of their own.
func expands(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	if t.PkgPath() == tektonPkg {
		return !opaqueTekton[t]
	}
	if t.Name() == "TypeMeta" { // metav1 and k8s.io/apimachinery/pkg/runtime
		return true
	}
	return expandK8s[t]
}

// elem strips pointers, slices and maps, recording list and map steps.
func elem(t reflect.Type, path []segment) (reflect.Type, []segment) {
	for {
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Slice:
			if t.Elem().Kind() == reflect.Uint8 {
				return t, path
			}
			t = t.Elem()
			path = append(path, segment{index: true, typ: t})
		case reflect.Map:
			if !expands(derefAll(t.Elem())) {
				return t, path
			}
			t = t.Elem()
			path = append(path, segment{key: "k", typ: t})
		default:
			return t, path
		}
	}
}

func derefAll(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonName is the field's JSON key and whether it is embedded inline.
func jsonName(f reflect.StructField) (name string, inline bool) {
	tag := f.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" {
		return "", false
	}
	if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

type pending struct {
	t    reflect.Type
	name string // section: the type's name
	root string
	path []segment
}

// tektonFields walks Task and Pipeline breadth first and returns every
// field, each under the first path that reaches its type.
func tektonFields() ([]field, error) {
	queue := []pending{
		{reflect.TypeOf(v1.Task{}), "Task", "Task", nil},
		{reflect.TypeOf(v1.Pipeline{}), "Pipeline", "Pipeline", nil},
	}
	seen := map[reflect.Type]bool{}
	sections := map[string]reflect.Type{}
	var out []field
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p.t] {
			continue
		}
		seen[p.t] = true
		if prev, ok := sections[p.name]; ok && prev != p.t {
			return nil, fmt.Errorf("types %v and %v would share the section %s", prev, p.t, p.name)
		}
		sections[p.name] = p.t
		out = walkStruct(p, p.t, p.path, out, &queue)
	}
	return out, nil
}

// walkStruct adds the fields of t (at path, in section p.name) and queues
// the struct types they lead to.
func walkStruct(p pending, t reflect.Type, path []segment, out []field, queue *[]pending) []field {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline := jsonName(f)
		if inline {
			ft := derefAll(f.Type)
			if !documentedElsewhere[ft] && expands(ft) {
				out = walkStruct(p, ft, path, out, queue)
			}
			continue
		}
		if name == "" {
			continue
		}
		fp := append(append([]segment{}, path...), segment{key: name, typ: f.Type})
		out = append(out, field{key: p.name + "." + name, root: p.root, path: fp, typ: f.Type})
		et, ep := elem(f.Type, fp)
		if via, ok := sampleVia[et]; ok && via != p.name+"."+name {
			continue // its fields are reached, and sampled, through via
		}
		if expands(et) {
			*queue = append(*queue, pending{t: et, name: et.Name(), root: p.root, path: ep})
		}
	}
	return out
}
