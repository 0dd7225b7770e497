package build

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
)

// Request is what to build: the same request gives the same artifacts on
// every builder.
type Request struct {
	// Source is where the source comes from; the zero value is no source.
	Source Source
	// Pipeline is a catalog pipeline name or a file holding a Pipeline
	// (and its Tasks).
	Pipeline string
	// Params are the pipeline's params, typed as it declares them (see
	// [ParseParams]). source-url and source-commit are filled from the
	// fetched source when the pipeline declares them and they are unset.
	Params v1.Params
	// Timeout bounds the whole run; default one hour.
	Timeout time.Duration
	// AllowUnpinned runs step images that are not pinned by digest (the
	// report lists them).
	AllowUnpinned bool
}

// Source is a directory built as it is, or a git repository fetched at an
// exact commit.
type Source struct {
	// Dir is a directory. With Revision, it is a git repository to fetch
	// from (as file://DIR).
	Dir string
	// URI is a git URL to fetch from at Revision.
	URI string
	// Revision is a full commit, or a branch or tag resolved to one (the
	// full ref and the commit are recorded).
	Revision string
	// DateEpoch is SOURCE_DATE_EPOCH for a directory (a git source uses
	// its commit time).
	DateEpoch int64
	// Optional says the source was not asked for: a pipeline that takes
	// no source workspace then gets none.
	Optional bool
}

// ParseParams turns NAME=VALUE strings into params typed by the
// pipeline's declarations: arrays from JSON or comma lists, objects from
// JSON.
func ParseParams(flags []string, spec *v1.PipelineSpec) (v1.Params, error) {
	var out v1.Params
	for _, f := range flags {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", f)
		}
		ps, _ := findParamSpec(spec, name)
		var pv v1.ParamValue
		switch {
		case ps.Type == v1.ParamTypeArray && !strings.HasPrefix(val, "["):
			pv = *v1.NewStructuredValues(strings.Split(val, ",")[0], strings.Split(val, ",")[1:]...)
		case ps.Type == v1.ParamTypeArray || ps.Type == v1.ParamTypeObject:
			if err := json.Unmarshal([]byte(val), &pv); err != nil {
				return nil, fmt.Errorf("--param %s: not valid JSON for a param of type %s: %v", name, ps.Type, err)
			}
		default:
			pv = *v1.NewStructuredValues(val)
		}
		out = append(out, v1.Param{Name: name, Value: pv})
	}
	return out, nil
}

// checkImageParam checks, before anything runs, the image param of a
// catalog pipeline: the name its image is announced (IMAGE_URL) and stored
// under, and that st may push there. artifact.Collect checks every
// announced name again afterwards.
func checkImageParam(r *pipelines.Resolved, params v1.Params, st store.Store) error {
	if !strings.HasPrefix(r.Pipeline.File, "pipelines/catalog/") {
		return nil
	}
	for _, p := range params {
		if p.Name != "image" || p.Value.Type != v1.ParamTypeString {
			continue
		}
		if err := artifact.CheckImageName(p.Value.StringVal); err != nil {
			return fmt.Errorf("-p image=%s: %w\n  fix: name the image REGISTRY/REPOSITORY[:TAG] (lower case, no digest; tags sha256-* and *.sig, *.att, *.links, *.released, *.sbom are reserved for evidence)", p.Value.StringVal, err)
		}
		if err := store.CheckName(st, p.Value.StringVal); err != nil {
			return fmt.Errorf("-p image=%s (IMAGE_URL of the image this pipeline builds): %w", p.Value.StringVal, err)
		}
	}
	return nil
}

func findParamSpec(spec *v1.PipelineSpec, name string) (v1.ParamSpec, bool) {
	for _, p := range spec.Params {
		if p.Name == name {
			return p, true
		}
	}
	return v1.ParamSpec{}, false
}

func hasParam(ps v1.Params, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func declaresWorkspace(spec *v1.PipelineSpec, name string) bool {
	for _, w := range spec.Workspaces {
		if w.Name == name {
			return true
		}
	}
	return false
}
