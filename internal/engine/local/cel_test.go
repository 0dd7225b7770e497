package local_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/engine"
)

// celPipeline guards tasks with CEL as Tekton's docs write it: params and
// results substituted into quoted literals, before Tekton evaluates.
const celPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: cel
spec:
  params:
    - name: branch
      default: main
    - name: value
      default: ok
  tasks:
    - name: check
      params:
        - name: value
          value: $(params.value)
      taskSpec:
        params: [{name: value}]
        results: [{name: coverage}, {name: value}]
        steps:
          - image: {{IMAGE}}
            script: |
              printf 0.93 > $(results.coverage.path)
              printf '%s' '$(params.value)' > $(results.value.path)
    - name: on-main
      when:
        - cel: "'$(params.branch)' == 'main'"
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo main
    - name: on-release
      when:
        - cel: "'$(params.branch)'.matches('^release-[0-9]+$')"
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo release
    - name: covered
      when:
        - cel: "double('$(tasks.check.results.coverage)') > 0.9"
        - input: $(params.branch)
          operator: notin
          values: [wip]
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo covered
    - name: guarded
      when:
        - cel: "'$(tasks.check.results.value)' == 'ok'"
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo guarded
    - name: release
      when:
        - cel: "'$(tasks.check.results.value)' != 'blocked' && '$(params.branch)' == 'main'"
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo release
  finally:
    - name: notify
      when:
        - cel: "'$(tasks.status)' in ['Succeeded', 'Completed']"
      taskSpec:
        steps:
          - image: {{IMAGE}}
            script: echo notify
`

// TestCELWhen: a CEL when expression that is false skips its task, one
// that is true runs it, with params, results and the finally context
// substituted first, as Tekton does.
func TestCELWhen(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		branch string
		want   map[string]engine.Status
	}{
		{"main", map[string]engine.Status{"check": engine.Succeeded, "on-main": engine.Succeeded, "on-release": engine.Skipped, "covered": engine.Succeeded, "guarded": engine.Succeeded, "release": engine.Succeeded, "notify": engine.Succeeded}},
		{"release-12", map[string]engine.Status{"check": engine.Succeeded, "on-main": engine.Skipped, "on-release": engine.Succeeded, "covered": engine.Succeeded, "guarded": engine.Succeeded, "release": engine.Skipped, "notify": engine.Succeeded}},
		{"wip", map[string]engine.Status{"check": engine.Succeeded, "on-main": engine.Skipped, "on-release": engine.Skipped, "covered": engine.Skipped, "guarded": engine.Succeeded, "release": engine.Skipped, "notify": engine.Succeeded}},
	} {
		t.Run(tc.branch, func(t *testing.T) {
			b, _ := f.build(t, celPipeline, v1.Params{{Name: "branch", Value: str(tc.branch)}})
			res := f.run(t, b)
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			if diff := cmp.Diff(tc.want, statuses(res)); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			for _, tr := range res.Tasks {
				if tr.Status == engine.Skipped && tr.Reason != "when expressions evaluated to false" {
					t.Errorf("%s skipped: %q", tr.Name, tr.Reason)
				}
			}
		})
	}
}

// TestCELInjection: Tekton pastes a result into the CEL text as it is, so
// a result holding a quote could rewrite the expression that guards a
// task (a release task guarded by a check's result). accord refuses to
// evaluate an expression that a value changed beyond a literal, and fails
// the run; a value that only changes the literal still works. Without the
// check, every injected variant but the lone quote (which Tekton cannot
// parse either) runs its task: on branch "dev", release too.
func TestCELInjection(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, value string
		task        string // the task the value targets; "" for guarded
		injected    bool
		want        engine.Status // of the task, for a value that injects nothing
	}{
		{name: "or", value: `x' == 'x' || 'a`, injected: true},
		{name: "and", value: `x' != 'y' && 'ok`, injected: true},
		{name: "concatenation", value: `o' + 'k`, injected: true},
		{name: "list", value: `x' in ['x'] || 'a`, injected: true},
		{name: "comment", value: `ok' == 'ok' //`, injected: true},
		{name: "newline", value: "ok' == 'ok' ||\n'", injected: true},
		// The tree keeps its shape; the branch literal is the attacker's.
		{name: "overriding a param's literal", value: `x' != 'blocked' && 'main' == 'main' //`, task: "release", injected: true},
		{name: "lone quote (no CEL at all)", value: `'`, injected: true},
		{name: "benign: double quotes and spaces", value: `"ok" or not`, want: engine.Skipped},
		{name: "benign: the expected value", value: "ok", want: engine.Succeeded},
		{name: "benign: release keeps its branch check", value: "fine", task: "release", want: engine.Skipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The step writes the value with printf '%s' '...': quote
			// its quotes for sh.
			v := strings.ReplaceAll(tc.value, `'`, `'\''`)
			b, _ := f.build(t, celPipeline, v1.Params{{Name: "value", Value: str(v)}, {Name: "branch", Value: str("dev")}})
			res := f.run(t, b)
			name := tc.task
			if name == "" {
				name = "guarded"
			}
			g := task(t, res, name)
			if !tc.injected {
				if g.Status != tc.want {
					t.Fatalf("%s: status %s (%s), want %s", name, g.Status, g.Reason, tc.want)
				}
				return
			}
			// The value reaches every task it is substituted into: the
			// first one refused fails the run; the others fail too or do
			// not start.
			if g.Status == engine.Succeeded || len(g.Steps) != 0 || res.Succeeded {
				t.Fatalf("%s: status %s, %d steps ran; run succeeded %v", name, g.Status, len(g.Steps), res.Succeeded)
			}
			for _, want := range []string{"when[0].cel: ", "beyond the value of its string literal", "fix: "} {
				if !strings.Contains(res.Reason, want) {
					t.Errorf("reason %q lacks %q", res.Reason, want)
				}
			}
		})
	}
}
