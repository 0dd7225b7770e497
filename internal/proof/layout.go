package proof

import (
	"fmt"
	"path"
	"sort"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipeline/dag"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/pipelines"
)

// LayoutSteps lists the in-toto steps of a resolved pipeline in an order
// an engine may run them: Tekton's DAG order (ties by name), then the
// finally tasks; within a task, its steps in order. Each step carries the
// workspace prefixes its task binds, by mode, and the command line the
// engine that will run it says its link records.
func LayoutSteps(r *pipelines.Resolved, cmds engine.StepCommands) ([]attest.LayoutStep, error) {
	spec := &r.Pipeline.Pipeline.Spec
	var out []attest.LayoutStep
	for _, group := range [][]v1.PipelineTask{spec.Tasks, spec.Finally} {
		order, err := dagOrder(group)
		if err != nil {
			return nil, err
		}
		byName := map[string]*v1.PipelineTask{}
		for i := range group {
			byName[group[i].Name] = &group[i]
		}
		for _, name := range order {
			pt := byName[name]
			ts, _ := r.TaskSpec(pt)
			ts = r.WithStepActions(ts)
			ro, rw := workspacePrefixes(pt, ts)
			runs, err := runNames(spec, pt)
			if err != nil {
				return nil, err
			}
			for _, run := range runs {
				for i, s := range ts.Steps {
					sn := s.Name
					if sn == "" {
						sn = fmt.Sprintf("step-%d", i)
					}
					out = append(out, attest.LayoutStep{Name: attest.StepName(run, sn), ReadOnly: ro, Writable: rw, Command: cmds.ExpectedCommand(ts, i)})
				}
			}
		}
	}
	return out, nil
}

func dagOrder(tasks []v1.PipelineTask) ([]string, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	list := v1.PipelineTaskList(tasks)
	g, err := dag.Build(list, list.Deps())
	if err != nil {
		return nil, err
	}
	var done []string
	for len(done) < len(tasks) {
		cands, err := dag.GetCandidateTasks(g, done...)
		if err != nil {
			return nil, err
		}
		next := cands.List()
		if len(next) == 0 {
			return nil, fmt.Errorf("pipeline graph has unreachable tasks")
		}
		sort.Strings(next)
		done = append(done, next...)
	}
	return done, nil
}

// workspacePrefixes maps a pipeline task's workspace bindings to the
// "<pipeline workspace>[/<subPath>]" prefixes of link paths.
func workspacePrefixes(pt *v1.PipelineTask, ts *v1.TaskSpec) (ro, rw []string) {
	decl := map[string]v1.WorkspaceDeclaration{}
	for _, d := range ts.Workspaces {
		decl[d.Name] = d
	}
	for _, b := range pt.Workspaces {
		pws := b.Workspace
		if pws == "" {
			pws = b.Name
		}
		p := pws
		if b.SubPath != "" {
			p = path.Join(pws, path.Clean("/" + b.SubPath)[1:])
		}
		if decl[b.Name].ReadOnly {
			ro = append(ro, p)
		} else {
			rw = append(rw, p)
		}
	}
	return ro, rw
}
