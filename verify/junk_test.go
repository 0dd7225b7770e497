package verify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/accord-build/accord/attest"
)

// TestJunkEvidence: evidence that is malformed, untrusted or of a kind
// verify does not read is skipped with a note naming it; the honest
// evidence beside it still verifies, with a layout and without.
func TestJunkEvidence(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	unknown, err := attest.Statement("https://example.com/unknown/v1", []attest.Subject{{Name: "app", SHA256: sha}}, map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	env, err := attest.SignEnvelope(context.Background(), w.builder, attest.PayloadType, unknown)
	if err != nil {
		t.Fatal(err)
	}
	unknownEnv, _ := json.Marshal(env)
	tests := []struct {
		name string
		add  func(ev *Evidence)
		note string
	}{
		{"garbage links bundle", func(ev *Evidence) { ev.LinkBundles = append(ev.LinkBundles, []byte(strings.Repeat("junk", 300))) }, "links bundle 2"},
		{"truncated links bundle", func(ev *Evidence) { ev.LinkBundles = append(ev.LinkBundles, w.links[:700]) }, "links bundle 2"},
		{"links bundle of an untrusted builder", func(ev *Evidence) {
			ev.LinkBundles = append([][]byte{w.signLinks(t, w.intruder, false, false)}, ev.LinkBundles...)
		}, "links bundle 1"},
		{"attestation that is not JSON", func(ev *Evidence) { ev.Attestations = append(ev.Attestations, []byte("\x1f\x8b\x08 truncated gzip")) }, "attestation 3: not a DSSE envelope"},
		{"JSON that is not DSSE", func(ev *Evidence) { ev.Attestations = append(ev.Attestations, []byte(`{"critical":{}}`)) }, "attestation 3: not a DSSE envelope"},
		{"DSSE with an unknown predicate", func(ev *Evidence) { ev.Attestations = append(ev.Attestations, unknownEnv) }, `predicate type "https://example.com/unknown/v1"`},
		{"provenance of an untrusted key", func(ev *Evidence) {
			ev.Attestations = append([][]byte{w.envelope(t, w.intruder, attest.SLSAProvenanceV1, sha)}, ev.Attestations...)
		}, "attestation 1 (SLSA provenance): not signed by a trusted builder key"},
		{"a layer the caller could not read", func(ev *Evidence) {
			ev.Notes = append(ev.Notes, "attestations: layer 3: over the limit: skipped")
		}, "layer 3"},
	}
	for _, withLayout := range []bool{false, true} {
		policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1, RequireSBOM: true}
		if withLayout {
			policy.Layout, policy.LayoutOwnerKey = w.layout, w.ownerPub
		}
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{true: " (layout)", false: ""}[withLayout], func(t *testing.T) {
				ev := Evidence{
					ArtifactSHA256: sha,
					Attestations:   [][]byte{w.provenanceNaming(t, sha, pipelineDigest, w.links), w.envelope(t, w.builder, attest.SPDXDocument, sha)},
					LinkBundles:    [][]byte{w.links},
				}
				tc.add(&ev)
				r, err := Artifact(ev, policy)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Verified {
					t.Errorf("junk made the honest evidence fail: %+v", r.Checks)
				}
				if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], tc.note) {
					t.Errorf("notes %q, want one saying %q", r.Notes, tc.note)
				}
			})
		}
	}
}

// TestArtifactBytes: a blob of the stored artifact that is not what its
// manifest names fails the artifact-bytes check, naming the blob.
func TestArtifactBytes(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1}
	good := []Blob{{Role: "manifest", Digest: "sha256:m"}, {Role: "config", Digest: "sha256:c"}, {Role: "layer 1", Digest: "sha256:l1"}}
	for _, tc := range []struct {
		name  string
		blobs []Blob
		ok    bool
	}{
		{"every blob matches", good, true},
		{"no manifest (a bare file)", nil, true},
		{"a layer differs", append(good[:2:2], Blob{Role: "layer 1", Digest: "sha256:l1", Problem: "the bytes have digest sha256:x"}), false},
		{"the config differs", []Blob{good[0], {Role: "config", Digest: "sha256:c", Problem: "12 bytes, the manifest names 13"}, good[2]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Artifact(Evidence{ArtifactSHA256: sha, Blobs: tc.blobs, Attestations: [][]byte{w.envelope(t, w.builder, attest.SLSAProvenanceV1, sha)}}, policy)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verified != tc.ok {
				t.Errorf("verified = %v: %+v", r.Verified, r.Checks)
			}
			if tc.blobs == nil {
				return
			}
			c := r.Checks[0]
			if c.Name != CheckArtifactBytes || c.OK != tc.ok {
				t.Fatalf("first check %+v", c)
			}
			for _, b := range tc.blobs {
				if b.Problem != "" && !strings.Contains(c.Reason, b.Role+" "+b.Digest) {
					t.Errorf("reason %q does not name %s %s", c.Reason, b.Role, b.Digest)
				}
			}
		})
	}
}
