package pipelines

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// This file builds, for each field, a minimal definition that sets it.

// sample is how a value is written into a definition.
type sample struct {
	// value is the field's value (a JSON-like Go value).
	value any
	// with sets sibling fields in the object that holds the field; unset
	// removes siblings that Tekton does not allow together with it.
	with  map[string]any
	unset []string
	// also sets fields elsewhere in the document, by path from its root
	// ("spec.volumes"), e.g. the volume a volumeMount names.
	also map[string]any
}

var (
	stepSeed     = map[string]any{"name": "s2", "image": pinnedImage, "script": "echo hi"}
	taskSpecSeed = map[string]any{"steps": []any{stepSeed}}
)

// seeds are the minimal values of types that a sample path passes
// through and the base document lacks (a sidecar to set a sidecar's
// field in), and of fields whose type is a Kubernetes type kept whole.
var seeds = map[reflect.Type]sample{
	reflect.TypeOf(v1.Step{}):                         {value: stepSeed},
	reflect.TypeOf(v1.Sidecar{}):                      {value: map[string]any{"name": "sc", "image": pinnedImage, "script": "echo hi"}},
	reflect.TypeOf(corev1.Volume{}):                   {value: map[string]any{"name": "v", "emptyDir": map[string]any{}}},
	reflect.TypeOf(v1.ParamSpec{}):                    {value: map[string]any{"name": "p"}},
	reflect.TypeOf(v1.WorkspaceDeclaration{}):         {value: map[string]any{"name": "w"}},
	reflect.TypeOf(v1.TaskResult{}):                   {value: map[string]any{"name": "r"}},
	reflect.TypeOf(v1.PipelineTask{}):                 {value: map[string]any{"name": "b", "taskSpec": taskSpecSeed}},
	reflect.TypeOf(v1.PipelineWorkspaceDeclaration{}): {value: map[string]any{"name": "w"}},
	reflect.TypeOf(v1.PipelineResult{}): {
		value: map[string]any{"name": "r", "value": "$(tasks.a.results.r)"},
		also:  map[string]any{"spec.tasks.0.taskSpec.results": []any{map[string]any{"name": "r"}}},
	},
	reflect.TypeOf(corev1.EnvVar{}): {value: map[string]any{"name": "E", "value": "v"}},
	reflect.TypeOf(corev1.VolumeMount{}): {
		value: map[string]any{"name": "v", "mountPath": "/vol"},
		also:  map[string]any{"spec.volumes": []any{map[string]any{"name": "v", "emptyDir": map[string]any{}}}},
	},
	reflect.TypeOf(v1.WorkspaceUsage{}): {
		value: map[string]any{"name": "w", "mountPath": "/w"},
		also:  map[string]any{"spec.workspaces": []any{map[string]any{"name": "w"}}},
	},
	reflect.TypeOf(v1.StepResult{}): {value: map[string]any{"name": "r"}},
	reflect.TypeOf(v1.Param{}):      {value: map[string]any{"name": "p", "value": "x"}},
	reflect.TypeOf(v1.WorkspacePipelineTaskBinding{}): {
		value: map[string]any{"name": "w", "workspace": "w"},
		also:  map[string]any{"spec.workspaces": []any{map[string]any{"name": "w"}}},
	},
	reflect.TypeOf(v1.WhenExpression{}): {value: map[string]any{"input": "a", "operator": "in", "values": []any{"a"}}},
	reflect.TypeOf(corev1.ContainerPort{}): {
		value: map[string]any{"containerPort": 8080},
	},
	reflect.TypeOf(corev1.Probe{}):      {value: map[string]any{"exec": map[string]any{"command": []any{"true"}}}},
	reflect.TypeOf(corev1.ExecAction{}): {value: map[string]any{"command": []any{"true"}}},
	reflect.TypeOf(v1.IncludeParams{}): {
		value: map[string]any{"name": "i", "params": []any{map[string]any{"name": "p", "value": "x"}}},
	},
	reflect.TypeOf(v1.Matrix{}): {
		value: map[string]any{"params": []any{map[string]any{"name": "p", "value": []any{"a", "b"}}}},
		with:  map[string]any{"taskSpec": withParam(taskSpecSeed, "p")},
	},
	reflect.TypeOf(v1.TaskRef{}):           {value: map[string]any{"name": "go-build"}, unset: []string{"taskSpec"}},
	reflect.TypeOf(v1.PipelineRef{}):       {value: map[string]any{"name": "other"}, unset: []string{"taskSpec"}},
	reflect.TypeOf(v1.PipelineSpec{}):      {value: map[string]any{"tasks": []any{map[string]any{"name": "x", "taskSpec": taskSpecSeed}}}, unset: []string{"taskSpec"}},
	reflect.TypeOf(v1.Ref{}):               {value: map[string]any{"name": "step-action"}, unset: []string{"image", "script"}},
	reflect.TypeOf(v1.EmbeddedTask{}):      {value: taskSpecSeed},
	reflect.TypeOf(v1.StepOutputConfig{}):  {value: map[string]any{"path": "/tmp/out"}},
	reflect.TypeOf(v1.PropertySpec{}):      {value: map[string]any{"type": "string"}},
	reflect.TypeOf(corev1.EnvVarSource{}):  {value: map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}},
	reflect.TypeOf(corev1.EnvFromSource{}): {value: map[string]any{"secretRef": map[string]any{"name": "s"}}},
	reflect.TypeOf(corev1.VolumeDevice{}):  {value: map[string]any{"name": "v", "devicePath": "/dev/x"}},
	reflect.TypeOf(corev1.Lifecycle{}): {
		value: map[string]any{"preStop": map[string]any{"exec": map[string]any{"command": []any{"true"}}}},
	},
	reflect.TypeOf(corev1.HTTPGetAction{}):   {value: map[string]any{"port": 8080}},
	reflect.TypeOf(corev1.TCPSocketAction{}): {value: map[string]any{"port": 8080}},
	reflect.TypeOf(corev1.GRPCAction{}):      {value: map[string]any{"port": 8080}},
	reflect.TypeOf(corev1.ResourceClaim{}):   {value: map[string]any{"name": "gpu"}},
	reflect.TypeOf(corev1.SELinuxOptions{}):  {value: map[string]any{"level": "s0:c1"}},
	reflect.TypeOf(corev1.SeccompProfile{}):  {value: map[string]any{"type": "RuntimeDefault"}},
	reflect.TypeOf(corev1.AppArmorProfile{}): {value: map[string]any{"type": "RuntimeDefault"}},
	reflect.TypeOf(corev1.WindowsSecurityContextOptions{}): {
		value: map[string]any{"runAsUserName": "x"},
	},
	reflect.TypeOf(metav1.OwnerReference{}): {
		value: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u"},
	},
	reflect.TypeOf(metav1.ManagedFieldsEntry{}): {value: map[string]any{"manager": "kubectl"}},
	reflect.TypeOf(metav1.Time{}):               {value: "2024-01-01T00:00:00Z"},
	reflect.TypeOf(metav1.Duration{}):           {value: "1m"},
	reflect.TypeOf(resource.Quantity{}):         {value: "64Mi"},
	reflect.TypeOf(v1.ParamValue{}):             {value: "x"},
	reflect.TypeOf(runtime.RawExtension{}):      {value: map[string]any{"a": "b"}},
	reflect.TypeOf(corev1.ResourceList{}):       {value: map[string]any{"memory": "64Mi"}},
}

