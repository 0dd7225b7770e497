package local

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/proto"
)

// CEL when expressions run as Tekton runs them: params, contexts and
// results are substituted into the expression's text, then Tekton's
// EvaluateCEL (cel-go, no declarations) evaluates it.
//
// Tekton substitutes a value as it is, so a value holding a quote can end
// the string literal it was written in and add CEL of its own:
// '$(tasks.scan.results.verdict)' == 'clean' && '$(params.branch)' == 'main'
// with a verdict of   x' == 'x' && 'main' == 'main' //   runs the task on
// any branch. A result is what a step wrote (and a branch name may come
// from a fork); neither may decide more than the value of its literal.
// So accord evaluates a substituted expression only if it parses into the
// expression the pipeline wrote with the literals that hold references
// set to their substituted values, and every other literal unchanged.
//
// To know those values it lets Tekton's own substitution compute them:
// before the first substitution, each CEL expression gets a suffix that
// repeats, after a marker with a random nonce of the run (no step ever
// sees it, so no value can forge it), the value of each such literal.
// Every substitution then applies to the suffix too; before evaluating,
// accord cuts the suffix off and reads the values from it.

// celProbe is the marker that starts each probe of a run's CEL suffixes.
func newCELProbe() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making the CEL probe nonce: %w", err)
	}
	return "\n// accord-probe-" + hex.EncodeToString(b) + ":", nil
}

// probeCEL appends the probe suffix to every CEL when expression of spec
// (a copy the run owns), before any substitution.
func probeCEL(spec *v1.PipelineSpec, marker string) error {
	for _, tasks := range [][]v1.PipelineTask{spec.Tasks, spec.Finally} {
		for i := range tasks {
			for j := range tasks[i].When {
				w := &tasks[i].When[j]
				if w.CEL == "" {
					continue
				}
				tree, err := parseCEL(w.CEL)
				if err != nil {
					return inputErr("pipeline task %q: when[%d].cel: %w", tasks[i].Name, j, err)
				}
				var probes strings.Builder
				for k, lit := range referencingLiterals(tree) {
					fmt.Fprintf(&probes, "%s%d:%s", marker, k, lit.GetStringValue())
				}
				w.CEL += probes.String()
			}
		}
	}
	return nil
}

// whenAllows evaluates pt's when expressions with Tekton's code (see the
// comment above), after checking each substituted CEL expression against
// the one the pipeline wrote. An expression that does not evaluate, or
// that a value changed, is an error: Tekton fails the run.
func (r *run) whenAllows(pt *v1.PipelineTask) (bool, error) {
	written := r.writtenWhen(pt.Name)
	for i := range pt.When {
		w := &pt.When[i]
		if w.CEL == "" {
			continue
		}
		if i >= len(written) || written[i].CEL == "" {
			return false, fmt.Errorf("when[%d].cel: the expression is not the one the pipeline wrote", i)
		}
		expr, err := r.checkCEL(written[i].CEL, w.CEL)
		if err != nil {
			return false, fmt.Errorf("when[%d].cel: %w", i, err)
		}
		w.CEL = expr
	}
	rpt := &prr.ResolvedPipelineTask{PipelineTask: pt}
	if err := rpt.EvaluateCEL(); err != nil {
		return false, fmt.Errorf("evaluating the CEL when expressions: %w\n  fix: the expression must give true or false once params and results are substituted", err)
	}
	return pt.When.AllowsExecution(rpt.EvaluatedCEL), nil
}

// checkCEL splits the substituted expression from its probes and returns
// it if it parses into the written expression with each referencing
// literal set to its probe's value.
func (r *run) checkCEL(written, substituted string) (string, error) {
	parts := strings.Split(substituted, r.celMarker)
	expr, probes := parts[0], parts[1:]
	want, err := parseCEL(written)
	if err != nil {
		return "", err
	}
	lits := referencingLiterals(want)
	if len(probes) != len(lits) {
		return "", fmt.Errorf("the substituted expression lost its probes (%d of %d)", len(probes), len(lits))
	}
	for k, lit := range lits {
		v, ok := strings.CutPrefix(probes[k], strconv.Itoa(k)+":")
		if !ok {
			return "", fmt.Errorf("the substituted expression's probe %d is damaged", k)
		}
		lit.ConstantKind = &exprpb.Constant_StringValue{StringValue: v}
	}
	got, err := parseCEL(expr)
	if err != nil || !proto.Equal(want, got) {
		return "", fmt.Errorf("a substituted param or result changes the expression %q into %q, beyond the value of its string literal: refusing to evaluate it\n  fix: the value must not hold the quote that ends its literal, a backslash or a newline; accord evaluates the expression as the pipeline wrote it", written, expr)
	}
	return expr, nil
}

// writtenWhen is the when expressions of the pipeline task named name as
// the pipeline wrote them.
func (r *run) writtenWhen(name string) v1.WhenExpressions {
	ps := &r.b.Pipeline.Pipeline.Pipeline.Spec
	for _, pt := range append(append([]v1.PipelineTask{}, ps.Tasks...), ps.Finally...) {
		if pt.Name == name {
			return pt.When
		}
	}
	return nil
}

// parseCEL parses expr (as Tekton's cel.NewEnv parses it) into its tree.
func parseCEL(expr string) (*exprpb.Expr, error) {
	env, err := cel.NewEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	pe, err := cel.AstToParsedExpr(ast)
	if err != nil {
		return nil, err
	}
	return pe.GetExpr(), nil
}

// referencingLiterals lists the string literals of e that hold a Tekton
// reference ("$("), in a fixed order.
func referencingLiterals(e *exprpb.Expr) []*exprpb.Constant {
	var out []*exprpb.Constant
	walkConstants(e, func(c *exprpb.Constant) {
		if strings.Contains(c.GetStringValue(), "$(") {
			out = append(out, c)
		}
	})
	return out
}

// walkConstants calls f on every constant of e, depth first, operands and
// arguments in order.
func walkConstants(e *exprpb.Expr, f func(*exprpb.Constant)) {
	if e == nil {
		return
	}
	switch k := e.ExprKind.(type) {
	case *exprpb.Expr_ConstExpr:
		f(k.ConstExpr)
	case *exprpb.Expr_SelectExpr:
		walkConstants(k.SelectExpr.GetOperand(), f)
	case *exprpb.Expr_CallExpr:
		walkConstants(k.CallExpr.GetTarget(), f)
		for _, a := range k.CallExpr.GetArgs() {
			walkConstants(a, f)
		}
	case *exprpb.Expr_ListExpr:
		for _, x := range k.ListExpr.GetElements() {
			walkConstants(x, f)
		}
	case *exprpb.Expr_StructExpr:
		for _, en := range k.StructExpr.GetEntries() {
			walkConstants(en.GetMapKey(), f)
			walkConstants(en.GetValue(), f)
		}
	case *exprpb.Expr_ComprehensionExpr:
		c := k.ComprehensionExpr
		for _, x := range []*exprpb.Expr{c.GetIterRange(), c.GetAccuInit(), c.GetLoopCondition(), c.GetLoopStep(), c.GetResult()} {
			walkConstants(x, f)
		}
	}
}
