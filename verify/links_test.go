package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
)

// retar re-encodes a bundle with the same link files in another tar
// encoding (PAX headers): the same links, other bytes, another digest.
func retar(t *testing.T, b []byte) []byte {
	t.Helper()
	files, err := attest.ReadLinksBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(c)), Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "x"}})
		tw.Write(c)
	}
	tw.Close()
	return out.Bytes()
}

// TestLinksBinding: the links that count are the ones the trusted
// provenance about this artifact names, of the pipeline the layout was
// made for, and their final products contain the artifact. Links of
// another build cannot stand in for a SUNBURST build's own links.
func TestLinksBinding(t *testing.T) {
	w := newWorld(t)
	sunburst := []byte("the binary + implant")
	sha := hexSHA(sunburst)
	ownLinks := w.signLinksOf(t, w.builder, sunburst, true, false) // shows the source rewrite
	otherArtifact := []byte("another app of the same pipeline")
	otherLinks := w.signLinksOf(t, w.builder, otherArtifact, false, false)
	otherPipeline := "sha256:" + strings.Repeat("e", 64)
	policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1, Layout: w.layout, LayoutOwnerKey: w.ownerPub}
	ev := func(prov []byte, bundles ...[]byte) Evidence {
		return Evidence{ArtifactSHA256: sha, Attestations: [][]byte{prov}, LinkBundles: bundles}
	}
	tests := []struct {
		name   string
		ev     Evidence
		layout []byte // default: the policy's
		want   string // in the in-toto-layout reason
		notes  int
	}{
		{"SUNBURST build's own links", ev(w.provenanceNaming(t, sha, pipelineDigest, ownLinks), ownLinks), nil, "build-build", 0},
		{".links repointed to the honest build's links", ev(w.provenanceNaming(t, sha, pipelineDigest, ownLinks), w.links), nil, "no stored links bundle is named", 1},
		{"honest links added beside the build's own", ev(w.provenanceNaming(t, sha, pipelineDigest, ownLinks), w.links, ownLinks), nil, "build-build", 1},
		{"links of another artifact of the same pipeline", ev(w.provenanceNaming(t, sha, pipelineDigest, ownLinks), otherLinks), nil, "no stored links bundle is named", 1},
		{"bundle re-encoded: its digest differs from the one the provenance names", ev(w.provenanceNaming(t, sha, pipelineDigest, w.links), retar(t, w.links)), nil, "no stored links bundle is named", 1},
		{"trusted provenance names the honest links, which did not make this artifact", ev(w.provenanceNaming(t, sha, pipelineDigest, w.links), w.links), nil, "not among the pipeline's final products", 0},
		{"links of a build of another pipeline", ev(w.provenanceNaming(t, sha, otherPipeline, w.links), w.links), nil, "the layout was generated for pipeline " + pipelineDigest, 0},
		{"layout generated for another pipeline digest", ev(w.provenanceNaming(t, sha, pipelineDigest, w.links), w.links), w.makeLayout(t, otherPipeline), "the layout was generated for pipeline " + otherPipeline, 0},
		{"layout that names no pipeline", ev(w.provenanceNaming(t, sha, pipelineDigest, w.links), w.links), noPipelineLayout(t, w), "names no pipeline digest", 0},
		{"provenance that names no links", ev(w.provenance(t, w.builder, attest.SLSAProvenanceV1, sha, testBuilder, commitA, "refs/heads/main", pipelineDigest), w.links), nil, "the provenance names no links bundle", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := policy
			if tc.layout != nil {
				p.Layout = tc.layout
			}
			r, err := Artifact(tc.ev, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{CheckLayout}, r.Failed()); diff != "" {
				t.Fatalf("failed checks (-want +got):\n%s\n%+v", diff, r.Checks)
			}
			if c := r.Checks[len(r.Checks)-1]; !strings.Contains(c.Reason, tc.want) {
				t.Errorf("in-toto-layout reason %q does not say %q", c.Reason, tc.want)
			}
			if len(r.Notes) != tc.notes {
				t.Errorf("notes %q, want %d", r.Notes, tc.notes)
			}
		})
	}
	t.Run("honest build verifies", func(t *testing.T) {
		sha := hexSHA(w.artifact)
		r, err := Artifact(Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, w.links)}, LinkBundles: [][]byte{w.links}}, policy)
		if err != nil || !r.Verified {
			t.Fatalf("%v %+v", err, r)
		}
		if c := r.Checks[len(r.Checks)-1]; !strings.Contains(c.Reason, "output/bin/app") {
			t.Errorf("reason %q does not name the product that is the artifact", c.Reason)
		}
	})
}

// noPipelineLayout is a layout signed by the owner without the pipeline
// digest line (as accord wrote them before layouts named their pipeline).
func noPipelineLayout(t *testing.T, w *world) []byte {
	t.Helper()
	mb, err := attest.Layout(context.Background(), w.owner, steps, attest.LayoutOptions{Functionaries: [][]byte{w.builderPub}, Expires: time.Now().Add(time.Hour), PipelineDigest: pipelineDigest})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	b, _ := json.Marshal(mb.Signed)
	json.Unmarshal(b, &m)
	m["readme"] = "accord layout for pipeline p"
	mb.Signed = m
	payload, err := mb.GetSignableRepresentation()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := w.owner.Sign(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	mb.Signatures[0].Sig = hex.EncodeToString(sig)
	out, _ := json.Marshal(mb)
	return out
}
