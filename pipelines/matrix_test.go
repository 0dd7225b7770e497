package pipelines

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// matrixPipeline is written the way the public catalog and Tekton's docs
// write matrixed pipelines: a fan-out over params with an include that
// adds a combination, an include-only matrix, results of a matrixed task
// consumed whole, the matrix length, and CEL when expressions.
const matrixPipelineBody = `kind: Pipeline
metadata:
  name: cross
spec:
  params:
    - name: platforms
      type: array
      default: [linux/amd64, linux/arm64]
    - name: branch
      default: main
  tasks:
    - name: build
      matrix:
        params:
          - name: platform
            value: $(params.platforms[*])
          - name: flavor
            value: [small, large]
        include:
          - name: riscv
            params:
              - name: platform
                value: linux/riscv64
      taskSpec:
        params:
          - name: platform
          - name: flavor
            default: small
        results:
          - name: binary
        steps:
          - name: build
            image: ` + pinnedImage + `
            script: printf '%s-%s' "$(params.platform)" "$(params.flavor)" > $(results.binary.path)
    - name: notes
      matrix:
        include:
          - name: en
            params:
              - {name: lang, value: en}
          - name: de
            params:
              - {name: lang, value: de}
      taskSpec:
        params:
          - name: lang
        steps:
          - name: write
            image: ` + pinnedImage + `
            script: echo $(params.lang)
    - name: release
      when:
        - cel: "'$(params.branch)' == 'main'"
        - cel: "'$(params.branch)'.matches('^(main|release-.*)$')"
      params:
        - name: binaries
          value: $(tasks.build.results.binary[*])
        - name: count
          value: $(tasks.build.matrix.length)
      taskSpec:
        params:
          - name: binaries
            type: array
          - name: count
        steps:
          - name: list
            image: ` + pinnedImage + `
            args: ["$(params.binaries[*])"]
            script: echo "$(params.count)" "$@"
  finally:
    - name: report
      when:
        - cel: "'$(tasks.status)' in ['Succeeded', 'Completed']"
      taskSpec:
        steps:
          - name: report
            image: ` + pinnedImage + `
            script: echo done
`

// TestMatrixAndCELLoad: matrixed pipeline tasks and CEL when expressions
// load, in v1 and in v1beta1 (the same definition, the same digest), with
// CEL on whatever Tekton feature flags the caller's context carries.
func TestMatrixAndCELLoad(t *testing.T) {
	flagOff := func() context.Context {
		cfg := config.FromContextOrDefaults(context.Background())
		cfg.FeatureFlags.EnableCELInWhenExpression = false
		return config.ToContext(context.Background(), cfg)
	}
	var digests []string
	for _, tc := range []struct {
		name string
		api  string
		ctx  func() context.Context
	}{
		{"v1", "tekton.dev/v1", context.Background},
		{"v1beta1", "tekton.dev/v1beta1", context.Background},
		{"v1 with Tekton's CEL flag off", "tekton.dev/v1", flagOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs, err := Parse(tc.ctx(), "cross.yaml", []byte("apiVersion: "+tc.api+"\n"+matrixPipelineBody))
			if err != nil {
				t.Fatal(err)
			}
			ps := defs[0].Pipeline.Spec
			build := ps.Tasks[0]
			if got := build.Matrix.CountCombinations(); got != 3 {
				t.Errorf("build: %d combinations before the params are applied, want 3 (one array reference times two flavors, plus the include)", got)
			}
			want := []v1.Params{{{Name: "lang", Value: *v1.NewStructuredValues("en")}}, {{Name: "lang", Value: *v1.NewStructuredValues("de")}}}
			if diff := cmp.Diff(want, ps.Tasks[1].Matrix.FanOut()); diff != "" {
				t.Errorf("include-only fan-out (-want +got):\n%s", diff)
			}
			if got := ps.Tasks[2].When[1].CEL; got != "'$(params.branch)'.matches('^(main|release-.*)$')" {
				t.Errorf("CEL = %q", got)
			}
			digests = append(digests, defs[0].Digest)
		})
	}
	if len(digests) == 3 && (digests[0] != digests[1] || digests[0] != digests[2]) {
		t.Errorf("digests differ: %v", digests)
	}
}
