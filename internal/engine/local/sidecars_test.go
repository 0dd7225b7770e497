package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/sandbox"
)

// sidecarPipeline: task "with-db" has a sidecar that listens on port 8123
// only after 2 s (its readiness probe waits for the listening socket in
// /proc/net/tcp or tcp6: 0x1FBB, state 0A), one that exits at once, and one that
// ignores SIGTERM; its step connects once, without retrying. Task
// "isolated", at the same time, has no sidecar and tries to reach the
// port for 5 s.
const sidecarPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: sidecars
spec:
  tasks:
    - name: with-db
      taskSpec:
        results:
          - name: got
          - name: ifaces
        sidecars:
          - name: db
            image: {{IMAGE}}
            script: |
              sleep 2
              echo "db listening as $ROLE"
              exec nc -ll -p 8123 -e echo hello
            env: [{name: ROLE, value: primary}]
            readinessProbe:
              exec:
                command: [sh, -c, "grep -qE ':1FBB 0+:0000 0A' /proc/net/tcp /proc/net/tcp6"]
              periodSeconds: 1
          - name: quits
            image: {{IMAGE}}
            command: [sh, -c]
            args: ["cat /proc/net/dev; echo bye >&2; exit 3"]
          - name: stubborn
            image: {{IMAGE}}
            workingDir: /tmp
            script: |
              trap '' TERM
              pwd
              while :; do sleep 1; done
        steps:
          - name: talk
            image: {{IMAGE}}
            script: |
              nc 127.0.0.1 8123 > $(results.got.path)
              sleep 4
          - name: ifaces
            image: {{IMAGE}}
            script: |
              sed -n 's/^ *\([a-z0-9]*\):.*/\1/p' /proc/net/dev | tr '\n' ' ' > $(results.ifaces.path)
    - name: isolated
      taskSpec:
        results:
          - name: got
        steps:
          - name: try
            image: {{IMAGE}}
            script: |
              for i in $(seq 25); do
                if out=$(nc 127.0.0.1 8123 2>/dev/null) && [ -n "$out" ]; then printf 'reached: %s' "$out" > $(results.got.path); exit 0; fi
                sleep 0.2
              done
              printf unreachable > $(results.got.path)
