package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	vsa "github.com/in-toto/attestation/go/predicates/vsa/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/accord-build/accord/attest"
)

// Used is the evidence a passing verification rests on, by index in the
// [Evidence] it was given.
type Used struct {
	// Provenance are the Evidence.Attestations of the agreeing builders'
	// provenance: one per distinct builder counted for the threshold.
	Provenance []int
	// SBOMs are the Evidence.Attestations of the trusted SBOMs about the
	// artifact (none when the policy does not require an SBOM).
	SBOMs []int
	// LinkBundles are the Evidence.LinkBundles the in-toto layout check
	// read (none without a layout).
	LinkBundles []int
	// Agreement is what the agreeing builders attest alike.
	Agreement Agreement
	// Name is the artifact's name as the agreeing provenance names it
	// (the first in order).
	Name string
}

// Agreement is the k-of-n agreement a verification found.
type Agreement struct {
	// Threshold is the policy's k.
	Threshold int `json:"threshold"`
	// Builders are the distinct trusted builders that agree, sorted by id.
	Builders []AgreeingBuilder `json:"builders"`
	// SourceCommit is the source commit they built (SourceTree, the
	// dirHash1 of the tree, for a directory source without a commit).
	SourceCommit string `json:"sourceCommit,omitempty"`
	SourceTree   string `json:"sourceTree,omitempty"`
	// PipelineDigest is the pipeline closure digest they ran.
	PipelineDigest string `json:"pipelineDigest"`
}

// AgreeingBuilder is one builder of an [Agreement]: its policy identity
// and its key's fingerprint ([attest.Fingerprint]).
type AgreeingBuilder struct {
	ID             string `json:"id"`
	KeyFingerprint string `json:"keyFingerprint"`
}

// AgreementExtension is the key of accord's extension field in a
// verification summary's predicate; its value is an [Agreement].
const AgreementExtension = "https://accord.dev/vsa/agreement/v1"

// VerifiedLevel is the SLSA level a summary records (verifiedLevels): the
// provenance exists, is accord's, and is signed by builders the policy
// trusts, checked against the artifact's own bytes (Build L2's
// "provenance is authentic"). Build L3 (isolated runs, keys out of reach
// of the build) is a property of how the builders run, which no stored
// evidence shows, so a summary does not claim it.
const VerifiedLevel = "SLSA_BUILD_LEVEL_2"

// ErrNotVerified is returned by [Summary] for a verification that did not
// pass: a failed verification is never summarised.
var ErrNotVerified = errors.New("the artifact did not verify: no verification summary for it")

// SummaryOptions say who verified, when, and where the evidence is stored.
type SummaryOptions struct {
	// VerifierID is the verifier's identity, a URI (required): the
	// summary's verifier.id, which admission matches.
	VerifierID string
	// VerifierVersion is the verifier's software and version, e.g.
	// {"accord": "v1.2.0"} (optional).
	VerifierVersion map[string]string
	// Time is when the verification happened (required).
	Time time.Time
	// ResourceURI names the artifact with its digest (required).
	ResourceURI string
	// AttestationsURI and LinksURI name where Evidence.Attestations and
	// Evidence.LinkBundles are stored (required for what is used).
	AttestationsURI, LinksURI string
}

