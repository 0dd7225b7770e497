package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// vsaOptions are verify's flags for a signed verification summary.
type vsaOptions struct{ key, verifierID string }

func (o *vsaOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.key, "vsa-key", "", "when the artifact verifies, sign a SLSA verification summary (https://slsa.dev/verification_summary/v1) with this key (cosign key file or KMS URI) and store it beside the artifact")
	cmd.Flags().StringVar(&o.verifierID, "verifier-id", "", "the verifier's identity (a URI) the summary names as verifier.id; required with --vsa-key")
}

// validate runs before anything is verified: the flags go together.
func (o *vsaOptions) validate() error {
	switch {
	case o.key == "" && o.verifierID == "":
		return nil
	case o.key == "":
		return usageErr(fmt.Errorf("--verifier-id is only used with --vsa-key\n  fix: add --vsa-key KEY to sign a verification summary, or drop --verifier-id"))
	case o.verifierID == "":
		return usageErr(fmt.Errorf("--vsa-key needs --verifier-id URI: the identity the summary names as verifier.id, which admission policies match\n  fix: add --verifier-id https://example.com/verifiers/NAME"))
	}
	if u, err := url.Parse(o.verifierID); err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return usageErr(fmt.Errorf("--verifier-id %q is not a URI\n  fix: give the verifier's identity as a URI, e.g. https://example.com/verifiers/release", o.verifierID))
	}
	return nil
}

// vsaRef is where a signed summary was stored (verify -o json's "vsa").
type vsaRef struct {
	// Digest is the SHA-256 of the stored DSSE envelope.
	Digest string `json:"digest"`
	// Ref is the attachment it was stored under (sha256-<hex>.att).
	Ref string `json:"ref"`
}

// sign signs and stores the verification summary of res when --vsa-key is
// given and res verified; nil otherwise. A failed verification signs
// nothing.
func (o *vsaOptions) sign(ctx context.Context, st store.Store, arg string, ev *verify.Evidence, res *verify.Result, pol *verify.Policy) (*vsaRef, error) {
	if o.key == "" || !res.Verified {
		return nil, nil
	}
	when, err := proof.VerificationTime()
	if err != nil {
		return nil, usageErr(err)
	}
	signer, err := loadSigner(ctx, o.key)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--vsa-key: %w", err))
	}
	digest, ref, err := proof.Summarize(ctx, st, arg, ev, res, pol, proof.Summary{Signer: signer, VerifierID: o.verifierID, Version: map[string]string{"accord": version}, Time: when})
	if evidence.IsInput(err) {
		return nil, usageErr(err)
	}
	if err != nil {
		return nil, err
	}
	return &vsaRef{Digest: digest, Ref: ref}, nil
}

// verifyJSON is verify's -o json: the result, and the summary when one
// was signed.
func verifyJSON(res *verify.Result, ref *vsaRef) any {
	if ref == nil {
		return res
	}
	return struct {
		*verify.Result
		VSA *vsaRef `json:"vsa"`
	}{res, ref}
}
