package verify

import (
	"bytes"
	"encoding/json"
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
