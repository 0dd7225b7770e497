package local_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/engine"
)

// stepResultEscape is a task whose step leak runs plant (declaring the
// results in results, a YAML list) and whose step use, after it, puts
// the reference ref into its env and writes it to the task's result got.
func stepResultEscape(results, plant, ref string) string {
	return `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: step-result-escape}
spec:
  tasks:
  - name: t
    taskSpec:
      results: [{name: got}]
      steps:
      - name: leak
        image: {{IMAGE}}
        results: ` + results + `
        script: |
          ` + plant + `
      - name: use
        image: {{IMAGE}}
        env: [{name: GOT, value: "` + ref + `"}]
        script: printf '%s' "$GOT" > $(results.got.path)
`
}

// volumeEscape is a task with emptyDir volume v: step plant mounts it
// whole at /workspace/v and runs plant; step use mounts it with subPath
// (none if "") at /workspace/in and runs use.
func volumeEscape(plant, subPath, use string) string {
	sub := ""
	if subPath != "" {
		sub = ", subPath: " + subPath
	}
	return `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: volume-escape}
spec:
  tasks:
  - name: t
    taskSpec:
      results: [{name: got}]
      volumes: [{name: v, emptyDir: {}}]
      steps:
      - name: plant
        image: {{IMAGE}}
        volumeMounts: [{name: v, mountPath: /workspace/v}]
        script: |
          ` + plant + `
      - name: use
        image: {{IMAGE}}
        volumeMounts: [{name: v, mountPath: /workspace/in` + sub + `}]
        script: |
          ` + use + `
`
}

// TestTaskDirEscapes plants links (and FIFOs, and huge files) where the
// host side of the local engine looks for step results and emptyDir
// volumes: a step's result, a step's results directory, a volume's
// subPath. The engine must refuse each, read no host file through it and
// create or change nothing on the host outside the run.
func TestTaskDirEscapes(t *testing.T) {
	f := newFixture(t)
	warm, _ := f.build(t, resultPipeline("true"), nil)
	if res := f.run(t, warm); !res.Succeeded {
		t.Fatalf("warm-up build failed: %s", res.Reason)
	}
	const x = "[{name: x}]"
	cases := []escapeCase{
		{name: "step result is a link to a host file",
			yaml:    stepResultEscape(x, `ln -s {{HOST}}/secret $(step.results.x.path)`, "$(steps.leak.results.x)"),
			failing: "t", reason: []string{`step "leak"`, `step result "x" is a symbolic link`, "$(step.results.x.path)", "fix:"}},
		{name: "step result is a link to /etc/shadow",
			yaml:    stepResultEscape(x, `ln -s /etc/shadow $(step.results.x.path)`, "$(steps.leak.results.x)"),
			failing: "t", reason: []string{`step "leak"`, `step result "x" is a symbolic link`}},
		{name: "step result is a FIFO",
			yaml:    stepResultEscape(x, `mkfifo $(step.results.x.path)`, "$(steps.leak.results.x)"),
			failing: "t", reason: []string{`step "leak"`, `step result "x" is a FIFO, not a regular file`}},
		{name: "step result is a 256 MiB sparse file",
			yaml:    stepResultEscape(x, `truncate -s 256M $(step.results.x.path)`, "$(steps.leak.results.x)"),
			failing: "t", reason: []string{`step "leak"`, `step result "x" is 268435456 bytes, over Tekton's limit of 4096`}, maxRead: 64 << 20},
		{name: "undeclared step result is a link read by a later step's reference",
			yaml:    stepResultEscape("[]", `ln -s {{HOST}}/secret /tekton/steps/step-leak/results/x`, "$(steps.leak.results.x)"),
			failing: "t", reason: []string{`step "use"`, "$(steps.leak.results.x)", `step result "x" is a symbolic link`}},
		{name: "step replaces its results directory with a link to a host directory",
			yaml: stepResultEscape("[]", `cd /tekton/steps/step-leak; rm -rf results 2>/dev/null || true; mv results r 2>/dev/null || true; ln -s {{HOST}} results 2>/dev/null || true; ln -sf {{HOST}}/secret results/secret`,
				"$(steps.leak.results.secret)"),
			failing: "t", reason: []string{`step "use"`, `step result "secret" is a symbolic link`}},
		{name: "volume subPath is a link to a host directory",
			yaml:    volumeEscape(`ln -s {{HOST}} /workspace/v/escape`, "escape", `cat /workspace/in/secret > $(results.got.path) || true; touch /workspace/in/created || true`),
			failing: "t", reason: []string{`volume "v" (subPath "escape")`, `escape in volume "v" is a symbolic link`, "fix:"}},
		{name: "volume subPath has a link in a middle component",
			yaml:    volumeEscape(`mkdir -p /workspace/v/a && ln -s {{HOST}} /workspace/v/a/mid`, "a/mid/new/deeper", `echo pwned > /workspace/in/pwned`),
			failing: "t", reason: []string{`a/mid in volume "v" is a symbolic link`}},
		{name: "volume subPath is a link to /",
			yaml:    volumeEscape(`ln -s / /workspace/v/escape`, "escape", `cat /workspace/in{{HOST}}/secret > $(results.got.path) || true`),
			failing: "t", reason: []string{`escape in volume "v" is a symbolic link`}},
		{name: "uid variation: volume subPath chowned through a planted link", uid: 1000,
			yaml:    volumeEscape(`ln -s {{HOST}} /workspace/v/link`, "link/sub", `true`),
			failing: "t", reason: []string{`link in volume "v" is a symbolic link`}},
		{name: "step replaces the volume with a link",
			yaml: volumeEscape(`cd /workspace; rm -rf v 2>/dev/null || true; mv v v2 2>/dev/null || true; ln -s {{HOST}} v 2>/dev/null || true; ln -s {{HOST}} /workspace/v/escape`, "escape",
				`cat /workspace/in/secret > $(results.got.path) || true`),
			failing: "t", reason: []string{`escape in volume "v" is a symbolic link`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uid != 0 && f.runner.Rootless() {
				t.Skip("a uid/gid variation needs a root runner (rootless runners refuse it: TestVariationRootlessUID)")
			}
			testEscape(t, f, tc)
		})
	}
}

