package proof

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
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

// Summary is who signs a verification summary, and when.
type Summary struct {
	Signer     *attest.Signer
	VerifierID string
	// Version is the verifier's version (verifier.version).
	Version map[string]string
	// Time is timeVerified.
	Time time.Time
}

// Summarize signs the verification summary of res (a passing
// verification of arg, whose evidence was ev under policy pol) and stores
// it beside the artifact. The artifact is resolved again, and its bytes
// must still have the digest that was verified. It returns the stored
// envelope's digest and the reference it is stored under.
func Summarize(ctx context.Context, st store.Store, arg string, ev *verify.Evidence, res *verify.Result, pol *verify.Policy, o Summary) (digest, ref string, err error) {
	if !res.Verified {
		return "", "", verify.ErrNotVerified
	}
	name, h, err := evidence.Resolve(ctx, st, arg)
	if err != nil {
		return "", "", err
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return "", "", err
	}
	if sha, err := evidence.ArtifactSHA256(img); err != nil || sha != ev.ArtifactSHA256 {
		return "", "", fmt.Errorf("%s changed while it was verified (now sha256:%s, verified sha256:%s): no verification summary", arg, sha, ev.ArtifactSHA256)
	}
	repo := store.Name(st, name)
	statement, err := verify.Summary(res, *ev, *pol, verify.SummaryOptions{
		VerifierID: o.VerifierID, VerifierVersion: o.Version, Time: o.Time,
		ResourceURI:     repo + "@sha256:" + ev.ArtifactSHA256,
		AttestationsURI: store.AttachmentRef(repo, h, store.AttSuffix),
		LinksURI:        store.AttachmentRef(repo, h, store.LinksSuffix),
	})
	if err != nil {
		return "", "", &evidence.InputError{Err: err}
	}
	env, err := verify.SignSummary(ctx, o.Signer, statement)
	if err != nil {
		return "", "", err
	}
	if ref, err = AttachSummary(ctx, st, repo, h, env, o.VerifierID); err != nil {
		return "", "", err
	}
	return "sha256:" + attest.SHA256Hex(env), ref, nil
}

// VerificationTime is the summary's timeVerified: SOURCE_DATE_EPOCH when
// set, for reproducible summaries, else the clock. A summary records when
// a verification happened, so the clock is its honest value.
func VerificationTime() (time.Time, error) {
	s, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a count of seconds since 1970\n  fix: set it to a Unix time (date +%%s), or unset it to use the clock", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
