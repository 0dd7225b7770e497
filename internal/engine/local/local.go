package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipeline/dag"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
)

// Images is where step images come from.
type Images interface {
	// Image returns the image with manifest digest h.
	Image(ctx context.Context, h ggcrv1.Hash) (ggcrv1.Image, error)
}

// Executor runs pipelines on this machine, each step in a fresh container.
type Executor struct {
	Commands
	images     Images
	runner     *sandbox.Runner
	rootfs     *sandbox.RootFSCache
	workDir    string
	parallel   int
	keep       bool
	stepMemory int64
	logger     *slog.Logger
	// sidecarGrace: see WithSidecarGrace (sidecars.go).
	sidecarGrace time.Duration
}

var _ engine.Executor = (*Executor)(nil)

// Option configures an [Executor].
type Option func(*Executor)

// WithParallel bounds how many tasks run at once. Default: the number of CPUs.
func WithParallel(n int) Option { return func(e *Executor) { e.parallel = n } }

// WithKeep keeps workspaces and bundles after the run. Default false.
func WithKeep(keep bool) Option { return func(e *Executor) { e.keep = keep } }

// WithStepMemory sets the memory limit of steps that declare none
// (computeResources.limits.memory). Default 4 GiB; 0 for none.
func WithStepMemory(n int64) Option { return func(e *Executor) { e.stepMemory = n } }

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(e *Executor) { e.logger = l } }

// New returns an executor that takes images from images, runs steps with
// runner, unpacks images into rootfs and keeps run state under workDir.
func New(images Images, runner *sandbox.Runner, rootfs *sandbox.RootFSCache, workDir string, opts ...Option) *Executor {
	e := &Executor{images: images, runner: runner, rootfs: rootfs, workDir: workDir, parallel: runtime.NumCPU(), stepMemory: 4 << 30, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e)
	}
	if e.parallel < 1 {
		e.parallel = 1
	}
	return e
}

// InputError is the engine's bad-input error: [engine.InputError], which
// every engine returns.
type InputError = engine.InputError

func inputErr(format string, args ...any) error { return engine.InputErrorf(format, args...) }

// run is the state of one build.
type run struct {
	e          *Executor
	b          *engine.Build
	dir        string
	workspaces map[string]string // pipeline workspace -> host dir
	pr         *v1.PipelineRun
	spec       *v1.PipelineSpec

	mu      sync.Mutex
	state   map[string]*prr.ResolvedPipelineTask
	results map[string]*engine.TaskResult
	wsLocks map[string]*sync.RWMutex // see lockWorkspaces
	// taskOwners is the host uid/gid a task's home and results belong to,
	// when a step's own user changed it (see stepIdentity).
	taskOwners map[string][2]int
	wsOwners   map[string][2]int // the same for pipeline workspaces

	matrixRuns map[string][]*engine.TaskResult // matrixed pipeline task -> its runs, in fan-out order
	slots      chan struct{}                   // one per TaskRun running: see takeSlot
	celMarker  string                          // starts the probes of CEL when expressions: see probeCEL
}

