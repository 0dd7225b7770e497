package build

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
)

func TestParseParams(t *testing.T) {
	spec := &v1.PipelineSpec{Params: v1.ParamSpecs{
		{Name: "s", Type: v1.ParamTypeString}, {Name: "a", Type: v1.ParamTypeArray}, {Name: "o", Type: v1.ParamTypeObject},
	}}
	for _, tc := range []struct {
		flag    string
		want    v1.ParamValue
		wantErr string
	}{
		{flag: "s=x=y", want: *v1.NewStructuredValues("x=y")},
		{flag: "a=x,y", want: *v1.NewStructuredValues("x", "y")},
		{flag: `a=["x","y,z"]`, want: *v1.NewStructuredValues("x", "y,z")},
		{flag: `o={"k":"v"}`, want: *v1.NewObject(map[string]string{"k": "v"})},
		{flag: "undeclared=v", want: *v1.NewStructuredValues("v")},
		{flag: "novalue", wantErr: "want NAME=VALUE"},
		{flag: "=v", wantErr: "want NAME=VALUE"},
		{flag: "o=notjson", wantErr: "not valid JSON for a param of type object"},
	} {
		got, err := ParseParams([]string{tc.flag}, spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.flag, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %v %v", tc.flag, got, err)
		}
		if diff := cmp.Diff(tc.want, got[0].Value); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.flag, diff)
		}
	}
}

// TestParamsFrom: recorded params come back typed, as the flags that gave
// them would (no round trip through strings), sorted, without the source
// params the fetch fills.
func TestParamsFrom(t *testing.T) {
	s := &attest.Summary{Params: map[string]any{
		"name": "hello", "source-url": "file:///x", "source-commit": "abc",
		"list": []any{"a", "b,c"}, "obj": map[string]any{"k": "v"}, "json-looking": `["not","an","array"]`,
	}}
	want := v1.Params{
		{Name: "json-looking", Value: *v1.NewStructuredValues(`["not","an","array"]`)},
		{Name: "list", Value: *v1.NewStructuredValues("a", "b,c")},
		{Name: "name", Value: *v1.NewStructuredValues("hello")},
		{Name: "obj", Value: *v1.NewObject(map[string]string{"k": "v"})},
	}
	if diff := cmp.Diff(want, paramsFrom(s)); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}

// TestRequestFromNamesTheField: a provenance that lacks or spoils a value a
// rebuild needs is refused before anything runs, naming the field.
func TestRequestFromNamesTheField(t *testing.T) {
	svc := &Service{}
	ctx := context.Background()
	r, err := svc.Resolve(ctx, "go-image", false)
	if err != nil {
		t.Fatal(err)
	}
	good := func() *attest.Summary {
		return &attest.Summary{Pipeline: "go-image", PipelineDigest: r.Digest, SourceURI: "https://example.com/app.git",
			SourceCommit: strings.Repeat("a", 40), Params: map[string]any{"name": "app"}}
	}
	if req, err := requestFrom(ctx, svc, good(), RebuildRequest{}); err != nil || req.Source.Revision != strings.Repeat("a", 40) {
		t.Fatalf("a good provenance: %+v, %v", req, err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(*attest.Summary)
		field string
	}{
		{"no pipeline", func(s *attest.Summary) { s.Pipeline = "" }, "externalParameters.pipeline.name"},
		{"a path as pipeline", func(s *attest.Summary) { s.Pipeline = "../x.yaml" }, "externalParameters.pipeline.name"},
		{"no pipeline digest", func(s *attest.Summary) { s.PipelineDigest = "" }, "externalParameters.pipeline.digest"},
		{"other pipeline digest", func(s *attest.Summary) { s.PipelineDigest = "sha256:" + strings.Repeat("0", 64) }, "the provenance records sha256:000"},
		{"no commit", func(s *attest.Summary) { s.SourceCommit = "" }, "externalParameters.source.commit"},
		{"short commit", func(s *attest.Summary) { s.SourceCommit = "abc" }, "externalParameters.source.commit"},
		{"option as URI", func(s *attest.Summary) { s.SourceURI = "--upload-pack=touch /tmp/x" }, "externalParameters.source.uri"},
		{"negative epoch", func(s *attest.Summary) { s.SourceDateEpoch = -1 }, "externalParameters.source.sourceDateEpoch"},
		{"undeclared param", func(s *attest.Summary) { s.Params["evil"] = "x" }, "evil"},
		{"array for a string", func(s *attest.Summary) { s.Params["name"] = []any{"a"} }, "name"},
		{"directory build without tree", func(s *attest.Summary) { s.SourceURI, s.SourceCommit, s.SourceTree = "", "", "deadbeef" }, "give that tree with --source DIR"},
	} {
		s := good()
		tc.spoil(s)
		_, err := requestFrom(ctx, svc, s, RebuildRequest{})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want it to name %q", tc.name, err, tc.field)
		}
	}
}

// TestErrorsAreTyped: bad input is an *InputError however deep.
func TestErrorsAreTyped(t *testing.T) {
	svc := &Service{}
	_, err := svc.Resolve(context.Background(), "no-such-pipeline", false)
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Errorf("an unknown pipeline: %T %v, want *InputError", err, err)
	}
	if e := inputErr(inputErr(errors.New("x"))); e.Error() != "x" {
		t.Errorf("wrapping twice: %q", e)
	}
	_, err = svc.Rebuild(context.Background(), RebuildRequest{Artifact: "x", Provenance: failing{}}, Builder{})
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "no provenance") {
		t.Errorf("a rebuild without provenance: %T %v, want *InputError", err, err)
	}
}

type failing struct{}

func (failing) Recorded(context.Context, store.Store, string, string) (*Recorded, error) {
	return nil, errors.New("no provenance stored")
}

// TestComparableInputs: a pipeline file given by another path is the same
// input; a catalog file, a step image or a module keeps its key.
func TestComparableInputs(t *testing.T) {
	a := comparableInputs(map[string]string{"./x.yaml#Task/emit": "sha256:1", "pipelines/catalog/go-build.yaml#Task/go-build": "sha256:2", "oci://img": "sha256:3"})
	b := comparableInputs(map[string]string{"/abs/dir/x.yaml#Task/emit": "sha256:1", "pipelines/catalog/go-build.yaml#Task/go-build": "sha256:2", "oci://img": "sha256:3"})
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("inputs (-a +b):\n%s", diff)
	}
	if _, ok := a["pipelines/catalog/go-build.yaml#Task/go-build"]; !ok {
		t.Errorf("catalog key rewritten: %v", a)
	}
	if comparableInputs(nil) != nil {
		t.Error("unknown inputs became known")
	}
}
