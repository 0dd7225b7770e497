package local

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun"
	trr "github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/accord-build/accord/internal/engine"
)

// A matrixed pipeline task fans out as Tekton fans it out: its
// combinations are Tekton's v1.Matrix.FanOut of the matrix after params
// and results are substituted, each combination runs as a TaskRun of its
// own (named by engine.MatrixRunName, in fan-out order) with the
// combination's params before the pipeline task's, and the string results
// of the runs are aggregated into arrays by Tekton's result resolution (in
// the order of the TaskRuns' names, as Tekton orders them), which later
// tasks consume as $(tasks.NAME.results.R[*]).
//
// Runs of a task that writes a workspace run one after the other, in
// fan-out order, when the run records artifacts: every step's in-toto
// link hashes the whole workspace before and after it, and a run writing
// beside another would make those hashes depend on timing. Other fan-outs
// run in parallel, each run holding one of the executor's slots.

// takeSlot waits for one of the executor's parallel slots and returns the
// function that gives it back. Every TaskRun holds one while it runs, so a
// fan-out runs no more TaskRuns at once than the parallel limit.
func (r *run) takeSlot() (release func()) {
	r.slots <- struct{}{}
	return func() { <-r.slots }
}

// maxCombinations is Tekton's limit on the runs of one matrix
// (default-max-matrix-combinations-count).
func maxCombinations(ctx context.Context) int {
	return config.FromContextOrDefaults(ctx).Defaults.DefaultMaxMatrixCombinationsCount
}

// checkMatrices refuses, before any task runs, a matrix that Tekton would
// refuse once the pipeline's params are applied: too many combinations,
// params of the wrong type, or matrix params that are not string params
// of the task. A matrix fed by results is checked again when it runs.
func (r *run) checkMatrices(ctx context.Context) error {
	for _, pt := range append(append([]v1.PipelineTask{}, r.spec.Tasks...), r.spec.Finally...) {
		if !pt.IsMatrixed() {
			continue
		}
		if err := checkMatrix(ctx, &pt); err != nil {
			return inputErr("%w", err)
		}
		spec, _ := r.b.Pipeline.TaskSpec(&pt)
		if err := taskrun.ValidateResolvedTask(ctx, pt.Params, pt.Matrix, &trr.ResolvedTask{TaskName: pt.Name, TaskSpec: spec}); err != nil {
			return inputErr("pipeline task %q: %w\n  fix: a matrix param fills a string param of the task: declare it in the task (type string) and give it an array of values in the matrix", pt.Name, err)
		}
	}
	return nil
}

// checkMatrix runs Tekton's type check of a matrix whose params and
// results are substituted, and refuses more combinations than Tekton's
// limit (which Tekton checks only on the definition, before arrays from
// params or results are known).
func checkMatrix(ctx context.Context, pt *v1.PipelineTask) error {
	if err := prr.ValidateParameterTypesInMatrix(prr.PipelineRunState{{PipelineTask: pt}}); err != nil {
		return fmt.Errorf("pipeline task %q: matrix: %w\n  fix: give matrix.params arrays (value: [a, b] or $(params.NAME[*])) and matrix.include params strings", pt.Name, err)
	}
	if n, limit := pt.Matrix.CountCombinations(), maxCombinations(ctx); n > limit {
		return fmt.Errorf("pipeline task %q: matrix fans out into %d runs, more than Tekton's limit of %d\n  fix: pass fewer values to its matrix params", pt.Name, n, limit)
	}
	return nil
}

// emptyMatrixParam returns the name of a matrix param whose array is
// empty: Tekton skips such a task.
func emptyMatrixParam(pt *v1.PipelineTask) (string, bool) {
	for _, p := range pt.Matrix.Params {
		if p.Value.Type == v1.ParamTypeArray && len(p.Value.ArrayVal) == 0 {
			return p.Name, true
		}
	}
	return "", false
}

// applyMatrixContexts substitutes $(tasks.NAME.matrix.length) and
// $(tasks.NAME.matrix.RESULT.length) in pt's params with Tekton's code,
// from the matrices as they ran (params and results substituted) and the
// runs' results. Called with r.mu held.
func (r *run) applyMatrixContexts(pt *v1.PipelineTask, all prr.PipelineRunState) *v1.PipelineTask {
	ran := &v1.PipelineSpec{}
	for _, t := range r.spec.Tasks {
		ran.Tasks = append(ran.Tasks, *r.state[t.Name].PipelineTask)
	}
	var status v1.PipelineRunStatus
	status.PipelineSpec = ran
	return prr.ApplyPipelineTaskContexts(pt, status, &prr.PipelineRunFacts{State: all})
}