// Run implements [engine.Executor]. The result's workspaces stay until
// [Executor.Cleanup]: call it after reading outputs.
func (e *Executor) Run(ctx context.Context, b *engine.Build) (*engine.Result, error) {
	start := time.Now()
	if b.Timeout == 0 {
		b.Timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	r, err := e.prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	res := r.execute(ctx)
	res.Seconds = time.Since(start).Seconds()
	res.Outputs = engine.Outputs(res.Tasks)
	return res, nil
}

// Cleanup implements [engine.Executor]: it removes a run's directory
// (workspaces, results, bundles) unless the executor keeps it.
func (e *Executor) Cleanup(_ context.Context, b *engine.Build) error {
	if e.keep {
		e.logger.Info("keeping run directory", "dir", filepath.Join(e.workDir, b.ID))
		return nil
	}
	return removeAll(filepath.Join(e.workDir, b.ID))
}

func (e *Executor) prepare(ctx context.Context, b *engine.Build) (*run, error) {
	p := b.Pipeline.Pipeline
	spec := p.Pipeline.Spec.DeepCopy()
	if err := checkParams(spec, b.Params); err != nil {
		return nil, err
	}
	r := &run{e: e, b: b, dir: filepath.Join(e.workDir, b.ID), workspaces: map[string]string{},
		state: map[string]*prr.ResolvedPipelineTask{}, results: map[string]*engine.TaskResult{},
		matrixRuns: map[string][]*engine.TaskResult{}, slots: make(chan struct{}, e.parallel)}
	var err error
	if r.celMarker, err = newCELProbe(); err != nil {
		return nil, err
	}
	if err := probeCEL(spec, r.celMarker); err != nil {
		return nil, err
	}
	r.pr = &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: b.ID, Namespace: "accord", UID: types.UID("accord-" + b.ID)}, Spec: v1.PipelineRunSpec{Params: b.Params}}
	for _, w := range spec.Workspaces {
		dir := filepath.Join(r.dir, "ws", w.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		r.workspaces[w.Name] = dir
		r.pr.Spec.Workspaces = append(r.pr.Spec.Workspaces, v1.WorkspaceBinding{Name: w.Name, EmptyDir: &emptyDir})
	}
	if b.Source.Dir != "" {
		dst, ok := r.workspaces[engine.SourceWorkspace]
		if !ok {
			return nil, inputErr("pipeline %q declares no workspace %q for the source\n  fix: add `workspaces: [{name: %s}]` to the pipeline and bind it to the tasks that read the source", p.Name, engine.SourceWorkspace, engine.SourceWorkspace)
		}
		if err := copyTree(b.Source.Dir, dst); err != nil {
			return nil, fmt.Errorf("copying source into the %s workspace: %w", engine.SourceWorkspace, err)
		}
	}
	for _, dir := range r.workspaces {
		if err := r.handOver(dir); err != nil {
			return nil, fmt.Errorf("handing the workspaces to the steps' user: %w", err)
		}
	}
	applied, err := prr.ApplyParameters(spec, r.pr)
	if err != nil {
		return nil, inputErr("pipeline %q: %w", p.Name, err)
	}
	applied = prr.ApplyContexts(applied, p.Name, r.pr)
	r.spec = prr.ApplyWorkspaces(applied, r.pr)
	for i := range r.spec.Tasks {
		r.state[r.spec.Tasks[i].Name] = &prr.ResolvedPipelineTask{PipelineTask: &r.spec.Tasks[i]}
	}
	for i := range r.spec.Finally {
		r.state[r.spec.Finally[i].Name] = &prr.ResolvedPipelineTask{PipelineTask: &r.spec.Finally[i]}
	}
	if err := r.checkWorkspaces(); err != nil {
		return nil, err
	}
	if err := r.checkMatrices(ctx); err != nil {
		return nil, err
	}
	if err := r.prefetchImages(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// checkWorkspaces refuses, before any task runs, a pipeline task that does
// not bind a workspace its task requires (or binds it to one the pipeline
// does not declare), or that leaves a required task param unset. Found
// only when that task starts, it would be reported as a failed task after
// the tasks before it ran, not as an [InputError].
func (r *run) checkWorkspaces() error {
	for _, pt := range append(append([]v1.PipelineTask{}, r.spec.Tasks...), r.spec.Finally...) {
		spec, _ := r.b.Pipeline.TaskSpec(&pt)
		if _, _, err := r.workspaceMounts(&pt, spec); err != nil {
			return err
		}
		given := map[string]bool{}
		for _, p := range append(append(v1.Params{}, pt.Params...), pt.Matrix.GetAllParams()...) {
			given[p.Name] = true
		}
		for _, ps := range spec.Params {
			if ps.Default == nil && !given[ps.Name] {
				return inputErr("pipeline task %q does not set param %q, which its task requires\n  fix: add `params: [{name: %s, value: ...}]` to the pipeline task", pt.Name, ps.Name, ps.Name)
			}
		}
	}
	return nil
}

var emptyDir = corev1EmptyDir()

// checkParams refuses params the pipeline does not declare, then runs
// Tekton's own checks (required params given, types match, object keys).
func checkParams(spec *v1.PipelineSpec, params v1.Params) error {
	declared := map[string]bool{}
	var names []string
	for _, ps := range spec.Params {
		declared[ps.Name] = true
		names = append(names, ps.Name)
	}
	sort.Strings(names)
	for _, p := range params {
		if !declared[p.Name] {
			return inputErr("unknown param %q: the pipeline declares %s\n  fix: pass only declared params (--param NAME=VALUE)", p.Name, quoteList(names))
		}
	}
	pr := &v1.PipelineRun{Spec: v1.PipelineRunSpec{Params: params}}
	if err := prr.ValidateRequiredParametersProvided(&spec.Params, &pr.Spec.Params); err != nil {
		return inputErr("%w\n  fix: pass --param NAME=VALUE for each", err)
	}
	if err := prr.ValidateParamTypesMatching(spec, pr); err != nil {
		return inputErr("%w\n  fix: arrays are --param NAME=a,b (or JSON [\"a\",\"b\"]), objects JSON {\"k\":\"v\"}", err)
	}
	if err := prr.ValidateObjectParamRequiredKeys(spec.Params, pr.Spec.Params); err != nil {
		return inputErr("%w", err)
	}
	return nil
}

func quoteList(s []string) string {
	if len(s) == 0 {
		return "no params"
	}
	return "\"" + strings.Join(s, "\", \"") + "\""
}

// execute schedules tasks with Tekton's DAG: whenever a task finishes, the
// candidates whose dependencies are done start, up to the parallel limit.
// After the main tasks (or the first failure), finally tasks run.
func (r *run) execute(ctx context.Context) *engine.Result {
	failed := r.runGraph(ctx, r.spec.Tasks, false)
	if len(r.spec.Finally) > 0 {
		if r.runGraph(ctx, r.spec.Finally, true) {
			failed = true
		}
	}
	res := &engine.Result{Succeeded: !failed}
	for _, pt := range append(append([]v1.PipelineTask{}, r.spec.Tasks...), r.spec.Finally...) {
		if runs, ok := r.matrixRuns[pt.Name]; ok {
			for _, tr := range runs {
				res.Tasks = append(res.Tasks, *tr)
			}
			continue
		}
		if tr, ok := r.results[pt.Name]; ok {
			res.Tasks = append(res.Tasks, *tr)
		}
	}
	if failed {
		for _, t := range res.Tasks {
			if t.Status == engine.Failed || t.Status == engine.TimedOut {
				verb := "failed"
				if t.Status == engine.TimedOut {
					verb = "timed out"
				}
				res.Reason = fmt.Sprintf("task %q %s: %s", t.Name, verb, t.Reason)
				break
			}
		}
		if ctx.Err() != nil && res.Reason == "" {
			res.Reason = "run timed out or was cancelled: " + ctx.Err().Error()
		}
	}
	res.Results = r.pipelineResults()
	return res
}

func (r *run) pipelineResults() []v1.PipelineRunResult {
	trResults := map[string][]v1.TaskRunResult{}
	status := map[string]string{}
	for name, t := range r.results {
		trResults[name] = t.Results
		status[name] = string(t.Status)
	}
	out, err := prr.ApplyTaskResultsToPipelineResults(r.spec.Results, trResults, nil, status)
	if err != nil {
		r.e.logger.Warn("some pipeline results could not be computed", "error", err)
	}
	return out
}

// runGraph runs tasks in DAG order and reports whether any failed.
func (r *run) runGraph(ctx context.Context, tasks []v1.PipelineTask, finally bool) bool {
	list := v1.PipelineTaskList(tasks)
	g, err := dag.Build(list, list.Deps())
	if err != nil {
		r.fail(tasks[0].Name, "building the task graph: "+err.Error())
		return true
	}
	doneCh := make(chan string)
	seen := map[string]bool{}
	var queue, done []string
	running, failed := 0, false
	for {
		if !failed || finally {
			cands, err := dag.GetCandidateTasks(g, done...)
			if err != nil {
				r.fail(tasks[0].Name, err.Error())
				failed = true
			}
			for _, name := range sortedSet(cands) {
				if !seen[name] {
					seen[name] = true
					queue = append(queue, name)
				}
			}
		}
		// Start queued tasks in order while slots are free. After a
		// failure, Tekton starts no new main task: the queued ones are
		// recorded as not started.
		for len(queue) > 0 && (running < r.e.parallel || (failed && !finally)) {
			name := queue[0]
			queue = queue[1:]
			if failed && !finally {
				r.record(&engine.TaskResult{Name: name, Status: engine.Skipped, Reason: "not started: an earlier task failed"})
				continue
			}
			running++
			go func(name string) {
				r.runPipelineTask(ctx, name, finally)
				doneCh <- name
			}(name)
		}
		if running == 0 {
			return failed
		}
		name := <-doneCh
		running--
		done = append(done, name)
		r.mu.Lock()
		st := r.results[name].Status
		r.mu.Unlock()
		if st == engine.Failed || st == engine.TimedOut {
			failed = true
		}
	}
}

func sortedSet(s sets.String) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *run) fail(task, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results[task] = &engine.TaskResult{Name: task, Status: engine.Failed, Reason: reason}
}

func removeAll(dir string) error {
	// Go's module cache is written read-only; make it writable first
	// (beneath dir: a link a step left is not followed).
	if root, err := os.OpenRoot(dir); err == nil {
		_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if info, err := d.Info(); err == nil && info.Mode()&0o200 == 0 {
					_ = root.Chmod(p, 0o755)
				}
			}
			return nil
		})
		root.Close()
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
