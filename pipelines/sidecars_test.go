package pipelines

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sidecarTask is task with the given sidecars (YAML list items indented
// by four spaces) and annotations (indented by four).
func sidecarTask(annotations, sidecars string) string {
	t := task("  sidecars:\n"+sidecars, "")
	if annotations != "" {
		t = strings.Replace(t, "  name: t\n", "  name: t\n  annotations:\n"+annotations, 1)
	}
	return t
}

const sidecarImage = "      image: " + pinnedImage + "\n"

func TestSidecarsRefused(t *testing.T) {
	for _, b := range []badInput{
		{
			name: "unpinned sidecar image",
			yaml: sidecarTask("", "    - name: db\n      image: docker.io/library/postgres:16\n"),
			want: where{Object: `Task "t"`, Field: "spec.sidecars[0].image"},
			msg:  `image "docker.io/library/postgres:16" is not pinned by digest`,
			fix:  "docker.io/library/postgres@sha256:<digest>",
		},
		{
			name: "unpinned sidecar image in a pipeline's inline taskSpec",
			yaml: pipeline("    - name: a\n      taskSpec:\n        steps:\n          - {name: s, image: " + pinnedImage + ", script: echo}\n        sidecars:\n          - {name: db, image: 'redis:7'}\n"),
			want: where{Object: `Pipeline "p"`, Field: "spec.tasks[0].taskSpec.sidecars[0].image"},
			msg:  `image "redis:7" is not pinned by digest`,
			fix:  "redis@sha256:<digest>",
		},
		{
			name: "sidecars and the network annotation",
			yaml: sidecarTask("    accord.dev/network: \"true\"\n", "    - name: db\n"+sidecarImage),
			want: where{Object: `Task "t"`, Field: "spec.sidecars"},
			msg:  "a task with sidecars cannot have the accord.dev/network annotation",
			fix:  "split the task",
		},
		{
			name: "sidecars and the network annotation in a pipeline's inline taskSpec",
			yaml: pipeline("    - name: a\n      taskRef: {name: go-build}\n    - name: b\n      taskSpec:\n        metadata:\n          annotations: {accord.dev/network: \"true\"}\n        steps:\n          - {name: s, image: " + pinnedImage + ", script: echo}\n        sidecars:\n          - {name: db, image: " + pinnedImage + "}\n"),
			want: where{Object: `Pipeline "p"`, Field: "spec.tasks[1].taskSpec.sidecars"},
			msg:  "a task with sidecars cannot have the accord.dev/network annotation",
			fix:  "split the task",
		},
		{"sidecar without a name", sidecarTask("", "    - image: "+pinnedImage+"\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].name"}, `sidecar name "" is not a Kubernetes container name`, "lower-case letters"},
		{"sidecar name with a slash", sidecarTask("", "    - name: ../db\n"+sidecarImage), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].name"}, `sidecar name "../db" is not a Kubernetes container name`, "lower-case letters"},
		{"two sidecars of one name", sidecarTask("", "    - name: db\n"+sidecarImage+"    - name: db\n"+sidecarImage), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[1].name"}, `two sidecars are named "db"`, "its own name"},
		{"sidecar envFrom", sidecarTask("", "    - name: db\n"+sidecarImage+"      envFrom: [{secretRef: {name: s}}]\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].envFrom"}, "environment from ConfigMaps or Secrets", unsupportedFix},
		{"sidecar env valueFrom", sidecarTask("", "    - name: db\n"+sidecarImage+"      env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].env[0].valueFrom"}, "environment from Secrets", unsupportedFix},
		{"sidecar securityContext", sidecarTask("", "    - name: db\n"+sidecarImage+"      securityContext: {privileged: true}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].securityContext.privileged"}, "never gets the host's devices", unsupportedFix},
		{"sidecar capabilities", sidecarTask("", "    - name: db\n"+sidecarImage+"      securityContext: {runAsUser: 999, capabilities: {add: [NET_ADMIN]}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].securityContext.capabilities"}, "the same fixed set", unsupportedFix},
		{"sidecar livenessProbe", sidecarTask("", "    - name: db\n"+sidecarImage+"      livenessProbe: {exec: {command: [\"true\"]}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].livenessProbe"}, "never restarts a sidecar", unsupportedFix},
		{"sidecar startupProbe", sidecarTask("", "    - name: db\n"+sidecarImage+"      startupProbe: {exec: {command: [\"true\"]}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].startupProbe"}, "use readinessProbe", unsupportedFix},
		{"sidecar lifecycle", sidecarTask("", "    - name: db\n"+sidecarImage+"      lifecycle: {preStop: {exec: {command: [\"true\"]}}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].lifecycle"}, "preStop hooks", unsupportedFix},
		{"sidecar tty", sidecarTask("", "    - name: db\n"+sidecarImage+"      tty: true\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].stdin"}, "interactive sidecars", unsupportedFix},
		{"sidecar restartPolicy", sidecarTask("", "    - name: db\n"+sidecarImage+"      restartPolicy: Always\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].restartPolicy"}, "restarting sidecars", unsupportedFix},
		{"sidecar httpGet readinessProbe", sidecarTask("", "    - name: db\n"+sidecarImage+"      readinessProbe: {httpGet: {port: 80}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].readinessProbe.httpGet"}, "the host cannot reach into the task's network namespace", unsupportedFix},
		{"sidecar tcpSocket readinessProbe", sidecarTask("", "    - name: db\n"+sidecarImage+"      readinessProbe: {tcpSocket: {port: 5432}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].readinessProbe.tcpSocket"}, "nc -z 127.0.0.1 PORT", unsupportedFix},
		{"sidecar grpc readinessProbe", sidecarTask("", "    - name: db\n"+sidecarImage+"      readinessProbe: {grpc: {port: 5432}}\n"), nil, nil, where{Object: `Task "t"`, Field: "spec.sidecars[0].readinessProbe.grpc"}, "gRPC probes", unsupportedFix},
	} {
		t.Run(b.name, func(t *testing.T) {
			defs, err := Parse(b.context(), "bad.yaml", []byte(b.yaml), b.opts...)
			if defs != nil {
				t.Errorf("got definitions %v with the error", defs)
			}
			checkError(t, err, b, "bad.yaml")
		})
	}
}

// TestSidecarsAccepted: what accord runs of a sidecar loads, and its
// image counts among the definition's images (pinning, provenance).
func TestSidecarsAccepted(t *testing.T) {
	other := strings.Replace(pinnedImage, "eee4", "fff4", 1)
	yaml := sidecarTask("", "    - name: db\n"+sidecarImage+
		"      script: |\n        exec nc -ll -p 8123 -e echo hello\n"+
		"      env: [{name: A, value: b}]\n      workingDir: /tmp\n      ports: [{containerPort: 8123}]\n      imagePullPolicy: IfNotPresent\n"+
		"      computeResources: {limits: {memory: 64Mi}}\n"+
		"      readinessProbe: {exec: {command: [nc, -z, 127.0.0.1, '8123']}, periodSeconds: 1}\n"+
		"    - name: cache\n      image: "+other+"\n      command: [sleep]\n      args: ['1000']\n")
	defs, err := Parse(context.Background(), "ok.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{pinnedImage, pinnedImage, other}, StepImages(defs[0])); diff != "" {
		t.Errorf("StepImages (-want +got):\n%s", diff)
	}
}
