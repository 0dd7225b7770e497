package proof

import (
	"context"
	"fmt"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
)

// VerifierAnnotation names the verifier whose verification summary a
// layer holds (accord's).
const VerifierAnnotation = "accord.dev/verifier"

// AttachSummary stores a signed verification summary (a DSSE envelope,
// JSON) beside the artifact stored under digest h of repo, as cosign stores
// attestations: a layer of the sha256-<hex>.att manifest annotated with its
// predicate type, so 'cosign verify-attestation --type
// https://slsa.dev/verification_summary/v1' finds it. An earlier summary by
// the same verifier is replaced; the builders' attestations are kept. It
// returns the reference it stored under.
func AttachSummary(ctx context.Context, st store.Store, repo string, h ggcrv1.Hash, envelope []byte, verifierID string) (string, error) {
	ref := store.AttachmentRef(repo, h, store.AttSuffix)
	l := store.Layer{MediaType: store.DSSEMediaType, Blob: envelope, Annotations: map[string]string{
		store.SignatureAnnotation: "", store.PredicateTypeAnnotation: attest.VerificationSummaryV1, VerifierAnnotation: verifierID,
	}}
	sameVerifier := func(old map[string]string) bool {
		return old[store.PredicateTypeAnnotation] == attest.VerificationSummaryV1 && old[VerifierAnnotation] == verifierID
	}
	if _, err := store.Attach(ctx, st, ref, []store.Layer{l}, sameVerifier); err != nil {
		return "", fmt.Errorf("storing the verification summary in %s: %w", ref, err)
	}
	return ref, nil
}
