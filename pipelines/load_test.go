package pipelines

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// pinnedImage is the builder image the catalog uses.
const pinnedImage = "accord.dev/builders/go@sha256:eee4988927cdd6b55a99e221a3e17e30bdeedfa373c4def6db8ffadace035b68"

// task returns a tekton.dev/v1 Task named t with one step; spec and step
// are extra YAML lines (already indented) for the spec and the step.
func task(spec, step string) string {
	return "apiVersion: tekton.dev/v1\n" +
		"kind: Task\n" +
		"metadata:\n" +
		"  name: t\n" +
		"spec:\n" +
		spec +
		"  steps:\n" +
		"    - name: s\n" +
		"      image: " + pinnedImage + "\n" +
		"      script: echo hi\n" +
		step
}

// stepAction returns a StepAction named sa of apiVersion with a param and
// a result, as the public catalog writes them; extra is more YAML lines for
// its spec.
func stepAction(apiVersion, extra string) string {
	return "apiVersion: " + apiVersion + "\n" +
		"kind: StepAction\n" +
		"metadata:\n" +
		"  name: sa\n" +
		"spec:\n" +
		"  params:\n" +
		"    - name: greeting\n" +
		"      default: hello\n" +
		"  results:\n" +
		"    - name: said\n" +
		"  image: " + pinnedImage + "\n" +
		"  env:\n" +
		"    - {name: GREETING, value: $(params.greeting)}\n" +
		"  script: echo \"$GREETING\" | tee $(step.results.said.path)\n" +
		extra
}

// pipeline returns a tekton.dev/v1 Pipeline named p with the given tasks
// (YAML list items indented by four spaces).
func pipeline(tasks string) string {
	return "apiVersion: tekton.dev/v1\n" +
		"kind: Pipeline\n" +
		"metadata:\n" +
		"  name: p\n" +
		"spec:\n" +
		"  tasks:\n" +
		tasks
}

// seq is "v0, v1, ..., v<n-1>", a YAML flow sequence's items.
func seq(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = "v" + strconv.Itoa(i)
	}
	return strings.Join(s, ", ")
}

// where is the part of an *Error that locates the problem.
type where struct{ File, Object, Field string }

type badInput struct {
	name string
	yaml string
	ctx  func() context.Context // nil: context.Background()
	opts []Option
	want where // File is filled in by the test
	// msg and fix are substrings of Error.Msg and Error.Fix.
	msg, fix string
}

const unsupportedFix = "remove the field"

