package local

import (
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/substitution"
)

// TestCheckCEL: a value substituted as Tekton substitutes it (textually,
// into the expression and its probes) passes only if it changes nothing
// but the value of its literal.
func TestCheckCEL(t *testing.T) {
	marker, err := newCELProbe()
	if err != nil {
		t.Fatal(err)
	}
	r := &run{celMarker: marker}
	for _, tc := range []struct {
		name, written, value string
		ok                   bool
		want                 string // the expression Tekton evaluates, when ok
	}{
		{"plain", `'$(params.v)' == 'main'`, "main", true, `'main' == 'main'`},
		{"double quotes in a single-quoted literal", `'$(params.v)' == 'x'`, `say "hi"`, true, `'say "hi"' == 'x'`},
		{"single quote in a double-quoted literal", `"$(params.v)" == 'x'`, `it's`, true, `"it's" == 'x'`},
		{"reference twice and in a longer literal", `'v-$(params.v)' != '$(params.v)'`, "1", true, `'v-1' != '1'`},
		{"newline in a triple-quoted literal", `'''$(params.v)''' != ''`, "a\nb", true, "'''a\nb''' != ''"},
		{"no reference", `'a' == 'a'`, "x", true, `'a' == 'a'`},
		{"quote ends the literal", `'$(params.v)' == 'main'`, `x' || 'a' == 'a`, false, ""},
		{"comment swallows the rest", `'$(params.v)' == 'main'`, `main' == 'main' //`, false, ""},
		{"backslash escape", `'$(params.v)' == 'a\tb'`, `a\tb`, false, ""},
		{"backslash before the quote", `'$(params.v)' == 'x'`, `\`, false, ""},
		{"newline in a one-line literal", `'$(params.v)' == 'x'`, "a\nb", false, ""},
		{"double quote in a double-quoted literal", `"$(params.v)" == 'x'`, `x" || "a`, false, ""},
		{"reference in a comment", "'a' == 'b' // $(params.v)", "\n|| true", false, ""},
		// A guessed marker is text in the literal: it splits nothing.
		{"forged probe marker", "'''$(params.v)''' == 'x'", "x\n// accord-probe-00:0:x", true, "'''x\n// accord-probe-00:0:x''' == 'x'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1.PipelineSpec{Tasks: []v1.PipelineTask{{Name: "t", When: v1.WhenExpressions{{CEL: tc.written}}}}}
			if err := probeCEL(spec, marker); err != nil {
				t.Fatal(err)
			}
			substituted := substitution.ApplyReplacements(spec.Tasks[0].When[0].CEL, map[string]string{"params.v": tc.value})
			got, err := r.checkCEL(tc.written, substituted)
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case tc.ok && got != tc.want:
				t.Errorf("expression %q, want %q", got, tc.want)
			case !tc.ok && err == nil:
				t.Errorf("passed: %q", got)
			case !tc.ok && !strings.Contains(err.Error(), "beyond the value of its string literal"):
				t.Errorf("err = %v", err)
			}
		})
	}
}
