package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/images"
	"github.com/accord-build/accord/pipelines"
)

// These tests drive the CLI in-process, end to end: real runc and crun, the
// real builder image built from pinned inputs, the real example.

var (
	storeOnce sync.Once
	storeDir  string
	storeErr  error
	storeOut  string
)

// builderStore builds the Go builder image once into a shared store.
func builderStore(t *testing.T) string {
	t.Helper()
	storeOnce.Do(func() {
		d, err := os.MkdirTemp("", "accord-e2e-store-")
		if err != nil {
			storeErr = err
			return
		}
		storeDir = filepath.Join(d, "store")
		storeOut, _, storeErr = accord(t, "images", "build", "--store", storeDir)
	})
	if storeErr != nil {
		t.Fatalf("accord images build: %v", storeErr)
	}
	return storeDir
}

// accord runs the CLI with args and returns stdout, stderr and the error
// (an *exitError carries the exit code).
func accord(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}

// TestBuilderImageMatchesCatalog: the image built from pinned inputs has
// exactly the digest every catalog task pins.
func TestBuilderImageMatchesCatalog(t *testing.T) {
	builderStore(t)
	ref := strings.TrimSpace(storeOut)
	cat, err := pipelines.Builtin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range cat.Tasks() {
		for _, s := range task.Task.Spec.Steps {
			if strings.HasPrefix(s.Image, images.GoBuilderRef+"@") && s.Image != ref {
				t.Errorf("task %s step %s pins %s, but the pinned inputs build %s\n  fix: run hack/update-catalog-digests.sh", task.Name, s.Name, s.Image, ref)
			}
		}
	}
	// The test pipelines pin the same image.
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(regexp.QuoteMeta(images.GoBuilderRef)+`@sha256:[0-9a-f]{64}`).FindAllString(string(b), -1) {
			if m != ref {
				t.Errorf("%s pins %s, but the pinned inputs build %s\n  fix: run hack/update-catalog-digests.sh", f, m, ref)
			}
		}
	}
}

type runOutput struct {
	Succeeded bool `json:"succeeded"`
	Reason    string
	Runtime   string
	Artifacts []struct {
		Kind, Name, Digest, Stored string
	}
	Tasks []struct {
		Name    string
		Status  string
		Network bool
	}
}

func runExample(t *testing.T, store string, extra ...string) runOutput {
	t.Helper()
	args := append([]string{"run", "--source", "../../examples/hello", "--source-date-epoch", "1700000000",
		"-p", "name=hello", "-p", "image=accord.dev/examples/hello", "--store", store, "-o", "json"}, extra...)
	stdout, stderr, err := accord(t, args...)
	if err != nil {
		t.Fatalf("accord %v: %v\nstderr:\n%s\nstdout:\n%s", args, err, stderr, stdout)
	}
	var out runOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("run -o json is not JSON: %v\n%s", err, stdout)
	}
	return out
}

