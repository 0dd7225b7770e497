package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"

	// KMS providers for hashivault://, awskms://, gcpkms://, azurekms://.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

// PasswordEnv lists the environment variables a key password is read from,
// in order (cosign's COSIGN_PASSWORD works as it does for cosign).
var PasswordEnv = []string{"ACCORD_PASSWORD", "COSIGN_PASSWORD"}

// PasswordFromEnv returns the password from [PasswordEnv] and whether one
// was set (an empty value is an empty password, as in cosign).
func PasswordFromEnv() ([]byte, bool) {
	for _, e := range PasswordEnv {
		if v, ok := os.LookupEnv(e); ok {
			return []byte(v), true
		}
	}
	return nil, false
}

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's format: the
// private key PKCS#8, encrypted with scrypt + secretbox under pass, PEM type
// "ENCRYPTED SIGSTORE PRIVATE KEY"; the public key PKIX PEM.
func GenerateKeyPair(pass []byte) (priv, pub []byte, err error) {
	if pass == nil {
		pass = []byte{}
	}
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc(pass))
}

// Signer signs with one key. The key is decrypted once, when the Signer is
// loaded, and stays in this process: nothing here hands it to a sandbox.
// Safe for concurrent use.
type Signer struct {
	sv     signature.SignerVerifier
	pubPEM []byte
	keyID  string
	ref    string
}

// IsKMS reports whether ref names a KMS key rather than a file.
func IsKMS(ref string) bool {
	for _, p := range []string{"hashivault://", "awskms://", "gcpkms://", "azurekms://"} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// LoadSigner loads the key ref: a cosign private key file (decrypted with
// pass), or a KMS reference (hashivault://, awskms://, gcpkms://,
// azurekms://) through sigstore's signature providers.
func LoadSigner(ctx context.Context, ref string, pass func() ([]byte, error)) (*Signer, error) {
	var sv signature.SignerVerifier
	if IsKMS(ref) {
		k, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("KMS key %s: %w\n  fix: check the reference and that its KMS is reachable with your credentials", ref, err)
		}
		sv = k
	} else {
		b, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("reading key: %w\n  fix: give a cosign private key file (accord keys generate NAME) or a KMS reference", err)
		}
		pf := func(bool) ([]byte, error) {
			if pass == nil {
				return []byte{}, nil
			}
			p, err := pass()
			if p == nil && err == nil {
				p = []byte{}
			}
			return p, err
		}
		pk, err := cryptoutils.UnmarshalPEMToPrivateKey(b, pf)
		if err != nil {
			return nil, fmt.Errorf("loading key %s: %w\n  fix: check the password (ACCORD_PASSWORD or COSIGN_PASSWORD)", ref, err)
		}
		if sv, err = signature.LoadSignerVerifier(pk, crypto.SHA256); err != nil {
			return nil, fmt.Errorf("loading key %s: %w", ref, err)
		}
	}
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: reading its public key: %w\n  fix: check the reference and that its KMS is reachable with your credentials", ref, err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, err
	}
	id, err := KeyID(pubPEM)
	if err != nil {
		return nil, err
	}
	return &Signer{sv: sv, pubPEM: pubPEM, keyID: id, ref: ref}, nil
}

// Sign signs data (ASN.1 DER ECDSA over its SHA-256 for P-256 keys).
func (s *Signer) Sign(ctx context.Context, data []byte) ([]byte, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(data), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.ref, err)
	}
	return sig, nil
}

// PublicKeyPEM returns the public key, PKIX PEM.
func (s *Signer) PublicKeyPEM() []byte { return s.pubPEM }

// KeyID is the in-toto key id of the public key.
func (s *Signer) KeyID() string { return s.keyID }

// KeyID computes the in-toto key id of a PEM public key. in-toto derives
// it from the key's DER SubjectPublicKeyInfo, re-encoded, so like
// [Fingerprint] it does not depend on how the PEM file is written.
func KeyID(pubPEM []byte) (string, error) {
	k, err := InTotoKey(pubPEM)
	if err != nil {
		return "", err
	}
	return k.KeyID, nil
}

// InTotoKey converts a PEM public key to in-toto's key form.
func InTotoKey(pubPEM []byte) (intoto.Key, error) {
	var k intoto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(pubPEM)); err != nil {
		return k, fmt.Errorf("public key for in-toto: %w", err)
	}
	return k, nil
}

// LoadVerifier loads a PEM public key.
func LoadVerifier(pubPEM []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return v, nil
}

// Fingerprint identifies a public key by its material: the hex SHA-256 of
// its DER SubjectPublicKeyInfo, re-encoded after parsing. The same key
// written with CRLF line ends, text around the PEM block, another line
// width, PEM headers or as PKCS#1 "RSA PUBLIC KEY" has one fingerprint;
// comparing PEM bytes would count it as several keys.
func Fingerprint(pubPEM []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")