var badInputs = []badInput{
	{
		name: "malformed YAML",
		yaml: "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: [t\n",
		want: where{Object: "document 1"},
		msg:  "malformed YAML: error converting YAML to JSON: yaml: line 4",
		fix:  "indentation",
	},
	{
		name: "malformed YAML in second document",
		yaml: task("", "") + "---\nkind: Task\n\tname: tab\n",
		want: where{Object: "document 2"},
		msg:  "malformed YAML",
		fix:  "indentation",
	},
	{
		name: "unknown step field",
		yaml: task("", "      scrpt: echo typo\n"),
		want: where{Object: `Task "t"`, Field: "scrpt (line 10 of the document)"},
		msg:  `unknown field "scrpt"`,
		fix:  "remove or rename the field",
	},
	{
		name: "unknown spec field",
		yaml: task("  paramz: []\n", ""),
		want: where{Object: `Task "t"`, Field: "paramz (line 6 of the document)"},
		msg:  `unknown field "paramz"`,
		fix:  "remove or rename the field",
	},
	{
		name: "unknown pipeline task field",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      runsAfter: [b]\n"),
		want: where{Object: `Pipeline "p"`, Field: "runsAfter (line 9 of the document)"},
		msg:  `unknown field "runsAfter"`,
		fix:  "remove or rename the field",
	},
	{
		name: "unknown field in v1beta1",
		yaml: strings.Replace(task("", "      scrpt: echo typo\n"), "tekton.dev/v1", "tekton.dev/v1beta1", 1),
		want: where{Object: `Task "t"`, Field: "scrpt (line 10 of the document)"},
		msg:  `unknown field "scrpt"`,
		fix:  "remove or rename the field",
	},
	{
		name: "wrong apiVersion",
		yaml: strings.Replace(task("", ""), "tekton.dev/v1", "tekton.dev/v2", 1),
		want: where{Object: `Task "t"`, Field: "apiVersion"},
		msg:  `unsupported apiVersion "tekton.dev/v2"`,
		fix:  "tekton.dev/v1",
	},
	{
		name: "missing apiVersion",
		yaml: strings.Replace(task("", ""), "apiVersion: tekton.dev/v1\n", "", 1),
		want: where{Object: `Task "t"`, Field: "apiVersion"},
		msg:  `unsupported apiVersion ""`,
		fix:  "tekton.dev/v1",
	},
	{
		name: "wrong kind",
		yaml: strings.Replace(task("", ""), "kind: Task", "kind: TaskRun", 1),
		want: where{Object: `TaskRun "t"`, Field: "kind"},
		msg:  `unsupported kind "TaskRun"`,
		fix:  "Task and Pipeline",
	},
	{
		name: "missing metadata.name",
		yaml: strings.Replace(task("", ""), "  name: t\n", "  labels: {a: b}\n", 1),
		want: where{Object: `Task ""`, Field: "metadata.name"},
		msg:  "missing",
		fix:  "give the object a name",
	},
	{
		name: "unpinned step image",
		yaml: strings.Replace(task("", ""), pinnedImage, "docker.io/library/busybox:1.36", 1),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].image"},
		msg:  `image "docker.io/library/busybox:1.36" is not pinned by digest`,
		fix:  "docker.io/library/busybox@sha256:<digest>",
	},
	{
		name: "step image from a parameter",
		yaml: strings.Replace(task("  params: [{name: img, default: '"+pinnedImage+"'}]\n", ""), pinnedImage+"\n", "$(params.img)\n", 1),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].image"},
		msg:  `image "$(params.img)" comes from a substitution`,
		fix:  "in place of the parameter",
	},
	{
		name: "unpinned stepTemplate image",
		yaml: task("  stepTemplate:\n    image: busybox\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.stepTemplate.image"},
		msg:  `image "busybox" is not pinned by digest`,
		fix:  "--allow-unpinned",
	},
	{
		name: "unpinned image in a pipeline's inline taskSpec",
		yaml: pipeline("    - name: a\n      taskSpec:\n        steps:\n          - name: s\n            image: localhost:5000/b:latest\n            script: echo\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].taskSpec.steps[0].image"},
		msg:  `image "localhost:5000/b:latest" is not pinned by digest`,
		fix:  "localhost:5000/b@sha256:<digest>",
	},
	{
		name: "unpinned image in a finally task's inline taskSpec",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n") +
			"  finally:\n    - name: f\n      taskSpec:\n        steps:\n          - {name: s, image: 'busybox:1', script: echo}\n",
		want: where{Object: `Pipeline "p"`, Field: "spec.finally[0].taskSpec.steps[0].image"},
		msg:  `image "busybox:1" is not pinned by digest`,
		fix:  "busybox@sha256:<digest>",
	},
	{
		name: "sidecar volumeMounts",
		yaml: task("  sidecars:\n    - name: sc\n      image: "+pinnedImage+"\n      volumeMounts: [{name: v, mountPath: /v}]\n  volumes: [{name: v, emptyDir: {}}]\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.sidecars[0].volumeMounts"},
		msg:  "not supported by accord's engines: sidecar volume mounts",
		fix:  unsupportedFix,
	},
	{
		name: "volume of type hostPath",
		yaml: task("  volumes:\n    - name: ok\n      emptyDir: {}\n    - name: v\n      hostPath: {path: /var/run/docker.sock}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[1].hostPath"},
		msg:  "volumes of type hostPath (a step never sees the host's files)",
		fix:  "emptyDir",
	},
	{
		name: "volume of type secret",
		yaml: task("  volumes:\n    - name: v\n      secret: {secretName: docker-config}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[0].secret"},
		msg:  "secrets never enter accord's sandbox",
		fix:  "emptyDir",
	},
	{
		name: "volume of type configMap",
		yaml: task("  volumes:\n    - name: v\n      configMap: {name: settings}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[0].configMap"},
		msg:  "volumes of type configMap",
		fix:  "workspace",
	},
	{
		name: "volume of type persistentVolumeClaim",
		yaml: task("  volumes:\n    - name: v\n      persistentVolumeClaim: {claimName: cache}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[0].persistentVolumeClaim"},
		msg:  "use a workspace",
		fix:  "workspace",
	},
	{
		name: "emptyDir sizeLimit",
		yaml: task("  volumes:\n    - name: v\n      emptyDir: {sizeLimit: 1Gi}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[0].emptyDir.sizeLimit"},
		msg:  "accord cannot enforce it",
		fix:  unsupportedFix,
	},
	{
		name: "step securityContext privileged",
		yaml: task("", "      securityContext:\n        runAsUser: 1000\n        privileged: true\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].securityContext.privileged"},
		msg:  "privileged steps",
		fix:  unsupportedFix,
	},
	{
		name: "volume name is not a DNS label",
		yaml: task("  volumes:\n    - name: ../up\n      emptyDir: {}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.volumes[0].name"},
		msg:  `volume name "../up" is not a DNS label`,
		fix:  "lower-case letters",
	},
	{
		name: "volumeMount of an undeclared volume",
		yaml: task("  volumes:\n    - name: cache\n      emptyDir: {}\n", "      volumeMounts:\n        - {name: cache, mountPath: /cache}\n        - {name: cahce, mountPath: /cache2}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].volumeMounts[1].name"},
		msg:  `no volume "cahce" in the task`,
		fix:  "declare it in the task's volumes",
	},
	{
		name: "stepTemplate volumeMount of an undeclared volume",
		yaml: task("  stepTemplate:\n    volumeMounts:\n      - {name: cache, mountPath: /cache}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.stepTemplate.volumeMounts[0].name"},
		msg:  `no volume "cache" in the task`,
		fix:  "declare it in the task's volumes",
	},
	{
		name: "volumeMount subPath out of the volume",
		yaml: task("  volumes:\n    - name: cache\n      emptyDir: {}\n", "      volumeMounts:\n        - {name: cache, mountPath: /cache, subPath: a/../../up}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].volumeMounts[0].subPath"},
		msg:  `subPath "a/../../up" has a '..' component`,
		fix:  "relative path inside the volume",
	},
	{
		name: "volumeMount absolute subPath",
		yaml: task("  volumes:\n    - name: cache\n      emptyDir: {}\n", "      volumeMounts:\n        - {name: cache, mountPath: /cache, subPath: /etc}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].volumeMounts[0].subPath"},
		msg:  `subPath "/etc" is absolute`,
		fix:  "relative path inside the volume",
	},
	{
		name: "volumeMount subPathExpr",
		yaml: task("  volumes:\n    - name: cache\n      emptyDir: {}\n", "      volumeMounts:\n        - {name: cache, mountPath: /cache, subPathExpr: $(POD_NAME)}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].volumeMounts[0].subPathExpr"},
		msg:  "subPathExpr",
		fix:  unsupportedFix,
	},
	{
		name: "volumeMount mountPropagation",
		yaml: task("  volumes:\n    - name: cache\n      emptyDir: {}\n", "      volumeMounts:\n        - {name: cache, mountPath: /cache, mountPropagation: Bidirectional}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].volumeMounts[0].mountPropagation"},
		msg:  "mount propagation",
		fix:  unsupportedFix,
	},
	{
		name: "stepTemplate envFrom",
		yaml: task("  stepTemplate:\n    envFrom:\n      - secretRef: {name: creds}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.stepTemplate.envFrom"},
		msg:  "environment from ConfigMaps or Secrets",
		fix:  unsupportedFix,
	},
	{
		name: "stepTemplate env valueFrom",
		yaml: task("  stepTemplate:\n    env:\n      - name: TOKEN\n        valueFrom:\n          secretKeyRef: {name: s, key: k}\n", ""),
		want: where{Object: `Task "t"`, Field: "spec.stepTemplate.env[0].valueFrom"},
		msg:  "environment from Secrets",
		fix:  unsupportedFix,
	},
	{
		name: "stepTemplate volumeDevices in an inline taskSpec",
		yaml: pipeline("    - name: a\n      taskSpec:\n        stepTemplate:\n          volumeDevices: [{name: d, devicePath: /dev/xvda}]\n        steps:\n          - {name: s, image: '" + pinnedImage + "', script: echo}\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].taskSpec.stepTemplate.volumeDevices"},
		msg:  "devices",
		fix:  unsupportedFix,
	},
	{
		name: "StepAction ref with a resolver",
		yaml: "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps:\n    - name: s\n      ref:\n        resolver: git\n        params:\n          - {name: url, value: https://example.com/actions.git}\n",
		want: where{Object: `Task "t"`, Field: "spec.steps[0].ref.resolver"},
		msg:  "remote resolution of StepActions",
		fix:  unsupportedFix,
	},
	{
		name: "step when with CEL (refused by accord)",
		yaml: task("", "      when:\n        - cel: \"'a' == 'a'\"\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].when[0].cel"},
		msg:  "CEL in a step's when expressions",
		fix:  unsupportedFix,
	},
	{
		name: "task result from a step that does not exist",
		yaml: task("  results:\n    - name: r\n      value: $(steps.nope.results.x)\n", "      results: [{name: x}]\n"),
		want: where{Object: `Task "t"`, Field: "spec.results[0].value"},
		msg:  `no step "nope" in the task`,
		fix:  "name a step of the task",
	},
	{
		name: "task result from an undeclared step result",
		yaml: task("  results:\n    - name: r\n      value: $(steps.s.results.y)\n", "      results: [{name: x}]\n"),
		want: where{Object: `Task "t"`, Field: "spec.results[0].value"},
		msg:  `step "s" declares no result "y"`,
		fix:  "add `results: [{name: y}]` to step \"s\"",
	},
	{
		name: "Tekton: step result used in a script",
		yaml: "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  steps:\n    - name: a\n      image: " + pinnedImage + "\n      results: [{name: x}]\n      script: echo hi > $(step.results.x.path)\n    - name: b\n      image: " + pinnedImage + "\n      script: echo $(steps.a.results.x)\n",
		want: where{Object: `Task "t"`, Field: "spec.steps[1].script"},
		msg:  "stepResult substitutions are only allowed in env, command and args",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "StepAction: wrong apiVersion",
		yaml: stepAction("tekton.dev/v1", ""),
		want: where{Object: `StepAction "sa"`, Field: "apiVersion"},
		msg:  `unsupported apiVersion "tekton.dev/v1" for a StepAction`,
		fix:  "tekton.dev/v1beta1",
	},
	{
		name: "StepAction: unpinned image",
		yaml: strings.Replace(stepAction("tekton.dev/v1beta1", ""), pinnedImage, "golang:1.22", 1),
		want: where{Object: `StepAction "sa"`, Field: "spec.image"},
		msg:  `image "golang:1.22" is not pinned by digest`,
		fix:  "golang@sha256:<digest>",
	},
	{
		name: "StepAction: unknown field",
		yaml: stepAction("tekton.dev/v1alpha1", "  sidecars: []\n"),
		want: where{Object: `StepAction "sa"`, Field: "sidecars (line 15 of the document)"},
		msg:  `unknown field "sidecars"`,
		fix:  "remove or rename the field",
	},
	{
		name: "StepAction: volumeMount subPathExpr",
		yaml: strings.Replace(stepAction("tekton.dev/v1beta1", "  volumeMounts:\n    - {name: $(params.cache), mountPath: /cache, subPathExpr: x}\n"), "  params:\n", "  params:\n    - name: cache\n", 1),
		want: where{Object: `StepAction "sa"`, Field: "spec.volumeMounts[0].subPathExpr"},
		msg:  "subPathExpr",
		fix:  unsupportedFix,
	},
	{
		name: "Tekton: StepAction param used in its script",
		yaml: strings.Replace(stepAction("tekton.dev/v1beta1", ""), "echo \"$GREETING\"", "echo $(params.greeting)", 1),
		want: where{Object: `StepAction "sa"`, Field: "spec.script"},
		msg:  "param substitution in scripts is not allowed",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "step env valueFrom",
		yaml: task("", "      env:\n        - name: OK\n          value: fine\n        - name: X\n          valueFrom:\n            secretKeyRef: {name: s, key: k}\n"),
		want: where{Object: `Task "t"`, Field: "spec.steps[0].env[1].valueFrom"},
		msg:  "environment from Secrets",
		fix:  unsupportedFix,
	},
	{
		name: "securityContext in an inline taskSpec of a finally task",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n") +
			"  finally:\n    - name: f\n      taskSpec:\n        steps:\n          - name: s\n            image: " + pinnedImage + "\n            script: echo\n            securityContext: {runAsUser: 0, capabilities: {add: [SYS_ADMIN]}}\n",
		want: where{Object: `Pipeline "p"`, Field: "spec.finally[0].taskSpec.steps[0].securityContext.capabilities"},
		msg:  "adding or dropping capabilities",
		fix:  unsupportedFix,
	},
	{
		name: "retries",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n    - name: b\n      taskRef: {name: go-build}\n      retries: 2\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[1].retries"},
		msg:  "retrying hides flakiness",
		fix:  unsupportedFix,
	},
	{
		name: "taskRef.resolver",
		yaml: pipeline("    - name: a\n      taskRef:\n        resolver: git\n        params:\n          - {name: url, value: https://example.com/t.git}\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].taskRef.resolver"},
		msg:  "remote resolution",
		fix:  unsupportedFix,
	},
	{
		name: "CEL when that does not compile",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      when:\n        - cel: \"'a' ==\"\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].when[0].cel"},
		msg:  "invalid CEL expression \"'a' ==\":\n    ERROR: <input>:1:7: Syntax error",
		fix:  "quote Tekton references",
	},
	{
		// Tekton substitutes references into the text: unquoted, the
		// expression is not CEL (nor is a bare CEL variable: Tekton
		// declares none).
		name: "CEL when with an unquoted reference",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n    - name: b\n      taskRef: {name: go-build}\n      when:\n        - cel: \"$(tasks.a.results.x) == 'y'\"\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[1].when[0].cel"},
		msg:  "invalid CEL expression",
		fix:  "'$(params.branch)' == 'main'",
	},
	{
		name: "CEL when with an undeclared variable",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      when:\n        - cel: \"params.branch == 'main'\"\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].when[0].cel"},
		msg:  "undeclared reference to 'params'",
		fix:  "quote Tekton references",
	},
	{
		name: "CEL when that is not a boolean",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      when:\n        - cel: \"'$(params.x)' + 'y'\"\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].when[0].cel"},
		msg:  "gives a string, not a boolean",
		fix:  "gives true or false",
	},
	{
		name: "CEL when of a finally task",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n") +
			"  finally:\n    - name: f\n      taskRef: {name: go-build}\n      when:\n        - cel: \"'$(tasks.status)' = 'Failed'\"\n",
		want: where{Object: `Pipeline "p"`, Field: "spec.finally[0].when[0].cel"},
		msg:  "invalid CEL expression",
		fix:  "gives true or false",
	},
	{
		// Tekton refuses it too, naming no field.
		name: "CEL and input in one when expression",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      when:\n        - cel: \"'a' == 'a'\"\n          input: a\n          operator: in\n          values: [a]\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].when[0]"},
		msg:  "sets both cel and input, operator or values",
		fix:  "split it into two when expressions",
	},
	{
		// Tekton's limit: default-max-matrix-combinations-count, 256.
		name: "Tekton: matrix with more than 256 combinations",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      matrix:\n        params:\n          - name: package\n            value: [" + seq(17) + "]\n          - name: name\n            value: [" + seq(16) + "]\n          - name: x\n            value: [a, b]\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].matrix"},
		msg:  "expected 0 <= 544 <= 256",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "Tekton: a param in both matrix and params",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      params:\n        - {name: package, value: x}\n      matrix:\n        params:\n          - name: package\n            value: [a, b]\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].matrix[package], spec.tasks[0].params[package]"},
		msg:  "expected exactly one, got both",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "Tekton: a matrix param twice",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      matrix:\n        params:\n          - name: package\n            value: [a, b]\n          - name: package\n            value: [c]\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].matrix.params[1].name"},
		msg:  "parameter names must be unique",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "Tekton: one result of a matrixed task consumed alone",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      matrix:\n        params:\n          - name: package\n            value: [a, b]\n    - name: b\n      taskRef: {name: go-build}\n      params:\n        - {name: package, value: $(tasks.a.results.r)}\n"),
		want: where{Object: `Pipeline "p"`, Field: ""},
		msg:  "can only be consumed in aggregate using [*] notation",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "a task named as a run of a matrixed task",
		yaml: pipeline("    - name: build\n      taskRef: {name: go-build}\n      matrix:\n        params:\n          - name: package\n            value: [a, b]\n    - name: build-1\n      taskRef: {name: go-build}\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[1].name"},
		msg:  `pipeline task "build-1" has the name of a run of the matrixed task "build"`,
		fix:  "rename one of the two tasks",
	},
	{
		name: "a finally task named as a run of a matrixed task",
		yaml: pipeline("    - name: build\n      taskRef: {name: go-build}\n      matrix:\n        include:\n          - name: one\n            params:\n              - {name: package, value: a}\n") +
			"  finally:\n    - name: build-0\n      taskRef: {name: go-build}\n",
		want: where{Object: `Pipeline "p"`, Field: "spec.finally[0].name"},
		msg:  `the matrixed task "build"`,
		fix:  "rename one of the two tasks",
	},
	{
		name: "Tekton: taskRef and taskSpec both set",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n      taskSpec:\n        steps:\n          - name: s\n            image: " + pinnedImage + "\n            script: echo\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].taskRef, spec.tasks[0].taskSpec"},
		msg:  "expected exactly one, got multiple",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "Tekton: duplicate pipeline task name",
		yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n    - name: a\n      taskRef: {name: oci-image}\n"),
		want: where{Object: `Pipeline "p"`, Field: "spec.tasks, spec.tasks[1].name"},
		msg:  "duplicate pipeline task",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "Tekton: step without image",
		yaml: strings.Replace(task("", ""), "      image: "+pinnedImage+"\n", "", 1),
		// Tekton's own path, with the Go field name.
		want: where{Object: `Task "t"`, Field: "spec.steps[0].Image"},
		msg:  "missing field(s)",
		fix:  "Tekton v1 API reference",
	},
	{
		name: "no document at all",
		yaml: "# only a comment\n---\n\n",
		want: where{},
		msg:  "no Tekton Task or Pipeline found",
		fix:  "apiVersion tekton.dev/v1",
	},
}

