package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun"
	trr "github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/pipelines"
)

// maxResultSize is Tekton's default limit for one task result.
const maxResultSize = 4096

func corev1EmptyDir() corev1.EmptyDirVolumeSource { return corev1.EmptyDirVolumeSource{} }

// runPipelineTask resolves result references and when expressions with
// Tekton's code, runs the task and records it for later references.
func (r *run) runPipelineTask(ctx context.Context, name string, finally bool) {
	start := time.Now()
	tr := &engine.TaskResult{Name: name, Finally: finally, Start: start}
	defer func() {
		tr.Duration = time.Since(start)
		tr.Seconds = round(tr.Duration)
		r.record(tr)
	}()
	r.mu.Lock()
	rpt := r.state[name]
	var all prr.PipelineRunState
	for _, s := range r.state {
		all = append(all, s)
	}
	for _, ref := range v1.PipelineTaskResultRefs(rpt.PipelineTask) {
		if t, ok := r.results[ref.PipelineTask]; ok && t.Status == engine.Skipped {
			r.mu.Unlock()
			// As in Tekton: a task that needs results of a skipped task is
			// skipped too.
			tr.Status, tr.Reason = engine.Skipped, fmt.Sprintf("uses results of task %q, which was skipped", ref.PipelineTask)
			return
		}
	}
	refs, _, err := prr.ResolveResultRef(all, rpt)
	if err == nil {
		prr.ApplyTaskResults(prr.PipelineRunState{rpt}, refs)
		if finally {
			prr.ApplyPipelineTaskStateContext(prr.PipelineRunState{rpt}, r.statusContext())
		}
		rpt.PipelineTask = r.applyMatrixContexts(rpt.PipelineTask, all)
	}
	pt := rpt.PipelineTask.DeepCopy()
	r.mu.Unlock()
	if err != nil {
		tr.Status, tr.Reason = engine.Skipped, "result reference: "+err.Error()
		if !finally {
			tr.Status = engine.Failed
		}
		return
	}
	allowed, err := r.whenAllows(pt)
	if err != nil {
		tr.Status, tr.Reason = engine.Failed, err.Error()
		return
	}
	if !allowed {
		tr.Status, tr.Reason = engine.Skipped, "when expressions evaluated to false"
		return
	}
	if pt.IsMatrixed() {
		r.runMatrix(ctx, pt, tr)
		return
	}
	defer r.takeSlot()()
	r.runTaskRun(ctx, pt, tr)
}

// runTaskRun runs the pipeline task pt (its params and results resolved)
// as one TaskRun and fills tr, as Tekton runs a TaskRun: pt.Name names the
// run (a run of a matrixed task has its own name). The caller holds a slot.
func (r *run) runTaskRun(ctx context.Context, pt *v1.PipelineTask, tr *engine.TaskResult) {
	name := pt.Name
	spec, def := r.b.Pipeline.TaskSpec(pt)
	if def != nil {
		tr.Task = def.Name
		tr.Network = pipelines.NeedsNetwork(def.Task)
	} else if pt.TaskSpec != nil {
		tr.Network = pt.TaskSpec.Metadata.Annotations[pipelines.NetworkAnnotation] == "true"
	}
	if obs := r.b.Observer; obs != nil {
		obs.TaskStarted(name)
	}
	if pt.Timeout != nil && pt.Timeout.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pt.Timeout.Duration)
		defer cancel()
	}
	if err := r.runTask(ctx, pt, spec, tr); err != nil {
		tr.Status, tr.Reason = engine.Failed, err.Error()
		if errors.Is(err, sandbox.ErrTimeout) {
			tr.Status = engine.TimedOut
		}
	}
}

func (r *run) record(tr *engine.TaskResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results[tr.Name] = tr
	rpt := r.state[tr.Name]
	if runs, ok := r.matrixRuns[tr.Name]; ok {
		r.recordMatrix(rpt, tr, runs)
		return
	}
	trun := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: r.b.ID + "-" + tr.Name}}
	trun.Status.Results = tr.Results
	cond := &apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue}
	if tr.Status != engine.Succeeded {
		cond.Status = corev1.ConditionFalse
	}
	trun.Status.SetCondition(cond)
	if tr.Status != engine.Skipped {
		rpt.TaskRuns = []*v1.TaskRun{trun}
	}
	if obs := r.b.Observer; obs != nil && tr.Status != engine.Skipped {
		obs.TaskFinished(*tr)
	}
}

// statusContext gives $(tasks.<name>.status) and $(tasks.status) for finally tasks.
func (r *run) statusContext() map[string]string {
	m := map[string]string{}
	agg := "Succeeded"
	for _, pt := range r.spec.Tasks {
		st := "None"
		if t, ok := r.results[pt.Name]; ok {
			switch t.Status {
			case engine.Succeeded:
				st = "Succeeded"
			case engine.Failed, engine.TimedOut:
				st, agg = "Failed", "Failed"
			case engine.Skipped:
				if agg == "Succeeded" {
					agg = "Completed"
				}
			}
		}
		m["tasks."+pt.Name+".status"] = st
	}
	m["tasks.status"] = agg
	return m
}