func withParam(spec map[string]any, name string) map[string]any {
	out := map[string]any{}
	for k, v := range spec {
		out[k] = v
	}
	out["params"] = []any{map[string]any{"name": name}}
	return out
}

// seedOf is the seed of t (pointers removed), or an empty object for a
// struct without one.
func seedOf(t reflect.Type) (sample, bool) {
	t = derefAll(t)
	if s, ok := seeds[t]; ok {
		return s, true
	}
	if t.Kind() == reflect.Struct {
		return sample{value: map[string]any{}}, true
	}
	return sample{}, false
}

// genericValue is a value of t's kind for a field without an override.
func genericValue(t reflect.Type) (sample, error) {
	if s, ok := seedOf(t); ok {
		return s, nil
	}
	t = derefAll(t)
	switch t.Kind() {
	case reflect.String:
		return sample{value: "x"}, nil
	case reflect.Bool:
		return sample{value: true}, nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return sample{value: 1}, nil
	case reflect.Slice:
		s, err := genericValue(t.Elem())
		return sample{value: []any{s.value}, also: s.also}, err
	case reflect.Map:
		s, err := genericValue(t.Elem())
		return sample{value: map[string]any{"a": s.value}, also: s.also}, err
	}
	return sample{}, fmt.Errorf("no sample value for %v", t)
}

