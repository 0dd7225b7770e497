package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

func strResult(name, value string) v1.TaskRunResult {
	return v1.TaskRunResult{Name: name, Type: v1.ResultsTypeString, Value: *v1.NewStructuredValues(value)}
}

func objResult(name string, m map[string]string) v1.TaskRunResult {
	return v1.TaskRunResult{Name: name, Type: v1.ResultsTypeObject, Value: *v1.NewObject(m)}
}

func arrResult(name string, values ...string) v1.TaskRunResult {
	return v1.TaskRunResult{Name: name, Type: v1.ResultsTypeArray, Value: *v1.NewStructuredValues(values[0], values[1:]...)}
}

func succeeded(name string, results ...v1.TaskRunResult) TaskResult {
	return TaskResult{Name: name, Status: Succeeded, Results: results}
}

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestOutputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tasks []TaskResult
		want  []Output
	}{
		{
			name:  "IMAGE_URL and IMAGE_DIGEST",
			tasks: []TaskResult{succeeded("image", strResult("IMAGE_URL", "example.com/app"), strResult("IMAGE_DIGEST", d1))},
			want:  []Output{{Kind: Image, Task: "image", Hint: "IMAGE_URL", URI: "example.com/app", Digest: d1}},
		},
		{
			name:  "values are trimmed",
			tasks: []TaskResult{succeeded("image", strResult("IMAGE_URL", "  example.com/app\n"), strResult("IMAGE_DIGEST", d1+"\n"))},
			want:  []Output{{Kind: Image, Task: "image", Hint: "IMAGE_URL", URI: "example.com/app", Digest: d1}},
		},
		{
			name:  "IMAGE_URL without a digest",
			tasks: []TaskResult{succeeded("image", strResult("IMAGE_URL", "example.com/app"))},
			want:  []Output{{Kind: Image, Task: "image", Hint: "IMAGE_URL", URI: "example.com/app"}},
		},
		{
			name:  "IMAGE_DIGEST alone announces nothing",
			tasks: []TaskResult{succeeded("image", strResult("IMAGE_DIGEST", d1))},
		},
		{
			name: "prefixed X_IMAGE_URL pairs with X_IMAGE_DIGEST",
			tasks: []TaskResult{succeeded("image",
				strResult("IMAGE_DIGEST", d1),
				strResult("BASE_IMAGE_URL", "example.com/base"),
				strResult("BASE_IMAGE_DIGEST", d2),
				strResult("IMAGE_URL", "example.com/app"),
			)},
			want: []Output{
				{Kind: Image, Task: "image", Hint: "BASE_IMAGE_URL", URI: "example.com/base", Digest: d2},
				{Kind: Image, Task: "image", Hint: "IMAGE_URL", URI: "example.com/app", Digest: d1},
			},
		},
		{
			name:  "object *_ARTIFACT_OUTPUTS",
			tasks: []TaskResult{succeeded("build", objResult("BINARY_ARTIFACT_OUTPUTS", map[string]string{"uri": "/workspace/output/bin/app", "digest": d1}))},
			want:  []Output{{Kind: Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: "/workspace/output/bin/app", Digest: d1}},
		},
		{
			name:  "object without ARTIFACT_OUTPUTS suffix is ignored",
			tasks: []TaskResult{succeeded("build", objResult("BINARY", map[string]string{"uri": "/x", "digest": d1}))},
		},
		{
			name:  "string JSON *_ARTIFACT_OUTPUTS",
			tasks: []TaskResult{succeeded("build", strResult("BINARY_ARTIFACT_OUTPUTS", `{"uri":"/workspace/output/bin/app","digest":"`+d1+`"}`+"\n"))},
			want:  []Output{{Kind: Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: "/workspace/output/bin/app", Digest: d1}},
		},
		{
			name:  "string *_ARTIFACT_OUTPUTS that is not JSON is ignored",
			tasks: []TaskResult{succeeded("build", strResult("BINARY_ARTIFACT_OUTPUTS", "/workspace/output/bin/app"))},
		},
		{
			name: "*_ARTIFACT_URI and *_ARTIFACT_DIGEST",
			tasks: []TaskResult{succeeded("build",
				strResult("SBOM_ARTIFACT_DIGEST", d2),
				strResult("SBOM_ARTIFACT_URI", "/workspace/output/sbom.json"),
				strResult("LIB_ARTIFACT_URI", "/workspace/output/lib.a"),
			)},
			want: []Output{
				{Kind: Artifact, Task: "build", Hint: "LIB_ARTIFACT_URI", URI: "/workspace/output/lib.a"},
				{Kind: Artifact, Task: "build", Hint: "SBOM_ARTIFACT_URI", URI: "/workspace/output/sbom.json", Digest: d2},
			},
		},
		{
			name: "other results are not outputs",
			tasks: []TaskResult{succeeded("fetch",
				strResult("CHAINS-GIT_URL", "https://example.com/r.git"),
				strResult("CHAINS-GIT_COMMIT", "abc"),
				strResult("TREE_DIGEST", d1),
				arrResult("IMAGES", "example.com/a", "example.com/b"),
				arrResult("X_ARTIFACT_OUTPUTS", "a", "b"),
			)},
		},
		{
			name: "results of tasks that did not succeed are ignored",
			tasks: []TaskResult{
				{Name: "failed", Status: Failed, Results: []v1.TaskRunResult{strResult("IMAGE_URL", "example.com/f"), strResult("IMAGE_DIGEST", d1)}},
				{Name: "skipped", Status: Skipped, Results: []v1.TaskRunResult{strResult("X_ARTIFACT_URI", "/x")}},
				{Name: "timedout", Status: TimedOut, Results: []v1.TaskRunResult{objResult("X_ARTIFACT_OUTPUTS", map[string]string{"uri": "/x", "digest": d1})}},
				succeeded("ok", strResult("IMAGE_URL", "example.com/ok"), strResult("IMAGE_DIGEST", d2)),
			},
			want: []Output{{Kind: Image, Task: "ok", Hint: "IMAGE_URL", URI: "example.com/ok", Digest: d2}},
		},
		{
			name: "sorted by task, then hint",
			tasks: []TaskResult{
				succeeded("zeta",
					strResult("Z_IMAGE_URL", "example.com/z"),
					strResult("A_ARTIFACT_URI", "/a"),
					objResult("M_ARTIFACT_OUTPUTS", map[string]string{"uri": "/m", "digest": d1}),
				),
				succeeded("alpha", strResult("IMAGE_URL", "example.com/alpha"), strResult("IMAGE_DIGEST", d1)),
				succeeded("mid", strResult("B_ARTIFACT_OUTPUTS", `{"uri":"/b","digest":"`+d2+`"}`), strResult("A_IMAGE_URL", "example.com/mid")),
			},
			want: []Output{
				{Kind: Image, Task: "alpha", Hint: "IMAGE_URL", URI: "example.com/alpha", Digest: d1},
				{Kind: Image, Task: "mid", Hint: "A_IMAGE_URL", URI: "example.com/mid"},
				{Kind: Artifact, Task: "mid", Hint: "B_ARTIFACT_OUTPUTS", URI: "/b", Digest: d2},
				{Kind: Artifact, Task: "zeta", Hint: "A_ARTIFACT_URI", URI: "/a"},
				{Kind: Artifact, Task: "zeta", Hint: "M_ARTIFACT_OUTPUTS", URI: "/m", Digest: d1},
				{Kind: Image, Task: "zeta", Hint: "Z_IMAGE_URL", URI: "example.com/z"},
			},
		},
		{
			name: "no tasks",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Outputs(tc.tasks)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Outputs (-want +got):\n%s", diff)
			}
			// The order does not depend on the order of the results.
			for i := range tc.tasks {
				r := tc.tasks[i].Results
				for a, b := 0, len(r)-1; a < b; a, b = a+1, b-1 {
					r[a], r[b] = r[b], r[a]
				}
			}
			if diff := cmp.Diff(got, Outputs(tc.tasks)); diff != "" {
				t.Errorf("Outputs with results reversed (-first +second):\n%s", diff)
			}
		})
	}
}