// runTask applies Tekton's task-level substitutions and runs each step in
// its own container, in order.
func (r *run) runTask(ctx context.Context, pt *v1.PipelineTask, spec *v1.TaskSpec, out *engine.TaskResult) error {
	trun := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: r.b.ID + "-" + pt.Name, Namespace: "accord", UID: types.UID("accord-" + r.b.ID + "-" + pt.Name)},
		Spec:       v1.TaskRunSpec{Params: pt.Params},
	}
	taskName := pt.Name
	if pt.TaskRef != nil {
		taskName = pt.TaskRef.Name
	}
	spec, err := r.resolveStepActions(ctx, spec, trun)
	if err != nil {
		return err
	}
	if err := taskrun.ValidateResolvedTask(ctx, pt.Params, nil, &trr.ResolvedTask{TaskName: taskName, TaskSpec: spec}); err != nil {
		return fmt.Errorf("%w\n  fix: pass the task's params in the pipeline's tasks[].params", err)
	}
	dir := filepath.Join(r.dir, "tasks", pt.Name)
	binds, bindings, err := r.taskMounts(pt, spec)
	if err != nil {
		return err
	}
	out.Workspaces = map[string]fs.FS{}
	for _, b := range binds {
		out.Workspaces[b.Destination] = b.fs()
	}
	trun.Spec.Workspaces = bindings
	vols := map[string]corev1.Volume{}
	for _, b := range bindings {
		vols[b.Name] = corev1.Volume{Name: "ws-" + b.Name}
	}
	spec = r.withWorkspaceRoot(spec)
	ts := trr.ApplyParameters(spec, trun, spec.Params...)
	ts = trr.ApplyContexts(ts, taskName, trun)
	ts = trr.ApplyWorkspaces(ctx, ts, ts.Workspaces, bindings, vols)
	ts = trr.ApplyResults(ts)
	ts = trr.ApplyStepExitCodePath(ts)
	steps, err := v1.MergeStepsWithStepTemplate(ts.StepTemplate, ts.Steps)
	if err != nil {
		return fmt.Errorf("applying stepTemplate: %w", err)
	}
	for _, sub := range []string{"results", "scripts", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := r.handOver(filepath.Join(dir, "results"), filepath.Join(dir, "home")); err != nil {
		return err
	}
	tv, err := r.makeTaskDirs(pt.Name, dir, ts.Volumes, steps)
	if err != nil {
		return err
	}
	for _, m := range []sandbox.Mount{
		{Source: filepath.Join(dir, "results"), Destination: "/tekton/results"},
		{Source: filepath.Join(dir, "scripts"), Destination: scriptsDir, ReadOnly: true},
		{Source: filepath.Join(dir, "home"), Destination: "/tekton/home"},
	} {
		binds = append(binds, bind{Mount: m, root: m.Source})
	}
	ctx, sidecars, err := r.startSidecars(ctx, pt.Name, ts.Sidecars, dir, out.Network)
	defer sidecars.stop(out)
	if err != nil {
		return err
	}
	var resultNames []string
	for _, d := range ts.Results {
		resultNames = append(resultNames, d.Name)
	}
	for i := range steps {
		sr, err := r.runTaskStep(ctx, pt.Name, i, &steps[i], dir, binds, tv, out.Network)
		if err == nil && (sr.ExitCode == 0 || steps[i].OnError == v1.Continue) {
			// A step that left a result accord will not read fails the
			// task, naming the step.
			if rerr := checkResults(filepath.Join(dir, "results"), resultNames); rerr != nil {
				err = fmt.Errorf("step %q: %w", sr.Name, rerr)
			}
		}
		out.Steps = append(out.Steps, sr)
		failed := err != nil || (sr.ExitCode != 0 && steps[i].OnError != v1.Continue)
		if failed {
			// Tekton skips the remaining steps of a failed task.
			for j := i + 1; j < len(steps); j++ {
				out.Steps = append(out.Steps, engine.StepResult{Name: steps[j].Name, Image: steps[j].Image, Status: engine.Skipped})
			}
		}
		if err != nil {
			return err
		}
		if failed {
			return fmt.Errorf("step %q exited with code %d\n  fix: see the step's output above (run with --keep to inspect its workspaces)", steps[i].Name, sr.ExitCode)
		}
	}
	out.Results, err = taskResults(dir, ts.Results, steps)
	if err != nil {
		return err
	}
	out.Status = engine.Succeeded
	return nil
}

// taskMounts binds each workspace the task declares to its pipeline
// workspace (plus subPath) at the declared mount path, making the subPath
// directories beneath the workspace (never through a link).
func (r *run) taskMounts(pt *v1.PipelineTask, spec *v1.TaskSpec) ([]bind, []v1.WorkspaceBinding, error) {
	binds, bindings, err := r.workspaceMounts(pt, spec)
	if err != nil {
		return nil, nil, err
	}
	if err := r.makeBinds(pt.Name, binds); err != nil {
		return nil, nil, err
	}
	return binds, bindings, nil
}

