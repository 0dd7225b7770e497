// Package pemtest writes one public key in the several PEM encodings an
// attacker (or a careless copy) can give it, for tests that must count it
// as one key.
package pemtest

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// Encoding is one way of writing a public key.
type Encoding struct {
	Name string
	PEM  []byte
}

// Encodings returns pub (a PKIX "PUBLIC KEY" PEM) written other ways: CRLF
// line ends, a comment line before the block, trailing newlines, the whole
// base64 body on one line, and a PEM header inside the block. For an RSA
// key it adds the PKCS#1 "RSA PUBLIC KEY" form.
func Encodings(t testing.TB, pub []byte) []Encoding {
	t.Helper()
	block, _ := pem.Decode(pub)
	if block == nil {
		t.Fatalf("pemtest: not PEM: %q", pub)
	}
	oneLine := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(block.Bytes) + "\n-----END PUBLIC KEY-----\n"
	withHeader := pem.EncodeToMemory(&pem.Block{Type: block.Type, Headers: map[string]string{"Comment": "builder key"}, Bytes: block.Bytes})
	out := []Encoding{
		{"as written", pub},
		{"CRLF line ends", bytes.ReplaceAll(pub, []byte("\n"), []byte("\r\n"))},
		{"comment line before the block", append([]byte("# the primary's key\n"), pub...)},
		{"trailing newlines", append(append([]byte{}, pub...), "\n\n\n"...)},
		{"base64 on one line", []byte(oneLine)},
		{"PEM header", withHeader},
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("pemtest: %v", err)
	}
	if rk, ok := key.(*rsa.PublicKey); ok {
		out = append(out, Encoding{"PKCS#1 RSA PUBLIC KEY", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rk)})})
	}
	return out
}
