package verify

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
)

// TestEarlyLinks: an in-toto check of the links started before the
// provenance was in ([StartLinks]) changes nothing about the result:
// with it, started on whatever the store holds, every case gives the
// checks, notes and evidence used that the check gives without it. In
// particular an early check of other bundles (an attacker's, or the
// honest build's links beside a SUNBURST build's own) or against another
// layout never stands in for the bundles the trusted provenance selects;
// and when [Artifact] returns, the early check has removed its files.
func TestEarlyLinks(t *testing.T) {
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch)
	w := newWorld(t)
	sunburst := []byte("the binary + implant")
	sha := hexSHA(sunburst)
	own := w.signLinksOf(t, w.builder, sunburst, true, false)
	other := w.signLinksOf(t, w.builder, []byte("another app of the same pipeline"), false, false)
	honestSHA := hexSHA(w.artifact)
	honestProv := w.provenanceNaming(t, honestSHA, pipelineDigest, w.links)
	policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1, Layout: w.layout, LayoutOwnerKey: w.ownerPub}
	lenient := w.makeLayout(t, "sha256:"+strings.Repeat("e", 64))
	tests := []struct {
		name    string
		ev      Evidence
		started [][]byte // the bundles the early check is started on; nil: ev.LinkBundles
		layout  []byte   // the early check's layout; nil: the policy's
	}{
		{"honest build", Evidence{ArtifactSHA256: honestSHA, Attestations: [][]byte{honestProv}, LinkBundles: [][]byte{w.links}}, nil, nil},
		{"honest build, bundle stored twice", Evidence{ArtifactSHA256: honestSHA, Attestations: [][]byte{honestProv}, LinkBundles: [][]byte{w.links, w.links}}, nil, nil},
		{"SUNBURST build's own links", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{own}}, nil, nil},
		{"honest links beside the SUNBURST build's own", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{w.links, own}}, nil, nil},
		{"early check of the honest links only, SUNBURST's stored", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{own}}, [][]byte{w.links}, nil},
		{".links repointed to the honest build's links", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{w.links}}, nil, nil},
		{"links of another artifact", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{other}}, nil, nil},
		{"bundles in another order than stored", Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, own)}, LinkBundles: [][]byte{own, other}}, [][]byte{other, own}, nil},
		{"early check against another layout", Evidence{ArtifactSHA256: honestSHA, Attestations: [][]byte{honestProv}, LinkBundles: [][]byte{w.links}}, nil, lenient},
		{"no trusted provenance", Evidence{ArtifactSHA256: honestSHA, Attestations: [][]byte{w.envelope(t, w.intruder, attest.SLSAProvenanceV1, honestSHA)}, LinkBundles: [][]byte{w.links}}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Artifact(tc.ev, policy)
			if err != nil {
				t.Fatal(err)
			}
			started, layout := tc.started, tc.layout
			if started == nil {
				started = tc.ev.LinkBundles
			}
			if layout == nil {
				layout = policy.Layout
			}
			ev := tc.ev
			ev.EarlyLinks = StartLinks(started, layout, policy.LayoutOwnerKey)
			got, err := Artifact(ev, policy)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("with an early links check (-without +with):\n%s", diff)
			}
			// Nothing is left running or behind, used or not.
			if left, _ := os.ReadDir(scratch); len(left) > 0 {
				t.Errorf("left behind in the scratch directory: %v", left)
			}
		})
	}
}

// TestEarlyLinksUsedOnlyForItsBundles: the early outcome is what the
// layout check reports for exactly the bundles, layout and owner key it
// was started on, and for nothing else (a forged outcome shows which).
func TestEarlyLinksUsedOnlyForItsBundles(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1, Layout: w.layout, LayoutOwnerKey: w.ownerPub}
	other := w.signLinksOf(t, w.builder, []byte("another app"), false, false)
	ev := Evidence{ArtifactSHA256: sha, Attestations: [][]byte{w.provenanceNaming(t, sha, pipelineDigest, w.links)}, LinkBundles: [][]byte{w.links, other}}
	forged := func(shas []string, layout, ownerKey []byte) *EarlyLinks {
		e := &EarlyLinks{layout: layout, ownerKey: ownerKey, shas: shas, done: make(chan struct{})}
		e.out.err = errors.New("the early outcome")
		close(e.done)
		return e
	}
	own := hexSHA(w.links)
	tests := []struct {
		name  string
		early *EarlyLinks
		used  bool
	}{
		{"the selected bundle", forged([]string{own}, w.layout, w.ownerPub), true},
		{"every stored bundle, one not selected", forged([]string{own, hexSHA(other)}, w.layout, w.ownerPub), false},
		{"another bundle", forged([]string{hexSHA(other)}, w.layout, w.ownerPub), false},
		{"no bundle", forged(nil, w.layout, w.ownerPub), false},
		{"another layout", forged([]string{own}, w.makeLayout(t, pipelineDigest), w.ownerPub), false},
		{"another owner key", forged([]string{own}, w.layout, w.builderPub), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ev
			e.EarlyLinks = tc.early
			r, err := Artifact(e, policy)
			if err != nil {
				t.Fatal(err)
			}
			c := r.Checks[len(r.Checks)-1]
			if c.Name != CheckLayout {
				t.Fatalf("last check %s, want %s", c.Name, CheckLayout)
			}
			if used := c.Reason == "the early outcome"; used != tc.used || c.OK == tc.used {
				t.Errorf("early outcome used %v (check %+v), want %v", used, c, tc.used)
			}
		})
	}
}
