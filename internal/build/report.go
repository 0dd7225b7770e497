package build

import (
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/divergence"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/proof"
)

// Report is one builder's build: what ran, what came out, what was
// recorded. It is the JSON of 'accord run -o json'.
type Report struct {
	Builder   string                 `json:"builder,omitempty"`
	BuilderID string                 `json:"builderId"`
	Variation engine.Variation       `json:"variation"`
	Succeeded bool                   `json:"succeeded"`
	Reason    string                 `json:"reason,omitempty"`
	Pipeline  PipelineInfo           `json:"pipeline"`
	Source    SourceInfo             `json:"source"`
	Runtime   string                 `json:"runtime"`
	Rootless  bool                   `json:"rootless"`
	Unpinned  []string               `json:"unpinnedImages,omitempty"`
	Artifacts []artifact.Artifact    `json:"artifacts"`
	Tasks     []engine.TaskResult    `json:"tasks"`
	Results   []v1.PipelineRunResult `json:"results,omitempty"`
	Proof     []proof.Recorded       `json:"proof,omitempty"`
	Seconds   float64                `json:"seconds"`
	ExitCode  int                    `json:"exitCode"`
}

// PipelineInfo names the pipeline a build ran.
type PipelineInfo struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// SourceInfo is the source a build ran on.
type SourceInfo struct {
	URI             string `json:"uri,omitempty"`
	Ref             string `json:"ref,omitempty"`
	Commit          string `json:"commit,omitempty"`
	Dir             bool   `json:"directory,omitempty"`
	SourceDateEpoch int64  `json:"sourceDateEpoch"`
}

// artifactNamed is r's artifact called name, or nil.
func (r *Report) artifactNamed(name string) *artifact.Artifact {
	for i := range r.Artifacts {
		if r.Artifacts[i].Name == name {
			return &r.Artifacts[i]
		}
	}
	return nil
}

// ConsensusReport is a primary's and its validators' builds of one
// request and the vote on them: the JSON of 'accord run --builders N'.
type ConsensusReport struct {
	Consensus  bool                 `json:"consensus"`
	Reason     string               `json:"reason,omitempty"`
	Threshold  int                  `json:"threshold"`
	Agreeing   []string             `json:"agreeing"`
	Artifacts  []ArtifactVotes      `json:"artifacts"`
	Builders   []*Report            `json:"builders"`
	Divergence []*divergence.Report `json:"divergence,omitempty"`
	Released   []string             `json:"released,omitempty"`
	ExitCode   int                  `json:"exitCode"`
	Failed     map[string]string    `json:"failed,omitempty"`
	Variations map[string][]string  `json:"differsFromPrimary,omitempty"`
}

// ArtifactVotes is one artifact and the digest each builder produced.
type ArtifactVotes struct {
	Name    string            `json:"name"`
	Digests map[string]string `json:"digests"`
}

// RebuildReport is a validator's rebuild of a recorded build and whether
// it agrees.
type RebuildReport struct {
	// Recorded is the artifact rebuilt, and RecordedBy the builder whose
	// provenance it was rebuilt from.
	Recorded, RecordedBy string
	// Build is the rebuild.
	Build *Report
	// Agree says every recorded artifact came out bit-identical.
	Agree bool
	// Wanted is how many artifacts the provenance records.
	Wanted int
	// Differences says, one line each, which artifacts differ.
	Differences []string
	// Divergence explains the artifacts that differ.
	Divergence []*divergence.Report
}
