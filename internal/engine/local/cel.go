package local

import (
	"fmt"

	"github.com/google/cel-go/cel"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	prr "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// whenAllows evaluates pt's when expressions as Tekton does, after params
// and results were substituted into them: input, operator and values, and
// CEL with Tekton's own evaluation (cel-go, no declarations). An
// expression that does not evaluate is an error: Tekton fails the run.
//
// Tekton substitutes a value into the text of a CEL expression as it is,
// so a value holding a quote could end the string literal it was written
// in and add CEL of its own ('$(tasks.check.results.branch)' == 'main'
// with a result of  x' || true || 'x ). A result is what a step wrote; it
// must never decide which tasks run beyond its value. So before Tekton's
// evaluation, each substituted expression must parse into the same tree
// as the expression the pipeline wrote, literals aside: a value may
// change what a literal holds, never the expression around it.
func (r *run) whenAllows(pt *v1.PipelineTask) (bool, error) {
	written := r.writtenWhen(pt.Name)
	for i, w := range pt.When {
		if w.CEL == "" || i >= len(written) {
			continue
		}
		if err := sameCELTree(written[i].CEL, w.CEL); err != nil {
			return false, fmt.Errorf("when[%d].cel: %w", i, err)
		}
	}
	rpt := &prr.ResolvedPipelineTask{PipelineTask: pt}
	if err := rpt.EvaluateCEL(); err != nil {
		return false, fmt.Errorf("evaluating the CEL when expressions: %w\n  fix: the expression must give true or false once params and results are substituted", err)
	}
	return pt.When.AllowsExecution(rpt.EvaluatedCEL), nil
}

// writtenWhen is the when expressions of the pipeline task named name (or
// of the matrixed task a run belongs to) as the pipeline wrote them.
func (r *run) writtenWhen(name string) v1.WhenExpressions {
	ps := &r.b.Pipeline.Pipeline.Pipeline.Spec
	for _, pt := range append(append([]v1.PipelineTask{}, ps.Tasks...), ps.Finally...) {
		if pt.Name == name {
			return pt.When
		}
	}
	return nil
}

// sameCELTree checks that substituted parses into the same tree as
// written, the values of string and bytes literals aside.
func sameCELTree(written, substituted string) error {
	a, err := celTree(written)
	if err != nil {
		return err
	}
	b, err := celTree(substituted)
	if err != nil || !proto.Equal(a, b) {
		return fmt.Errorf("a substituted param or result changes the expression %q into %q, beyond the value of a string literal: refusing to evaluate it\n  fix: the param or result must not hold the quote that ends its literal (nor a backslash before it); the expression stays as written", written, substituted)
	}
	return nil
}

// celTree parses expr and returns its tree without the values of string
// and bytes literals.
func celTree(expr string) (*exprpb.Expr, error) {
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
	e := pe.GetExpr()
	clearLiterals(e.ProtoReflect())
	return e, nil
}

// clearLiterals empties every string and bytes constant beneath m.
func clearLiterals(m protoreflect.Message) {
	if c, ok := m.Interface().(*exprpb.Constant); ok {
		switch c.ConstantKind.(type) {
		case *exprpb.Constant_StringValue:
			c.ConstantKind = &exprpb.Constant_StringValue{}
		case *exprpb.Constant_BytesValue:
			c.ConstantKind = &exprpb.Constant_BytesValue{}
		}
		return
	}
	var children []protoreflect.Message
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				children = append(children, v.List().Get(i).Message())
			}
		default:
			children = append(children, v.Message())
		}
		return true
	})
	for _, c := range children {
		clearLiterals(c)
	}
}
