package verify

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSourceRefs: policy refs match full refs; a bare name in a policy is
// a branch; a bare recorded ref (older provenance: a branch or a tag) matches
// no ref pattern.
func TestSourceRefs(t *testing.T) {
	const uri = "https://example.com/app.git"
	for _, tc := range []struct {
		name     string
		recorded string
		refs     []string
		want     bool
	}{
		{"branch allowed by bare name", "refs/heads/main", []string{"main"}, true},
		{"branch allowed by full name", "refs/heads/main", []string{"refs/heads/main"}, true},
		{"tag named main, policy allows branch main", "refs/tags/main", []string{"main"}, false},
		{"tag named main, policy allows refs/heads/main", "refs/tags/main", []string{"refs/heads/main"}, false},
		{"tag allowed by full name", "refs/tags/main", []string{"refs/tags/main"}, true},
		{"tag allowed by glob", "refs/tags/v1.2", []string{"main", "refs/tags/v*"}, true},
		{"bare glob means branches", "refs/tags/v1.2", []string{"v*"}, false},
		{"bare glob allows a branch", "refs/heads/v1.2", []string{"v*"}, true},
		{"branch not matched by a tag glob", "refs/heads/v1.2", []string{"refs/tags/v*"}, false},
		{"old bare recorded ref is not a branch", "main", []string{"main"}, false},
		{"old bare recorded ref is not a tag", "v1.2", []string{"refs/tags/v*"}, false},
		{"old bare recorded ref, no refs listed", "main", nil, true},
		{"recorded HEAD", "HEAD", []string{"HEAD"}, true},
		{"a commit build has no ref", "", []string{"main"}, false},
		{"any ref when none listed", "refs/tags/x", nil, true},
		{"star is one path element", "refs/heads/feature/x", []string{"refs/heads/*"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := provenanceFields{SourceURI: uri, SourceRef: tc.recorded}
			if got := sourceAllowed(p, []PolicySource{{URI: uri, Refs: tc.refs}}); got != tc.want {
				t.Errorf("recorded %q, policy refs %q: allowed %v, want %v", tc.recorded, tc.refs, got, tc.want)
			}
		})
	}
}

// TestTagPosingAsBranch: a tag named main, built and recorded as
// refs/tags/main, fails a policy that allows branch main.
func TestTagPosingAsBranch(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	builders := []Builder{{ID: testBuilder, Key: w.builderPub}}
	for _, tc := range []struct {
		ref    string
		refs   []string
		failed []string
	}{
		{"refs/tags/main", []string{"main"}, []string{CheckSource, CheckThreshold}},
		{"refs/tags/main", []string{"refs/heads/main"}, []string{CheckSource, CheckThreshold}},
		{"refs/heads/main", []string{"main"}, nil},
		{"refs/tags/main", []string{"refs/tags/main"}, nil},
		{"main", []string{"main"}, []string{CheckSource, CheckThreshold}},
	} {
		t.Run(tc.ref+" vs "+tc.refs[0], func(t *testing.T) {
			att := w.provenance(t, w.builder, "https://slsa.dev/provenance/v1", sha, testBuilder, commitA, tc.ref, pipelineDigest)
			r, err := Artifact(Evidence{ArtifactSHA256: sha, Attestations: [][]byte{att}},
				Policy{Builders: builders, Threshold: 1, Sources: []PolicySource{{URI: repoURI, Refs: tc.refs}}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.failed, r.Failed()); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s\n%+v", diff, r.Checks)
			}
		})
	}
}
