package attest

import (
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrOtherBuilder is returned when a provenance verifies with a builder's
// key but names another builder: a trusted key must not vouch for an
// identity that is not its own.
var ErrOtherBuilder = errors.New("provenance names another builder than the key's")

// VerifyProvenance checks that raw, a DSSE envelope, is signed with v and
// holds an in-toto statement with an SLSA provenance whose builder is
// builderID, and returns what the provenance says. Nothing is read from
// the payload before its signature verifies. The error wraps
// [ErrBadSignature] or [ErrOtherBuilder] for those cases.
func VerifyProvenance(raw []byte, builderID string, v signature.Verifier) (*Summary, *ParsedStatement, error) {
	env, err := ParseEnvelope(raw)
	if err != nil {
		return nil, nil, err
	}
	payload, err := VerifyEnvelope(env, v)
	if err != nil {
		return nil, nil, err
	}
	stmt, err := ParseStatement(payload)
	if err != nil {
		return nil, nil, err
	}
	if stmt.PredicateType != SLSAProvenanceV1 {
		return nil, nil, fmt.Errorf("predicate type %q, want %s", stmt.PredicateType, SLSAProvenanceV1)
	}
	sum, err := ParseProvenance(stmt.Predicate)
	if err != nil {
		return nil, nil, err
	}
	if sum.BuilderID != builderID {
		return nil, nil, fmt.Errorf("%w: signed by the key of %s, claims builder %q", ErrOtherBuilder, builderID, sum.BuilderID)
	}
	return sum, stmt, nil
}
