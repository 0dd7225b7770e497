package pipelines

import (
	"context"
	"strings"
	"testing"
)

// TestUnhonouredRefused: fields that Tekton's validation accepts and that
// accord's engines used to skip without a word are refused, naming the
// field, wherever they appear (a Task, a pipeline's inline task, a finally
// task, v1beta1).
func TestUnhonouredRefused(t *testing.T) {
	inline := func(step string) string {
		return pipeline("    - name: a\n      taskSpec:\n        steps:\n          - name: s\n            image: " + pinnedImage + "\n            script: echo\n" + step)
	}
	beta := func(s string) string { return strings.Replace(s, "tekton.dev/v1\n", "tekton.dev/v1beta1\n", 1) }
	for _, tc := range []struct {
		name, yaml, field, msg string
	}{
		{"step resource claims", task("", "      computeResources:\n        claims: [{name: gpu}]\n"), "spec.steps[0].computeResources.claims", "resource claims"},
		{"stepTemplate resource claims", task("  stepTemplate:\n    computeResources:\n      claims: [{name: gpu}]\n", ""), "spec.stepTemplate.computeResources.claims", "resource claims"},
		{"sidecar resource claims", task("  sidecars:\n    - name: sc\n      image: "+pinnedImage+"\n      computeResources:\n        claims: [{name: gpu}]\n", ""), "spec.sidecars[0].computeResources.claims", "resource claims"},
		{"sidecar hostPort", task("  sidecars:\n    - name: sc\n      image: "+pinnedImage+"\n      ports: [{containerPort: 80, hostPort: 8080}]\n", ""), "spec.sidecars[0].ports[0].hostPort", "a port on the host"},
		{"sidecar hostIP on a second port", task("  sidecars:\n    - name: sc\n      image: "+pinnedImage+"\n      ports: [{containerPort: 80}, {containerPort: 81, hostIP: 127.0.0.1}]\n", ""), "spec.sidecars[0].ports[1].hostPort", "a port on the host"},
		{"custom task apiVersion and kind", pipeline("    - name: a\n      taskSpec:\n        apiVersion: example.dev/v1\n        kind: Example\n        spec: {a: b}\n"), "spec.tasks[0].taskSpec.apiVersion", "custom tasks"},
		{"custom task spec in finally", pipeline("    - name: a\n      taskRef: {name: go-build}\n") +
			"  finally:\n    - name: f\n      taskSpec:\n        apiVersion: example.dev/v1\n        kind: Example\n        spec: {a: b}\n",
			"spec.finally[0].taskSpec.apiVersion", "custom tasks"},
		{"v1beta1 step ports", beta(task("", "      ports: [{containerPort: 8080}]\n")), "spec.steps[0].ports", "v1beta1 step field"},
		{"v1beta1 second step's readinessProbe", beta(task("", "    - name: two\n      image: "+pinnedImage+"\n      script: echo\n      readinessProbe: {exec: {command: ['true']}}\n")), "spec.steps[1].readinessProbe", "v1beta1 step field"},
		{"v1beta1 step tty", beta(task("", "      tty: true\n")), "spec.steps[0].tty", "v1beta1 step field"},
		{"v1beta1 step lifecycle", beta(task("", "      lifecycle: {preStop: {exec: {command: ['true']}}}\n")), "spec.steps[0].lifecycle", "v1beta1 step field"},
		{"v1beta1 stepTemplate name", beta(task("  stepTemplate:\n    name: tmpl\n", "")), "spec.stepTemplate.name", "v1beta1 step field"},
		{"v1beta1 stepTemplate stdin", beta(task("  stepTemplate:\n    stdin: true\n", "")), "spec.stepTemplate.stdin", "v1beta1 step field"},
		{"v1beta1 inline task step terminationMessagePath", beta(inline("            terminationMessagePath: /tmp/t\n")), "spec.tasks[0].taskSpec.steps[0].terminationMessagePath", "v1beta1 step field"},
		{"v1beta1 finally task step stdinOnce", beta(pipeline("    - name: a\n      taskRef: {name: go-build}\n") +
			"  finally:\n    - name: f\n      taskSpec:\n        steps:\n          - name: s\n            image: " + pinnedImage + "\n            script: echo\n            stdinOnce: true\n"),
			"spec.finally[0].taskSpec.steps[0].stdinOnce", "v1beta1 step field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(context.Background(), "u.yaml", []byte(tc.yaml))
			pe := asError(t, err)
			if pe.Field != tc.field || !strings.Contains(pe.Msg, tc.msg) || !strings.Contains(pe.Fix, "remove the field") {
				t.Errorf("got %v\nwant field %s, a message with %q and the fix to remove it", pe, tc.field, tc.msg)
			}
		})
	}
}

// TestUnhonouredAccepted: what the refusals must not catch.
func TestUnhonouredAccepted(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"step when (the local engine evaluates it)", task("", "      when:\n        - {input: a, operator: in, values: [a]}\n")},
		{"pipeline task when", pipeline("    - name: a\n      taskRef: {name: go-build}\n      when:\n        - {input: a, operator: in, values: [a]}\n")},
		{"memory limit", task("", "      computeResources:\n        limits: {memory: 1Gi}\n        requests: {cpu: '1'}\n")},
		{"inline task with metadata", pipeline("    - name: a\n      taskSpec:\n        metadata:\n          annotations: {accord.dev/network: 'true'}\n        steps:\n          - {name: s, image: '" + pinnedImage + "', script: echo}\n")},
		{"v1beta1 task without deprecated fields", strings.Replace(task("", ""), "tekton.dev/v1\n", "tekton.dev/v1beta1\n", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(context.Background(), "ok.yaml", []byte(tc.yaml)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
