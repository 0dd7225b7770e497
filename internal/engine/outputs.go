package engine

import (
	"encoding/json"
	"sort"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// OutputKind says what an output is.
type OutputKind string

// Output kinds.
const (
	// Image is an OCI image (IMAGE_URL / IMAGE_DIGEST hints).
	Image OutputKind = "image"
	// Artifact is any other artifact (*_ARTIFACT_OUTPUTS or
	// *_ARTIFACT_URI / *_ARTIFACT_DIGEST hints).
	Artifact OutputKind = "artifact"
)

// Output is an artifact a task announced with Tekton Chains' type hints.
// Its Digest is what the task claims; callers must check it against the
// bytes before trusting it.
type Output struct {
	Kind   OutputKind `json:"kind"`
	Task   string     `json:"task"`
	Hint   string     `json:"hint"`
	URI    string     `json:"uri"`
	Digest string     `json:"digest"`
}

// Outputs reads Chains type hints from the results of succeeded tasks:
// IMAGE_URL + IMAGE_DIGEST (optionally with a prefix, "X_IMAGE_URL"),
// X_ARTIFACT_OUTPUTS (an object with uri and digest), and
// X_ARTIFACT_URI + X_ARTIFACT_DIGEST. Sorted by task, then hint.
func Outputs(tasks []TaskResult) []Output {
	var out []Output
	for _, t := range tasks {
		if t.Status != Succeeded {
			continue
		}
		strs := map[string]string{}
		for _, r := range t.Results {
			switch r.Value.Type {
			case v1.ParamTypeString:
				strs[r.Name] = strings.TrimSpace(r.Value.StringVal)
			case v1.ParamTypeObject:
				if strings.HasSuffix(r.Name, "ARTIFACT_OUTPUTS") {
					out = append(out, Output{Kind: Artifact, Task: t.Name, Hint: r.Name, URI: r.Value.ObjectVal["uri"], Digest: r.Value.ObjectVal["digest"]})
				}
			}
		}
		for name, v := range strs {
			switch {
			case strings.HasSuffix(name, "IMAGE_URL"):
				d := strs[strings.TrimSuffix(name, "URL")+"DIGEST"]
				out = append(out, Output{Kind: Image, Task: t.Name, Hint: name, URI: v, Digest: d})
			case strings.HasSuffix(name, "ARTIFACT_URI"):
				d := strs[strings.TrimSuffix(name, "URI")+"DIGEST"]
				out = append(out, Output{Kind: Artifact, Task: t.Name, Hint: name, URI: v, Digest: d})
			case strings.HasSuffix(name, "ARTIFACT_OUTPUTS"):
				// A string holding JSON, as Tasks written for older Tekton do.
				var o struct{ URI, Digest string }
				if json.Unmarshal([]byte(v), &o) == nil {
					out = append(out, Output{Kind: Artifact, Task: t.Name, Hint: name, URI: o.URI, Digest: o.Digest})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Task != out[j].Task {
			return out[i].Task < out[j].Task
		}
		return out[i].Hint < out[j].Hint
	})
	return out
}