func (b badInput) context() context.Context {
	if b.ctx == nil {
		return context.Background()
	}
	return b.ctx()
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T (%v), want *pipelines.Error", err, err)
	}
	return pe
}

func checkError(t *testing.T, err error, b badInput, file string) *Error {
	t.Helper()
	pe := asError(t, err)
	want := b.want
	want.File = file
	if diff := cmp.Diff(want, where{pe.File, pe.Object, pe.Field}); diff != "" {
		t.Errorf("error location (-want +got):\n%s\nerror: %v", diff, pe)
	}
	if !strings.Contains(pe.Msg, b.msg) {
		t.Errorf("Msg = %q, want it to contain %q", pe.Msg, b.msg)
	}
	if pe.Fix == "" || !strings.Contains(pe.Fix, b.fix) {
		t.Errorf("Fix = %q, want it to contain %q", pe.Fix, b.fix)
	}
	if got := pe.Error(); !strings.Contains(got, "\n  fix: "+pe.Fix) || !strings.HasPrefix(got, file) {
		t.Errorf("Error() = %q, want it to start with the file and end with the fix", got)
	}
	return pe
}

func TestParseBadInputs(t *testing.T) {
	var golden bytes.Buffer
	for _, b := range badInputs {
		t.Run(b.name, func(t *testing.T) {
			defs, err := Parse(b.context(), "bad.yaml", []byte(b.yaml), b.opts...)
			if defs != nil {
				t.Errorf("got definitions %v with the error", defs)
			}
			pe := checkError(t, err, b, "bad.yaml")
			golden.WriteString("== " + b.name + "\n" + pe.Error() + "\n\n")
		})
	}
	checkGolden(t, "errors.golden", golden.Bytes())
}

