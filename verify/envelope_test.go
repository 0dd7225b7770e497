package verify

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/accord-build/accord/attest"
)

// TestEnvelope: the one trust rule. A key verifies the signature, the
// signed statement is of the type asked for, and provenance claims the
// key's identity ("" trusts any); otherwise the rejection says which
// check failed, for the key that verified it.
func TestEnvelope(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	const other = "https://accord.dev/builders/other"
	load := func(pem []byte) Key {
		v, err := attest.LoadVerifier(pem)
		if err != nil {
			t.Fatal(err)
		}
		return Key{ID: testBuilder, Verifier: v}
	}
	builderKey, ownerKey := load(w.builderPub), load(w.ownerPub)
	anyID := builderKey
	anyID.ID = ""
	otherID := builderKey
	otherID.ID = other
	signed := func(payload []byte) []byte {
		env, err := attest.SignEnvelope(context.Background(), w.builder, attest.PayloadType, payload)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		return b
	}
	prov := w.envelope(t, w.builder, attest.SLSAProvenanceV1, sha)
	tests := []struct {
		name   string
		env    []byte
		keys   []Key
		pt     string
		key    int // accepted by; -1: rejected
		reason Reason
		text   string
	}{
		{"trusted key", prov, []Key{builderKey}, attest.SLSAProvenanceV1, 0, 0, ""},
		{"trusted key, second", prov, []Key{ownerKey, builderKey}, attest.SLSAProvenanceV1, 1, 0, ""},
		{"key without identity", prov, []Key{anyID}, attest.SLSAProvenanceV1, 0, 0, ""},
		{"SBOM", w.envelope(t, w.builder, attest.SPDXDocument, sha), []Key{otherID}, attest.SPDXDocument, 0, 0, ""},
		{"other key", prov, []Key{ownerKey}, attest.SLSAProvenanceV1, -1, NotSigned, "not signed by a trusted builder key"},
		{"no keys", prov, nil, attest.SLSAProvenanceV1, -1, NotSigned, "not signed by a trusted builder key"},
		{"wrong id for the key", prov, []Key{otherID}, attest.SLSAProvenanceV1, -1, OtherBuilder, `signed by the key of ` + other + ` but claims builder "` + testBuilder + `"`},
		{"wrong id, then the right one", prov, []Key{otherID, builderKey}, attest.SLSAProvenanceV1, 1, 0, ""},
		{"other predicate", prov, []Key{builderKey}, attest.SPDXDocument, -1, OtherPredicate, `signed payload has predicate type "` + attest.SLSAProvenanceV1 + `"`},
		{"signed junk", signed([]byte("junk")), []Key{builderKey}, attest.SLSAProvenanceV1, -1, Unreadable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := attest.ParseEnvelope(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			s, rej := Envelope(env, tc.keys, tc.pt)
			if tc.key >= 0 {
				if rej != nil || s.Key != tc.key || s.Statement == nil || (tc.pt == attest.SLSAProvenanceV1) != (s.Provenance != nil) {
					t.Fatalf("Envelope = %+v, %+v; want trusted by key %d", s, rej, tc.key)
				}
				return
			}
			if s != nil || rej == nil || rej.Reason != tc.reason {
				t.Fatalf("Envelope = %+v, %+v; want rejected for reason %d", s, rej, tc.reason)
			}
			if tc.text != "" && rej.String() != tc.text {
				t.Errorf("rejection %q, want %q", rej.String(), tc.text)
			}
			if (rej.Reason == NotSigned) != (rej.Key == -1) {
				t.Errorf("rejection key %d for reason %d", rej.Key, rej.Reason)
			}
		})
	}
}
