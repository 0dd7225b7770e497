package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/accord-build/accord/attest"
)

// Trusted returns, in their order, the envelopes in envs of the given
// predicate type that a builder of p signed (provenance: under that
// builder's own identity; a Builder without ID trusts its key under any
// identity) and whose subject is the artifact with SHA-256 sha (hex). What
// is unsigned, forged, signed by another key or about another artifact is
// left out. err is for an unreadable key in p.
func Trusted(envs [][]byte, sha string, p Policy, predicateType string) ([][]byte, error) {
	vs, _, err := loadKeys(p)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	// What parseAttestations notes is skipped here: only what verifies is returned.
	parsed, _ := parseAttestations(envs)
	for _, a := range verified(parsed, p.Builders, vs, predicateType).about(sha) {
		out = append(out, envs[a.index])
	}
	return out, nil
}

// TrustedSignature reports whether sig (a cosign signature, base64) over
// payload (cosign's simple signing payload) verifies with a key of p's
// builders and the payload names the image manifest digest (sha256:<hex>).
func TrustedSignature(payload []byte, sig, manifestDigest string, p Policy) (bool, error) {
	vs, _, err := loadKeys(p)
	if err != nil {
		return false, err
	}
	var ss struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if json.Unmarshal(payload, &ss) != nil || ss.Critical.Image.Digest != manifestDigest {
		return false, nil
	}
	raw, err := decodeB64(sig)
	if err != nil {
		return false, nil
	}
	for _, v := range vs {
		if v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(payload)) == nil {
			return true, nil
		}
	}
	return false, nil
}

// loadKeys returns a verifier and the key fingerprint of each builder of p.
func loadKeys(p Policy) ([]signature.Verifier, []string, error) {
	var verifiers []signature.Verifier
	var fingerprints []string
	for i, b := range p.Builders {
		v, err := attest.LoadVerifier(b.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("trusted builder %d (%s) key: %w", i+1, b.ID, err)
		}
		fp, err := attest.Fingerprint(b.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("trusted builder %d (%s) key: %w", i+1, b.ID, err)
		}
		verifiers = append(verifiers, v)
		fingerprints = append(fingerprints, fp)
	}
	return verifiers, fingerprints, nil
}

// Key is a trusted builder as [Envelope] checks signatures: the identity
// its provenance must claim and its loaded public key.
type Key struct {
	// ID is the builder identity the provenance must name; "" trusts the
	// key under whatever identity its provenance names.
	ID string
	// Verifier checks the builder's signatures.
	Verifier signature.Verifier
}

// Signed is an envelope that a trusted key signed, under that key's
// identity for provenance.
type Signed struct {
	// Key is the index, among the keys given, of the key that verified it.
	Key int
	// Statement is the signed statement.
	Statement *attest.ParsedStatement
	// Provenance is the statement's SLSA provenance; nil for other
	// predicate types.
	Provenance *attest.Summary
}

// Reason says why [Envelope] did not trust an envelope.
type Reason int

// The reasons, from the first check an envelope failed.
const (
	// NotSigned: no key given verifies its signature.
	NotSigned Reason = iota + 1
	// Unreadable: a key verifies it, but its payload is not readable (not
	// base64, not a statement, not readable provenance).
	Unreadable
	// OtherPredicate: a key verifies it, but the signed statement has
	// another predicate type than the one asked for.
	OtherPredicate
	// OtherBuilder: a key verifies the provenance, but it claims another
	// builder identity than the key's.
	OtherBuilder
)

// Rejection is why an envelope is not trusted. Callers word it for their
// readers; [Rejection.String] is verify's wording.
type Rejection struct {
	Reason Reason
	// Key is the index of the key that verified the signature (of the last
	// one, when several did); -1 for NotSigned.
	Key int
	// Err is what could not be read (Unreadable).
	Err error
	// PredicateType is the signed statement's (OtherPredicate).
	PredicateType string
	// Claimed is the builder identity the provenance names (OtherBuilder).
	Claimed string
	// KeyID is the identity of keys[Key] ("" for NotSigned).
	KeyID string
}

// String is the rejection as verify's notes and checks word it.
func (r *Rejection) String() string {
	switch r.Reason {
	case Unreadable:
		return r.Err.Error()
	case OtherPredicate:
		return fmt.Sprintf("signed payload has predicate type %q", r.PredicateType)
	case OtherBuilder:
		return fmt.Sprintf("signed by the key of %s but claims builder %q", r.KeyID, r.Claimed)
	}
	return "not signed by a trusted builder key"
}

// Envelope checks env with keys, in their order: the first key whose
// signature verifies, over a statement of predicateType whose provenance
// (for SLSA provenance) claims the key's identity, makes it trusted.
// Otherwise the rejection is the last failure of a key that verified the
// signature, or NotSigned. It is the one rule by which accord trusts a
// stored envelope: [Artifact], [Trusted] and the CLI's provenance readers
// all use it.
func Envelope(env *attest.Envelope, keys []Key, predicateType string) (*Signed, *Rejection) {
	rej := &Rejection{Reason: NotSigned, Key: -1}
	for i, k := range keys {
		payload, err := attest.VerifyEnvelope(env, k.Verifier)
		if errors.Is(err, attest.ErrBadSignature) {
			continue
		}
		if err != nil {
			rej = &Rejection{Reason: Unreadable, Key: i, KeyID: k.ID, Err: err}
			continue
		}
		s, r := signedBy(i, k, payload, predicateType)
		if r == nil {
			return s, nil
		}
		rej = r
	}
	return nil, rej
}

// signedBy reads the payload that keys[i] (k) verified.
func signedBy(i int, k Key, payload []byte, predicateType string) (*Signed, *Rejection) {
	reject := func(r Rejection) (*Signed, *Rejection) {
		r.Key, r.KeyID = i, k.ID
		return nil, &r
	}
	st, err := attest.ParseStatement(payload)
	if err != nil {
		return reject(Rejection{Reason: Unreadable, Err: err})
	}
	if st.PredicateType != predicateType {
		return reject(Rejection{Reason: OtherPredicate, PredicateType: st.PredicateType})
	}
	s := &Signed{Key: i, Statement: st}
	if predicateType != attest.SLSAProvenanceV1 {
		return s, nil
	}
	if s.Provenance, err = attest.ParseProvenance(st.Predicate); err != nil {
		return reject(Rejection{Reason: Unreadable, Err: err})
	}
	if k.ID != "" && s.Provenance.BuilderID != k.ID {
		return reject(Rejection{Reason: OtherBuilder, Claimed: s.Provenance.BuilderID})
	}
	return s, nil
}
