package attest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PayloadType is the DSSE payload type of in-toto statements.
const PayloadType = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope.
type Envelope = ssldsse.Envelope

// dsseSigner adapts a [Signer] to DSSE. The key id is left empty, as cosign
// writes it (cosign ignores it when verifying).
type dsseSigner struct{ s *Signer }

func (d dsseSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	return d.s.Sign(ctx, data)
}
func (d dsseSigner) KeyID() (string, error) { return "", nil }

// SignEnvelope wraps payload in a DSSE envelope signed by s over the PAE.
func SignEnvelope(ctx context.Context, s *Signer, payloadType string, payload []byte) (*Envelope, error) {
	es, err := ssldsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing DSSE envelope: %w", err)
	}
	return env, nil
}

// VerifyEnvelope checks that some signature of env verifies with v over the
// PAE, and returns the payload.
func VerifyEnvelope(env *Envelope, v signature.Verifier) ([]byte, error) {
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE payload is not base64: %w", err)
	}
	pae := ssldsse.PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae)) == nil {
			return payload, nil
		}
	}
	return nil, ErrBadSignature
}

// ParseEnvelope decodes a DSSE envelope from JSON.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.PayloadType == "" || env.Payload == "" || len(env.Signatures) == 0 {
		return nil, fmt.Errorf("not a DSSE envelope: payloadType, payload and signatures are required")
	}
	return &env, nil
}