`

var sidecarsOpt = cmpopts.IgnoreFields(engine.SidecarResult{}, "Duration", "Seconds")

func TestSidecars(t *testing.T) {
	for _, rt := range runcLike() {
		t.Run(string(rt), func(t *testing.T) {
			f := newFixtureWith(t, rt)
			b, rec := f.build(t, sidecarPipeline, nil)
			start := time.Now()
			res := f.run(t, b, local.WithParallel(2), local.WithSidecarGrace(time.Second))
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("run took %v", d)
			}
			db := task(t, res, "with-db")
			if diff := cmp.Diff([]v1.TaskRunResult{strResult("got", "hello\n"), strResult("ifaces", "lo ")}, db.Results); diff != "" {
				t.Errorf("with-db results: the step reaches the sidecar on 127.0.0.1, and has loopback only (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]engine.SidecarResult{
				{Name: "db", Image: f.image, ExitCode: 128 + 9, Stopped: true},
				{Name: "quits", Image: f.image, ExitCode: 3},
				{Name: "stubborn", Image: f.image, ExitCode: 128 + 9, Stopped: true},
			}, db.Sidecars, sidecarsOpt); diff != "" {
				t.Errorf("sidecars (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]v1.TaskRunResult{strResult("got", "unreachable")}, task(t, res, "isolated").Results); diff != "" {
				t.Errorf("a task without the sidecar reached it (-want +got):\n%s", diff)
			}
			if got := task(t, res, "isolated").Sidecars; got != nil {
				t.Errorf("isolated task reports sidecars %v", got)
			}
			if out := rec.stdout("with-db", "sidecar-db"); out != "db listening as primary\n" {
				t.Errorf("db sidecar's output to the observer = %q", out)
			}
			if out := rec.stdout("with-db", "sidecar-quits"); !strings.Contains(out, " lo:") || strings.Count(out, ":") != 1 {
				t.Errorf("quits sidecar's /proc/net/dev = %q, want loopback only", out)
			}
			if out := rec.stdout("with-db", "sidecar-stubborn"); out != "/tmp\n" {
				t.Errorf("stubborn sidecar's output = %q, want its working directory /tmp", out)
			}
			logs := filepath.Join(f.work, b.ID, "tasks", "with-db", "sidecars")
			for file, want := range map[string]string{"db.stdout": "db listening as primary\n", "quits.stderr": "bye\n", "stubborn.stdout": "/tmp\n"} {
				if got, err := os.ReadFile(filepath.Join(logs, file)); err != nil || string(got) != want {
					t.Errorf("sidecar log %s = %q, %v; want %q", file, got, err, want)
				}
			}
			checkNoContainers(t, f)
		})
	}
}

// checkNoContainers fails if the runner's state directory lists a
// container or the run left a bundle.
func checkNoContainers(t *testing.T, f *fixture) {
	t.Helper()
	args := []string{"--root", filepath.Join(f.work, "state"), "list", "-q"}
	if f.runner.Runtime() == sandbox.Crun {
		args = append([]string{"--cgroup-manager=disabled"}, args...)
	}
	out, err := exec.Command(string(f.runner.Runtime()), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s list: %v: %s", f.runner.Runtime(), err, out)
	}
	if ids := strings.Fields(string(out)); len(ids) != 0 {
		t.Errorf("containers left: %q", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.work, "bundles")); len(ents) != 0 {
		t.Errorf("%d bundles left", len(ents))
	}
}

// sidecarEndPipeline: a sidecar that runs a marked sleep (so the test can
// look for it on the host) and a step that does what STEP says.
const sidecarEndPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: sidecar-end
spec:
  tasks:
    - name: t
      timeout: TASK_TIMEOUT
      taskSpec:
        sidecars:
          - name: sleeper
            image: {{IMAGE}}
            command: [sleep, "MARKER"]
PROBE
        steps:
          - name: s
            image: {{IMAGE}}
            script: STEP
`

// TestSidecarsEnd: however the steps end (they fail, the run is cancelled,
// the task times out, the sidecar never gets ready), the sidecar is gone
// with them: no container, no process.
func TestSidecarsEnd(t *testing.T) {
	for _, rt := range runcLike() {
		t.Run(string(rt), func(t *testing.T) { testSidecarsEnd(t, newFixtureWith(t, rt)) })
	}
}