// Summary returns the in-toto statement (JSON) of a SLSA verification
// summary (predicate [attest.VerificationSummaryV1]) about the artifact
// that r, the result of [Artifact] over ev and p, verified: the policy file
// by digest, every attestation and links bundle the verdict used by the
// SHA-256 of the bytes as stored, verifiedLevels [VerifiedLevel], and the
// agreement under [AgreementExtension]. It is [ErrNotVerified] when r did
// not verify, and an error when p has no policy file to name or o lacks a
// field. Summary does no I/O.
func Summary(r *Result, ev Evidence, p Policy, o SummaryOptions) ([]byte, error) {
	if r == nil || !r.Verified || r.Used == nil {
		return nil, ErrNotVerified
	}
	if err := checkSummaryOptions(p, o, r.Used); err != nil {
		return nil, err
	}
	pred := &vsa.VerificationSummary{
		Verifier:           &vsa.VerificationSummary_Verifier{Id: o.VerifierID},
		TimeVerified:       timestamppb.New(o.Time.UTC()),
		ResourceUri:        o.ResourceURI,
		Policy:             &vsa.VerificationSummary_Policy{Uri: p.File, Digest: map[string]string{"sha256": p.FileSHA256}},
		InputAttestations:  inputAttestations(r.Used, ev, o),
		VerificationResult: "PASSED",
		VerifiedLevels:     []string{VerifiedLevel},
		SlsaVersion:        "1.0",
	}
	raw, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("verification summary: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("verification summary: %w", err)
	}
	// verifier.version is in the spec but not in the in-toto Go type.
	if v, ok := fields["verifier"].(map[string]any); ok && len(o.VerifierVersion) > 0 {
		v["version"] = o.VerifierVersion
	}
	ext, err := json.Marshal(r.Used.Agreement)
	if err != nil {
		return nil, err
	}
	fields[AgreementExtension] = json.RawMessage(ext)
	st, err := attest.Statement(attest.VerificationSummaryV1, []attest.Subject{{Name: r.Used.Name, SHA256: ev.ArtifactSHA256}}, fields)
	if err != nil {
		return nil, fmt.Errorf("verification summary statement: %w", err)
	}
	return st, nil
}

// SignSummary signs a statement from [Summary] with the verifier's key: a
// DSSE envelope (JSON), as accord signs every attestation.
func SignSummary(ctx context.Context, s *attest.Signer, statement []byte) ([]byte, error) {
	env, err := attest.SignEnvelope(ctx, s, attest.PayloadType, statement)
	if err != nil {
		return nil, fmt.Errorf("signing the verification summary: %w", err)
	}
	return json.Marshal(env)
}

func checkSummaryOptions(p Policy, o SummaryOptions, u *Used) error {
	if p.File == "" || len(p.FileSHA256) != 64 {
		return fmt.Errorf("verification summary: the policy has no file to name and digest (Policy.File, Policy.FileSHA256)\n  fix: load the policy from a file (verify.LoadPolicy)")
	}
	if u, err := url.Parse(o.VerifierID); err != nil || u.Scheme == "" {
		return fmt.Errorf("verification summary: verifier id %q is not a URI\n  fix: give the verifier's identity as a URI, e.g. https://example.com/verifiers/release", o.VerifierID)
	}
	switch {
	case o.Time.IsZero():
		return fmt.Errorf("verification summary: no verification time (SummaryOptions.Time)")
	case o.ResourceURI == "":
		return fmt.Errorf("verification summary: no resource URI (SummaryOptions.ResourceURI)")
	case o.AttestationsURI == "" && len(u.Provenance)+len(u.SBOMs) > 0:
		return fmt.Errorf("verification summary: no URI for the attestations used (SummaryOptions.AttestationsURI)")
	case o.LinksURI == "" && len(u.LinkBundles) > 0:
		return fmt.Errorf("verification summary: no URI for the links bundles used (SummaryOptions.LinksURI)")
	}
	return nil
}

// inputAttestations lists what u used, by the SHA-256 of the stored bytes,
// sorted by URI and digest, each once.
func inputAttestations(u *Used, ev Evidence, o SummaryOptions) []*vsa.VerificationSummary_InputAttestation {
	seen := map[[2]string]bool{}
	var out []*vsa.VerificationSummary_InputAttestation
	add := func(uri string, blob []byte) {
		k := [2]string{uri, attest.SHA256Hex(blob)}
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, &vsa.VerificationSummary_InputAttestation{Uri: uri, Digest: map[string]string{"sha256": k[1]}})
	}
	for _, i := range append(append([]int(nil), u.Provenance...), u.SBOMs...) {
		add(o.AttestationsURI, ev.Attestations[i])
	}
	for _, i := range u.LinkBundles {
		add(o.LinksURI, ev.LinkBundles[i])
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Uri != out[j].Uri {
			return out[i].Uri < out[j].Uri
		}
		return out[i].Digest["sha256"] < out[j].Digest["sha256"]
	})
	return out
}