func TestResolveFileBadInputs(t *testing.T) {
	c := builtin(t)
	for _, b := range badInputs {
		t.Run(b.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "pipeline.yaml")
			if err := os.WriteFile(file, []byte(b.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve(b.context(), file, b.opts...)
			if r != nil {
				t.Errorf("got a resolved pipeline with the error")
			}
			checkError(t, err, b, file)
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", p, diff)
	}
}

func TestUnpinned(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "step",
			yaml: strings.Replace(task("", ""), pinnedImage, "busybox:1.36", 1),
			want: []string{"busybox:1.36"},
		},
		{
			name: "stepTemplate and steps",
			yaml: task("  stepTemplate:\n    image: example.com/tmpl:1\n", "    - name: two\n      image: example.com/two\n      script: echo\n"),
			want: []string{"example.com/tmpl:1", "example.com/two"},
		},
		{
			name: "inline taskSpec in tasks and finally",
			yaml: pipeline("    - name: a\n      taskSpec:\n        steps:\n          - {name: s, image: 'a:1', script: echo}\n") +
				"  finally:\n    - name: f\n      taskSpec:\n        steps:\n          - {name: s, image: '" + pinnedImage + "', script: echo}\n          - {name: u, image: 'f:2', script: echo}\n",
			want: []string{"a:1", "f:2"},
		},
		{
			name: "digest that is not a sha256 hex digest",
			yaml: strings.Replace(task("", ""), pinnedImage, "busybox@sha256:abc", 1),
			want: []string{"busybox@sha256:abc"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(ctx, "u.yaml", []byte(tc.yaml)); err == nil {
				t.Fatal("unpinned image accepted by default")
			} else if pe := asError(t, err); !strings.Contains(pe.Msg, "not pinned by digest") {
				t.Fatalf("got %v, want a 'not pinned' error", pe)
			}
			if _, err := Parse(ctx, "u.yaml", []byte(tc.yaml), WithAllowUnpinned(false)); err == nil {
				t.Fatal("unpinned image accepted with WithAllowUnpinned(false)")
			}
			defs, err := Parse(ctx, "u.yaml", []byte(tc.yaml), WithAllowUnpinned(true))
			if err != nil {
				t.Fatalf("WithAllowUnpinned(true): %v", err)
			}
			if diff := cmp.Diff(tc.want, UnpinnedImages(defs[0])); diff != "" {
				t.Errorf("UnpinnedImages (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnpinnedFixWorks follows the fix an unpinned image's error gives,
// and checks that the result is accepted.
func TestUnpinnedFixWorks(t *testing.T) {
	ctx := context.Background()
	const digest = "sha256:eee4988927cdd6b55a99e221a3e17e30bdeedfa373c4def6db8ffadace035b68"
	for _, ref := range []string{"busybox", "busybox:1.36", "docker.io/library/busybox:1.36", "localhost:5000/tools/go:1.22", "ghcr.io/o/r:v1@sha256:abc"} {
		t.Run(ref, func(t *testing.T) {
			y := strings.Replace(task("", ""), pinnedImage, "'"+ref+"'", 1)
			_, err := Parse(ctx, "u.yaml", []byte(y))
			pe := asError(t, err)
			m := regexp.MustCompile(`reference it as (\S+@sha256:<digest>)`).FindStringSubmatch(pe.Fix)
			if m == nil {
				t.Fatalf("Fix %q suggests no reference", pe.Fix)
			}
			suggested := strings.Replace(m[1], "sha256:<digest>", digest, 1)
			if !IsPinned(suggested) {
				t.Errorf("the suggested %q is not pinned", suggested)
			}
			y = strings.Replace(task("", ""), pinnedImage, "'"+suggested+"'", 1)
			if _, err := Parse(ctx, "u.yaml", []byte(y)); err != nil {
				t.Errorf("the suggested %q is refused: %v", suggested, err)
			}
		})
	}
}

func TestUnpinnedThroughResolve(t *testing.T) {
	ctx := context.Background()
	c := builtin(t)
	file := filepath.Join(t.TempDir(), "p.yaml")
	y := pipeline("    - name: a\n      taskRef: {name: local}\n    - name: b\n      taskRef: {name: go-build}\n") +
		"---\n" + strings.Replace(strings.Replace(task("", ""), "name: t", "name: local", 1), pinnedImage, "busybox:latest", 1)
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.Resolve(ctx, file)
	pe := asError(t, err)
	if diff := cmp.Diff(where{file, `Task "local"`, "spec.steps[0].image"}, where{pe.File, pe.Object, pe.Field}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r, err := c.Resolve(ctx, file, WithAllowUnpinned(true))
	if err != nil {
		t.Fatal(err)
	}
	var unpinned []string
	for _, d := range r.Definitions() {
		unpinned = append(unpinned, UnpinnedImages(d)...)
	}
	if diff := cmp.Diff([]string{"busybox:latest"}, unpinned); diff != "" {
		t.Errorf("unpinned images of the resolved pipeline (-want +got):\n%s", diff)
	}
}

func TestIsPinned(t *testing.T) {
	const hex64 = "eee4988927cdd6b55a99e221a3e17e30bdeedfa373c4def6db8ffadace035b68"
	for _, tc := range []struct {
		ref  string
		want bool
	}{
		// The registry may be implicit: the digest pins the image.
		{"busybox@sha256:" + hex64, true},
		{"docker.io/busybox@sha256:" + hex64, true},
		{"docker.io/library/busybox@sha256:" + hex64, true},
		{"localhost:5000/a/b@sha256:" + hex64, true},
		{"busybox:1.36@sha256:" + hex64, true},
		{"busybox", false},
		{"busybox:latest", false},
		{"busybox:1.36", false},
		{"busybox@sha256:" + hex64[:63], false},
		{"busybox@sha256:" + strings.ToUpper(hex64), false},
		{"busybox@sha512:" + hex64, false},
		{"@sha256:" + hex64, false},
		{"", false},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			if got := IsPinned(tc.ref); got != tc.want {
				t.Errorf("IsPinned(%q) = %v, want %v", tc.ref, got, tc.want)
			}
		})
	}
}

// v1beta1Task and v1Task are the same Task in both API versions.
const v1beta1Task = `apiVersion: tekton.dev/v1beta1
kind: Task
metadata:
  name: hello
spec:
  description: Says hello.
  params:
    - name: who
      type: string
      default: world
    - name: flags
      type: array
      default: []
  results:
    - name: GREETING
      description: What was said.
  workspaces:
    - name: output
  steps:
    - name: greet
      image: ` + pinnedImage + `
      args: ["$(params.flags[*])"]
      env:
        - name: WHO
          value: $(params.who)
      script: |
        #!/bin/sh
        printf 'hello %s' "$WHO" | tee $(results.GREETING.path)
`

const v1Task = `apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: hello
spec:
  description: Says hello.
  params:
    - name: who
      default: world
    - name: flags
      type: array
      default: []
  results:
    - name: GREETING
      description: What was said.
  workspaces:
    - name: output
  steps:
    - name: greet
      image: ` + pinnedImage + `
      args: ["$(params.flags[*])"]
      env:
        - name: WHO
          value: $(params.who)
      script: |
        #!/bin/sh
        printf 'hello %s' "$WHO" | tee $(results.GREETING.path)
`

const v1beta1Pipeline = `apiVersion: tekton.dev/v1beta1
kind: Pipeline
metadata:
  name: hello-pipeline
spec:
  params:
    - name: who
      type: string
      default: you
  workspaces:
    - name: out
  tasks:
    - name: greet
      taskRef:
        name: hello
        kind: Task
      params:
        - name: who
          value: $(params.who)
      workspaces:
        - name: output
          workspace: out
  results:
    - name: GREETING
      value: $(tasks.greet.results.GREETING)
`

func TestV1beta1ConvertsToSameDigest(t *testing.T) {
	ctx := context.Background()
	v1Pipeline := strings.NewReplacer("tekton.dev/v1beta1", "tekton.dev/v1", "        kind: Task\n", "").Replace(v1beta1Pipeline)
	for _, tc := range []struct{ name, old, new, kind string }{
		{"Task", v1beta1Task, v1Task, "Task"},
		{"Pipeline", v1beta1Pipeline, v1Pipeline, "Pipeline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := Parse(ctx, "old.yaml", []byte(tc.old))
			if err != nil {
				t.Fatalf("v1beta1: %v", err)
			}
			cur, err := Parse(ctx, "new.yaml", []byte(tc.new))
			if err != nil {
				t.Fatalf("v1: %v", err)
			}
			if old[0].Kind != tc.kind || old[0].Name != cur[0].Name {
				t.Fatalf("v1beta1 parsed as %s %q", old[0].Kind, old[0].Name)
			}
			if old[0].Digest != cur[0].Digest {
				t.Errorf("v1beta1 digest %s != v1 digest %s", old[0].Digest, cur[0].Digest)
			}
			switch tc.kind {
			case "Task":
				if diff := cmp.Diff(cur[0].Task.Spec, old[0].Task.Spec); diff != "" {
					t.Errorf("converted spec (-v1 +v1beta1):\n%s", diff)
				}
			case "Pipeline":
				if diff := cmp.Diff(cur[0].Pipeline.Spec, old[0].Pipeline.Spec); diff != "" {
					t.Errorf("converted spec (-v1 +v1beta1):\n%s", diff)
				}
			}
		})
	}
}

func TestV1beta1ResolvesWithLocalTask(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldFile := filepath.Join(dir, "old.yaml")
	newFile := filepath.Join(dir, "new.yaml")
	v1Pipeline := strings.Replace(v1beta1Pipeline, "tekton.dev/v1beta1", "tekton.dev/v1", 1)
	if err := os.WriteFile(oldFile, []byte(v1beta1Pipeline+"---\n"+v1beta1Task), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newFile, []byte(v1Task+"---\n"+v1Pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	c := builtin(t)
	old, err := c.Resolve(ctx, oldFile)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.Resolve(ctx, newFile)
	if err != nil {
		t.Fatal(err)
	}
	if old.Digest != cur.Digest {
		t.Errorf("resolved digests differ: v1beta1 %s, v1 %s", old.Digest, cur.Digest)
	}
	if got := old.Tasks["hello"]; got == nil || got.File != oldFile {
		t.Errorf("task hello = %+v, want it from %s", got, oldFile)
	}
}

func TestDigestIgnoresFormatting(t *testing.T) {
	ctx := context.Background()
	variants := map[string]string{
		"block style with comments": `# A greeting task.
apiVersion: tekton.dev/v1   # the API
kind: Task
metadata:
  name: hello  # its name
spec:
  description: Says hello.
  params:
    # who to greet
    - name: who
      default: world
    - name: flags
      type: array
      default: []
  results:
    - name: GREETING
      description: What was said.
  workspaces:
    - name: output
  steps:
    - name: greet
      image: ` + pinnedImage + `
      args:
        - "$(params.flags[*])"
      env:
        - name: WHO
          value: $(params.who)
      script: |
        #!/bin/sh
        printf 'hello %s' "$WHO" | tee $(results.GREETING.path)
`,
		"flow style (JSON)": `{"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "hello"},
 "spec": {"description": "Says hello.",
  "params": [{"name": "who", "default": "world"}, {"name": "flags", "type": "array", "default": []}],
  "results": [{"name": "GREETING", "description": "What was said."}],
  "workspaces": [{"name": "output"}],
  "steps": [{"name": "greet", "image": "` + pinnedImage + `", "args": ["$(params.flags[*])"],
    "env": [{"name": "WHO", "value": "$(params.who)"}],
    "script": "#!/bin/sh\nprintf 'hello %s' \"$WHO\" | tee $(results.GREETING.path)\n"}]}}
`,
		"keys reordered, quoted, explicit defaults": `spec:
  steps:
    - script: "#!/bin/sh\nprintf 'hello %s' \"$WHO\" | tee $(results.GREETING.path)\n"
      env: [{value: "$(params.who)", name: 'WHO'}]
      args: ['$(params.flags[*])']
      image: "` + pinnedImage + `"
      name: greet
  workspaces: [{name: output}]
  results:
    - {description: What was said., name: GREETING, type: string}
  params:
    - {type: string, default: world, name: who}
    - {default: [], type: array, name: flags}
  description: "Says hello."
metadata: {name: "hello"}
kind: "Task"
apiVersion: 'tekton.dev/v1'
`,
		"v1beta1": v1beta1Task,
		"v1":      v1Task,
	}
	digests := map[string]string{}
	for name, y := range variants {
		defs, err := Parse(ctx, "f.yaml", []byte(y))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		digests[name] = defs[0].Digest
	}
	want := digests["v1"]
	for name, d := range digests {
		if d != want {
			t.Errorf("%s: digest %s, want %s (as the v1 block style)", name, d, want)
		}
	}

	// Changes that mean something must change the digest.
	for _, tc := range []struct{ name, from, to string }{
		{"name", "name: hello", "name: hello2"},
		{"script", "printf 'hello %s'", "printf 'hi %s'"},
		{"param default", "default: world", "default: earth"},
		{"image", pinnedImage, strings.Replace(pinnedImage, "eee4", "eee5", 1)},
		{"description", "description: Says hello.", "description: Says hi."},
	} {
		t.Run("changed "+tc.name, func(t *testing.T) {
			y := strings.Replace(v1Task, tc.from, tc.to, 1)
			if y == v1Task {
				t.Fatalf("%q not in the task", tc.from)
			}
			defs, err := Parse(ctx, "f.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			if defs[0].Digest == want {
				t.Errorf("changing the %s left the digest at %s", tc.name, want)
			}
		})
	}
}

func TestParseMultipleDocuments(t *testing.T) {
	ctx := context.Background()
	y := "---\n# leading separator and comment\n" + v1Task + "---\n\n--- \r\n" + strings.Replace(v1beta1Pipeline, "tekton.dev/v1beta1", "tekton.dev/v1", 1) + "---\n"
	defs, err := Parse(ctx, "multi.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ Kind, Name, File string }
	var gots []got
	for _, d := range defs {
		gots = append(gots, got{d.Kind, d.Name, d.File})
		if (d.Task != nil) != (d.Kind == "Task") || (d.Pipeline != nil) != (d.Kind == "Pipeline") {
			t.Errorf("%s %s: Task=%v Pipeline=%v", d.Kind, d.Name, d.Task != nil, d.Pipeline != nil)
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d.Digest) {
			t.Errorf("%s %s: digest %q", d.Kind, d.Name, d.Digest)
		}
	}
	want := []got{{"Task", "hello", "multi.yaml"}, {"Pipeline", "hello-pipeline", "multi.yaml"}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("definitions (-want +got):\n%s", diff)
	}
}

func TestParseSkipsEmptyDocuments(t *testing.T) {
	ctx := context.Background()
	for name, y := range map[string]string{
		"license header before ---": "# Copyright The Authors.\n# SPDX-License-Identifier: Apache-2.0\n---\n" + v1Task,
		"trailing comment document": v1Task + "---\n# the end\n",
		"explicit null document":    v1Task + "---\n~\n---\nnull\n",
		"blank documents":           "---\n   \n---\n\t\n---\n" + v1Task,
	} {
		t.Run(name, func(t *testing.T) {
			defs, err := Parse(ctx, "f.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			if len(defs) != 1 || defs[0].Name != "hello" {
				t.Errorf("got %d definitions, want Task hello", len(defs))
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "t.yml")
	if err := os.WriteFile(file, []byte(v1Task), 0o644); err != nil {
		t.Fatal(err)
	}
	defs, err := ParseFile(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if defs[0].File != file {
		t.Errorf("File = %q, want %q", defs[0].File, file)
	}
	if _, err := ParseFile(ctx, filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want an error wrapping os.ErrNotExist", err)
	}
}

// FuzzParse checks that Parse never panics, that every error is an *Error
// naming the file, and that what it accepts is well formed and parses to
// the same digests again.
func FuzzParse(f *testing.F) {
	entries, err := embedded.ReadDir("catalog")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := embedded.ReadFile("catalog/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	for _, b := range badInputs {
		f.Add([]byte(b.yaml), false)
		f.Add([]byte(b.yaml), true)
	}
	f.Add([]byte(v1beta1Task), false)
	f.Add([]byte(v1beta1Pipeline+"---\n"+v1Task), false)
	f.Add([]byte(""), false)
	f.Add([]byte("---\n---\n"), false)
	f.Add([]byte("- a\n- b\n"), false)
	f.Add([]byte("apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: x}\n"), false)
	digest := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	f.Fuzz(func(t *testing.T, data []byte, allowUnpinned bool) {
		ctx := context.Background()
		defs, err := Parse(ctx, "fuzz.yaml", data, WithAllowUnpinned(allowUnpinned))
		if err != nil {
			if defs != nil {
				t.Errorf("definitions returned with error %v", err)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *pipelines.Error: %v", err, err)
			}
			if pe.File != "fuzz.yaml" || pe.Msg == "" || pe.Error() == "" {
				t.Fatalf("incomplete *Error %#v", pe)
			}
			return
		}
		if len(defs) == 0 {
			t.Fatal("no definitions and no error")
		}
		for _, d := range defs {
			if d.Name == "" || d.File != "fuzz.yaml" || !digest.MatchString(d.Digest) {
				t.Errorf("bad definition %+v", d)
			}
			switch d.Kind {
			case "Task":
				if d.Task == nil || d.Pipeline != nil {
					t.Errorf("Task %q: Task=%v Pipeline=%v", d.Name, d.Task != nil, d.Pipeline != nil)
				}
			case "Pipeline":
				if d.Pipeline == nil || d.Task != nil {
					t.Errorf("Pipeline %q: Task=%v Pipeline=%v", d.Name, d.Task != nil, d.Pipeline != nil)
				}
			case StepActionKind:
				if d.StepAction == nil || d.Task != nil || d.Pipeline != nil {
					t.Errorf("StepAction %q: StepAction=%v Task=%v Pipeline=%v", d.Name, d.StepAction != nil, d.Task != nil, d.Pipeline != nil)
				}
			default:
				t.Errorf("kind %q accepted", d.Kind)
			}
			if !allowUnpinned && len(UnpinnedImages(d)) > 0 {
				t.Errorf("%s %q: unpinned images %v accepted", d.Kind, d.Name, UnpinnedImages(d))
			}
		}
		again, err := Parse(ctx, "fuzz.yaml", data, WithAllowUnpinned(allowUnpinned))
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		for i := range defs {
			if defs[i].Digest != again[i].Digest {
				t.Errorf("%s %q: digest %s then %s", defs[i].Kind, defs[i].Name, defs[i].Digest, again[i].Digest)
			}
		}
	})
}
