package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil"
	"github.com/accord-build/accord/internal/testutil/rttest"
	"github.com/accord-build/accord/pipelines"
)

// fixture is a store holding the base image, a runc runner, a rootfs cache
// and a work directory, all in the test's temporary directory.
type fixture struct {
	store  *store.Layout
	image  string // pinned reference of the base image
	runner *sandbox.Runner
	rootfs *sandbox.RootFSCache
	work   string
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, sandbox.Runc) }

func newFixtureWith(t *testing.T, rt sandbox.Runtime) *fixture {
	t.Helper()
	testutil.RequireBinary(t, string(rt))
	st, ref := testutil.BaseStore(t)
	work := t.TempDir()
	runner, err := sandbox.NewRunner(rt, work)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := sandbox.NewRootFSCache(filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, image: ref, runner: runner, rootfs: cache, work: work}
}

// resolve writes the YAML (with {{IMAGE}} replaced by the base image) to a
// file and resolves its pipeline.
func (f *fixture) resolve(t *testing.T, yaml string) *pipelines.Resolved {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(yaml, "{{IMAGE}}", f.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := (&pipelines.Catalog{}).Resolve(context.Background(), file)
	if err != nil {
		t.Fatalf("resolving the test pipeline: %v", err)
	}
	return p
}

var buildSeq atomic.Int64

// build returns a build of the pipeline with a fresh ID and an observer.
func (f *fixture) build(t *testing.T, yaml string, params v1.Params) (*engine.Build, *recorder) {
	t.Helper()
	rec := &recorder{out: map[string]*lockedBuffer{}}
	b := &engine.Build{
		ID:       fmt.Sprintf("b%d-%d", os.Getpid(), buildSeq.Add(1)),
		Pipeline: f.resolve(t, yaml),
		Params:   params,
		Source:   engine.Source{DateEpoch: 1700000000},
		Observer: rec,
	}
	return b, rec
}

func (f *fixture) executor(opts ...local.Option) *local.Executor {
	return local.New(f.store, f.runner, f.rootfs, f.work, opts...)
}

// run runs b and fails the test on an error (not on a failed build).
func (f *fixture) run(t *testing.T, b *engine.Build, opts ...local.Option) *engine.Result {
	t.Helper()
	res, err := f.executor(opts...).Run(context.Background(), b)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recorder is an engine.Observer keeping started tasks and step output.
type recorder struct {
	mu      sync.Mutex
	started []string
	out     map[string]*lockedBuffer // "task/step" -> stdout
}

func (r *recorder) TaskStarted(task string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, task)
}

func (r *recorder) StepStarted(task, step, image string) {}

func (r *recorder) StepOutput(task, step string) (stdout, stderr interface{ Write([]byte) (int, error) }) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, e := &lockedBuffer{}, &lockedBuffer{}
	r.out[task+"/"+step], r.out[task+"/"+step+"/stderr"] = b, e
	return b, e
}

func (r *recorder) StepFinished(task string, sr engine.StepResult) {}

func (r *recorder) TaskFinished(tr engine.TaskResult) {}

func (r *recorder) stdout(task, step string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.out[task+"/"+step]; ok {
		return b.String()
	}
	return ""
}

// stderr is what step wrote to its standard error, for a failure's message.
func (r *recorder) stderr(task, step string) string { return r.stdout(task, step+"/stderr") }

func (r *recorder) startedTasks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.started...)
}

