package build

import (
	"context"
	"fmt"
	"io"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
)

// SignedProvenance reads a rebuild's recorded build from the provenance
// stored beside the artifact that a trusted builder signed.
type SignedProvenance struct {
	// Sources are the trusted builders: a builders file, a policy.
	Sources evidence.Sources
	// Own is the rebuilding validator's key and OwnID its identity: its
	// divergence report also believes its own provenance. May be nil.
	Own   *attest.Signer
	OwnID string
	// Notes receives "note: ..." lines on skipped provenance; may be nil.
	Notes io.Writer
}

// Recorded is the provenance of arg that a trusted builder (the one from
// names, when given) signed: the artifacts it names (all subjects'
// digests) and what it says about the build. Provenance that does not
// verify is skipped with a note.
func (p *SignedProvenance) Recorded(ctx context.Context, st store.Store, arg, from string) (*Recorded, error) {
	notes := p.Notes
	if notes == nil {
		notes = io.Discard
	}
	bs, ns, err := p.Sources.Load(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		fmt.Fprintln(notes, "note: "+n)
	}
	if bs = evidence.Only(bs, from); len(bs) == 0 {
		return nil, evidence.NoTrust("rebuild", from)
	}
	name, h, err := evidence.Resolve(ctx, st, arg)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, err
	}
	sha, err := evidence.ArtifactSHA256(img)
	if err != nil {
		return nil, err
	}
	envs, err := evidence.Attestations(ctx, st, name, h, attest.SLSAProvenanceV1, notes)
	if err != nil || len(envs) == 0 {
		return nil, fmt.Errorf("no provenance stored for %s (%v)\n  fix: rebuild needs an artifact built with 'accord run --key'", arg, err)
	}
	vps, ns := evidence.TrustedProvenance(envs, bs, sha)
	for _, n := range ns {
		fmt.Fprintln(notes, "note: "+n)
	}
	if len(vps) == 0 {
		return nil, fmt.Errorf("no provenance of %s is signed by %s (%d stored, none verifies)\n  fix: check --from, and that --policy or --builders-file has the builder's public key", arg, evidence.IDs(bs), len(envs))
	}
	sum, stmt := vps[0].Summary, vps[0].Statement
	if sum.BuildType != attest.BuildType {
		return nil, fmt.Errorf("provenance of %s has build type %q; accord rebuilds %s", arg, sum.BuildType, attest.BuildType)
	}
	want := map[string]string{}
	for _, s := range stmt.Subject {
		d := s.Digest["sha256"]
		if !sha256Hex.MatchString(d) {
			return nil, fmt.Errorf("provenance of %s: subject %q has sha256 %q, not 64 hex digits", arg, s.Name, d)
		}
		want[s.Name] = "sha256:" + d
	}
	return &Recorded{Name: name, Stored: h, Builder: sum.BuilderID, Want: want, Summary: sum, Trust: p.trust(bs, notes)}, nil
}

// trust is whom a rebuild's divergence report believes: the builders it
// trusted to rebuild from, and this validator's own key.
func (p *SignedProvenance) trust(bs []evidence.Builder, notes io.Writer) *evidence.Trust {
	tr := &evidence.Trust{Builders: bs, Notes: notes}
	if p.Own != nil {
		if b, err := evidence.NewBuilder(p.OwnID, "this validator's key", p.Own.PublicKeyPEM()); err == nil {
			tr.Builders = append(append([]evidence.Builder(nil), bs...), *b)
		}
	}
	return tr
}