// runMatrix fans the matrixed pipeline task pt out into its runs, runs
// them, and fills agg, the pipeline task's own result (its status is the
// first run's, in fan-out order, that did not succeed).
func (r *run) runMatrix(ctx context.Context, pt *v1.PipelineTask, agg *engine.TaskResult) {
	if name, ok := emptyMatrixParam(pt); ok {
		agg.Status, agg.Reason = engine.Skipped, fmt.Sprintf("%s (%s)", v1.EmptyArrayInMatrixParams, name)
		return
	}
	if err := checkMatrix(ctx, pt); err != nil {
		agg.Status, agg.Reason = engine.Failed, err.Error()
		return
	}
	combos := pt.Matrix.FanOut()
	runs := make([]*engine.TaskResult, len(combos))
	for i, c := range combos {
		runs[i] = &engine.TaskResult{Name: engine.MatrixRunName(pt.Name, i, len(combos)), Finally: agg.Finally,
			Matrix: &engine.MatrixRun{PipelineTask: pt.Name, Index: i, Params: c}}
	}
	runOne := func(i int) {
		one := pt.DeepCopy()
		one.Name, one.Matrix = runs[i].Name, nil
		one.Params = append(append(v1.Params{}, combos[i]...), pt.Params...)
		release := r.takeSlot()
		runs[i].Start = time.Now()
		r.runTaskRun(ctx, one, runs[i])
		runs[i].Duration = time.Since(runs[i].Start)
		runs[i].Seconds = round(runs[i].Duration)
		release()
		if obs := r.b.Observer; obs != nil {
			obs.TaskFinished(*runs[i])
		}
	}
	if r.fanOutInOrder(pt) {
		for i := range runs {
			runOne(i)
		}
	} else {
		var wg sync.WaitGroup
		for i := range runs {
			wg.Add(1)
			go func() { defer wg.Done(); runOne(i) }()
		}
		wg.Wait()
	}
	agg.Status, agg.Task = engine.Succeeded, runs[0].Task
	for _, run := range runs {
		agg.Network = agg.Network || run.Network
		if agg.Status == engine.Succeeded && run.Status != engine.Succeeded {
			agg.Status, agg.Reason = run.Status, fmt.Sprintf("run %q: %s", run.Name, run.Reason)
		}
	}
	r.mu.Lock()
	r.matrixRuns[pt.Name] = runs
	r.mu.Unlock()
}

// fanOutInOrder reports whether the runs of pt must run one at a time, in
// fan-out order: when links are recorded and pt writes a workspace.
func (r *run) fanOutInOrder(pt *v1.PipelineTask) bool {
	if !r.b.RecordArtifacts {
		return false
	}
	spec, _ := r.b.Pipeline.TaskSpec(pt)
	binds, _, err := r.workspaceMounts(pt, spec)
	if err != nil {
		return true
	}
	for _, b := range binds {
		if !b.ReadOnly {
			return true
		}
	}
	return false
}

// recordMatrix records the runs of a matrixed task as its TaskRuns in
// Tekton's state and gives agg the aggregated results. Called with r.mu
// held.
func (r *run) recordMatrix(rpt *prr.ResolvedPipelineTask, agg *engine.TaskResult, runs []*engine.TaskResult) {
	rpt.TaskRuns = nil
	for _, run := range runs {
		trun := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: r.b.ID + "-" + run.Name}}
		trun.Status.Results = run.Results
		cond := &apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue}
		if run.Status != engine.Succeeded {
			cond.Status = corev1.ConditionFalse
		}
		trun.Status.SetCondition(cond)
		rpt.TaskRuns = append(rpt.TaskRuns, trun)
	}
	agg.Results = aggregatedResults(rpt, runs)
}

// aggregatedResults are the results of a matrixed task as Tekton gives
// them to later tasks and to pipeline results: for each result, an array
// of the runs' values. Tekton's result resolution builds them (and keeps
// them in rpt.ResultsCache, which later references reuse); a reference to
// one of the results makes it build all of them.
func aggregatedResults(rpt *prr.ResolvedPipelineTask, runs []*engine.TaskResult) []v1.TaskRunResult {
	var first string
	for _, run := range runs {
		for _, res := range run.Results {
			if first == "" || res.Name < first {
				first = res.Name
			}
		}
	}
	if first == "" {
		return nil
	}
	ref := fmt.Sprintf("$(tasks.%s.results.%s[*])", rpt.PipelineTask.Name, first)
	probe := &prr.ResolvedPipelineTask{PipelineTask: &v1.PipelineTask{Name: "accord-results", Params: v1.Params{{Name: "r", Value: *v1.NewStructuredValues(ref)}}}}
	rpt.ResultsCache = nil
	if _, _, err := prr.ResolveResultRef(prr.PipelineRunState{rpt}, probe); err != nil {
		return nil
	}
	out := prr.ConvertResultsMapToTaskRunResults(rpt.ResultsCache)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
