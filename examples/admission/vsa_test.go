package admission_test

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/verify"
)

const (
	kyvernoVSAFile  = "kyverno-vsa-clusterpolicy.yaml"
	cipVSAFile      = "policy-controller-vsa-clusterimagepolicy.yaml"
	verifierKeyFile = "keys/verifier.pub"
	// verifierID is the identity the release verifier signs summaries
	// under (accord verify --verifier-id).
	verifierID = "https://accord.dev/verifiers/release"
)

func verifierKey(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(verifierKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKyvernoVSAClusterPolicy: one verification summary, signed by the
// verifier's key alone, with the verifier's id, PASSED, Build L2 and a
// threshold of at least the accord policy's.
func TestKyvernoVSAClusterPolicy(t *testing.T) {
	p := trusted(t)
	var cp kyvernoPolicy
	decode(t, kyvernoVSAFile, &cp)
	if cp.APIVersion != "kyverno.io/v1" || cp.Kind != "ClusterPolicy" {
		t.Fatalf("apiVersion %q kind %q, want kyverno.io/v1 ClusterPolicy", cp.APIVersion, cp.Kind)
	}
	if cp.Spec.Background == nil || *cp.Spec.Background {
		t.Error("spec.background: want false (image verification runs at admission)")
	}
	if len(cp.Spec.Rules) != 1 || len(cp.Spec.Rules[0].VerifyImages) != 1 {
		t.Fatalf("want one rule with one verifyImages entry")
	}
	iv := cp.Spec.Rules[0].VerifyImages[0]
	if iv.FailureAction == nil || *iv.FailureAction != "Enforce" || iv.Type != "Cosign" {
		t.Error("want failureAction Enforce and type Cosign")
	}
	if len(iv.ImageReferences) == 0 || !iv.MutateDigest || !iv.VerifyDigest || !iv.Required {
		t.Errorf("want imageReferences, mutateDigest, verifyDigest and required: %+v", iv)
	}
	if len(iv.Attestations) != 1 || iv.Attestations[0].Type != attest.VerificationSummaryV1 {
		t.Fatalf("want one attestation of type %s", attest.VerificationSummaryV1)
	}
	a := iv.Attestations[0]
	checkKyvernoAttestors(t, "attestations "+a.Name, a.Attestors, &verify.Policy{Threshold: 1, Builders: []verify.Builder{{ID: "verifier", Key: verifierKey(t)}}})
	for _, want := range []kyvernoCondition{
		{Key: "{{ verifier.id }}", Operator: "Equals", Value: verifierID},
		{Key: "{{ verificationResult }}", Operator: "Equals", Value: "PASSED"},
		{Key: "{{ verifiedLevels }}", Operator: "AnyIn", Value: []any{verify.VerifiedLevel}},
		{Key: `{{ "` + verify.AgreementExtension + `".threshold }}`, Operator: "GreaterThanOrEquals", Value: float64(p.Threshold)},
	} {
		requireCondition(t, a, want)
	}
}

// TestPolicyControllerVSAClusterImagePolicy: one authority, the verifier's
// key, requiring a summary with the verifier's id, PASSED, Build L2 and
// the accord policy's threshold.
func TestPolicyControllerVSAClusterImagePolicy(t *testing.T) {
	p := trusted(t)
	var cip clusterImagePolicy
	decode(t, cipVSAFile, &cip)
	if cip.APIVersion != "policy.sigstore.dev/v1beta1" || cip.Kind != "ClusterImagePolicy" || cip.Spec.Mode != "enforce" {
		t.Fatalf("want an enforcing policy.sigstore.dev/v1beta1 ClusterImagePolicy, got %s %s mode %q", cip.APIVersion, cip.Kind, cip.Spec.Mode)
	}
	if len(cip.Spec.Images) == 0 || cip.Spec.Images[0].Glob == "" {
		t.Error("want an images glob")
	}
	if len(cip.Spec.Authorities) != 1 || cip.Spec.Policy != nil {
		t.Fatalf("%d authorities and spec.policy %v, want the verifier's authority alone", len(cip.Spec.Authorities), cip.Spec.Policy)
	}
	a := cip.Spec.Authorities[0]
	if a.Key == nil || !samePEM(a.Key.Data, verifierKey(t)) || a.Key.HashAlgorithm != "sha256" {
		t.Errorf("authority %s: want key.data of %s and hashAlgorithm sha256", a.Name, verifierKeyFile)
	}
	for _, b := range p.Builders {
		if a.Key != nil && samePEM(a.Key.Data, b.Key) {
			t.Errorf("the verifier's key is builder %s's: a builder must not vouch for its own verification", b.ID)
		}
	}
	if len(a.Attestations) != 1 || a.Attestations[0].PredicateType != attest.VerificationSummaryV1 {
		t.Fatalf("authority %s: want one attestation of %s", a.Name, attest.VerificationSummaryV1)
	}
	pol := a.Attestations[0].Policy
	checkRego(t, "vsa", pol, attest.VerificationSummaryV1, verifierID, "PASSED", verify.VerifiedLevel, verify.AgreementExtension)
	if want := "].threshold >= " + strconv.Itoa(p.Threshold); !strings.Contains(pol.Data, want) {
		t.Errorf("vsa policy lacks %q (the accord threshold)", want)
	}
}

// TestVSAPolicyDigest: the summary names accord-policy.yaml by the digest
// of its bytes, as an admission policy that pins it would.
func TestVSAPolicyDigest(t *testing.T) {
	p := trusted(t)
	b, _ := os.ReadFile(accordFile)
	if diff := cmp.Diff(attest.SHA256Hex(b), p.FileSHA256); diff != "" || p.File != accordFile {
		t.Errorf("policy %s digest (-want +got):\n%s", p.File, diff)
	}
}

// rewrite writes the committed policy file into dir for a test: the keys
// of keys/ replaced by the test's (by name), the image pattern by repo.
func rewrite(t *testing.T, dir, file string, keys map[string][]byte, repo string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range slices.Sorted(maps.Keys(keys)) {
		old, err := os.ReadFile(filepath.Join("keys", n+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		oldLines, newLines := pemBody(old), pemBody(keys[n])
		if len(oldLines) != len(newLines) {
			t.Fatalf("key %s: %d PEM lines, the test key has %d", n, len(oldLines), len(newLines))
		}
		for i := range oldLines {
			b = bytes.ReplaceAll(b, oldLines[i], newLines[i])
		}
	}
	b = bytes.ReplaceAll(b, []byte("registry.example/accord/"), []byte(repo+"/"))
	out := filepath.Join(dir, file)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func pemBody(pem []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(pem), []byte("\n")) {
		if !bytes.HasPrefix(l, []byte("-----")) {
			out = append(out, l)
		}
	}
	return out
}
