package local_test

import (
	"io/fs"
	"maps"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
)

const variationPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: probe}
spec:
  workspaces: [{name: ws}, {name: fixed, mountPath: /workspace/fixed}]
  steps:
  - name: probe
    image: {{IMAGE}}
    script: |
      #!/bin/sh
      set -e
      echo "path=$(workspaces.ws.path)"
      echo "pwd=$(pwd)"
      echo "host=$(hostname)"
      echo "id=$(id -u):$(id -g)"
      echo "umask=$(umask)"
      echo "tz=$TZ"
      echo "nproc=$(nproc)"
      echo "first=$(tr '\0' '\n' < /proc/1/environ | head -n1 | cut -d= -f1)"
      echo hi > "$(workspaces.ws.path)/file"
      echo "mode=$(stat -c %a "$(workspaces.ws.path)/file")"
      echo fixed > /workspace/fixed/f && echo "fixed=$(workspaces.fixed.path)"
      if echo 1 > /sys/fs/cgroup/cgroup.procs 2>/dev/null || touch /sys/kernel/x 2>/dev/null; then echo sys=writable; else echo sys=read-only; fi
    workingDir: $(workspaces.ws.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: variation}
spec:
  workspaces: [{name: shared}]
  tasks:
  - name: probe
    taskRef: {name: probe}
    workspaces: [{name: ws, workspace: shared}, {name: fixed, workspace: shared, subPath: fixed}]
`

// TestVariation runs one step under the default environment and under a
// validator's variation and checks that each dimension reached the step.
func TestVariation(t *testing.T) { testVariation(t, newFixture(t)) }

// TestVariationRunsc: the same under gVisor, but for the umask (runsc
// refuses any but 0022: see sandbox's TestRunscUmask) and the environment
// order (runsc shuffles it).
func TestVariationRunsc(t *testing.T) { testVariation(t, newFixtureWith(t, sandbox.Runsc)) }

func testVariation(t *testing.T, f *fixture) {
	validator := engine.Variation{
		WorkspaceRoot: "/build/v1/ws", Hostname: "validator-1", Umask: "0077",
		Timezone: "NPT-5:45", CPUs: 1, EnvOrder: "reversed",
	}
	if !f.runner.Rootless() {
		validator.UID, validator.GID = 1000, 1000
	}
	wantValidator := map[string]string{
		"path": "/build/v1/ws/ws", "pwd": "/build/v1/ws/ws", "host": "validator-1", "id": "1000:1000",
		"umask": "0077", "tz": "NPT-5:45", "nproc": "1", "first": "TZ", "mode": "600",
		"fixed": "/workspace/fixed", "sys": "read-only",
	}
	runsc := f.runner.Runtime() == sandbox.Runsc
	if runsc {
		validator.Umask, wantValidator["umask"], wantValidator["mode"] = "0022", "0022", "644"
	}
	if f.runner.Rootless() {
		wantValidator["id"] = "0:0"
	}
	cases := []struct {
		name string
		v    engine.Variation
		want map[string]string
	}{{
		name: "default",
		want: map[string]string{
			"path": "/workspace/ws", "pwd": "/workspace/ws", "host": "accord", "id": "0:0", "umask": "0022",
			"tz": "UTC", "nproc": strconv.Itoa(runtime.NumCPU()), "first": "GOROOT", "mode": "644",
			"fixed": "/workspace/fixed", "sys": "read-only",
		},
	}, {
		name: "validator",
		v:    validator,
		want: wantValidator,
	}}
	netWant := map[string]string{}
	for k, v := range wantValidator {
		netWant[k] = v
	}
	cases = append(cases, struct {
		name string
		v    engine.Variation
		want map[string]string
	}{name: "validator with network", v: validator, want: netWant})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := variationPipeline
			if strings.Contains(tc.name, "network") {
				yaml = strings.Replace(yaml, "metadata: {name: probe}", "metadata: {name: probe, annotations: {accord.dev/network: \"true\"}}", 1)
			}
			b, rec := f.build(t, yaml, nil)
			b.Variation = tc.v
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if net := task(t, res, "probe").Network; net != strings.Contains(tc.name, "network") {
				t.Fatalf("task network = %v", net)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(rec.stdout("probe", "probe")), "\n") {
				k, v, _ := strings.Cut(line, "=")
				got[k] = v
			}
			if tc.name == "default" && runtime.NumCPU() == 1 {
				tc.want["nproc"] = "1"
			}
			if runsc {
				// runsc shuffles the environment: not a dimension it can vary.
				delete(got, "first")
				tc.want = maps.Clone(tc.want)
				delete(tc.want, "first")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("what the step saw (-want +got):\n%s", diff)
			}
			st, err := fs.Stat(wsFS(t, task(t, res, "probe"), pathOf(tc.v)), "file")
			if err != nil {
				t.Fatalf("the step's file is not in the host workspace: %v", err)
			}
			// A non-root step owns nothing on the host but its workspaces:
			// what it writes belongs to an unprivileged host id.
			wantUID := uint32(os.Geteuid())
			if tc.v.UID != 0 {
				wantUID = sandbox.StepHostID(uint32(tc.v.UID))
			}
			if got := st.Sys().(*syscall.Stat_t).Uid; got != wantUID {
				t.Errorf("the step's file is owned by host uid %d, want %d", got, wantUID)
			}
		})
	}
}

// TestVariationRootlessUID checks that a rootless runner refuses a uid
// variation with the fix, instead of running as root.
func TestVariationRootlessUID(t *testing.T) {
	f := newFixture(t)
	if !f.runner.Rootless() {
		t.Skip("rootful runner: covered by TestVariation")
	}
	b, _ := f.build(t, variationPipeline, nil)
	b.Variation = engine.Variation{UID: 1000, GID: 1000}
	res, err := f.executor().Run(t.Context(), b)
	if err == nil && res.Succeeded {
		t.Fatal("a rootless runner ran a uid variation")
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		msg = res.Reason
	}
	if !strings.Contains(msg, "rootless") {
		t.Errorf("error %q does not say why", msg)
	}
}

func pathOf(v engine.Variation) string {
	return v.WithDefaults().WorkspaceRoot + "/ws"
}