// TestVolumeLinkStaysInside: a link a step leaves in a volume resolves in
// the next step's container, never on the host: the engine never reads a
// volume on the host, and the whole volume is a bind no step can replace.
func TestVolumeLinkStaysInside(t *testing.T) {
	f := newFixture(t)
	host := newEscapeHost(t)
	before := host.snapshot(t)
	b, rec := f.build(t, host.expand(volumeEscape(`ln -s {{HOST}} /workspace/v/link; ln -s {{HOST}}/secret /workspace/v/secret`, "",
		`cat /workspace/in/secret /workspace/in/link/secret 2>/dev/null > $(results.got.path) || true; echo pwned 2>/dev/null > /workspace/in/link/created || true`)), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := f.executor().Run(ctx, b)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	j, _ := json.Marshal(res)
	for _, s := range []string{string(j), rec.stdout("t", "use")} {
		if strings.Contains(s, host.secret) {
			t.Error("the host's secret reached the run")
		}
	}
	if got := task(t, res, "t").Steps; len(got) != 2 || got[1].Status != engine.Succeeded {
		t.Errorf("steps: %+v", got)
	}
	if diff := cmp.Diff(before, host.snapshot(t)); diff != "" {
		t.Errorf("the host directory changed (-before +after):\n%s", diff)
	}
}

// TestStepDirsReadOnly: a step cannot replace another step's results
// directory (with a directory holding a link to a host directory, which
// the runtime would bind by name) nor plant links in the steps directory:
// steps see it read-only, and accord opens each step's results directory
// through no link before the step runs.
func TestStepDirsReadOnly(t *testing.T) {
	f := newFixture(t)
	for name, plant := range map[string]string{
		"a later step's results directory": `cd /tekton/steps; rm -rf step-use 2>/dev/null || true; mv step-use u 2>/dev/null || true; mkdir -p step-use 2>/dev/null || true; ` +
			`ln -s {{HOST}}/sub step-use/results 2>/dev/null || true; ln -s {{HOST}} step-next 2>/dev/null || true`,
		"its own exit code": `ln -s {{HOST}}/secret /tekton/steps/step-leak/exitCode 2>/dev/null || true; ln -s {{HOST}}/secret /tekton/steps/step-use/exitCode 2>/dev/null || true`,
	} {
		t.Run(name, func(t *testing.T) {
			host := newEscapeHost(t)
			before := host.snapshot(t)
			yaml := strings.Replace(stepResultEscape("[]", plant, "none"), "printf '%s' \"$GOT\"", "touch /tekton/steps/step-use/results/pwned; printf '%s' \"$GOT\"", 1)
			b, rec := f.build(t, host.expand(yaml), nil)
			res, err := f.executor().Run(context.Background(), b)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !res.Succeeded {
				t.Errorf("build failed: %s\nstderr of the planting step: %s\nstderr of use: %s", res.Reason, rec.stderr("t", "leak"), rec.stderr("t", "use"))
			}
			j, _ := json.Marshal(res)
			for _, s := range []string{string(j), rec.stdout("t", "use")} {
				if strings.Contains(s, host.secret) {
					t.Error("the host's secret reached the run")
				}
			}
			if diff := cmp.Diff(before, host.snapshot(t)); diff != "" {
				t.Errorf("the host directory changed (-before +after):\n%s", diff)
			}
		})
	}
}