// baseDocs are the documents a sample starts from: the smallest valid
// Task and Pipeline.
var baseDocs = map[string]string{
	"Task": task("", ""),
	"Pipeline": pipeline("    - name: a\n      taskSpec:\n        steps:\n" +
		"          - {name: s, image: '" + pinnedImage + "', script: echo hi}\n"),
}

// definition returns the YAML of f's base document with f set: the
// override for f.key if there is one, else a value of f's type.
func definition(f field) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(baseDocs[f.root]), &doc); err != nil {
		return nil, err
	}
	s, ok := overrides[f.key]
	if !ok {
		var err error
		if s, err = genericValue(f.typ); err != nil {
			return nil, fmt.Errorf("%s: %w (add an override)", f.key, err)
		}
	}
	for p, v := range s.also {
		if err := setPath(doc, p, v); err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	parent, err := walkTo(doc, f.root, f.path[:len(f.path)-1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.key, err)
	}
	apply(parent, f.path[len(f.path)-1].key, s)
	return yaml.Marshal(doc)
}

// apply sets key to s.value in obj, with its siblings.
func apply(obj map[string]any, key string, s sample) {
	for _, k := range s.unset {
		delete(obj, k)
	}
	for k, v := range s.with {
		obj[k] = deepCopy(v)
	}
	obj[key] = deepCopy(s.value)
}

// walkTo follows path from doc, creating what is missing from seeds, and
// returns the object at its end.
func walkTo(doc map[string]any, root string, path []segment) (map[string]any, error) {
	cur := doc
	for i := 0; i < len(path); i++ {
		seg := path[i]
		if i+1 < len(path) && path[i+1].index {
			list, _ := cur[seg.key].([]any)
			if len(list) == 0 {
				s, _ := seedOf(path[i+1].typ)
				list = []any{deepCopy(s.value)}
				cur[seg.key] = list
				for p, v := range s.also {
					if err := setPath(doc, p, v); err != nil {
						return nil, err
					}
				}
			}
			next, ok := list[0].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s of %s is not an object", pathString(path[:i+2]), root)
			}
			cur = next
			i++
			continue
		}
		next, ok := cur[seg.key].(map[string]any)
		if !ok {
			s, _ := seedOf(seg.typ)
			v, _ := deepCopy(s.value).(map[string]any)
			if v == nil {
				v = map[string]any{}
			}
			apply(cur, seg.key, sample{value: v, with: s.with, unset: s.unset})
			for p, val := range s.also {
				if err := setPath(doc, p, val); err != nil {
					return nil, err
				}
			}
			next = cur[seg.key].(map[string]any) // apply stored a copy
		}
		cur = next
	}
	return cur, nil
}

// setPath sets a dotted path ("spec.volumes", "spec.steps.0.results") in
// doc, making the objects on the way; a number indexes an existing list item.
func setPath(doc map[string]any, path string, v any) error {
	var cur any = doc
	keys := strings.Split(path, ".")
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[k] = deepCopy(v)
				return nil
			}
			if _, ok := c[k]; !ok {
				c[k] = map[string]any{}
				if _, err := strconv.Atoi(keys[i+1]); err == nil {
					c[k] = []any{}
				}
			}
			cur = c[k]
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n > len(c) {
				return fmt.Errorf("%s: %q is not an index of a list of %d", path, k, len(c))
			}
			if n == len(c) {
				return fmt.Errorf("%s: set the whole list item, not inside a new one", path)
			}
			if last {
				c[n] = deepCopy(v)
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("%s: %q is not in an object or list", path, k)
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}

