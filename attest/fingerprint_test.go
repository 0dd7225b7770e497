package attest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/accord-build/accord/internal/testutil/pemtest"
)

// TestFingerprintEncodings: one key has one fingerprint and one in-toto key
// id however its PEM file is written, and another key has another.
func TestFingerprintEncodings(t *testing.T) {
	_, ecPub := newSigner(t, "")
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	rsaPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	_, otherPub := newSigner(t, "")
	otherFP, _ := Fingerprint(otherPub)
	for _, key := range []struct {
		name string
		pub  []byte
	}{{"ecdsa", ecPub}, {"rsa", rsaPub}} {
		wantFP, err := Fingerprint(key.pub)
		if err != nil {
			t.Fatal(err)
		}
		wantID, err := KeyID(key.pub)
		if err != nil {
			t.Fatal(err)
		}
		if wantFP == otherFP {
			t.Fatalf("%s: two keys share fingerprint %s", key.name, wantFP)
		}
		for _, enc := range pemtest.Encodings(t, key.pub) {
			t.Run(key.name+"/"+enc.Name, func(t *testing.T) {
				if fp, err := Fingerprint(enc.PEM); err != nil || fp != wantFP {
					t.Errorf("Fingerprint = %s, %v; want %s", fp, err, wantFP)
				}
				if _, err := LoadVerifier(enc.PEM); err != nil {
					t.Errorf("LoadVerifier: %v", err)
				}
				if enc.Name == "PKCS#1 RSA PUBLIC KEY" {
					return // in-toto reads PKIX public keys only
				}
				if id, err := KeyID(enc.PEM); err != nil || id != wantID {
					t.Errorf("KeyID = %s, %v; want %s", id, err, wantID)
				}
			})
		}
	}
	if _, err := Fingerprint([]byte("not a key")); err == nil {
		t.Error("Fingerprint of garbage: no error")
	}
}
