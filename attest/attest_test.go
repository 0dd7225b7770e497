package attest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newSigner(t *testing.T, pass string) (*Signer, []byte) {
	t.Helper()
	priv, pub, err := GenerateKeyPair([]byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(context.Background(), p, func() ([]byte, error) { return []byte(pass), nil })
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

func TestKeysCosignFormat(t *testing.T) {
	priv, pub, err := GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----") {
		t.Errorf("private key PEM type: %.60s", priv)
	}
	if !strings.HasPrefix(string(pub), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("public key PEM type: %.40s", pub)
	}
	p := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(context.Background(), p, func() ([]byte, error) { return []byte("wrong"), nil }); err == nil {
		t.Error("a wrong password loaded the key")
	}
	s, err := LoadSigner(context.Background(), p, func() ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(pub), string(s.PublicKeyPEM())); diff != "" {
		t.Errorf("public key (-file +loaded):\n%s", diff)
	}
	if len(s.KeyID()) != 64 {
		t.Errorf("in-toto key id %q", s.KeyID())
	}
}

func TestKMSReferenceFailsClearly(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := LoadSigner(ctx, "hashivault://accord-test", nil)
	if err == nil || !strings.Contains(err.Error(), "KMS key hashivault://accord-test") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("err = %v, want a KMS error with a fix", err)
	}
	for _, ref := range []string{"hashivault://x", "awskms://x", "gcpkms://x", "azurekms://x"} {
		if !IsKMS(ref) {
			t.Errorf("IsKMS(%q) = false", ref)
		}
	}
	if IsKMS("cosign.key") {
		t.Error("a file is not KMS")
	}
}

func TestDSSE(t *testing.T) {
	ctx := context.Background()
	s, pub := newSigner(t, "")
	other, otherPub := newSigner(t, "")
	_ = other
	env, err := SignEnvelope(ctx, s, PayloadType, []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := LoadVerifier(pub)
	got, err := VerifyEnvelope(env, v)
	if err != nil || string(got) != `{"x":1}` {
		t.Fatalf("verify: %q %v", got, err)
	}
	ov, _ := LoadVerifier(otherPub)
	if _, err := VerifyEnvelope(env, ov); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key verified: %v", err)
	}
	edited := *env
	edited.Payload = base64.StdEncoding.EncodeToString([]byte(`{"x":2}`))
	if _, err := VerifyEnvelope(&edited, v); !errors.Is(err, ErrBadSignature) {
		t.Errorf("edited payload verified: %v", err)
	}
	b, _ := json.Marshal(env)
	if _, err := ParseEnvelope(b); err != nil {
		t.Error(err)
	}
}

func testBuild() *Build {
	return &Build{
		SourceURI: "file:///src/hello.git", SourceRef: "main", SourceCommit: strings.Repeat("a", 40), SourceTree: strings.Repeat("b", 64),
		Pipeline: "go-image", PipelineDigest: "sha256:" + strings.Repeat("c", 64),
		Params:       map[string]any{"name": "hello", "list": []string{"a", "b"}},
		Dependencies: []Dependency{{Name: "z", Digest: map[string]string{"sha256": strings.Repeat("d", 64)}}, {Name: "a", URI: "oci://x", Digest: map[string]string{"sha256": strings.Repeat("e", 64)}}},
		Internal:     map[string]any{"runtime": "runc"},
		Run:          Run{BuilderID: "https://accord.dev/builders/test", InvocationID: "r1", Started: time.Unix(1700000000, 0), Finished: time.Unix(1700000100, 0)},
	}
}

func TestProvenance(t *testing.T) {
	sub := []Subject{{Name: "hello", SHA256: strings.Repeat("f", 64)}}
	a, err := Provenance(testBuild(), sub)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Provenance(testBuild(), sub)
	if string(a) != string(b) {
		t.Error("provenance is not deterministic")
	}
	st, err := ParseStatement(a)
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != SLSAProvenanceV1 || !st.HasSubject(strings.Repeat("f", 64)) {
		t.Errorf("statement %+v", st)
	}
	var pred struct {
		BuildDefinition struct {
			BuildType            string
			ExternalParameters   map[string]any
			ResolvedDependencies []struct {
				Name   string
				URI    string
				Digest map[string]string
			}
		}
		RunDetails struct {
			Builder  struct{ ID string }
			Metadata struct{ InvocationID, StartedOn, FinishedOn string }
		}
	}
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	if pred.BuildDefinition.BuildType != BuildType {
		t.Errorf("buildType %q", pred.BuildDefinition.BuildType)
	}
	src := pred.BuildDefinition.ExternalParameters["source"].(map[string]any)
	if src["commit"] != strings.Repeat("a", 40) || src["uri"] != "file:///src/hello.git" {
		t.Errorf("source %v", src)
	}
	deps := pred.BuildDefinition.ResolvedDependencies
	if len(deps) != 3 || deps[0].Digest["gitCommit"] == "" || deps[1].Name != "a" {
		t.Errorf("resolvedDependencies (source first, then sorted): %+v", deps)
	}
	if pred.RunDetails.Builder.ID != "https://accord.dev/builders/test" || pred.RunDetails.Metadata.StartedOn != "2023-11-14T22:13:20Z" {
		t.Errorf("runDetails %+v", pred.RunDetails)
	}
}

func FuzzParseStatement(f *testing.F) {
	p, _ := Provenance(testBuild(), []Subject{{Name: "x", SHA256: strings.Repeat("f", 64)}})
	f.Add(p)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := ParseStatement(b); err == nil && len(st.Subject) == 0 {
			t.Fatal("accepted a statement without subjects")
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseEnvelope(b)
	})
}