// gitExample commits examples/hello into a new bare repository with
// committer time 1700000000 and returns its file:// URL and the commit.
func gitExample(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "hello.git")
	env := append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	run := func(dir string, args ...string) string {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	src, err := filepath.Abs("../../examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	run(dir, "cp", "-r", src, work)
	run(work, "git", "init", "-q", "-b", "main")
	run(work, "git", "add", ".")
	run(work, "git", "commit", "-q", "-m", "hello")
	run(dir, "git", "clone", "-q", "--bare", work, bare)
	return "file://" + bare, run(work, "git", "rev-parse", "HEAD")
}

// TestExampleIsReproducible: examples/hello built from a directory with
// runc, and from git (exact commit) with crun in another workspace path,
// gives identical artifact digests.
func TestExampleIsReproducible(t *testing.T) {
	store := builderStore(t)
	url, commit := gitExample(t)
	first := runExample(t, store, "--runtime", "runc", "--workdir", t.TempDir())
	second := runExample(t, store, "--runtime", "crun", "--workdir", filepath.Join(t.TempDir(), "other", "path"), "--source", url, "--revision", commit)
	if !first.Succeeded || !second.Succeeded {
		t.Fatalf("builds failed: %q / %q", first.Reason, second.Reason)
	}
	if len(first.Artifacts) != 2 {
		t.Fatalf("want a binary and an image, got %+v", first.Artifacts)
	}
	if diff := cmp.Diff(first.Artifacts, second.Artifacts); diff != "" {
		t.Errorf("runc and crun builds differ (-runc +crun):\n%s", diff)
	}
	var network []string
	for _, task := range first.Tasks {
		if task.Status != "Succeeded" {
			t.Errorf("task %s: %s", task.Name, task.Status)
		}
		if task.Network {
			network = append(network, task.Name)
		}
	}
	if diff := cmp.Diff([]string{"deps"}, network); diff != "" {
		t.Errorf("tasks with network (-want +got):\n%s", diff)
	}
}

// TestBadInput: each bad input exits with the contract's code, says what to
// fix, and leaves the store's index as it was.
func TestBadInput(t *testing.T) {
	store := builderStore(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	img := strings.TrimSpace(storeOut)
	failing := write("fail.yaml", `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fails}
spec:
  workspaces: [{name: source}]
  tasks:
    - name: broken
      taskSpec:
        steps:
          - {name: s, image: "`+img+`", script: "echo about to fail; exit 4"}
`)
	slow := write("slow.yaml", `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: slow}
spec:
  workspaces: [{name: source}]
  tasks:
    - name: sleepy
      timeout: 1s
      taskSpec:
        steps:
          - {name: s, image: "`+img+`", script: "sleep 30"}
`)
	malformed := write("bad.yaml", "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: x\n")
	unpinned := write("unpinned.yaml", `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: unpinned}
spec:
  tasks:
    - name: t
      taskSpec:
        steps:
          - {name: s, image: "busybox:1.36", script: "true"}
`)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown pipeline", []string{"--pipeline", "nope"}, exitUsage, []string{"no such pipeline", "fix:"}},
		{"malformed yaml", []string{"--pipeline", malformed}, exitUsage, []string{"bad.yaml", "malformed YAML"}},
		{"unpinned image", []string{"--pipeline", unpinned}, exitUsage, []string{"not pinned by digest", "--allow-unpinned"}},
		{"unknown param", []string{"-p", "nope=1"}, exitUsage, []string{`unknown param "nope"`}},
		{"missing runtime", []string{"--runtime", "kata"}, exitUsage, []string{"unknown runtime"}},
		{"image name on another artifact's attestations", []string{"-p", "image=accord.dev/examples/hello:sha256-" + strings.Repeat("a", 64) + ".att"}, exitUsage, []string{"-p image=", "reserved", "fix:"}},
		{"image name on another artifact's release mark", []string{"-p", "image=accord.dev/examples/hello:sha256-" + strings.Repeat("a", 64) + ".released"}, exitUsage, []string{"-p image=", "reserved", "fix:"}},
		{"image name in upper case", []string{"-p", "image=Accord.dev/HELLO"}, exitUsage, []string{"-p image=", "not an image reference", "fix:"}},
		{"unreachable source", []string{"--source", "file:///nonexistent/repo.git", "--revision", "main"}, exitUsage, []string{"fetching", "fix:"}},
		{"failing step", []string{"--pipeline", failing}, exitBuildFailed, []string{"broken", "exited with code 4"}},
		{"timeout", []string{"--pipeline", slow}, exitBuildFailed, []string{"sleepy", "timed out"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(filepath.Join(store, "index.json"))
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"run", "--store", store, "--source", "../../examples/hello"}, tc.args...)
			stdout, stderr, err := accord(t, args...)
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit code %d, want %d (err %v)", got, tc.code, err)
			}
			msg := stdout + stderr
			if err != nil {
				msg += err.Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("output does not mention %q:\n%s", w, msg)
				}
			}
			after, _ := os.ReadFile(filepath.Join(store, "index.json"))
			if !bytes.Equal(before, after) {
				t.Errorf("store index changed by a failed run")
			}
		})
	}
}

func TestDoctorJSON(t *testing.T) {
	stdout, _, err := accord(t, "doctor", "-o", "json", "--store", t.TempDir())
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, stdout)
	}
	var rep struct {
		OK     bool
		Checks []struct {
			Name string
			OK   bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range rep.Checks {
		names[c.Name] = c.OK
	}
	for _, n := range []string{"runc", "crun", "git", "user namespaces", "cgroups", "store"} {
		if !names[n] {
			t.Errorf("doctor check %q missing or failing: %+v", n, rep.Checks)
		}
	}
}