// workspaceMounts is taskMounts without creating subPath directories; it
// also checks the bindings before the run starts (see checkWorkspaces).
func (r *run) workspaceMounts(pt *v1.PipelineTask, spec *v1.TaskSpec) ([]bind, []v1.WorkspaceBinding, error) {
	byName := map[string]v1.WorkspacePipelineTaskBinding{}
	for _, w := range pt.Workspaces {
		byName[w.Name] = w
	}
	var binds []bind
	var bindings []v1.WorkspaceBinding
	for _, decl := range spec.Workspaces {
		b, ok := byName[decl.Name]
		if !ok {
			if decl.Optional {
				continue
			}
			return nil, nil, inputErr("pipeline task %q does not bind workspace %q that its task requires\n  fix: add `workspaces: [{name: %s, workspace: <pipeline workspace>}]` to the pipeline task", pt.Name, decl.Name, decl.Name)
		}
		pws := b.Workspace
		if pws == "" {
			pws = b.Name
		}
		root, ok := r.workspaces[pws]
		if !ok {
			return nil, nil, inputErr("pipeline task %q binds workspace %q to %q, which the pipeline does not declare", pt.Name, decl.Name, pws)
		}
		rel := path.Join(beneath.Components(b.SubPath)...)
		binds = append(binds, bind{
			Mount: sandbox.Mount{Source: filepath.Join(root, filepath.FromSlash(rel)), Destination: r.mountPath(decl), ReadOnly: decl.ReadOnly},
			root:  root, rel: rel, ws: pws, name: decl.Name,
		})
		bindings = append(bindings, v1.WorkspaceBinding{Name: decl.Name, EmptyDir: &corev1.EmptyDirVolumeSource{}})
	}
	return binds, bindings, nil
}

// readResults reads declared results from the results directory: regular
// files only, never through a link, size-checked before reading.
func readResults(dir string, decls []v1.TaskResult) ([]v1.TaskRunResult, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []v1.TaskRunResult
	for _, decl := range decls {
		f, err := openResult(d, decl.Name)
		if err != nil || f == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		b, err := readResult(f, decl.Name)
		f.Close()
		if err != nil {
			return nil, err
		}
		var v v1.ResultValue
		switch decl.Type {
		case v1.ResultsTypeArray, v1.ResultsTypeObject:
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, fmt.Errorf("result %q of type %s is not valid JSON: %w", decl.Name, decl.Type, err)
			}
		default:
			v = *v1.NewStructuredValues(string(b))
		}
		out = append(out, v1.TaskRunResult{Name: decl.Name, Type: decl.Type, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func round(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// stepEnv is the step's complete environment: the image's, then accord's
// fixed variables (HOME only where the image sets none), then the step's
// own; sorted by name (or reversed, as a variation asks).
func stepEnv(image []string, epoch int64, step []corev1.EnvVar, v engine.Variation) []string {
	m := map[string]string{}
	for _, kv := range image {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	if _, ok := m["HOME"]; !ok {
		m["HOME"] = "/tekton/home" // the image's own HOME wins; see the README's Sandbox
	}
	m["TZ"] = v.WithDefaults().Timezone
	m["LANG"] = "C.UTF-8"
	m["SOURCE_DATE_EPOCH"] = strconv.FormatInt(epoch, 10)
	for _, e := range step {
		m[e.Name] = e.Value
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if v.EnvOrder == "reversed" {
		slices.Reverse(keys)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}

// logFile creates a step's captured output file.
func logFile(dir, step, stream string) (*os.File, error) {
	return os.Create(filepath.Join(dir, fmt.Sprintf("%s.%s", step, stream)))
}

func multi(f *os.File, w io.Writer) io.Writer {
	if w == nil {
		return f
	}
	return io.MultiWriter(f, w)
}

// mountPath is where a declared workspace is mounted: its mountPath, or
// the build's workspace root and its name.
func (r *run) mountPath(decl v1.WorkspaceDeclaration) string {
	if decl.MountPath != "" {
		return decl.MountPath
	}
	return path.Join(r.b.Variation.WithDefaults().WorkspaceRoot, decl.Name)
}

// withWorkspaceRoot gives workspaces without a mountPath one under the
// build's workspace root, so $(workspaces.NAME.path) follows it.
func (r *run) withWorkspaceRoot(spec *v1.TaskSpec) *v1.TaskSpec {
	root := r.b.Variation.WithDefaults().WorkspaceRoot
	if root == "/workspace" {
		return spec
	}
	spec = spec.DeepCopy()
	for i := range spec.Workspaces {
		spec.Workspaces[i].MountPath = r.mountPath(spec.Workspaces[i])
	}
	return spec
}
