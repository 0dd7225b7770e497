package pipelines

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// checkCEL compiles every CEL when expression of a pipeline as Tekton's
// validation does (cel-go's standard environment, no declarations: params
// and results are substituted into the text first, so a reference must be
// quoted, '$(params.branch)' == 'main'), and refuses one that does not
// compile or does not give a boolean, naming its field. It runs before
// Tekton's validation, whose error for a bad expression names no field.
func checkCEL(d *Definition) error {
	if d.Pipeline == nil {
		return nil
	}
	ps := &d.Pipeline.Spec
	for i, pt := range allPipelineTasks(ps) {
		for j, w := range pt.When {
			field := fmt.Sprintf("%s.when[%d]", taskPath(ps, i), j)
			if w.CEL == "" {
				continue
			}
			if w.Input != "" || w.Operator != "" || len(w.Values) > 0 {
				return &Error{Field: field, Msg: "the when expression sets both cel and input, operator or values", Fix: "split it into two when expressions: one with cel, one with input, operator and values (all of them must hold)"}
			}
			if err := compileCEL(w.CEL); err != nil {
				return &Error{
					Field: field + ".cel",
					Msg:   err.Error(),
					Fix:   "write a CEL expression that gives true or false; quote Tekton references as strings ('$(params.branch)' == 'main', '$(tasks.test.results.passed)' == 'true', double('$(tasks.test.results.coverage)') > 0.9)",
				}
			}
		}
	}
	return nil
}

// compileCEL compiles expr in Tekton's CEL environment and checks that it
// gives a boolean.
func compileCEL(expr string) error {
	env, err := cel.NewEnv()
	if err != nil {
		return fmt.Errorf("making the CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return fmt.Errorf("invalid CEL expression %q:\n    %s", expr, strings.ReplaceAll(iss.Err().Error(), "\n", "\n    "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return fmt.Errorf("CEL expression %q gives a %s, not a boolean", expr, t)
	}
	return nil
}

// checkMatrixNames refuses a pipeline task whose name is that of a
// fanned-out run of a matrixed task ("build" fans out into "build-0",
// "build-1", ...; Tekton names their TaskRuns so too): two runs would share
// a name in the run's results, its in-toto links and its outputs.
func checkMatrixNames(ps *v1.PipelineSpec) error {
	all := allPipelineTasks(ps)
	for _, m := range all {
		if !m.IsMatrixed() {
			continue
		}
		for i, pt := range all {
			suffix, ok := strings.CutPrefix(pt.Name, m.Name+"-")
			if ok && suffix != "" && strings.Trim(suffix, "0123456789") == "" {
				return &Error{
					Field: taskPath(ps, i) + ".name",
					Msg:   fmt.Sprintf("pipeline task %q has the name of a run of the matrixed task %q, whose runs are named %s-0, %s-1, ...", pt.Name, m.Name, m.Name, m.Name),
					Fix:   "rename one of the two tasks",
				}
			}
		}
	}
	return nil
}