func testSidecarsEnd(t *testing.T, f *fixture) {
	const never = "            readinessProbe: {exec: {command: [\"false\"]}, periodSeconds: 1}"
	for i, tc := range []struct {
		name, step, timeout, probe string
		cancelAfter                time.Duration
		wantStatus                 engine.Status
		wantReason                 string
		wantStopped                bool
	}{
		{"failing step", "exit 5", "1h", "", 0, engine.Failed, `step "s" exited with code 5`, true},
		{"cancelled run", "sleep 60", "1h", "", 2 * time.Second, engine.Failed, "context canceled", true},
		{"task timeout", "sleep 60", "2s", "", 0, engine.TimedOut, "step timed out", true},
		{"never ready", "echo unreachable", "2s", never, 0, engine.TimedOut, `sidecar "sleeper" was not ready when the task's time ran out`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("7%d.%d%d", os.Getpid(), i, len(f.runner.Runtime()))
			y := strings.NewReplacer("TASK_TIMEOUT", tc.timeout, "MARKER", marker, "STEP", tc.step, "PROBE\n", tc.probe+"\n").Replace(sidecarEndPipeline)
			b, _ := f.build(t, y, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAfter > 0 {
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			start := time.Now()
			res, err := f.executor(local.WithSidecarGrace(time.Second)).Run(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("run took %v", d)
			}
			tr := task(t, res, "t")
			if tr.Status != tc.wantStatus || !strings.Contains(tr.Reason, tc.wantReason) {
				t.Errorf("task %s (%s), want %s with %q", tr.Status, tr.Reason, tc.wantStatus, tc.wantReason)
			}
			if diff := cmp.Diff([]engine.SidecarResult{{Name: "sleeper", Image: f.image, ExitCode: 128 + 9, Stopped: tc.wantStopped}}, tr.Sidecars, sidecarsOpt); diff != "" {
				t.Errorf("sidecars (-want +got):\n%s", diff)
			}
			checkNoContainers(t, f)
			if pids := processesWithCmdline("sleep\x00" + marker + "\x00"); len(pids) != 0 {
				t.Errorf("sidecar still running on the host: pids %v", pids)
			}
			if tc.name == "never ready" && len(tr.Steps) != 0 {
				t.Errorf("steps ran before the sidecar was ready: %v", tr.Steps)
			}
		})
	}
}

// processesWithCmdline lists host pids whose command line is cmdline.
func processesWithCmdline(cmdline string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == cmdline {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestSidecarImageMissing: a sidecar image the store lacks fails the run
// before any task starts, as a step image does.
func TestSidecarImageMissing(t *testing.T) {
	f := newFixture(t)
	missing := "accord.dev/test/db@sha256:" + strings.Repeat("ab", 32)
	y := strings.Replace(sidecarEndPipeline, "            image: {{IMAGE}}\n            command: [sleep", "            image: "+missing+"\n            command: [sleep", 1)
	y = strings.NewReplacer("TASK_TIMEOUT", "1h", "MARKER", "1", "STEP", "echo ok", "PROBE\n", "").Replace(y)
	b, rec := f.build(t, y, nil)
	_, err := f.executor().Run(context.Background(), b)
	var ie *engine.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), missing+" is not available") {
		t.Fatalf("Run error = %v, want an input error naming %s", err, missing)
	}
	if started := rec.startedTasks(); len(started) != 0 {
		t.Errorf("tasks started: %v", started)
	}
}

// TestSidecarHomeLinks: a sidecar's home is a host directory it writes; a
// link it plants there is never followed by accord (cleanup included),
// and the steps have a home of their own.
func TestSidecarHomeLinks(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, plant string }{
		{"link to a host directory", "ln -s {{HOST}} $HOME/dir; ln -s {{HOST}}/sub $HOME/sub"},
		{"link to a host file", "ln -s {{HOST}}/secret $HOME/secret"},
		{"read-only directory with a link", "mkdir $HOME/ro; ln -s {{HOST}} $HOME/ro/host; chmod 0555 $HOME/ro"},
		{"nested links", "mkdir -p $HOME/a/b; ln -s {{HOST}}/sub $HOME/a/b/c; ln -s ../../a $HOME/a/b/up; ln -s /proc/1/root $HOME/a/root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newEscapeHost(t)
			before := h.snapshot(t)
			y := h.expand(`
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: home}
spec:
  tasks:
  - name: t
    taskSpec:
      sidecars:
      - name: planter
        image: {{IMAGE}}
        script: |
          ` + tc.plant + `
          touch $HOME/from-sidecar
          sleep 1000
        readinessProbe: {exec: {command: [test, -e, /tekton/home/from-sidecar]}, periodSeconds: 1}
      steps:
      - image: {{IMAGE}}
        script: |
          test ! -e $HOME/from-sidecar
          test ! -e $HOME/secret
`)
			b, _ := f.build(t, y, nil)
			e := f.executor(local.WithSidecarGrace(time.Second))
			res, err := e.Run(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Succeeded {
				t.Errorf("build failed: %s", res.Reason)
			}
			if err := e.Cleanup(context.Background(), b); err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			if diff := cmp.Diff(before, h.snapshot(t)); diff != "" {
				t.Errorf("host directory changed (-before +after):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(f.work, b.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("run directory left after Cleanup: %v", err)
			}
			checkNoContainers(t, f)
		})
	}
}

// sidecarUserPipeline: sidecar "srv" (image {{IMAGE}}, securityContext
// {{SC}}) writes who it runs as into its home and serves it; the step
// reads it into result "got".
const sidecarUserPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: sidecar-user}
spec:
  tasks:
  - name: t
    taskSpec:
      results: [{name: got}]
      sidecars:
      - name: srv
        image: {{IMAGE}}
        securityContext: {{SC}}
        script: |
          printf '%s:%s' "$(id -u)" "$(id -g)" > $HOME/id
          exec nc -ll -p 8123 -e cat $HOME/id
      steps:
      - image: {{STEPIMAGE}}
        script: |
          for i in $(seq 50); do out=$(nc 127.0.0.1 8123) && [ -n "$out" ] && break; sleep 0.1; done
          printf '%s' "$out" > $(results.got.path)