// task returns the result of the named task.
func task(t *testing.T, res *engine.Result, name string) engine.TaskResult {
	t.Helper()
	for _, tr := range res.Tasks {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("no task %q in the result (tasks: %v)", name, statuses(res))
	return engine.TaskResult{}
}

// statuses maps each task in the result to its status.
func statuses(res *engine.Result) map[string]engine.Status {
	m := map[string]engine.Status{}
	for _, tr := range res.Tasks {
		m[tr.Name] = tr.Status
	}
	return m
}

func str(s string) v1.ParamValue { return *v1.NewStructuredValues(s) }

func strResult(name, v string) v1.TaskRunResult {
	return v1.TaskRunResult{Name: name, Type: v1.ResultsTypeString, Value: str(v)}
}

func pipelineResult(name string, v v1.ParamValue) v1.PipelineRunResult {
	return v1.PipelineRunResult{Name: name, Value: v}
}

// stepsOpt compares step results without their timings.
// ImageDigest is checked by the pull tests (TestRegistryImages).
var stepsOpt = cmpopts.IgnoreFields(engine.StepResult{}, "Duration", "Seconds", "ImageDigest")

// readTree reads every regular file of a workspace (relative path -> content).
func readTree(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wsFS is the workspace the task had mounted at mountPath, as the engine
// gives it to readers of the result.
func wsFS(t *testing.T, tr engine.TaskResult, mountPath string) fs.FS {
	t.Helper()
	fsys, ok := tr.Workspaces[mountPath]
	if !ok {
		t.Fatalf("task %q has no mount at %s (mounts: %v)", tr.Name, mountPath, tr.MountPaths())
	}
	return fsys
}

// runtimes and runcLike: the runtimes steps run under here (rttest).
var (
	runtimes = rttest.Runtimes
	runcLike = rttest.RuncLike
)

const paramsPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: params
spec:
  params:
    - name: str
      type: string
      default: dflt
    - name: arr
      type: array
      default: [x, "y z"]
    - name: obj
      type: object
      properties:
        k1: {type: string}
        k2: {type: string}
      default: {k1: a, k2: b}
  results:
    - name: str
      value: $(tasks.show.results.str)
    - name: args
      value: $(tasks.show.results.args)
    - name: obj
      value: $(tasks.show.results.obj)
    - name: taskdefault
      value: $(tasks.show.results.taskdefault)
  tasks:
    - name: show
      params:
        - name: str
          value: $(params.str)
        - name: arr
          value: $(params.arr[*])
        - name: k1
          value: $(params.obj.k1)
        - name: k2
          value: $(params.obj.k2)
      taskSpec:
        params:
          - name: str
          - name: arr
            type: array
          - name: k1
          - name: k2
          - name: taskdefault
            default: from-the-task
        results:
          - name: str
          - name: args
          - name: obj
          - name: taskdefault
        steps:
          - name: show
            image: {{IMAGE}}
            command:
              - sh
              - -c
              - |
                printf '%s' "$(params.str)" > $(results.str.path)
                printf '[%s]' "$@" > $(results.args.path)
                printf '%s,%s' "$(params.k1)" "$(params.k2)" > $(results.obj.path)
                printf '%s' "$(params.taskdefault)" > $(results.taskdefault.path)
              - sh
            args: ["$(params.arr[*])"]
`

func TestParams(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		params v1.Params
		want   map[string]string // result -> value
	}{
		{
			name: "defaults",
			want: map[string]string{"str": "dflt", "args": "[x][y z]", "obj": "a,b", "taskdefault": "from-the-task"},
		},
		{
			name: "given",
			params: v1.Params{
				{Name: "str", Value: str("given value")},
				{Name: "arr", Value: *v1.NewStructuredValues("p", "q", "r s")},
				{Name: "obj", Value: *v1.NewObject(map[string]string{"k1": "c", "k2": "d"})},
			},
			want: map[string]string{"str": "given value", "args": "[p][q][r s]", "obj": "c,d", "taskdefault": "from-the-task"},
		},
		{
			name:   "empty array",
			params: v1.Params{{Name: "arr", Value: v1.ParamValue{Type: v1.ParamTypeArray, ArrayVal: []string{}}}},
			want:   map[string]string{"str": "dflt", "args": "[]", "obj": "a,b", "taskdefault": "from-the-task"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := f.build(t, paramsPipeline, tc.params)
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			var wantTask []v1.TaskRunResult
			for _, n := range []string{"args", "obj", "str", "taskdefault"} {
				wantTask = append(wantTask, strResult(n, tc.want[n]))
			}
			if diff := cmp.Diff(wantTask, task(t, res, "show").Results); diff != "" {
				t.Errorf("task results (-want +got):\n%s", diff)
			}
			var wantPipeline []v1.PipelineRunResult
			for _, n := range []string{"str", "args", "obj", "taskdefault"} {
				wantPipeline = append(wantPipeline, pipelineResult(n, str(tc.want[n])))
			}
			if diff := cmp.Diff(wantPipeline, res.Results); diff != "" {
				t.Errorf("pipeline results (-want +got):\n%s", diff)
			}
		})
	}
}

const resultsPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: results
spec:
  results:
    - name: summary
      value: $(tasks.consumer.results.summary)
    - name: arr
      type: array
      value: $(tasks.producer.results.arr[*])
    - name: obj
      type: object
      value: $(tasks.producer.results.obj[*])
    - name: objkey
      value: $(tasks.producer.results.obj.k)
  tasks:
    # Listed first: only the result references order it after producer.
    - name: consumer
      params:
        - name: s
          value: $(tasks.producer.results.s)
        - name: arr
          value: $(tasks.producer.results.arr[*])
        - name: k
          value: $(tasks.producer.results.obj.k)
      taskSpec:
        params:
          - name: s
          - name: arr
            type: array
          - name: k
        results:
          - name: summary
        steps:
          - name: consume
            image: {{IMAGE}}
            command:
              - sh
              - -c
              - |
                printf 's=%s k=%s arr=' "$(params.s)" "$(params.k)" > $(results.summary.path)
                printf '<%s>' "$@" >> $(results.summary.path)
              - sh
            args: ["$(params.arr[*])"]
    - name: producer
      taskSpec:
        results:
          - name: s
          - name: arr
            type: array
          - name: obj
            type: object
            properties:
              k: {type: string}
              other: {type: string}
        steps:
          - name: produce
            image: {{IMAGE}}
            script: |
              printf 'hello' > $(results.s.path)
              printf '["one","two words"]' > $(results.arr.path)
              printf '{"k":"v","other":"o"}' > $(results.obj.path)
`

func TestTaskResults(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) { testTaskResults(t, newFixtureWith(t, rt)) })
	}
}

