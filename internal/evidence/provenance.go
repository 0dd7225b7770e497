package evidence

import (
	"fmt"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/verify"
)

// Provenance is a stored provenance whose signature verified with a
// trusted builder's key, under that builder's identity.
type Provenance struct {
	// Builder is the builder whose key verified it.
	Builder Builder
	// Summary is what accord reads of the provenance.
	Summary *attest.Summary
	// Statement is the signed statement.
	Statement *attest.ParsedStatement
}

// TrustedProvenance returns the provenances among envs (DSSE envelopes, in
// store order) that verify with one of the builders' keys, claim that
// builder's identity ([verify.Envelope]'s rule) and are about the
// artifact with this sha256 (hex; "" skips that check). Every other
// envelope is skipped with a note that says why.
func TrustedProvenance(envs [][]byte, bs []Builder, sha string) ([]Provenance, []string) {
	keys := make([]verify.Key, len(bs))
	for i, b := range bs {
		keys[i] = b.Key
	}
	var out []Provenance
	var notes []string
	for i, raw := range envs {
		p, why := verifyOne(raw, bs, keys)
		if p != nil && sha != "" && !p.Statement.HasSubject(sha) {
			p, why = nil, fmt.Sprintf("signed by %s but about other artifacts, not sha256:%s", p.Summary.BuilderID, sha)
		}
		if p == nil {
			notes = append(notes, fmt.Sprintf("skipping stored provenance %d: %s", i+1, why))
			continue
		}
		out = append(out, *p)
	}
	return out, notes
}

// verifyOne checks one envelope; the reason is for the skipping note.
func verifyOne(raw []byte, bs []Builder, keys []verify.Key) (*Provenance, string) {
	why := "its signature does not verify with the key of any trusted builder (" + IDs(bs) + ")"
	if len(keys) == 0 {
		return nil, why
	}
	env, err := attest.ParseEnvelope(raw)
	if err != nil {
		return nil, err.Error()
	}
	s, rej := verify.Envelope(env, keys, attest.SLSAProvenanceV1)
	if rej == nil {
		return &Provenance{Builder: bs[s.Key], Summary: s.Provenance, Statement: s.Statement}, ""
	}
	switch rej.Reason {
	case verify.OtherBuilder:
		return nil, fmt.Errorf("%w: signed by the key of %s, claims builder %q", attest.ErrOtherBuilder, rej.KeyID, rej.Claimed).Error()
	case verify.OtherPredicate:
		return nil, fmt.Sprintf("signed by %s but unreadable: predicate type %q, want %s", rej.KeyID, rej.PredicateType, attest.SLSAProvenanceV1)
	case verify.Unreadable:
		return nil, fmt.Sprintf("signed by %s but unreadable: %v", rej.KeyID, rej.Err)
	}
	return nil, why
}
