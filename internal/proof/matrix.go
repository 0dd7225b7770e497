package proof

import (
	"fmt"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"

	"github.com/accord-build/accord/internal/engine"
)

// runNames are the names of the TaskRuns pipeline task pt runs as: its own
// name, or for a matrixed task one name per combination
// ([engine.MatrixRunName]), in fan-out order, as the engine names their
// links. The combinations are counted with the pipeline's param defaults;
// a run given other params fans out otherwise and its links do not match
// the layout. A matrix fed by results of other tasks has no size before
// the run: no layout can list its steps.
func runNames(spec *v1.PipelineSpec, pt *v1.PipelineTask) ([]string, error) {
	if !pt.IsMatrixed() {
		return []string{pt.Name}, nil
	}
	applied, err := prr.ApplyParameters(&v1.PipelineSpec{Params: spec.Params, Tasks: []v1.PipelineTask{*pt}}, &v1.PipelineRun{})
	if err != nil {
		return nil, fmt.Errorf("pipeline task %q: applying the param defaults to its matrix: %w", pt.Name, err)
	}
	m := applied.Tasks[0]
	for _, p := range m.Matrix.GetAllParams() {
		if exprs, ok := p.GetVarSubstitutionExpressions(); ok {
			return nil, fmt.Errorf("pipeline task %q: its matrix param %q uses $(%s), known only when the pipeline runs: an in-toto layout must list every step in advance\n  fix: give the matrix literal values or pipeline params with defaults", pt.Name, p.Name, exprs[0])
		}
	}
	if n, limit := m.Matrix.CountCombinations(), config.DefaultMaxMatrixCombinationsCount; n > limit {
		return nil, fmt.Errorf("pipeline task %q: its matrix fans out into %d runs, more than Tekton's limit of %d", pt.Name, n, limit)
	}
	n := len(m.Matrix.FanOut())
	out := make([]string, n)
	for i := range out {
		out[i] = engine.MatrixRunName(pt.Name, i, n)
	}
	return out, nil
}