func testTaskResults(t *testing.T, f *fixture) {
	b, _ := f.build(t, resultsPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	obj := *v1.NewObject(map[string]string{"k": "v", "other": "o"})
	arr := *v1.NewStructuredValues("one", "two words")
	producer, consumer := task(t, res, "producer"), task(t, res, "consumer")
	if diff := cmp.Diff([]v1.TaskRunResult{
		{Name: "arr", Type: v1.ResultsTypeArray, Value: arr},
		{Name: "obj", Type: v1.ResultsTypeObject, Value: obj},
		strResult("s", "hello"),
	}, producer.Results); diff != "" {
		t.Errorf("producer results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]v1.TaskRunResult{strResult("summary", "s=hello k=v arr=<one><two words>")}, consumer.Results); diff != "" {
		t.Errorf("consumer results (-want +got):\n%s", diff)
	}
	if end := producer.Start.Add(producer.Duration); consumer.Start.Before(end) {
		t.Errorf("consumer started at %v, before producer ended at %v", consumer.Start, end)
	}
	if diff := cmp.Diff([]v1.PipelineRunResult{
		pipelineResult("summary", str("s=hello k=v arr=<one><two words>")),
		pipelineResult("arr", arr),
		pipelineResult("obj", obj),
		pipelineResult("objkey", str("v")),
	}, res.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
}

const workspacesPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: workspaces
spec:
  workspaces:
    - name: shared
  results:
    - name: read
      value: $(tasks.reader.results.read)
  tasks:
    - name: writer
      workspaces:
        - name: out
          workspace: shared
      taskSpec:
        workspaces:
          - name: out
        steps:
          - image: {{IMAGE}}
            script: printf from-writer > $(workspaces.out.path)/a.txt
    - name: sub-writer
      workspaces:
        - name: out
          workspace: shared
          subPath: sub/dir
      taskSpec:
        workspaces:
          - name: out
        steps:
          - image: {{IMAGE}}
            script: printf from-sub-writer > $(workspaces.out.path)/b.txt
    - name: reader
      runAfter: [writer, sub-writer]
      workspaces:
        - name: in
          workspace: shared
      taskSpec:
        workspaces:
          - name: in
            readOnly: true
        results:
          - name: read
          - name: ro
        steps:
          - image: {{IMAGE}}
            script: |
              cat $(workspaces.in.path)/a.txt $(workspaces.in.path)/sub/dir/b.txt > $(results.read.path)
              if touch $(workspaces.in.path)/c.txt 2> $(results.ro.path); then
                echo "wrote to a read-only workspace" >&2
                exit 1
              fi
`

func TestWorkspaces(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, workspacesPipeline, nil)
	exec := f.executor()
	res, err := exec.Run(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	reader := task(t, res, "reader")
	if diff := cmp.Diff([]v1.TaskRunResult{
		strResult("read", "from-writerfrom-sub-writer"),
		strResult("ro", "touch: /workspace/in/c.txt: Read-only file system\n"),
	}, reader.Results); diff != "" {
		t.Errorf("reader results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]v1.PipelineRunResult{pipelineResult("read", str("from-writerfrom-sub-writer"))}, res.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
	shared := map[string]string{"a.txt": "from-writer", "sub/dir/b.txt": "from-sub-writer"}
	if diff := cmp.Diff(shared, readTree(t, wsFS(t, task(t, res, "writer"), "/workspace/out"))); diff != "" {
		t.Errorf("shared workspace as the writer mounted it (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(shared, readTree(t, wsFS(t, reader, "/workspace/in"))); diff != "" {
		t.Errorf("shared workspace as the reader mounted it: not the writer's (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"b.txt": "from-sub-writer"}, readTree(t, wsFS(t, task(t, res, "sub-writer"), "/workspace/out"))); diff != "" {
		t.Errorf("sub-writer's mount is not the subPath sub/dir (-want +got):\n%s", diff)
	}
	// Cleanup removes the run's directory with its workspaces.
	if err := exec.Cleanup(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.work, b.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("run directory still there after Cleanup: %v", err)
	}
}

const sourcePipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: source
spec:
  workspaces:
    - name: source
  tasks:
    - name: list
      workspaces:
        - name: source
      taskSpec:
        workspaces:
          - name: source
            readOnly: true
        results:
          - name: files
          - name: hello
        steps:
          - image: {{IMAGE}}
            workingDir: $(workspaces.source.path)
            script: |
              find . | sort | tr '\n' ' ' > $(results.files.path)
              cat hello.txt > $(results.hello.path)
              test -x run.sh
              test ! -x hello.txt
`

func TestSourceWorkspace(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	for name, content := range map[string]string{
		"hello.txt":       "hello source\n",
		"dir/nested.txt":  "nested\n",
		"run.sh":          "#!/bin/sh\n",
		".git/HEAD":       "ref: refs/heads/main\n",
		"dir/.git/config": "[core]\n",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := f.build(t, sourcePipeline, nil)
	b.Source.Dir = src
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	list := task(t, res, "list")
	if diff := cmp.Diff([]v1.TaskRunResult{
		strResult("files", ". ./dir ./dir/nested.txt ./hello.txt ./run.sh "),
		strResult("hello", "hello source\n"),
	}, list.Results); diff != "" {
		t.Errorf("what the task saw (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"hello.txt": "hello source\n", "dir/nested.txt": "nested\n", "run.sh": "#!/bin/sh\n"},
		readTree(t, wsFS(t, list, "/workspace/source"))); diff != "" {
		t.Errorf("source workspace on the host (-want +got):\n%s", diff)
	}
}

const orderPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: append
spec:
  params:
    - name: word
  workspaces:
    - name: ws
  steps:
    - image: {{IMAGE}}
      script: echo $(params.word) >> $(workspaces.ws.path)/order
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: order
spec:
  params:
    - name: flag
  workspaces:
    - name: ws
  tasks:
    - name: last
      runAfter: [guarded]
      taskRef:
        name: append
      params:
        - name: word
          value: last
      workspaces:
        - name: ws
    - name: guarded
      runAfter: [first]
      when:
        - input: $(params.flag)
          operator: in
          values: ["yes"]
      taskRef:
        name: append
      params:
        - name: word
          value: guarded
      workspaces:
        - name: ws
    - name: first
      taskRef:
        name: append
      params:
        - name: word
          value: first
      workspaces:
        - name: ws
`

func TestRunAfterAndWhen(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		flag         string
		wantOrder    string
		wantStatuses map[string]engine.Status
	}{
		{"yes", "first\nguarded\nlast\n", map[string]engine.Status{"first": engine.Succeeded, "guarded": engine.Succeeded, "last": engine.Succeeded}},
		{"no", "first\nlast\n", map[string]engine.Status{"first": engine.Succeeded, "guarded": engine.Skipped, "last": engine.Succeeded}},
	} {
		t.Run("flag="+tc.flag, func(t *testing.T) {
			b, rec := f.build(t, orderPipeline, v1.Params{{Name: "flag", Value: str(tc.flag)}})
			res := f.run(t, b, local.WithParallel(2))
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if diff := cmp.Diff(tc.wantStatuses, statuses(res)); diff != "" {
				t.Errorf("task statuses (-want +got):\n%s", diff)
			}
			got, err := fs.ReadFile(wsFS(t, task(t, res, "first"), "/workspace/ws"), "order")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantOrder, string(got)); diff != "" {
				t.Errorf("order the tasks ran in (-want +got):\n%s", diff)
			}
			wantStarted := strings.Fields(tc.wantOrder)
			if diff := cmp.Diff(wantStarted, rec.startedTasks()); diff != "" {
				t.Errorf("tasks started (-want +got):\n%s", diff)
			}
			if g := task(t, res, "guarded"); g.Status == engine.Skipped {
				if diff := cmp.Diff("when expressions evaluated to false", g.Reason); diff != "" {
					t.Errorf("skip reason (-want +got):\n%s", diff)
				}
				if len(g.Steps) != 0 {
					t.Errorf("skipped task has steps: %v", g.Steps)
				}
			}
			if last := task(t, res, "last"); last.Task != "append" {
				t.Errorf("last.Task = %q, want the Task's name %q", last.Task, "append")
			}
		})
	}
}

const finallyPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: finally
spec:
  params:
    - name: code
  tasks:
    - name: ok
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: "true"
    - name: bad
      runAfter: [ok]
      params:
        - name: code
          value: $(params.code)
      taskSpec:
        params:
          - name: code
        steps:
          - name: exit
            image: {{IMAGE}}
            script: exit $(params.code)
    - name: after-bad
      runAfter: [bad]
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: "true"
  finally:
    - name: report
      params:
        - name: all
          value: $(tasks.status)
        - name: ok
          value: $(tasks.ok.status)
        - name: bad
          value: $(tasks.bad.status)
        - name: after-bad
          value: $(tasks.after-bad.status)
      taskSpec:
        params:
          - name: all
          - name: ok
          - name: bad
          - name: after-bad
        results:
          - name: seen
        steps:
          - image: {{IMAGE}}
            script: printf '%s %s %s %s' $(params.all) $(params.ok) $(params.bad) $(params.after-bad) > $(results.seen.path)
`

func TestFinally(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		code          string
		wantSucceeded bool
		wantSeen      string
		wantStatuses  map[string]engine.Status
	}{
		{"0", true, "Succeeded Succeeded Succeeded Succeeded",
			map[string]engine.Status{"ok": engine.Succeeded, "bad": engine.Succeeded, "after-bad": engine.Succeeded, "report": engine.Succeeded}},
		{"3", false, "Failed Succeeded Failed None",
			map[string]engine.Status{"ok": engine.Succeeded, "bad": engine.Failed, "report": engine.Succeeded}},
	} {
		t.Run("code="+tc.code, func(t *testing.T) {
			b, _ := f.build(t, finallyPipeline, v1.Params{{Name: "code", Value: str(tc.code)}})
			res := f.run(t, b)
			if res.Succeeded != tc.wantSucceeded {
				t.Errorf("Succeeded = %v, want %v (reason %q)", res.Succeeded, tc.wantSucceeded, res.Reason)
			}
			if diff := cmp.Diff(tc.wantStatuses, statuses(res)); diff != "" {
				t.Errorf("task statuses (-want +got):\n%s", diff)
			}
			report, bad := task(t, res, "report"), task(t, res, "bad")
			if !report.Finally || bad.Finally {
				t.Errorf("Finally: report %v, bad %v; want true, false", report.Finally, bad.Finally)
			}
			if diff := cmp.Diff([]v1.TaskRunResult{strResult("seen", tc.wantSeen)}, report.Results); diff != "" {
				t.Errorf("what the finally task saw (-want +got):\n%s", diff)
			}
			if end := bad.Start.Add(bad.Duration); report.Start.Before(end) {
				t.Errorf("finally task started at %v, before bad ended at %v", report.Start, end)
			}
			if !tc.wantSucceeded {
				if want := `task "bad" failed: step "exit" exited with code 3`; !strings.HasPrefix(res.Reason, want) {
					t.Errorf("Reason = %q, want it to start with %q", res.Reason, want)
				}
			}
		})
	}
}

const stepsPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: steps
spec:
  workspaces:
    - name: ws
  tasks:
    - name: steps
      workspaces:
        - name: ws
      taskSpec:
        workspaces:
          - name: ws
        results:
          - name: noshebang
          - name: shebang
          - name: cmd
          - name: wd
        stepTemplate:
          env:
            - name: FROM_TEMPLATE
              value: template
            - name: OVERRIDDEN
              value: by-template
        steps:
          - name: no-shebang
            image: {{IMAGE}}
            onError: continue
            script: |
              printf before > $(results.noshebang.path)
              false
              printf after > $(results.noshebang.path)
          - name: shebang
            image: {{IMAGE}}
            script: |
              #!/bin/sh
              false
              printf after > $(results.shebang.path)
          - name: command
            image: {{IMAGE}}
            command: [sh, -c]
            args: ['printf "%s-%s" "$0" "$1" > $(results.cmd.path)', x, "y z"]
          - name: workdir
            image: {{IMAGE}}
            workingDir: $(workspaces.ws.path)/deep/er
            script: pwd > $(results.wd.path)
          - name: env
            image: {{IMAGE}}
            command: [env]
            env:
              - name: FROM_STEP
                value: step
              - name: OVERRIDDEN
                value: by-step
`

func TestSteps(t *testing.T) {
	t.Setenv("ACCORD_TEST_SECRET", "must-not-leak")
	f := newFixture(t)
	b, rec := f.build(t, stepsPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	tr := task(t, res, "steps")
	if diff := cmp.Diff([]engine.StepResult{
		// set -e stopped the script at false; onError: continue let the task go on.
		{Name: "no-shebang", Image: f.image, Status: engine.Failed, ExitCode: 1},
		{Name: "shebang", Image: f.image, Status: engine.Succeeded},
		{Name: "command", Image: f.image, Status: engine.Succeeded},
		{Name: "workdir", Image: f.image, Status: engine.Succeeded},
		{Name: "env", Image: f.image, Status: engine.Succeeded},
	}, tr.Steps, stepsOpt); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]v1.TaskRunResult{
		strResult("cmd", "x-y z"),
		strResult("noshebang", "before"),
		strResult("shebang", "after"),
		strResult("wd", "/workspace/ws/deep/er\n"),
	}, tr.Results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if st, err := fs.Stat(wsFS(t, tr, "/workspace/ws"), "deep/er"); err != nil || !st.IsDir() {
		t.Errorf("workingDir was not created in the workspace: %v", err)
	}

	cfg, err := testutil.BaseImage(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{
		"FROM_STEP=step", "FROM_TEMPLATE=template", "OVERRIDDEN=by-step",
		"HOME=/tekton/home", "LANG=C.UTF-8", "SOURCE_DATE_EPOCH=1700000000", "TZ=UTC",
	}, cfg.Config.Env...)
	sort.Strings(want)
	got := strings.Split(strings.TrimSuffix(rec.stdout("steps", "env"), "\n"), "\n")
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("step environment (-want +got):\n%s", diff)
	}
	for _, kv := range got {
		if strings.Contains(kv, "ACCORD_TEST_SECRET") || kv == "PATH="+os.Getenv("PATH") || strings.HasPrefix(kv, "USER=") {
			t.Errorf("host environment leaked into the step: %q", kv)
		}
	}
}

const rendezvousPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: rendezvous
spec:
  params:
    - name: me
    - name: other
  workspaces:
    - name: ws
  steps:
    - image: {{IMAGE}}
      script: |
        touch $(workspaces.ws.path)/$(params.me)
        i=0
        while [ ! -e $(workspaces.ws.path)/$(params.other) ]; do
          i=$((i + 1))
          [ $i -le 75 ] || exit 1
          sleep 0.2
        done
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: concurrency
spec:
  workspaces:
    - name: ws
  tasks:
    - name: left
      timeout: 5s
      taskRef:
        name: rendezvous
      params:
        - name: me
          value: left
        - name: other
          value: right
      workspaces:
        - name: ws
    - name: right
      timeout: 5s
      taskRef:
        name: rendezvous
      params:
        - name: me
          value: right
        - name: other
          value: left
      workspaces:
        - name: ws
`

func TestConcurrency(t *testing.T) {
	f := newFixture(t)
	t.Run("parallel=2", func(t *testing.T) {
		b, _ := f.build(t, rendezvousPipeline, nil)
		res := f.run(t, b, local.WithParallel(2))
		if !res.Succeeded {
			t.Fatalf("build failed: %s", res.Reason)
		}
		if diff := cmp.Diff(map[string]engine.Status{"left": engine.Succeeded, "right": engine.Succeeded}, statuses(res)); diff != "" {
			t.Errorf("task statuses (-want +got):\n%s", diff)
		}
		l, r := task(t, res, "left"), task(t, res, "right")
		if l.Start.After(r.Start.Add(r.Duration)) || r.Start.After(l.Start.Add(l.Duration)) {
			t.Errorf("tasks did not overlap: left %v+%v, right %v+%v", l.Start, l.Duration, r.Start, r.Duration)
		}
	})
	t.Run("parallel=1", func(t *testing.T) {
		b, _ := f.build(t, rendezvousPipeline, nil)
		start := time.Now()
		res := f.run(t, b, local.WithParallel(1))
		if res.Succeeded {
			t.Fatal("build succeeded with one task at a time; the first task should have timed out waiting for the other")
		}
		if len(res.Tasks) != 2 {
			t.Fatalf("tasks = %v, want both", statuses(res))
		}
		// Tasks start in name order: "left" takes the only slot and times
		// out waiting for "right"; after that failure Tekton starts no new
		// task, so "right" is recorded as not started.
		first, second := task(t, res, "left"), task(t, res, "right")
		if first.Status != engine.TimedOut {
			t.Errorf("first task %s: status %s, want TimedOut", first.Name, first.Status)
		}
		if d := first.Duration; d < 5*time.Second || d > 12*time.Second {
			t.Errorf("first task ran %v, want about its 5s timeout", d)
		}
		if diff := cmp.Diff([]engine.StepResult{{Name: "step-0", Image: f.image, Status: engine.TimedOut, ExitCode: -1}}, first.Steps, stepsOpt); diff != "" {
			t.Errorf("first task's steps (-want +got):\n%s", diff)
		}
		if second.Status != engine.Skipped || !strings.Contains(second.Reason, "not started") || len(second.Steps) != 0 {
			t.Errorf("second task %s: status %s (%s), %d steps; want Skipped, not started", second.Name, second.Status, second.Reason, len(second.Steps))
		}
		if want := fmt.Sprintf("task %q timed out: ", first.Name); !strings.HasPrefix(res.Reason, want) {
			t.Errorf("Reason = %q, want it to start with %q", res.Reason, want)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("run took %v", d)
		}
	})
}

const failingPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: failing
spec:
  workspaces:
    - name: ws
  tasks:
    - name: fails
      workspaces:
        - name: ws
      taskSpec:
        workspaces:
          - name: ws
        steps:
          - name: ok
            image: {{IMAGE}}
            script: printf ok > $(workspaces.ws.path)/ok
          - name: boom
            image: {{IMAGE}}
            script: |
              printf before > $(workspaces.ws.path)/before
              false
              printf after > $(workspaces.ws.path)/after
          - name: never
            image: {{IMAGE}}
            script: printf never > $(workspaces.ws.path)/never
    - name: dependent
      runAfter: [fails]
      workspaces:
        - name: ws
      taskSpec:
        workspaces:
          - name: ws
        steps:
          - image: {{IMAGE}}
            script: printf dependent > $(workspaces.ws.path)/dependent
`

func TestFailingStep(t *testing.T) {
	f := newFixture(t)
	b, rec := f.build(t, failingPipeline, nil)
	res := f.run(t, b)
	if res.Succeeded {
		t.Fatal("build succeeded, want failed")
	}
	if diff := cmp.Diff(map[string]engine.Status{"fails": engine.Failed}, statuses(res)); diff != "" {
		t.Errorf("task statuses; the dependent must not run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"fails"}, rec.startedTasks()); diff != "" {
		t.Errorf("tasks started (-want +got):\n%s", diff)
	}
	fails := task(t, res, "fails")
	if diff := cmp.Diff([]engine.StepResult{
		{Name: "ok", Image: f.image, Status: engine.Succeeded},
		{Name: "boom", Image: f.image, Status: engine.Failed, ExitCode: 1},
		{Name: "never", Image: f.image, Status: engine.Skipped},
	}, fails.Steps, stepsOpt); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if want := `task "fails" failed: step "boom" exited with code 1`; !strings.HasPrefix(res.Reason, want) {
		t.Errorf("Reason = %q, want it to start with %q", res.Reason, want)
	}
	if diff := cmp.Diff(map[string]string{"ok": "ok", "before": "before"}, readTree(t, wsFS(t, fails, "/workspace/ws"))); diff != "" {
		t.Errorf("workspace on the host (-want +got):\n%s", diff)
	}
}

const sleepPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: sleep
spec:
  tasks:
    - name: sleepy
      timeout: TASK_TIMEOUT
      taskSpec:
        steps:
          - name: sleep
            image: {{IMAGE}}
            timeout: STEP_TIMEOUT
            script: sleep 30
          - name: after
            image: {{IMAGE}}
            script: "true"
`

func TestTimeouts(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name                     string
		taskTimeout, stepTimeout string
		buildTimeout             time.Duration
	}{
		{"task timeout", "2s", "0s", 0},
		{"step timeout", "1h", "2s", 0},
		{"build timeout", "1h", "0s", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.NewReplacer("TASK_TIMEOUT", tc.taskTimeout, "STEP_TIMEOUT", tc.stepTimeout).Replace(sleepPipeline)
			b, _ := f.build(t, y, nil)
			b.Timeout = tc.buildTimeout
			start := time.Now()
			res := f.run(t, b)
			if d := time.Since(start); d > 12*time.Second {
				t.Errorf("run took %v, want about 2s", d)
			}
			if res.Succeeded {
				t.Fatal("build succeeded, want timed out")
			}
			sleepy := task(t, res, "sleepy")
			if sleepy.Status != engine.TimedOut {
				t.Errorf("task status %s (%s), want TimedOut", sleepy.Status, sleepy.Reason)
			}
			if len(sleepy.Steps) == 0 {
				t.Fatal("no step results")
			}
			if diff := cmp.Diff(engine.StepResult{Name: "sleep", Image: f.image, Status: engine.TimedOut, ExitCode: -1}, sleepy.Steps[0], stepsOpt); diff != "" {
				t.Errorf("sleep step (-want +got):\n%s", diff)
			}
			// The step after the one that timed out never runs.
			for _, s := range sleepy.Steps[1:] {
				if s.Status != engine.Skipped {
					t.Errorf("step %q after the timeout: %s, want skipped or absent", s.Name, s.Status)
				}
			}
			if want := `task "sleepy" timed out: step "sleep": step timed out`; !strings.HasPrefix(res.Reason, want) {
				t.Errorf("Reason = %q, want it to start with %q", res.Reason, want)
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	f := newFixture(t)
	const base = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: input
spec:
  params:
    - name: req
    - name: opt
      default: o
  workspaces:
    - name: ws
  tasks:
    - name: first
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: "true"
    - name: second
      runAfter: [first]
      WORKSPACES
      taskSpec:
        workspaces:
          - name: needed
        steps:
          - image: SECOND_IMAGE
            script: "true"
`
	bound := "workspaces:\n        - name: needed\n          workspace: ws"
	missingImage := "accord.dev/test/base@sha256:" + strings.Repeat("0", 64)
	req := v1.Param{Name: "req", Value: str("r")}
	for _, tc := range []struct {
		name      string
		params    v1.Params
		unbound   bool   // the second task does not bind its workspace
		image     string // the second task's image, if not the base image
		sourceDir bool   // the build has a source directory
		want      string
	}{
		{name: "unknown param", params: v1.Params{req, {Name: "nope", Value: str("x")}},
			want: `unknown param "nope": the pipeline declares "opt", "req"`},
		{name: "missing required param",
			want: `pipelineRun missing parameters: [req]`},
		{name: "array for a string param", params: v1.Params{{Name: "req", Value: *v1.NewStructuredValues("a", "b")}},
			want: `parameters have inconsistent types`},
		{name: "required task workspace not bound", params: v1.Params{req}, unbound: true,
			want: `pipeline task "second" does not bind workspace "needed" that its task requires`},
		{name: "step image not in the store", params: v1.Params{req}, image: missingImage,
			want: "step image " + missingImage + " is not available"},
		{name: "source without a source workspace", params: v1.Params{req}, sourceDir: true,
			want: `pipeline "input" declares no workspace "source" for the source`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, img := bound, "{{IMAGE}}"
			if tc.unbound {
				ws = ""
			}
			if tc.image != "" {
				img = tc.image
			}
			b, rec := f.build(t, strings.NewReplacer("WORKSPACES", ws, "SECOND_IMAGE", img).Replace(base), tc.params)
			if tc.sourceDir {
				b.Source.Dir = t.TempDir()
			}
			res, err := f.executor().Run(context.Background(), b)
			var ie *local.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Run = %+v, %v (%T); want a *local.InputError", res, err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if res != nil {
				t.Errorf("Run returned a result with the input error: %+v", res)
			}
			if started := rec.startedTasks(); len(started) != 0 {
				t.Errorf("tasks started before the input error: %v", started)
			}
		})
	}
}

const versionsPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: greet-v1
spec:
  params:
    - name: who
      default: world
    - name: names
      type: array
  workspaces:
    - name: out
  results:
    - name: greeting
  stepTemplate:
    env:
      - name: GREETING
        value: hello
  steps:
    - name: greet
      image: {{IMAGE}}
      workingDir: $(workspaces.out.path)/$(params.who)
      args: ["$(params.names[*])"]
      script: |
        #!/bin/sh
        printf '%s, %s (%s) in %s' "$GREETING" "$(params.who)" "$*" "$(pwd)" > $(results.greeting.path)
---
apiVersion: tekton.dev/v1beta1
kind: Task
metadata:
  name: greet-v1beta1
spec:
  params:
    - name: who
      type: string
      default: world
    - name: names
      type: array
  workspaces:
    - name: out
  results:
    - name: greeting
      type: string
  stepTemplate:
    env:
      - name: GREETING
        value: hello
  steps:
    - name: greet
      image: {{IMAGE}}
      workingDir: $(workspaces.out.path)/$(params.who)
      args: ["$(params.names[*])"]
      script: |
        #!/bin/sh
        printf '%s, %s (%s) in %s' "$GREETING" "$(params.who)" "$*" "$(pwd)" > $(results.greeting.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: versions
spec:
  workspaces:
    - name: ws
  tasks:
    - name: v1
      taskRef:
        name: greet-v1
      params:
        - name: names
          value: [a, b]
      workspaces:
        - name: out
          workspace: ws
          subPath: v1
    - name: v1beta1
      taskRef:
        name: greet-v1beta1
      params:
        - name: names
          value: [a, b]
      workspaces:
        - name: out
          workspace: ws
          subPath: v1beta1
`

func TestV1beta1Task(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, versionsPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	v1t, betat := task(t, res, "v1"), task(t, res, "v1beta1")
	want := []v1.TaskRunResult{strResult("greeting", "hello, world (a b) in /workspace/out/world")}
	for _, tr := range []engine.TaskResult{v1t, betat} {
		if diff := cmp.Diff(want, tr.Results); diff != "" {
			t.Errorf("%s results (-want +got):\n%s", tr.Name, diff)
		}
	}
	if diff := cmp.Diff(v1t.Steps, betat.Steps, stepsOpt); diff != "" {
		t.Errorf("steps of the v1beta1 task differ from the v1 one (-v1 +v1beta1):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"greet-v1", "greet-v1beta1"}, []string{v1t.Task, betat.Task}); diff != "" {
		t.Errorf("Task names (-want +got):\n%s", diff)
	}
	for _, tr := range []engine.TaskResult{v1t, betat} {
		if st, err := fs.Stat(wsFS(t, tr, "/workspace/out"), "world"); err != nil || !st.IsDir() {
			t.Errorf("%s: workingDir not created in the workspace: %v", tr.Name, err)
		}
	}
}

const networkPipeline = `
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: ifaces
spec:
  results:
    - name: ifaces
  steps:
    - image: {{IMAGE}}
      script: |
        awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ' > $(results.ifaces.path)
---
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: ifaces-network
  annotations:
    accord.dev/network: "true"
spec:
  results:
    - name: ifaces
  steps:
    - image: {{IMAGE}}
      script: |
        awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ' > $(results.ifaces.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: network
spec:
  tasks:
    - name: plain
      taskRef:
        name: ifaces
    - name: annotated
      taskRef:
        name: ifaces-network
    - name: inline-annotated
      taskSpec:
        metadata:
          annotations:
            accord.dev/network: "true"
        results:
          - name: ifaces
        steps:
          - image: {{IMAGE}}
            script: |
              awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ' > $(results.ifaces.path)
`

func TestNetworkAnnotation(t *testing.T) { testNetworkAnnotation(t, newFixture(t)) }

// TestNetworkAnnotationRunsc: the same under gVisor: loopback only in its
// own network stack, the host's interfaces for a task with network.
func TestNetworkAnnotationRunsc(t *testing.T) {
	testNetworkAnnotation(t, newFixtureWith(t, sandbox.Runsc))
}

func testNetworkAnnotation(t *testing.T, f *fixture) {
	b, _ := f.build(t, networkPipeline, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	hostDev, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var host []string
	for _, l := range strings.Split(string(hostDev), "\n")[2:] {
		if name, _, ok := strings.Cut(l, ":"); ok {
			host = append(host, strings.TrimSpace(name))
		}
	}
	sort.Strings(host)
	hostIfaces := strings.Join(host, " ") + " "
	for _, tc := range []struct {
		task        string
		wantNetwork bool
		wantIfaces  string
	}{
		{"plain", false, "lo "},
		{"annotated", true, hostIfaces},
		{"inline-annotated", true, hostIfaces},
	} {
		t.Run(tc.task, func(t *testing.T) {
			tr := task(t, res, tc.task)
			if tr.Network != tc.wantNetwork {
				t.Errorf("Network = %v, want %v", tr.Network, tc.wantNetwork)
			}
			if diff := cmp.Diff([]v1.TaskRunResult{strResult("ifaces", tc.wantIfaces)}, tr.Results); diff != "" {
				t.Errorf("interfaces in the task's container (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResultsOfSkippedTask: as in Tekton, a task that needs results of a
// task skipped by its when expressions is skipped too, and the build
// succeeds.
func TestResultsOfSkippedTask(t *testing.T) {
	f := newFixture(t)
	b, _ := f.build(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: skipres}
spec:
  tasks:
    - name: producer
      when: [{input: "a", operator: in, values: ["b"]}]
      taskSpec:
        results: [{name: out}]
        steps:
          - {image: "{{IMAGE}}", script: "printf x > $(results.out.path)"}
    - name: consumer
      params: [{name: v, value: $(tasks.producer.results.out)}]
      taskSpec:
        params: [{name: v}]
        steps:
          - {image: "{{IMAGE}}", script: "echo $(params.v)"}
    - name: independent
      taskSpec:
        steps:
          - {image: "{{IMAGE}}", script: "true"}
`, nil)
	res := f.run(t, b)
	if !res.Succeeded {
		t.Fatalf("build failed: %s", res.Reason)
	}
	want := map[string]engine.Status{"producer": engine.Skipped, "consumer": engine.Skipped, "independent": engine.Succeeded}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if r := task(t, res, "consumer").Reason; !strings.Contains(r, `"producer", which was skipped`) {
		t.Errorf("consumer reason = %q", r)
	}
}

// TestMissingTaskParam: a pipeline task that leaves a required task param
// unset is an input error before anything runs.
func TestMissingTaskParam(t *testing.T) {
	f := newFixture(t)
	b, rec := f.build(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: missingparam}
spec:
  tasks:
    - name: first
      taskSpec:
        steps:
          - {image: "{{IMAGE}}", script: "true"}
    - name: second
      runAfter: [first]
      taskSpec:
        params: [{name: needed}]
        steps:
          - {image: "{{IMAGE}}", script: "echo $(params.needed)"}
`, nil)
	_, err := f.executor().Run(context.Background(), b)
	var ie *local.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `param "needed"`) {
		t.Fatalf("Run error = %v, want an InputError naming the param", err)
	}
	if started := rec.startedTasks(); len(started) != 0 {
		t.Errorf("tasks started before the input error: %v", started)
	}
}
