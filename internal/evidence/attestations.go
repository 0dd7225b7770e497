package evidence

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// Attestations returns the DSSE envelopes stored for the artifact (name,
// stored as h) with the given predicate type, in store order; none is
// trusted yet. A layer that cannot be read (over the size limit, not
// matching its digest) is skipped with a "note:" line on warn, so it
// cannot hide the others; err is for an attachment that cannot be read at
// all ([store.ErrNotFound] when there is none).
func Attestations(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, predicateType string, warn io.Writer) ([][]byte, error) {
	layers, err := store.Layers(ctx, st, store.AttachmentRef(store.Name(st, name), h, store.AttSuffix))
	if err != nil && len(layers) == 0 {
		return nil, err
	}
	for _, n := range LayerNotes("attestation", err) {
		fmt.Fprintln(warn, "note:", n)
	}
	return OfType(layers, predicateType), nil
}

// OfType returns the blobs of the layers annotated with the predicate
// type, in order.
func OfType(layers []store.Layer, predicateType string) [][]byte {
	var out [][]byte
	for _, l := range layers {
		if l.Annotations[store.PredicateTypeAnnotation] == predicateType {
			out = append(out, l.Blob)
		}
	}
	return out
}

// TrustedEnvelopes returns the envelopes of the predicate type among
// layers that a builder of pol signed about the artifact sha (hex), by
// [verify.Trusted].
func TrustedEnvelopes(layers []store.Layer, sha string, pol *verify.Policy, predicateType string) ([][]byte, error) {
	return verify.Trusted(OfType(layers, predicateType), sha, *pol, predicateType)
}

// SBOM returns the SPDX document (JSON) of the first SBOM attestation
// about the artifact arg (as [Resolve] takes it) that a builder of pol
// signed. No SBOM, or none trusted, is an [*InputError] that says how to
// get one.
func SBOM(ctx context.Context, st store.Store, arg string, pol *verify.Policy, warn io.Writer) ([]byte, error) {
	name, h, err := Resolve(ctx, st, arg)
	if err != nil {
		return nil, err
	}
	sha, err := StoredSHA256(ctx, st, h)
	if err != nil {
		return nil, fmt.Errorf("reading stored artifact %s: %w", arg, err)
	}
	envs, err := Attestations(ctx, st, name, h, attest.SPDXDocument, warn)
	if err != nil || len(envs) == 0 {
		return nil, inputErr(fmt.Errorf("no SBOM attested for %s (%v)\n  fix: build it with 'accord run --key ...'", arg, err))
	}
	trusted, err := verify.Trusted(envs, sha, *pol, attest.SPDXDocument)
	if err != nil {
		return nil, inputErr(err)
	}
	if len(trusted) == 0 {
		return nil, inputErr(fmt.Errorf("none of the %d SBOM attestation(s) stored for %s is signed by a trusted key and about sha256:%s\n  fix: give the public key of the builder that built it (--key) or a policy trusting it (--policy)", len(envs), arg, sha))
	}
	return PredicateOf(trusted[0])
}

// PredicateOf is the predicate of a DSSE envelope's statement. It checks
// no signature: give it envelopes that verified.
func PredicateOf(envelope []byte) ([]byte, error) {
	env, err := attest.ParseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE payload is not base64: %w", err)
	}
	stmt, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	return stmt.Predicate, nil
}

// KeyPolicy is the policy of a command (verb: "accord sbom") that outputs
// only what a trusted key signed: the builders of the policy file, or
// ID-less builders of the public key files keys (trusted under any
// identity). One of them is required, not both: nothing stored is taken
// on trust. Errors are [*InputError]s.
func KeyPolicy(verb string, keys []string, policy string) (*verify.Policy, error) {
	switch {
	case len(keys) == 0 && policy == "":
		return nil, inputErr(fmt.Errorf("%s needs the key that signed what it outputs: the store is not trusted\n  fix: add --key BUILDER.pub or --policy policy.yaml", verb))
	case len(keys) > 0 && policy != "":
		return nil, inputErr(fmt.Errorf("--key and --policy: give one\n  fix: drop --key, or list the key in the policy's builders"))
	case policy != "":
		p, err := verify.LoadPolicy(policy)
		return p, inputErr(err)
	}
	p := &verify.Policy{Threshold: 1}
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return nil, inputErr(fmt.Errorf("--key %s: %w\n  fix: give the builder's public key file (NAME.pub)", k, err))
		}
		p.Builders = append(p.Builders, verify.Builder{Key: b})
	}
	return p, nil
}