`

// TestSidecarImageUser: a sidecar runs as a step would, as in a pod: its
// securityContext over its image's User over the builders file's uid/gid
// variation (which applies without either), and it can write its home as
// that user; runAsNonRoot refuses
// root, naming the sidecar. A rootless runner refuses a non-root sidecar
// with its reason.
func TestSidecarImageUser(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, user, sc string
		variation      int
		want           string // uid:gid
		wantErr        []string
	}{
		{name: "no User: root", sc: "{}", want: "0:0"},
		{name: "the variation applies without a User", sc: "{}", variation: 1000, want: "1000:1000"},
		{name: "the image's User", user: "app", sc: "{}", want: "1000:1001"},
		{name: "the image's User wins over the variation", user: "app", sc: "{}", variation: 3000, want: "1000:1001"},
		{name: "runAsUser over the image's User", user: "app", sc: "{runAsUser: 2000}", want: "2000:0"},
		{name: "runAsGroup over the image's group", user: "app", sc: "{runAsGroup: 50}", want: "1000:50"},
		{name: "runAsNonRoot refuses root", sc: "{runAsNonRoot: true}",
			wantErr: []string{`sidecar "srv"`, "runAsNonRoot", "uid 0", "fix: set securityContext.runAsUser"}},
		{name: "unknown user name", user: "ghost", sc: "{}", wantErr: []string{`sidecar "srv"`, `User "ghost"`, "fix:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.imageWith(t, "user", userImageFiles, func(c *ggcrv1.Config) { c.User = tc.user })
			y := strings.NewReplacer("{{SC}}", tc.sc, "{{IMAGE}}", img, "{{STEPIMAGE}}", "{{IMAGE}}").Replace(sidecarUserPipeline)
			b, _ := f.build(t, y, nil)
			b.Variation.UID, b.Variation.GID = tc.variation, tc.variation
			if tc.want != "" && tc.want != "0:0" && f.runner.Rootless() {
				// (with a variation, the step is refused as well)
				tc.wantErr, tc.want = []string{"rootless runner owns a single host id", "fix: run accord as root"}, ""
				if tc.variation == 0 {
					tc.wantErr = append(tc.wantErr, `sidecar "srv"`)
				}
			}
			res := f.run(t, b, local.WithSidecarGrace(time.Second))
			checkNoContainers(t, f)
			tr := task(t, res, "t")
			if tc.wantErr != nil {
				wantRefused(t, res, tr, tc.wantErr)
				return
			}
			if diff := cmp.Diff([]v1.TaskRunResult{strResult("got", tc.want)}, tr.Results); diff != "" {
				t.Errorf("who the sidecar ran as, as the step got it (-want +got):\n%s\nreason: %s", diff, tr.Reason)
			}
		})
	}
}

// TestSidecarsRefusedUnderRunsc: gVisor gives each container its own
// loopback, so a task with sidecars fails under runsc with the reason and
// the fix, and no sidecar or step runs.
func TestSidecarsRefusedUnderRunsc(t *testing.T) {
	f := newFixtureWith(t, sandbox.Runsc)
	b, _ := f.build(t, sidecarPipeline, nil)
	res := f.run(t, b, local.WithParallel(2), local.WithSidecarGrace(time.Second))
	if res.Succeeded {
		t.Fatal("a task with sidecars succeeded under runsc")
	}
	db := task(t, res, "with-db")
	if !strings.Contains(db.Reason, "not runsc") || !strings.Contains(db.Reason, "fix: run the task with --runtime runc or crun") {
		t.Errorf("reason %q does not say why and what to do", db.Reason)
	}
	for _, s := range db.Steps {
		if s.Status != engine.Skipped && s.Status != "" {
			t.Errorf("step %s ran (%s) although its task's sidecars were refused", s.Name, s.Status)
		}
	}
}
