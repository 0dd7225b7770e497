package build

import (
	"fmt"
	"path"
	"regexp"
	"sort"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/source"
)

var (
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	catalogName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// recordedFix is the fix for a signed provenance that records a value a
// rebuild refuses: it cannot be rebuilt as it stands.
const recordedFix = "do not rebuild from this provenance; the builder that signed it recorded a value accord will not use (tell its operator)"

func badField(field, msg, fix string) error {
	return fmt.Errorf("the provenance's %s %s\n  fix: %s", field, msg, fix)
}

// checkRecorded validates every value a rebuild takes from a (verified)
// provenance, before any of it is used: the repository and commit, the
// source date, the workspace root, and the params against the pipeline's
// declarations. Params may be any value of their declared type: they
// reach only the sandboxed steps, never a host command line.
func checkRecorded(s *attest.Summary, spec *v1.PipelineSpec) error {
	if s.SourceURI != "" || s.SourceCommit != "" {
		if err := source.ValidateURI(s.SourceURI); err != nil {
			return badField("externalParameters.source.uri", fmt.Sprintf("%q is refused: %v", s.SourceURI, err), recordedFix)
		}
		if err := source.ValidateCommit(s.SourceCommit); err != nil {
			return badField("externalParameters.source.commit", "is refused: "+err.Error(), recordedFix)
		}
	}
	if s.SourceDateEpoch < 0 {
		return badField("externalParameters.source.sourceDateEpoch", fmt.Sprintf("%d is negative", s.SourceDateEpoch), recordedFix)
	}
	if v, ok := s.Internal["variation"].(map[string]any); ok {
		if r, ok := v["workspaceRoot"]; ok {
			root, _ := r.(string)
			if !path.IsAbs(root) || path.Clean(root) != root || root == "/" {
				return badField("internalParameters.variation.workspaceRoot", fmt.Sprintf("%q is not a clean absolute path other than /", r), recordedFix)
			}
		}
	}
	return checkRecordedParams(s.Params, spec)
}

// checkRecordedParams refuses a param the pipeline does not declare and a
// value that is not of the declared type (string, array of strings, object
// of strings).
func checkRecordedParams(params map[string]any, spec *v1.PipelineSpec) error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var declared []string
	for _, ps := range spec.Params {
		declared = append(declared, ps.Name)
	}
	for _, k := range names {
		field := "externalParameters.params." + k
		ps, ok := findParamSpec(spec, k)
		if !ok {
			return badField(field, fmt.Sprintf("is not a param of the pipeline (it declares %q)", declared), recordedFix)
		}
		if !ofType(params[k], ps.Type) {
			want := ps.Type
			if want == "" {
				want = v1.ParamTypeString
			}
			return badField(field, fmt.Sprintf("is %T, not of the declared type %s", params[k], want), recordedFix)
		}
	}
	return nil
}

func ofType(v any, t v1.ParamType) bool {
	switch t {
	case v1.ParamTypeArray:
		a, ok := v.([]any)
		for _, e := range a {
			if _, s := e.(string); !s {
				return false
			}
		}
		return ok
	case v1.ParamTypeObject:
		m, ok := v.(map[string]any)
		for _, e := range m {
			if _, s := e.(string); !s {
				return false
			}
		}
		return ok
	}
	_, ok := v.(string)
	return ok
}