// overrides are the samples of fields whose generic value Tekton would
// refuse for an unrelated reason (an image that is not pinned, an onError
// that is not an allowed word, a command beside a script), or that would
// not show what the row says (a volume source beside emptyDir).
var overrides = map[string]sample{
	"Task.kind":           {value: "Task"},
	"Task.apiVersion":     {value: "tekton.dev/v1beta1"},
	"Task.metadata":       {value: map[string]any{"name": "t", "labels": map[string]any{"a": "b"}}},
	"Task.spec":           {value: taskSpecSeed},
	"Pipeline.kind":       {value: "Pipeline"},
	"Pipeline.apiVersion": {value: "tekton.dev/v1beta1"},
	"Pipeline.metadata":   {value: map[string]any{"name": "p"}},
	"Pipeline.spec":       {value: map[string]any{"tasks": []any{map[string]any{"name": "a", "taskSpec": taskSpecSeed}}}},

	"ParamSpec.type":       {value: "array"},
	"PropertySpec.type":    {value: "string"},
	"ParamSpec.properties": {value: map[string]any{"k": map[string]any{"type": "string"}}, with: map[string]any{"type": "object"}},
	"ParamSpec.enum":       {value: []any{"x"}, with: map[string]any{"default": "x"}},

	"Step.image":                   {value: pinnedImage},
	"Step.command":                 {value: []any{"/bin/sh", "-c", "echo hi"}, unset: []string{"script"}},
	"Step.workingDir":              {value: "/tmp/work"},
	"Step.imagePullPolicy":         {value: "IfNotPresent"},
	"Step.securityContext":         {value: map[string]any{"runAsUser": 1000, "runAsNonRoot": true}},
	"Step.onError":                 {value: "continue"},
	"Step.params":                  {value: []any{map[string]any{"name": "p", "value": "x"}}, with: map[string]any{"ref": map[string]any{"name": "step-action"}}, unset: []string{"image", "script"}},
	"StepTemplate.image":           {value: pinnedImage},
	"StepTemplate.command":         {value: []any{"/bin/sh", "-c", "echo hi"}, also: map[string]any{"spec.steps": []any{map[string]any{"name": "s", "image": pinnedImage}}}},
	"StepTemplate.workingDir":      {value: "/tmp/work"},
	"StepTemplate.imagePullPolicy": {value: "IfNotPresent"},
	"StepTemplate.securityContext": {value: map[string]any{"runAsUser": 1000}},

	"Sidecar.name":                     {value: "sc"},
	"Sidecar.image":                    {value: pinnedImage},
	"Sidecar.command":                  {value: []any{"/bin/sh", "-c", "sleep 60"}, unset: []string{"script"}},
	"Sidecar.workingDir":               {value: "/tmp"},
	"Sidecar.imagePullPolicy":          {value: "IfNotPresent"},
	"Sidecar.securityContext":          {value: map[string]any{"runAsUser": 1000}},
	"Sidecar.terminationMessagePath":   {value: "/tmp/termination-log"},
	"Sidecar.terminationMessagePolicy": {value: "File"},
	"Sidecar.restartPolicy":            {value: "Always"},

	"ContainerPort.name":     {value: "http"},
	"ContainerPort.hostPort": {value: 8080},
	"ContainerPort.protocol": {value: "TCP"},
	"ContainerPort.hostIP":   {value: "127.0.0.1"},
	"Probe.httpGet":          {value: map[string]any{"port": 8080}, unset: []string{"exec"}},
	"Probe.tcpSocket":        {value: map[string]any{"port": 8080}, unset: []string{"exec"}},
	"Probe.grpc":             {value: map[string]any{"port": 8080}, unset: []string{"exec"}},

	"WorkspaceDeclaration.mountPath": {value: "/workspace/custom"},

	"TaskResult.type":       {value: "array"},
	"TaskResult.properties": {value: map[string]any{"k": map[string]any{"type": "string"}}, with: map[string]any{"type": "object"}},
	"TaskResult.value": {
		value: "$(steps.s.results.r)",
		also:  map[string]any{"spec.steps.0.results": []any{map[string]any{"name": "r"}}},
	},
	"StepResult.type":       {value: "array"},
	"StepResult.properties": {value: map[string]any{"k": map[string]any{"type": "string"}}, with: map[string]any{"type": "object"}},

	"PipelineTask.runAfter": {
		value: []any{"b"},
		also: map[string]any{"spec.tasks": []any{
			map[string]any{"name": "a", "taskSpec": taskSpecSeed},
			map[string]any{"name": "b", "taskSpec": taskSpecSeed},
		}},
	},
	"PipelineTask.timeout":   {value: "1m"},
	"PipelineTask.onError":   {value: "continue"},
	"PipelineResult.type":    {value: "string"},
	"PipelineResult.value":   {value: "$(tasks.a.results.r)"},
	"TaskRef.name":           {value: "go-build"},
	"TaskRef.kind":           {value: "Task"},
	"TaskRef.apiVersion":     {value: "example.dev/v1", with: map[string]any{"kind": "Example"}},
	"TaskRef.resolver":       {value: "git", unset: []string{"name"}},
	"TaskRef.params":         {value: []any{map[string]any{"name": "url", "value": "x"}}, with: map[string]any{"resolver": "git"}, unset: []string{"name"}},
	"Ref.resolver":           {value: "git", unset: []string{"name"}},
	"Ref.params":             {value: []any{map[string]any{"name": "url", "value": "x"}}, with: map[string]any{"resolver": "git"}, unset: []string{"name"}},
	"PipelineRef.resolver":   {value: "git", unset: []string{"name"}},
	"PipelineRef.params":     {value: []any{map[string]any{"name": "url", "value": "x"}}, with: map[string]any{"resolver": "git"}, unset: []string{"name"}},
	"PipelineRef.apiVersion": {value: "tekton.dev/v1"},
	"EmbeddedTask.apiVersion": {
		value: "example.dev/v1", with: map[string]any{"kind": "Example", "spec": map[string]any{"a": "b"}}, unset: []string{"steps"},
	},
	"EmbeddedTask.kind": {
		value: "Example", with: map[string]any{"apiVersion": "example.dev/v1", "spec": map[string]any{"a": "b"}}, unset: []string{"steps"},
	},
	"EmbeddedTask.spec": {
		value: map[string]any{"a": "b"}, with: map[string]any{"apiVersion": "example.dev/v1", "kind": "Example"}, unset: []string{"steps"},
	},
	"EmbeddedTask.metadata": {value: map[string]any{"annotations": map[string]any{NetworkAnnotation: "true"}}},

	"WhenExpression.operator": {value: "notin", with: map[string]any{"values": []any{"b"}}},
	"WhenExpression.cel":      {value: "'a' == 'a'", unset: []string{"input", "operator", "values"}},

	"WorkspacePipelineTaskBinding.name":      {value: "w"},
	"WorkspacePipelineTaskBinding.workspace": {value: "w"},
	"WorkspacePipelineTaskBinding.subPath":   {value: "sub"},

	"SecurityContext.runAsUser":    {value: 1000},
	"SecurityContext.runAsGroup":   {value: 1000},
	"SecurityContext.runAsNonRoot": {value: true, with: map[string]any{"runAsUser": 1000}},
	"SecurityContext.procMount":    {value: "Unmasked"},
	"SecurityContext.capabilities": {value: map[string]any{"add": []any{"NET_ADMIN"}}},
	"Capabilities.add":             {value: []any{"NET_ADMIN"}},
	"Capabilities.drop":            {value: []any{"ALL"}},

	"VolumeMount.name":              {value: "v"},
	"VolumeMount.mountPath":         {value: "/vol"},
	"VolumeMount.subPath":           {value: "sub"},
	"VolumeMount.recursiveReadOnly": {value: "Enabled", with: map[string]any{"readOnly": true}},
	"VolumeMount.mountPropagation":  {value: "HostToContainer"},
	"VolumeMount.subPathExpr":       {value: "$(POD_NAME)"},

	"EmptyDirVolumeSource.medium":    {value: "Memory"},
	"EmptyDirVolumeSource.sizeLimit": {value: "64Mi"},

	"ResourceRequirements.limits":   {value: map[string]any{"memory": "64Mi"}},
	"ResourceRequirements.requests": {value: map[string]any{"cpu": "1"}},
}

func init() {
	// A volume source other than emptyDir replaces the seed's emptyDir:
	// a volume has exactly one source.
	for _, f := range mustFields() {
		if strings.HasPrefix(f.key, "Volume.") && f.key != "Volume.name" && f.key != "Volume.emptyDir" {
			if _, ok := overrides[f.key]; !ok {
				s, _ := genericValue(f.typ)
				overrides[f.key] = sample{value: s.value, unset: []string{"emptyDir"}}
			}
		}
	}
}

func mustFields() []field {
	fs, err := tektonFields()
	if err != nil {
		panic(err)
	}
	return fs
}
